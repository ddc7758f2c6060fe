"""Run a command under a real Linux kernel: ``kcapi-hashlib vm`` (``python -m kcapi_hashlib vm``).

A development tool of kcapi_hashlib's source repository (dev/vm), its own distribution and never part of the
kcapi_hashlib wheel: ``kcapi-hashlib vm`` hands over to it from a checkout. It downloads kernels and Pythons
into its cache, and installs missing host packages with apt-get only where $KCAPI_HASHLIB_VM_INSTALL=1
(packages.py).

Some hosts (containers, sandboxes) answer ``socket(AF_ALG, ...)`` with EAFNOSUPPORT. This runner boots a
kernel whose root filesystem is the host's own ``/``, so the same interpreter, virtualenv, working directory
and environment are used inside, and runs one command there::

    python -m kcapi_hashlib vm [--kernel 6.1|6.12|7.2|6.1-amd64|6.12-amd64|7.3-amd64|6.12-arm64|6.12-s390x]
                               [--refuse MODULE]... [--sysctl KEY=VALUE]...
                               [--user UID] [--cap CAP]... [--writable PATH]...
                               [--timeout SECONDS] [--mem 2G] [--force-vm]
                               [--verbose] -- CMD ARGS...

6.1, 6.12 and 7.2 are Debian's user-mode-linux kernels (the default backend); the -amd64 kernels are Debian's
own amd64 kernels under qemu-system-x86_64 with software emulation (TCG: ~20 s to boot, Python ~10-15x
slower than under UML), for the distribution's configuration and x86 crypto drivers and for Linux 7.3's
af_alg_restrict (``--sysctl crypto.af_alg_restrict=1 --user 4242 --cap net_admin``). 6.12-arm64 and
6.12-s390x are Debian trixie's arm64 and (big-endian) s390x kernels under qemu-system-aarch64/-s390x (TCG);
their guests cannot run the host's binaries, so their root is one of that architecture's Debian packages
(foreign.py: python3, pytest, hypothesis, pycryptodome), with the working directory mounted at its path.

The exit status is the command's, or the runner's own (exits.py: 124 timeout, 125 VM failure, 128+N a
signal, 2 usage or missing prerequisites). When the host kernel has AF_ALG and none of ``--force-vm``,
``--refuse``, ``--sysctl``, ``--user``, ``--cap`` nor a kernel other than 6.1 is asked for, the command runs
directly on the host.

    backend.py   the Backend interface and registry (Job: what to run); --kernel picks the backend
    uml.py       the user-mode-linux backend: Debian's kernels, system, cached or fetched
    xstate.py    the ptrace shim for UML 6.1/6.12 on hosts with a larger XSAVE area (AMX), where measured needed
    qemu.py      the qemu backend: Debian's amd64, arm64 and s390x kernels, fetched; initramfs.py: its
                 generated initramfs; machines.py: each architecture as qemu runs it; foreign.py: the root
                 filesystem of another architecture, from Debian's packages
    guest.py     what any backend's guest runs: init, modprobe wrapper, --refuse, --sysctl, --user/--cap,
                 output streaming, status; postmortem.py: what to say when a VM dies without one
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
