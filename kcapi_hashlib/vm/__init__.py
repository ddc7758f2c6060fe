"""Run a command under a real Linux kernel: ``kcapi-hashlib vm`` (``python -m kcapi_hashlib vm``).

Some hosts (containers, sandboxes) answer ``socket(AF_ALG, ...)`` with EAFNOSUPPORT. This runner boots a
kernel whose root filesystem is the host's own ``/``, so the same interpreter, virtualenv, working directory
and environment are used inside, and runs one command there::

    python -m kcapi_hashlib vm [--kernel 6.1|6.12|7.2] [--refuse MODULE]...
                               [--timeout SECONDS] [--mem 2G] [--force-vm]
                               [--verbose] -- CMD ARGS...

The exit status is the command's, or the runner's own (exits.py: 124 timeout, 125 VM failure, 128+N a
signal, 2 usage or missing prerequisites). When the host kernel has AF_ALG and neither ``--force-vm``,
``--refuse`` nor a kernel other than 6.1 is asked for, the command runs directly on the host.

    backend.py   the Backend interface and registry (Job: what to run)
    uml.py       the user-mode-linux backend: Debian's kernels, system, cached or fetched
    guest.py     what any backend's guest runs: init, modprobe wrapper, --refuse, output streaming, status
    host.py      AF_ALG on the host (via kcapi_hashlib._afalg) and running a command directly
    packages.py  apt-get install, apt-get download with a private configuration, dpkg-deb, patchelf
    cache.py     the kernel cache directory and its fetch lock
    exits.py     exit statuses, VMError, signals
    runner.py    run(); command.py: the command line

Standard library only, plus kcapi_hashlib._afalg's af_alg_status(). The library never imports this package.
"""

from __future__ import annotations

from .command import main
from .exits import EXIT_SETUP, EXIT_TIMEOUT, EXIT_VM_FAILURE, VMError
from .host import host_has_af_alg
from .packages import ensure_packages
from .runner import run
from .uml import DEFAULT_KERNEL, KERNELS

__all__ = [
    "KERNELS",
    "DEFAULT_KERNEL",
    "EXIT_TIMEOUT",
    "EXIT_VM_FAILURE",
    "EXIT_SETUP",
    "VMError",
    "host_has_af_alg",
    "ensure_packages",
    "main",
    "run",
]
