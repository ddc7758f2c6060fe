#!/usr/bin/env python3
"""Run a command under a real Linux kernel: Debian's user-mode-linux (UML).

Some hosts (containers, sandboxes) answer ``socket(AF_ALG, ...)`` with
EAFNOSUPPORT.  This runner boots a UML kernel whose root filesystem is the
host's own ``/`` (hostfs), so the same interpreter, virtualenv, working
directory and environment are used inside, and runs one command there::

    python -m kcapi_hashlib vm [--kernel 6.1|6.12|7.2] [--refuse MODULE]...
                               [--timeout SECONDS] [--mem 2G] [--force-vm]
                               [--verbose] -- CMD ARGS...

Exit status
    the command's own status; a command killed by signal N inside the VM
    gives 128+N (as a shell reports it), with a message on stderr;
    124  the command (or the VM) ran past --timeout and was killed;
    125  the VM itself failed: it did not boot, died without recording the
         command's status, or a kernel could not be fetched;
    2    usage error, or prerequisites missing and not root (the message
         names the packages to install);
    130  (or 128+signal) the runner was interrupted (SIGINT/SIGTERM/SIGHUP).

When the host kernel has AF_ALG and neither ``--force-vm``, ``--refuse`` nor
a kernel other than 6.1 is asked for, the command runs directly on the host.

Kernels: 6.1 is Debian bookworm's ``user-mode-linux`` package (the system one
when installed), 6.12 is trixie's, 7.2 is sid's.  The latter are fetched
once with ``apt-get download`` against a private apt configuration into
``$KCAPI_HASHLIB_CACHE/uml/<suite>`` (default
``${XDG_CACHE_HOME:-~/.cache}/kcapi_hashlib/uml/<suite>``).

Standard library only; Python 3.9+; this file also runs standalone.
"""

from __future__ import annotations

import argparse
import codecs
import fcntl
import json
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import IO, NamedTuple, NoReturn, Optional

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

KERNELS = ("6.1", "6.12", "7.2")
DEFAULT_KERNEL = "6.1"

#: Debian suite whose ``user-mode-linux`` package provides each kernel.
SUITES = {"6.1": "bookworm", "6.12": "trixie", "7.2": "sid"}

EXIT_SETUP = 2  # usage error / missing prerequisites (not root)
EXIT_TIMEOUT = 124  # like timeout(1)
EXIT_VM_FAILURE = 125  # like timeout(1)'s "the runner itself failed"

AF_ALG = 38
SYSTEM_UML = Path("/usr/bin/linux.uml")
SYSTEM_MODULES = Path("/usr/lib/uml/modules")
DEBIAN_MIRROR = "http://deb.debian.org/debian"

_PREFIX = "kcapi_hashlib vm: "
_SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The VM must come up and run the init script within this many seconds, else
# it is treated as a boot failure (a wedged UML would otherwise sit there
# until --timeout, 30 minutes by default).
_BOOT_TIMEOUT = 120.0
_CONSOLE_TAIL = 40

# Lines the kernels print on every boot/shutdown, on the console, even with
# "quiet".  They are hidden unless --verbose; anything else on the console is
# shown when the command dies by a signal (OOM killer and the like).
_NOISE = re.compile(
    r"^(SELinux: |mmapper_init - find_iomem failed|"
    r"Failed to initialize ubd device|Powering off\.|reboot: |sysrq: |"
    r"Checking |\s*$)"
)


