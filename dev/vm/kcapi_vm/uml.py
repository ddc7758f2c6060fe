"""The user-mode-linux backend: Debian's ``linux.uml`` booted with the host's ``/`` as its root (hostfs).

Kernels: 6.1 is Debian bookworm's ``user-mode-linux`` package (the system one when installed), 6.12 is
trixie's, 7.2 is sid's. The latter are fetched once with ``apt-get download`` into the cache
(cache.cache_dir()/<suite>) and patched onto their own suite's glibc with patchelf.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

from . import packages, xstate
from .backend import Backend, Job
from .cache import building, cache_dir, fetch_lock
from .exits import EXIT_SETUP, VMError, say
from .guest import Guest, Kernel, kill_group, refuse_warnings

KERNELS = ("6.1", "6.12", "7.2")
DEFAULT_KERNEL = "6.1"

#: Debian suite whose ``user-mode-linux`` package provides each kernel.
SUITES = {"6.1": "bookworm", "6.12": "trixie", "7.2": "sid"}

SYSTEM_UML = Path("/usr/bin/linux.uml")
SYSTEM_MODULES = Path("/usr/lib/uml/modules")


# --------------------------------------------------------------------------
# kernels: the system package, or one fetched into the cache


def _module_version(modules_root: Path, kernel: str) -> Optional[str]:
    try:
        names = sorted(os.listdir(modules_root))
    except OSError:
        return None
    for name in reversed(names):
        if name.startswith(kernel + ".") and (modules_root / name / "modules.dep").exists():
            return name
    return None


def _system_kernel(kernel: str) -> Optional[Kernel]:
    if not SYSTEM_UML.exists():
        return None
    version = _module_version(SYSTEM_MODULES, kernel)
    if version is None:
        return None
    return Kernel(SYSTEM_UML, SYSTEM_MODULES / version, version)


def _patch(binary: Path, libdir: Path) -> None:
    # Kernel quirk: trixie's and sid's linux.uml need glibc >= 2.38 (bookworm
    # has 2.36).  Running it as "ld.so linux.uml" is no good: UML re-execs
    # /proc/self/exe and then mis-sizes its memory.  So the binary itself is
    # pointed at the suite's own loader and libc with patchelf.
    packages.patch_interpreter(binary, libdir)


def _cached_kernel(kernel: str) -> Optional[Kernel]:
    dest = cache_dir() / SUITES[kernel]
    try:
        meta = json.loads((dest / "kernel.json").read_text())
    except (OSError, ValueError):
        return None
    binary = dest / "root/usr/bin/linux.uml"
    modules = dest / "root/usr/lib/uml/modules" / str(meta.get("version", ""))
    if not binary.is_file() or not (modules / "modules.dep").exists():
        return None
    if meta.get("home") != str(dest):
        # The cache was moved: the patched-in loader path is stale.
        packages.ensure_packages({"patchelf": "patchelf"})
        _patch(binary, packages.libc_dir(dest / "libc"))
        meta["home"] = str(dest)
        (dest / "kernel.json").write_text(json.dumps(meta, indent=1) + "\n")
    return Kernel(binary, modules, str(meta["version"]), cache=dest)


def _fetch_kernel(kernel: str) -> Kernel:
    """Download the suite's user-mode-linux and libc6 into the cache.

    Builds everything in a temporary directory beside the destination and
    renames it into place, so that an interrupted fetch leaves nothing that
    looks complete.
    """
    if os.uname().machine != "x86_64":
        raise VMError(f"kernel {kernel}: fetching is only supported on x86_64/amd64")
    suite = SUITES[kernel]
    packages.ensure_packages({"apt-get": "apt", "dpkg-deb": "dpkg", "patchelf": "patchelf", "modprobe": "kmod"})
    dest = cache_dir() / suite
    say(f"fetching kernel {kernel} (Debian {suite}'s user-mode-linux) into {dest}")
    with building(dest) as work:
        apt = work / "apt"
        debs = packages.apt_download(suite, ["user-mode-linux", "libc6"], apt)
        packages.unpack(debs["user-mode-linux"], work / "root")
        packages.unpack(debs["libc6"], work / "libc")
        package_version = debs["user-mode-linux"].name.split("_")[1]
        shutil.rmtree(apt)

        libdir = packages.libc_dir(work / "libc")
        binary = work / "root/usr/bin/linux.uml"
        # Check that it runs, patched for where it is now (UML re-execs
        # /proc/self/exe early, so "ld.so linux.uml --version" would print
        # ld.so's own version), then patch it for where it will live.
        _patch(binary, libdir)
        out = packages.run_quiet([str(binary), "--version"], "linux.uml --version")
        _patch(binary, dest / libdir.relative_to(work))
        modules_root = work / "root/usr/lib/uml/modules"
        versions = sorted(dep.parent.name for dep in modules_root.glob("*/modules.dep"))
        version = next((v for v in versions if v in out.split()), "")
        if not version:
            raise VMError(f"kernel {kernel}: linux.uml --version said {out.strip()!r}, modules are for {versions}")
        if not version.startswith(kernel + "."):
            # sid moves on; say so rather than failing every fresh machine.
            say(f"warning: Debian {suite} now ships kernel {version}, not {kernel}.x")
        meta = {"kernel": kernel, "suite": suite, "version": version, "package": package_version, "home": str(dest)}
        (work / "kernel.json").write_text(json.dumps(meta, indent=1) + "\n")
    say(f"kernel {version} ready ({suite} user-mode-linux {package_version})")
    cached = _cached_kernel(kernel)
    if cached is None:
        raise VMError(f"kernel {kernel}: cache at {dest} unusable after fetch")
    return cached


def resolve_kernel(kernel: str) -> Kernel:
    """The system's user-mode-linux for `kernel` (installed when it is the host's own suite), else the
    cached one, else one fetched now."""
    if kernel not in SUITES:
        raise VMError(f"unknown kernel {kernel!r}; choose from {', '.join(KERNELS)}", EXIT_SETUP)
    # Kernel quirk: Debian's UML kernels load modules via the *host's*
    # modprobe (it is on hostfs).  Without kmod there is no modprobe, nothing
    # loads and socket(AF_ALG) fails with EAFNOSUPPORT inside the VM too.
    modprobe_pkg = {"modprobe": "kmod"}
    found = _system_kernel(kernel)
    if found is None and SUITES[kernel] == packages.host_codename() and not SYSTEM_UML.exists():
        packages.ensure_packages({str(SYSTEM_UML): "user-mode-linux", **modprobe_pkg})
        found = _system_kernel(kernel)
    if found is None:
        found = _cached_kernel(kernel)
    if found is None:
        with fetch_lock(SUITES[kernel]):
            found = _cached_kernel(kernel) or _fetch_kernel(kernel)
    packages.ensure_packages(modprobe_pkg)
    return found


# --------------------------------------------------------------------------
# the VM


def _uml_env(mem: int) -> dict[str, str]:
    # UML backs guest memory with a (sparse) file in $TMPDIR, else /dev/shm.
    # A small /dev/shm (docker's 64M default) makes the guest die with SIGBUS
    # once it touches more, so pick a directory that can hold it all.
    env = dict(os.environ)
    best, best_free = "", -1
    for cand in ("/dev/shm", tempfile.gettempdir(), "/var/tmp", "/tmp"):
        try:
            st = os.statvfs(cand)
        except OSError:
            continue
        free = st.f_bavail * st.f_frsize
        if free >= mem:
            best = cand
            break
        if free > best_free:
            best, best_free = cand, free
    if best:
        env["TMPDIR"] = best
    return env


def inside_uml() -> bool:
    try:
        with open("/proc/cpuinfo", "rb") as f:
            return b"User Mode Linux" in f.read(256)
    except OSError:
        return False


class UserModeLinux(Backend):
    name = "uml"
    kernels = KERNELS
    default_kernel = DEFAULT_KERNEL

    def preflight(self) -> None:
        if inside_uml():
            # Kernel quirk: UML cannot run nested (the inner one dies at once,
            # its ptrace checks fail), so give the options to the outer VM.
            raise VMError(
                "already inside a user-mode-linux VM, which cannot nest; pass --kernel/--refuse to the outer VM instead"
            )

    def run(self, job: Job) -> int:
        kern = resolve_kernel(job.kernel)
        for warning in refuse_warnings(kern, job.refuse):
            say("warning: " + warning)
        with Guest.prepared(kern, job.cmd, job.cwd, job.env, job.refuse, job.verbose, job.options) as guest:
            argv = [
                str(kern.binary),
                f"mem={job.mem}",
                "root=/dev/root",
                "rootfstype=hostfs",
                "rootflags=/",
                "rw",
                f"init={guest.init}",
                "con=null",
                "con0=null,fd:2",
                # pid file and mconsole socket go to our temp dir, not ~/.uml
                f"uml_dir={guest.dir}",
                "umid=vm",
            ]
            if not job.verbose:
                argv.insert(1, "quiet")
            if job.options.fips:
                argv.append("fips=1")
            # The XSAVE ptrace shim where this host needs it for this kernel (xstate.py); measured before the
            # boot (once per kernel and host), so no output of ours interleaves with the command's.
            uml_env = xstate.uml_env(kern, _uml_env(job.mem_bytes), job.verbose)
            proc: Optional[subprocess.Popen[bytes]] = None
            try:
                console = os.open(guest.console, os.O_WRONLY | os.O_APPEND)
                # A panicking UML abort()s; no 2 GB core files from that, please.
                core = resource.getrlimit(resource.RLIMIT_CORE)
                started = time.monotonic()
                try:
                    resource.setrlimit(resource.RLIMIT_CORE, (0, core[1]))
                    proc = subprocess.Popen(
                        argv,
                        stdin=subprocess.DEVNULL,
                        stdout=console,
                        stderr=console,
                        cwd=str(guest.dir),
                        env=uml_env,
                        start_new_session=True,
                    )
                finally:
                    resource.setrlimit(resource.RLIMIT_CORE, core)
                    os.close(console)
                return guest.supervise(proc, kern, job.timeout, job.verbose, started)
            finally:
                if proc is not None and proc.returncode is None:
                    kill_group(proc)
