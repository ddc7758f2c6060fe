"""The interface every benchmarks/bench_*.py module implements; benchmarks/run.py drives them.

A module defines `cases(sizes: list[int]) -> list[Case]`. For each case the runner times every callable
in `impls` (best of several repeats), prints throughput and the ratio to kcapi_hashlib, and counts the
syscalls of one kcapi_hashlib operation with strace (tests.support.syscalls.steady_state(setup, op)).
`external` entries are shell commands (e.g. libkcapi's kcapi-dgst) timed as whole processes.
Benchmarks report; they never assert timings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Case:
    group: str  # "hash", "hmac", "cmac", "kdf", "cipher", ...
    name: str  # e.g. "sha256", "AES-128-GCM"
    size: int  # bytes of input per operation
    impls: dict[str, Callable[[], object]]  # label -> one operation; the label "kcapi_hashlib" is ours
    setup: str = ""  # Python source preparing `op` in a fresh interpreter, for the strace count
    op: str = ""  # Python source of one kcapi_hashlib operation (may use names from setup)
    external: dict[str, list[str]] = field(default_factory=dict)  # label -> argv, run once per timing