class VMError(Exception):
    """The VM could not be set up or run; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_VM_FAILURE) -> None:
        super().__init__(message)
        self.code = code


class _Interrupted(BaseException):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _Kernel(NamedTuple):
    binary: Path  # linux.uml to execute
    modules: Path  # .../lib/modules/<version>-like directory
    version: str  # uname -r inside, e.g. "6.1.176"


def _say(message: str) -> None:
    sys.stderr.write(_PREFIX + message + "\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------
# host checks and packages


def host_has_af_alg() -> bool:
    """True when this (host) kernel accepts ``socket(AF_ALG, SOCK_SEQPACKET)``.

    Asked through kcapi_hashlib._afalg, the one module that makes AF_ALG syscalls; when this file runs
    standalone (outside the package) it asks the kernel itself.
    """
    try:
        from kcapi_hashlib._afalg import af_alg_status
    except ImportError:
        try:
            sock = socket.socket(AF_ALG, socket.SOCK_SEQPACKET, 0)
        except OSError:
            return False
        sock.close()
        return True
    return af_alg_status() is None


def _which(name: str) -> Optional[str]:
    path = os.environ.get("PATH", "")
    return shutil.which(name, path=path + os.pathsep + _SBIN_PATH)


def _have(tool: str) -> bool:
    return os.path.exists(tool) if tool.startswith("/") else _which(tool) is not None


_apt_updated = False


def _apt_install(packages: Sequence[str]) -> None:
    """``apt-get install`` as root; apt's output goes to our stderr."""
    global _apt_updated
    apt = _which("apt-get")
    if apt is None:
        raise VMError("apt-get not found; install: " + " ".join(packages), EXIT_SETUP)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = [apt, "-q", "-y", "--no-install-recommends", "install", *packages]
    _say("installing with apt-get: " + " ".join(packages))
    sys.stderr.flush()
    for attempt in (0, 1):
        if attempt or not _apt_updated:
            # An image may ship without package lists; update once, then retry.
            subprocess.run([apt, "-q", "update"], stdin=subprocess.DEVNULL,
                           stdout=2, env=env, check=False)
            _apt_updated = True
        # apt's chatter goes to (file descriptor) 2, keeping stdout clean
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=2, env=env, check=False)
        if proc.returncode == 0:
            return
    raise VMError("apt-get install failed for: " + " ".join(packages))


def ensure_packages(tools: dict[str, str]) -> None:
    """Make sure each tool (a command name or an absolute path) exists.

    *tools* maps tool -> Debian package.  Missing ones are installed with
    apt-get when running as root; otherwise :class:`VMError` (code 2) names the
    packages to install.  Only ``shutil.which``/stat checks when all present.
    """
    missing = sorted({pkg for tool, pkg in tools.items() if not _have(tool)})
    if not missing:
        return
    if os.geteuid() != 0:
        raise VMError(
            "missing prerequisites; run as root: apt-get install "
            + " ".join(missing), EXIT_SETUP)
    _apt_install(missing)
    still = sorted({pkg for tool, pkg in tools.items() if not _have(tool)})
    if still:
        raise VMError("still missing after apt-get install: " + " ".join(still))


def _host_codename() -> str:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return ""
    match = re.search(r"^VERSION_CODENAME=\"?([^\"\n]*)", text, re.M)
    return match.group(1) if match else ""


# --------------------------------------------------------------------------
# kernels: the system package, or one fetched into the cache


def cache_dir() -> Path:
    """Where fetched kernels live: ``<this>/<suite>``."""
    base = os.environ.get("KCAPI_HASHLIB_CACHE")
    if base:
        return Path(os.path.abspath(base)) / "uml"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.path.abspath(xdg)) / "kcapi_hashlib" / "uml"


