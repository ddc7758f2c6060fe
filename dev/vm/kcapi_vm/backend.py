"""The seam between the runner and the machines it boots: a Job (what to run, under which kernel, with what
refused, as whom), the Backend interface every kind of VM implements, and the registry of backends.

Two backends: user-mode-linux (uml.py: Debian's UML kernels 6.1, 6.12, 7.2; the default) and qemu
(qemu.py: Debian's amd64 kernels 6.1-amd64, 6.12-amd64, 7.3-amd64 under qemu-system-x86_64, and its arm64 and
s390x kernels 6.12-arm64, 6.12-s390x under qemu-system-aarch64/-s390x with a root of their own). --kernel picks
the backend: kernel names are unique across them. A backend is one module with a Backend subclass and one
line in backends(); guest.py (init, modprobe wrapper, --sysctl/--user/--cap, output streaming, exit status)
is shared by all of them.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import ClassVar

from .guest import GuestOptions


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
    options: GuestOptions = field(default_factory=GuestOptions)  # --sysctl, --user, --cap, --writable


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
    from .qemu import Qemu
    from .uml import UserModeLinux

    return {UserModeLinux.name: UserModeLinux, Qemu.name: Qemu}


def backend_for(kernel: str) -> type[Backend]:
    """The backend whose --kernel choices include `kernel` (the names are unique across backends)."""
    for backend in backends().values():
        if kernel in backend.kernels:
            return backend
    raise KeyError(kernel)


def all_kernels() -> tuple[str, ...]:
    """Every --kernel choice, the default backend's first."""
    found = backends()
    order = [found[DEFAULT_BACKEND], *(b for name, b in found.items() if name != DEFAULT_BACKEND)]
    return tuple(k for b in order for k in b.kernels)
