"""run(): a command under a real kernel, directly on the host when it has AF_ALG and nothing VM-only was
asked for, else under the VM backend that boots the asked-for kernel; every failure of the runner itself
becomes an exit status (exits.py)."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from typing import Optional

from .backend import DEFAULT_BACKEND, Job, all_kernels, backend_for, backends
from .exits import EXIT_SETUP, EXIT_VM_FAILURE, Interrupted, VMError, killed_by, say, signals_raise, signame
from .guest import GuestOptions, check_refuse_names, parse_cap, parse_sysctl
from .host import host_has_af_alg, run_direct


def _mem_bytes(mem: str) -> int:
    match = re.fullmatch(r"(\d+)([KMG]?)", mem.strip().upper())
    if not match:
        raise VMError(f"bad --mem {mem!r} (use e.g. 512M, 2G)", EXIT_SETUP)
    return int(match.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[match.group(2)]


def guest_options(
    sysctls: Sequence[str],
    user: Optional[int],
    caps: Optional[Sequence[str]],
    writable: Sequence[str],
    fips: bool = False,
) -> GuestOptions:
    """The --sysctl/--user/--cap/--writable/--fips arguments, checked (VMError with EXIT_SETUP)."""
    if user is not None and not 0 <= user < 2**32 - 1:
        raise VMError(f"bad --user {user} (a uid: 0 to 4294967294)", EXIT_SETUP)
    cap_names: Optional[tuple[str, ...]] = None
    if caps is not None:
        cap_names = () if list(caps) == ["none"] else tuple(dict.fromkeys(parse_cap(c) for c in caps))
    if writable and not user:
        raise VMError("--writable is for --user UID (root can write anything already)", EXIT_SETUP)
    return GuestOptions(
        sysctls=tuple(parse_sysctl(s) for s in sysctls),
        user=user,
        caps=cap_names,
        writable=tuple(writable),
        fips=fips,
    )


def _run_vm(
    cmd: Sequence[str],
    kernel: str,
    refuse: Sequence[str],
    timeout: float,
    verbose: bool,
    mem: str,
    options: GuestOptions,
) -> int:
    mem_bytes = _mem_bytes(mem)
    try:
        backend = backend_for(kernel)()
    except KeyError:
        raise VMError(f"unknown kernel {kernel!r}; choose from {', '.join(all_kernels())}", EXIT_SETUP) from None
    backend.preflight()
    if not cmd:
        raise VMError("no command given", EXIT_SETUP)
    check_refuse_names(refuse)
    job = Job(
        cmd=tuple(cmd),
        kernel=kernel,
        refuse=tuple(refuse),
        timeout=timeout,
        verbose=verbose,
        mem=mem,
        mem_bytes=mem_bytes,
        cwd=os.getcwd(),
        env=dict(os.environ),
        options=options,
    )
    return backend.run(job)


def run(
    cmd: list[str],
    *,
    kernel: Optional[str] = None,
    refuse: Sequence[str] = (),
    timeout: float = 1800,
    force_vm: bool = False,
    verbose: bool = False,
    mem: str = "2G",
    sysctls: Sequence[str] = (),
    user: Optional[int] = None,
    caps: Optional[Sequence[str]] = None,
    writable: Sequence[str] = (),
    fips: bool = False,
) -> int:
    """Run *cmd* under a real kernel and return its exit status.

    Runs it directly when the host has AF_ALG and nothing VM-only (force_vm, refuse, sysctls, user, caps,
    a kernel other than the default backend's default, 6.1) was asked for.  *sysctls* are "KEY=VALUE"
    strings; *caps* capability names (["none"]: none), see GuestOptions.  Errors of the VM itself
    are printed to stderr and returned as exit codes (see exits.py);
    a timeout returns 124.  KeyboardInterrupt propagates after cleanup.
    """
    if isinstance(refuse, str):
        refuse = [refuse]
    if isinstance(sysctls, str):
        sysctls = [sysctls]
    if isinstance(caps, str):
        caps = [caps]
    default_kernel = backends()[DEFAULT_BACKEND].default_kernel
    if kernel is None:
        kernel = default_kernel
    try:
        with signals_raise():
            options = guest_options(sysctls, user, caps, writable, fips)
            vm_only = force_vm or refuse or kernel != default_kernel or options != GuestOptions()
            if not vm_only and host_has_af_alg():
                if not cmd:
                    raise VMError("no command given", EXIT_SETUP)
                return run_direct(cmd, timeout)
            return _run_vm(cmd, kernel, refuse, timeout, verbose, mem, options)
    except VMError as exc:
        say(str(exc))
        return exc.code
    except subprocess.CalledProcessError as exc:
        say(f"{exc.cmd[0] if exc.cmd else 'a helper'} failed with status {exc.returncode}")
        return EXIT_VM_FAILURE
    except Interrupted as exc:
        say(f"interrupted by {signame(exc.signum)}; VM stopped")
        return killed_by(exc.signum)
