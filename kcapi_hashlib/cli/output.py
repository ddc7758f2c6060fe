"""How every command writes: stdout lines, bytes, and `kcapi-hashlib: ...` messages on stderr."""

from __future__ import annotations

import errno
import sys
from typing import Optional

PROG = "kcapi-hashlib"
# The kernel VM runner is a development tool of the source repository (dev/vm), not part of the package: texts
# name what a host needs, and mention the runner only as a way to try the package.
TRY_VM = f"the source repository's development VM runner boots Debian's kernels: in a checkout, {PROG} vm -- CMD"


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def err(text: str) -> None:
    sys.stdout.flush()  # keep stdout and stderr in the order they were written
    sys.stderr.write(f"{PROG}: {text}\n")
    sys.stderr.flush()


def write_bytes(data: bytes) -> None:
    buf = getattr(sys.stdout, "buffer", None)
    if buf is not None:
        buf.write(data)
    else:  # a text stream without a buffer (e.g. io.StringIO in a caller's test)
        sys.stdout.write(data.decode("utf-8", "surrogateescape"))


def errname(code: Optional[int]) -> str:
    """The symbolic name of an errno (ENOENT), as the kernel's refusals are shown; what it means is
    kcapi_hashlib._afalg.explain()'s to say (str() of the AlgUnavailable)."""
    return errno.errorcode.get(code or 0, str(code))
