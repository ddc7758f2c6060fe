"""Reading the kernel's text files (/proc, /proc/sys, the module index): the one bounded reader that procfs,
restrict and the command line use. Reads only; every failure is "not there" (None)."""

from __future__ import annotations

from typing import Optional


def read(path: str, limit: int = 1 << 16) -> Optional[str]:
    """Up to `limit` bytes of `path` as text (undecodable bytes replaced), or None if it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read(limit).decode("utf-8", "replace")
    except OSError:
        return None
