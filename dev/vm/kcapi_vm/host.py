"""The host side: does this kernel have AF_ALG (asked through kcapi_hashlib._afalg, the one package that
opens AF_ALG sockets), and running a command directly on it when no VM is needed."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from kcapi_hashlib._afalg import af_alg_status

from .exits import EXIT_TIMEOUT, killed_by, say, signame


def host_has_af_alg() -> bool:
    """True when this (host) kernel accepts ``socket(AF_ALG, SOCK_SEQPACKET)``."""
    return af_alg_status() is None


def run_direct(cmd: Sequence[str], timeout: float) -> int:
    """Run `cmd` here, with the runner's exit-status conventions (124 timeout, 128+N signal)."""
    try:
        proc = subprocess.Popen(list(cmd))
    except OSError as exc:
        say(f"cannot run {cmd[0]}: {exc.strerror}")
        return 126 if isinstance(exc, PermissionError) else 127
    try:
        status = proc.wait(timeout=timeout if timeout > 0 else None)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        say(f"command timed out after {timeout:g} s")
        return EXIT_TIMEOUT
    except BaseException:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    if status < 0:
        say(f"command killed by {signame(-status)}")
        return killed_by(-status)
    return status
