"""A per-object mutex that costs no syscall when uncontended.

threading.Lock.acquire() reads the monotonic clock on every call in CPython 3.11+ (the deadline for
sem_clockwait is computed even for a blocking acquire). On kernels without a vDSO clock (user-mode-linux,
some sandboxes) that is a real syscall per update(), which would double the syscall count of small hashes.
CPython's own hash objects likewise rely on the GIL for small updates and take a lock only when needed.

Guard: list.pop()/append() are atomic under the GIL, so a one-token list is a try-lock. A thread that finds
the token gone waits by sleeping in short steps: contention on one hash object is rare, and the holder is
inside a syscall that releases the GIL.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Optional


class Guard:
    __slots__ = ("_token",)

    def __init__(self) -> None:
        self._token = [None]

    def __enter__(self) -> None:
        token = self._token
        try:
            token.pop()
        except IndexError:
            delay = 1e-6
            while True:
                time.sleep(delay)
                try:
                    token.pop()
                    return
                except IndexError:
                    delay = min(delay * 2, 1e-3)

    def __exit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self._token.append(None)
