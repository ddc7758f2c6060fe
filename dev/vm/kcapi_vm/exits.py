"""The runner's exit-status conventions, its one error type, and how signals become statuses.

the command's own status;
128+N  the command was killed by signal N (as a shell reports it), or the runner itself was
       interrupted by signal N (SIGINT: 130);
124    the command (or the VM) ran past --timeout and was killed (as timeout(1));
125    the VM itself failed: it did not boot, died without recording the command's status, or a kernel
       could not be fetched (as timeout(1)'s "the runner failed");
2      usage error, or prerequisites missing and not root (the message names the packages to install).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import NoReturn, Optional

EXIT_SETUP = 2  # usage error / missing prerequisites (not root)
EXIT_TIMEOUT = 124  # like timeout(1)
EXIT_VM_FAILURE = 125  # like timeout(1)'s "the runner itself failed"

PREFIX = "kcapi_hashlib vm: "


def say(message: str) -> None:
    """One message from the runner on stderr, prefixed with its name."""
    sys.stderr.write(PREFIX + message + "\n")
    sys.stderr.flush()


def killed_by(signum: int) -> int:
    """The exit status for death by signal `signum` (128+N, as a shell reports it)."""
    return 128 + signum


def signame(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


class VMError(Exception):
    """The VM could not be set up or run; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_VM_FAILURE) -> None:
        super().__init__(message)
        self.code = code


class Interrupted(BaseException):
    """SIGTERM or SIGHUP arrived while the runner ran (see signals_raise)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextmanager
def signals_raise() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into Interrupted so the VM gets cleaned up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Optional[FrameType]) -> NoReturn:
        raise Interrupted(signum)

    old = {
        s: signal.signal(s, handler)
        for s in (signal.SIGTERM, signal.SIGHUP)
        if signal.getsignal(s) is not signal.SIG_IGN  # keep nohup's choice
    }
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