@contextmanager
def _fetch_lock(suite: str) -> Iterator[None]:
    """One fetch per suite at a time (parallel tox envs); stale parts go."""
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{suite}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # Holding the lock, any ".<suite>.*" work directory is from a fetch
        # that was killed: remove it.
        for stale in root.glob(f".{suite}.*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _module_version(modules_root: Path, kernel: str) -> Optional[str]:
    try:
        names = sorted(os.listdir(modules_root))
    except OSError:
        return None
    for name in reversed(names):
        if name.startswith(kernel + ".") and (modules_root / name / "modules.dep").exists():
            return name
    return None


def _system_kernel(kernel: str) -> Optional[_Kernel]:
    if not SYSTEM_UML.exists():
        return None
    version = _module_version(SYSTEM_MODULES, kernel)
    if version is None:
        return None
    return _Kernel(SYSTEM_UML, SYSTEM_MODULES / version, version)


def _libc_dir(root: Path) -> Path:
    # trixie/sid libc6 is merged-/usr (usr/lib/...); bookworm's is lib/...
    for rel in ("usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu"):
        cand = root / rel
        if (cand / "ld-linux-x86-64.so.2").is_file() and (cand / "libc.so.6").is_file():
            return cand
    raise VMError(f"no ld-linux-x86-64.so.2/libc.so.6 under {root}")


def _patch_binary(binary: Path, libdir: Path) -> None:
    # Kernel quirk: trixie's and sid's linux.uml need glibc >= 2.38 (bookworm
    # has 2.36).  Running it as "ld.so linux.uml" is no good: UML re-execs
    # /proc/self/exe and then mis-sizes its memory.  So the binary itself is
    # pointed at the suite's own loader and libc with patchelf.
    patchelf = _which("patchelf")
    if patchelf is None:
        raise VMError("patchelf not found", EXIT_SETUP)
    subprocess.run(
        [patchelf, "--set-interpreter", str(libdir / "ld-linux-x86-64.so.2"),
         "--set-rpath", str(libdir), str(binary)],
        check=True, stdin=subprocess.DEVNULL)


def _cached_kernel(kernel: str) -> Optional[_Kernel]:
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
        ensure_packages({"patchelf": "patchelf"})
        _patch_binary(binary, _libc_dir(dest / "libc"))
        meta["home"] = str(dest)
        (dest / "kernel.json").write_text(json.dumps(meta, indent=1) + "\n")
    return _Kernel(binary, modules, str(meta["version"]))


def _run_quiet(cmd: list[str], what: str, cwd: Optional[Path] = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout)
        raise VMError(f"{what} failed (exit {proc.returncode}): {shlex.join(cmd)}")
    return proc.stdout


def _fetch_kernel(kernel: str) -> _Kernel:
    """Download the suite's user-mode-linux and libc6 into the cache.

    Uses a private apt configuration (sources, lists, state, cache) so the
    system's apt setup is never touched, builds everything in a temporary
    directory beside the destination and renames it into place, so that an
    interrupted fetch leaves nothing that looks complete.
    """
    if os.uname().machine != "x86_64":
        raise VMError(f"kernel {kernel}: fetching is only supported on x86_64/amd64")
    suite = SUITES[kernel]
    ensure_packages({"apt-get": "apt", "dpkg-deb": "dpkg", "patchelf": "patchelf",
                     "modprobe": "kmod"})
    apt_get = _which("apt-get") or "apt-get"
    dpkg_deb = _which("dpkg-deb") or "dpkg-deb"
    dest = cache_dir() / suite
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{suite}.", dir=str(dest.parent)))
    _say(f"fetching kernel {kernel} (Debian {suite}'s user-mode-linux) into {dest}")
    try:
        apt = work / "apt"
        for sub in ("lists/partial", "cache/archives/partial", "state", "etc", "debs"):
            (apt / sub).mkdir(parents=True)
        mirror = os.environ.get("KCAPI_HASHLIB_DEBIAN_MIRROR", DEBIAN_MIRROR)
        (apt / "etc/sources.list").write_text(f"deb {mirror} {suite} main\n")
        (apt / "state/status").write_text("")
        opts = [
            "-o", f"Dir::Etc::SourceList={apt}/etc/sources.list",
            "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", "Dir::Etc::Preferences=/dev/null",
            "-o", "Dir::Etc::PreferencesParts=/dev/null",
            "-o", f"Dir::State={apt}/state",
            "-o", f"Dir::State::Lists={apt}/lists",
            "-o", f"Dir::State::status={apt}/state/status",
            "-o", f"Dir::Cache={apt}/cache",
            "-o", "APT::Architecture=amd64",
            "-o", "APT::Architectures=amd64",
            "-o", "APT::Default-Release=",
        ]
        if os.geteuid() == 0:
            # as root apt drops to _apt for downloads, which cannot write here
            opts += ["-o", "APT::Sandbox::User=root"]
        _run_quiet([apt_get, "-q", *opts, "update"], "apt-get update")
        _run_quiet([apt_get, "-q", *opts, "download", "user-mode-linux", "libc6"],
                   "apt-get download", cwd=apt / "debs")
        debs = {p.name.split("_")[0]: p for p in (apt / "debs").glob("*.deb")}
        if set(debs) != {"user-mode-linux", "libc6"}:
            raise VMError(f"apt-get download gave {sorted(debs)}")
        _run_quiet([dpkg_deb, "-x", str(debs["user-mode-linux"]), str(work / "root")],
                   "dpkg-deb -x")
        _run_quiet([dpkg_deb, "-x", str(debs["libc6"]), str(work / "libc")], "dpkg-deb -x")
        package_version = debs["user-mode-linux"].name.split("_")[1]
        shutil.rmtree(apt)

        libdir = _libc_dir(work / "libc")
        binary = work / "root/usr/bin/linux.uml"
        # Check that it runs, patched for where it is now (UML re-execs
        # /proc/self/exe early, so "ld.so linux.uml --version" would print
        # ld.so's own version), then patch it for where it will live.
        _patch_binary(binary, libdir)
        out = _run_quiet([str(binary), "--version"], "linux.uml --version")
        _patch_binary(binary, dest / libdir.relative_to(work))
        modules_root = work / "root/usr/lib/uml/modules"
        versions = sorted(dep.parent.name for dep in modules_root.glob("*/modules.dep"))
        version = next((v for v in versions if v in out.split()), "")
        if not version:
            raise VMError(f"kernel {kernel}: linux.uml --version said {out.strip()!r}, "
                          f"modules are for {versions}")
        if not version.startswith(kernel + "."):
            # sid moves on; say so rather than failing every fresh machine.
            _say(f"warning: Debian {suite} now ships kernel {version}, not {kernel}.x")
        meta = {"kernel": kernel, "suite": suite, "version": version,
                "package": package_version, "home": str(dest)}
        (work / "kernel.json").write_text(json.dumps(meta, indent=1) + "\n")
        work.chmod(0o755)
        try:
            os.rename(work, dest)
        except OSError:
            if _cached_kernel(kernel) is None:  # not a concurrent fetch that won
                raise
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    _say(f"kernel {version} ready ({suite} user-mode-linux {package_version})")
    cached = _cached_kernel(kernel)
    if cached is None:
        raise VMError(f"kernel {kernel}: cache at {dest} unusable after fetch")
    return cached


def _resolve_kernel(kernel: str) -> _Kernel:
    if kernel not in SUITES:
        raise VMError(f"unknown kernel {kernel!r}; choose from {', '.join(KERNELS)}",
                      EXIT_SETUP)
    # Kernel quirk: Debian's UML kernels load modules via the *host's*
    # modprobe (it is on hostfs).  Without kmod there is no modprobe, nothing
    # loads and socket(AF_ALG) fails with EAFNOSUPPORT inside the VM too.
    modprobe_pkg = {"modprobe": "kmod"}
    found = _system_kernel(kernel)
    if found is None and SUITES[kernel] == _host_codename() and not SYSTEM_UML.exists():
        ensure_packages({str(SYSTEM_UML): "user-mode-linux", **modprobe_pkg})
        found = _system_kernel(kernel)
    if found is None:
        found = _cached_kernel(kernel)
    if found is None:
        with _fetch_lock(SUITES[kernel]):
            found = _cached_kernel(kernel) or _fetch_kernel(kernel)
    ensure_packages(modprobe_pkg)
    return found


# --------------------------------------------------------------------------
# --refuse helpers


def _norm(name: str) -> str:
    return name.replace("-", "_")


def _refuse_warnings(kernel: _Kernel, refuse: Sequence[str]) -> list[str]:
    """Explain --refuse names that cannot take effect on this kernel."""
    def names(fname: str, alias: bool = False) -> set[str]:
        try:
            text = (kernel.modules / fname).read_text(errors="replace")
        except OSError:
            return set()
        out = set()
        for line in text.splitlines():
            if alias:
                parts = line.split()
                if len(parts) >= 3 and parts[0] == "alias":
                    out.add(_norm(parts[1]))
                continue
            path = line.split(":", 1)[0].strip()
            if path:
                base = path.rsplit("/", 1)[-1]
                out.add(_norm(base.split(".ko", 1)[0]))
        return out

    dep, builtin = names("modules.dep"), names("modules.builtin")
    aliases: Optional[set[str]] = None
    warnings = []
    for name in refuse:
        key = _norm(name)
        if key in dep:
            continue
        if key in builtin:
            warnings.append(f"--refuse {name}: built into kernel {kernel.version}; "
                            "it cannot be refused")
            continue
        if aliases is None:
            aliases = names("modules.alias", alias=True)
        if key not in aliases:
            warnings.append(f"--refuse {name}: kernel {kernel.version} has no module "
                            "or alias by that name")
    return warnings


# --------------------------------------------------------------------------
# the VM


def _mem_bytes(mem: str) -> int:
    match = re.fullmatch(r"(\d+)([KMG]?)", mem.strip().upper())
    if not match:
        raise VMError(f"bad --mem {mem!r} (use e.g. 512M, 2G)", EXIT_SETUP)
    return int(match.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[match.group(2)]


def _private_tmp_parent() -> str:
    # The directory must be reachable at the same path inside the VM (hostfs
    # root is the host's /), so not under the VM's own /dev, /proc or /sys,
    # and without whitespace (its path goes on the kernel command line).
    parent = os.path.realpath(tempfile.gettempdir())
    if re.search(r"\s", parent) or any(
            parent == top or parent.startswith(top + "/") for top in ("/dev", "/proc", "/sys")):
        parent = "/tmp"
    return parent


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


def _init_script(tmp: Path, cmd: Sequence[str], cwd: str, env: dict[str, str]) -> str:
    q = shlex.quote
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def lim(value: int) -> str:
        return "unlimited" if value == resource.RLIM_INFINITY else str(value)

    try:
        nr_open = Path("/proc/sys/fs/nr_open").read_text().strip()
    except OSError:
        nr_open = ""
    umask = os.umask(0o22)
    os.umask(umask)
    envargs = " ".join(q(f"{k}={v}") for k, v in env.items())
    argv = " ".join(q(a) for a in cmd)
    if "=" in cmd[0]:  # env(1) would take it for one more NAME=VALUE
        argv = "/bin/sh -c 'exec \"$@\"' sh " + argv
    lines = [
        "#!/bin/sh",
        "# Generated by kcapi_hashlib._vm: PID 1 inside user-mode-linux.",
        f"PATH={_SBIN_PATH}; export PATH",
        f"T={q(str(tmp))}",
        'echo up > "$T/booted"',
        "off() {",
        "  sync",
        # sysrq 'o' powers off at once and needs no halt binary (systemctl's
        # halt is absent from minimal images); halt -f -p is the fallback.
        "  echo o > /proc/sysrq-trigger 2>/dev/null && sleep 10",
        "  halt -f -p 2>/dev/null || poweroff -f 2>/dev/null",
        "  sleep 100000",
        "}",
        "mount -t proc proc /proc",
        "mount -t sysfs sysfs /sys",
        # Debian's UML kernels mount devtmpfs on /dev by themselves
        # (CONFIG_DEVTMPFS_MOUNT); mounting again fails noisily, so check.
        "grep -q '^[^ ]* /dev ' /proc/mounts || mount -t devtmpfs devtmpfs /dev",
        "mkdir -p /dev/shm /dev/pts",
        # multiprocessing's semaphores need a tmpfs on /dev/shm.
        "mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm",
        "mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts",
        "[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd",
        "[ -e /dev/stdin ] || ln -s /proc/self/fd/0 /dev/stdin",
        "[ -e /dev/stdout ] || ln -s /proc/self/fd/1 /dev/stdout",
        "[ -e /dev/stderr ] || ln -s /proc/self/fd/2 /dev/stderr",
        'echo "$T/modprobe" > /proc/sys/kernel/modprobe',
        f"echo {q(socket.gethostname()[:64] or 'kcapi-vm')} > /proc/sys/kernel/hostname",
        "command -v ip >/dev/null && ip link set lo up",
    ]
    if nr_open.isdigit():
        lines.append(f"echo {nr_open} > /proc/sys/fs/nr_open")
    lines += [
        f"ulimit -H -n {lim(hard)} 2>/dev/null",
        f"ulimit -S -n {lim(soft)} 2>/dev/null",
        f"umask {umask:03o}",
        f"if ! cd {q(cwd)}; then",
        f"  echo {q(_PREFIX + 'cannot change to directory ' + cwd + ' inside the VM')}"
        ' >>"$T/err"',
        f'  echo {EXIT_VM_FAILURE} > "$T/rc"; off',
        "fi",
        # env -i: exactly the caller's environment, including names that are
        # not shell identifiers.  stdin is /dev/null, stdout/stderr are files
        # in $T that the host side streams while the VM runs (hostfs writes go
        # straight through to the host file).
        f'env -i {envargs} {argv} </dev/null >>"$T/out" 2>>"$T/err"',
        'echo $? > "$T/rc"',
        "off",
        "",
    ]
    return "\n".join(lines)


def _modprobe_wrapper(modprobe: str, confdir: Path, modroot: Path) -> str:
    # -C: our own (possibly empty) config instead of the host's
    # /etc/modprobe.d; -d: modules come from <modroot>/lib/modules/<uname -r>.
    return (f"#!/bin/sh\nexec {shlex.quote(modprobe)} -C {shlex.quote(str(confdir))} "
            f"-d {shlex.quote(str(modroot))} \"$@\"\n")


class _Pump:
    """Copy what a file gains to a stream, as it grows."""

    def __init__(self, path: Path, stream: IO[str]) -> None:
        self.fd = os.open(path, os.O_RDONLY)
        self.stream = stream
        self.broken = False
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def pump(self) -> bool:
        moved = False
        while True:
            data = os.read(self.fd, 1 << 16)
            if not data:
                return moved
            moved = True
            if self.broken:
                continue
            try:
                buf = getattr(self.stream, "buffer", None)
                if buf is not None:
                    self.stream.flush()
                    buf.write(data)
                    buf.flush()
                else:
                    # a text-only stream (e.g. one a test framework swapped in)
                    self.stream.write(self.decoder.decode(data))
                    self.stream.flush()
            except (OSError, ValueError):
                self.broken = True  # reader went away; keep draining

    def close(self) -> None:
        os.close(self.fd)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # UML runs each guest process as a host process; they share the group
    # that start_new_session gave the kernel process, so kill the group.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass


@contextmanager
def _signals_raise() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into an exception so the VM gets cleaned up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Optional[FrameType]) -> NoReturn:
        raise _Interrupted(signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)
           if signal.getsignal(s) is not signal.SIG_IGN}  # keep nohup's choice
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _console_lines(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except OSError:
        return []


def _signame(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _inside_uml() -> bool:
    try:
        with open("/proc/cpuinfo", "rb") as f:
            return b"User Mode Linux" in f.read(256)
    except OSError:
        return False


def _run_vm(cmd: Sequence[str], kernel: str, refuse: Sequence[str], timeout: float,
            verbose: bool, mem: str) -> int:
    mem_bytes = _mem_bytes(mem)
    if _inside_uml():
        # Kernel quirk: UML cannot run nested (the inner one dies at once,
        # its ptrace checks fail), so give the options to the outer VM.
        raise VMError("already inside a user-mode-linux VM, which cannot nest; "
                      "pass --kernel/--refuse to the outer VM instead")
    if not cmd:
        raise VMError("no command given", EXIT_SETUP)
    for name in refuse:
        if not re.fullmatch(r"[^\s#]+", name):
            raise VMError(f"bad --refuse name {name!r}", EXIT_SETUP)
    kern = _resolve_kernel(kernel)
    modprobe = _which("modprobe") or "/sbin/modprobe"
    for warning in _refuse_warnings(kern, refuse):
        _say("warning: " + warning)

    tmp = Path(tempfile.mkdtemp(prefix="kcapi-vm-", dir=_private_tmp_parent()))
    pumps: list[_Pump] = []
    proc: Optional[subprocess.Popen[bytes]] = None
    try:
        confdir = tmp / "modprobe.d"
        confdir.mkdir()
        (confdir / "refuse.conf").write_text(
            "".join(f"install {name} /bin/false\n" for name in refuse))
        modroot = tmp / "modroot"
        (modroot / "lib/modules").mkdir(parents=True)
        (modroot / "lib/modules" / kern.version).symlink_to(kern.modules)
        wrapper = tmp / "modprobe"
        wrapper.write_text(_modprobe_wrapper(modprobe, confdir, modroot))
        init = tmp / "init"
        init.write_text(_init_script(tmp, cmd, os.getcwd(), dict(os.environ)))
        wrapper.chmod(0o755)
        init.chmod(0o755)
        for name in ("out", "err", "console"):
            (tmp / name).write_bytes(b"")

        argv = [
            str(kern.binary), f"mem={mem}", "root=/dev/root", "rootfstype=hostfs",
            "rootflags=/", "rw", f"init={init}", "con=null", "con0=null,fd:2",
            # pid file and mconsole socket go to our temp dir, not ~/.uml
            f"uml_dir={tmp}", "umid=vm",
        ]
        if not verbose:
            argv.insert(1, "quiet")
        pumps = [_Pump(tmp / "out", sys.stdout), _Pump(tmp / "err", sys.stderr)]
        if verbose:
            pumps.append(_Pump(tmp / "console", sys.stderr))
        console = os.open(tmp / "console", os.O_WRONLY | os.O_APPEND)
        # A panicking UML abort()s; no 2 GB core files from that, please.
        core = resource.getrlimit(resource.RLIMIT_CORE)
        started = time.monotonic()
        try:
            resource.setrlimit(resource.RLIMIT_CORE, (0, core[1]))
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=console,
                                    stderr=console, cwd=str(tmp), env=_uml_env(mem_bytes),
                                    start_new_session=True)
        finally:
            resource.setrlimit(resource.RLIMIT_CORE, core)
            os.close(console)

        booted_at: Optional[float] = None
        delay = 0.01
        while True:
            moved = False
            for p in pumps:
                moved = p.pump() or moved
            if proc.poll() is not None:
                break
            now = time.monotonic()
            if booted_at is None and (tmp / "booted").exists():
                booted_at = now
                if verbose:
                    _say(f"kernel {kern.version} booted in {now - started:.2f} s")
            if timeout > 0 and now - started > timeout:
                _kill_group(proc)
                for p in pumps:
                    p.pump()
                _say(f"kernel VM timed out after {timeout:g} s")
                return EXIT_TIMEOUT
            if booted_at is None and now - started > _BOOT_TIMEOUT:
                _kill_group(proc)
                raise VMError(f"kernel {kern.version} did not start init within "
                              f"{_BOOT_TIMEOUT:g} s")
            delay = 0.01 if moved else min(delay * 2, 0.1)
            time.sleep(delay)
        _kill_group(proc)  # leftovers, if any
        for p in pumps:
            p.pump()
        if verbose:
            _say(f"VM ran {time.monotonic() - started:.2f} s in all")

        try:
            status_text = (tmp / "rc").read_text().strip()
        except OSError:
            status_text = ""
        lines = _console_lines(tmp / "console")
        if not status_text.isdigit():
            panic = [ln for ln in lines if "Kernel panic" in ln]
            msg = [f"kernel {kern.version} ({kern.binary}) exited with status "
                   f"{proc.returncode} without recording the command's exit status"]
            msg += [f"  {ln}" for ln in panic[:1]]
            if not verbose:
                msg.append(f"last {_CONSOLE_TAIL} lines of the kernel console:")
                msg += [f"  | {ln}" for ln in lines[-_CONSOLE_TAIL:]]
            if str(kern.binary).startswith(str(cache_dir())):
                msg.append(f"(a broken cache? remove {kern.binary.parents[3]} to refetch)")
            raise VMError("\n".join(msg))
        status = int(status_text)
        if status > 128:
            _say(f"command killed by {_signame(status - 128)} inside the VM "
                 f"(exit status {status})")
            extra = [ln for ln in lines if not _NOISE.match(ln)]
            if extra and not verbose:
                _say("kernel console:\n" + "\n".join(f"  | {ln}" for ln in extra[-_CONSOLE_TAIL:]))
        return status
    finally:
        if proc is not None and proc.returncode is None:
            _kill_group(proc)
        for p in pumps:
            p.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _run_direct(cmd: Sequence[str], timeout: float) -> int:
    try:
        proc = subprocess.Popen(list(cmd))
    except OSError as exc:
        _say(f"cannot run {cmd[0]}: {exc.strerror}")
        return 126 if isinstance(exc, PermissionError) else 127
    try:
        status = proc.wait(timeout=timeout if timeout > 0 else None)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        _say(f"command timed out after {timeout:g} s")
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
        _say(f"command killed by {_signame(-status)}")
        return 128 - status
    return status


def run(cmd: list[str], *, kernel: str = DEFAULT_KERNEL, refuse: Sequence[str] = (),
        timeout: float = 1800, force_vm: bool = False, verbose: bool = False,
        mem: str = "2G") -> int:
    """Run *cmd* under a real kernel and return its exit status.

    Runs it directly when the host has AF_ALG and nothing VM-only (force_vm,
    refuse, a kernel other than 6.1) was asked for.  Errors of the VM itself
    are printed to stderr and returned as exit codes (see module docstring);
    a timeout returns 124.  KeyboardInterrupt propagates after cleanup.
    """
    if isinstance(refuse, str):
        refuse = [refuse]
    try:
        with _signals_raise():
            if not (force_vm or refuse or kernel != DEFAULT_KERNEL) and host_has_af_alg():
                if not cmd:
                    raise VMError("no command given", EXIT_SETUP)
                return _run_direct(cmd, timeout)
            return _run_vm(cmd, kernel, refuse, timeout, verbose, mem)
    except VMError as exc:
        _say(str(exc))
        return exc.code
    except subprocess.CalledProcessError as exc:
        _say(f"{exc.cmd[0] if exc.cmd else 'a helper'} failed with status {exc.returncode}")
        return EXIT_VM_FAILURE
    except _Interrupted as exc:
        _say(f"interrupted by {_signame(exc.signum)}; VM stopped")
        return 128 + exc.signum


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kcapi_hashlib vm",
        usage="%(prog)s [options] -- CMD [ARGS...]",
        description="Run CMD under a real Linux kernel (user-mode-linux) so that "
                    "AF_ALG works even where the host kernel refuses it.",
        epilog="Exit status: the command's; 124 timeout; 125 VM failure; "
               "2 usage/missing prerequisites; 128+N command killed by signal N.")
    env_kernel = os.environ.get("KCAPI_HASHLIB_KERNEL") or DEFAULT_KERNEL
    parser.add_argument("--kernel", choices=KERNELS, default=env_kernel,
                        help="kernel to boot (default: $KCAPI_HASHLIB_KERNEL or 6.1)")
    parser.add_argument("--refuse", action="append", default=[], metavar="MODULE",
                        help="make modprobe refuse MODULE inside the VM (repeatable)")
    parser.add_argument("--timeout", type=float, default=1800.0, metavar="SECONDS",
                        help="kill the command after this long (0: never; default 1800)")
    parser.add_argument("--force-vm", action="store_true",
                        help="boot the VM even if the host has AF_ALG")
    parser.add_argument("--verbose", action="store_true",
                        help="show the kernel console and timings")
    parser.add_argument("--mem", default="2G", help="VM memory (default 2G)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str]) -> int:
    """CLI entry point: ``main(["--kernel", "6.12", "--", "pytest", "-q"])``."""
    argv = list(argv)
    parser = _parser()
    try:
        args = None
        if "--" in argv:
            # Options, "--", then the command (which may hold "--" itself).
            cut = argv.index("--")
            args = parser.parse_args(argv[:cut])
            if args.command:  # "vm CMD -- ARGS": the "--" belongs to CMD
                args = None
            else:
                args.command = argv[cut + 1:]
        if args is None:
            args = parser.parse_args(argv)
            if args.command[:1] == ["--"]:  # some argparse versions keep it
                args.command = args.command[1:]
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return exc.code if isinstance(exc.code, int) else EXIT_SETUP
    command = list(args.command)
    if not command:
        parser.print_usage(sys.stderr)
        _say("no command given (use: -- CMD ARGS...)")
        return EXIT_SETUP
    if args.kernel not in KERNELS:  # an unchecked default from the environment
        _say(f"KCAPI_HASHLIB_KERNEL must be one of {', '.join(KERNELS)}")
        return EXIT_SETUP
    try:
        return run(command, kernel=args.kernel, refuse=args.refuse, timeout=args.timeout,
                   force_vm=args.force_vm, verbose=args.verbose, mem=args.mem)
    except KeyboardInterrupt:
        _say("interrupted; VM stopped")
        return 130


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
