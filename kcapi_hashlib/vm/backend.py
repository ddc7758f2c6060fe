"""The seam between the runner and the machines it boots: a Job (what to run, under which kernel, with what
refused), the Backend interface every kind of VM implements, and the registry of backends.

Only user-mode-linux (uml.py) exists. Another backend (qemu) is one module with a Backend subclass and one
line in backends(); guest.py (init, modprobe wrapper, output streaming, exit status) is shared with it.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class Job:
    cmd: tuple[str, ...]
    kernel: str  # one of the backend's kernels
    refuse: tuple[str, ...]  # modules modprobe refuses inside
    timeout: float  # seconds; 0: never
    verbose: bool
    mem: str  # as given (2G)
    mem_bytes: int
    cwd: str  # the command's working directory (the same path inside)
    env: dict[str, str]  # the command's environment, exactly


class Backend(abc.ABC):
    """One way of booting a real Linux kernel whose root filesystem is the host's ``/``."""

    name: ClassVar[str]
    kernels: ClassVar[tuple[str, ...]]  # what --kernel accepts
    default_kernel: ClassVar[str]

    @abc.abstractmethod
    def preflight(self) -> None:
        """Raise VMError if this backend cannot run here at all (checked before the command is)."""

    @abc.abstractmethod
    def run(self, job: Job) -> int:
        """Boot job.kernel, run job.cmd inside, return its exit status (exits.py's conventions; VMError for
        a VM that could not be set up or did not record a status)."""


DEFAULT_BACKEND = "uml"


def backends() -> dict[str, type[Backend]]:
    """Every backend by name (imported on demand)."""
    from .uml import UserModeLinux

    return {UserModeLinux.name: UserModeLinux}
