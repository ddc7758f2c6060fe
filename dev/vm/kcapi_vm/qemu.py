"""The qemu backend: Debian's own amd64 kernels under qemu-system-x86_64, the host's ``/`` as the root
filesystem over virtio-9p.

Kernels: 6.1-amd64 is bookworm's linux-image-amd64 (its versioned package, e.g. linux-image-6.1.0-50-amd64),
6.12-amd64 is trixie's, 7.3-amd64 is experimental's linux-image-7.3-amd64 (split into linux-binary-7.3-amd64,
the image, linux-modules-7.3-amd64, the modules as .ko.xz, and linux-base-7.3-amd64: config,
modules.builtin, modules.order). Each is fetched once with ``apt-get
download`` into the cache (cache.cache_dir()/qemu-<kernel>), its modules indexed with the host's depmod.
These are the kernels users run: the distribution's configuration (which algif_* and algorithms are built,
as modules or in), and the x86 drivers (aesni, sha256-ni/avx2, ghash-clmulni, ...) with their priorities.

Each run boots with a generated initramfs (initramfs.py: busybox-static loads virtio/9p, mounts the host's
``/``, switch_roots into guest.py's init). Acceleration ($KCAPI_HASHLIB_QEMU_ACCEL): "auto" (the default)
uses KVM where /dev/kvm opens read-write and this host has not been seen to hang under it, else TCG
(software emulation, ``-cpu max`` so that the x86 crypto drivers find the instructions they need). A KVM
guest must reach init within KVM_BOOT_WAIT seconds (it takes a few where KVM works): on the machines this
was built on a KVM guest hangs in the kernel's decompressor, so it is killed before the command ever ran,
the run is retried under TCG, one line on stderr says so, and the verdict is kept per host in the cache
(qemu-kvm.json) so that later runs go straight to TCG. "tcg" and "kvm" force one (kvm: no fallback).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import NamedTuple, Optional

from . import foreign, initramfs, packages
from .backend import Backend, Job
from .cache import building, cache_dir, fetch_lock
from .exits import EXIT_SETUP, VMError, say
from .guest import Guest, Kernel, kill_group, refuse_warnings
from .machines import MACHINES, Machine


class _Source(NamedTuple):
    suites: str  # for the private sources.list
    meta: str  # the package whose dependencies are the kernel's packages
    pattern: str  # which of its dependencies (a regular expression)
    arch: str = "amd64"  # Debian's architecture (machines.py)


SOURCES = {
    "6.1-amd64": _Source("bookworm", "linux-image-amd64", r"linux-image-6\.1\.\S+-amd64"),
    "6.12-amd64": _Source("trixie", "linux-image-amd64", r"linux-image-6\.12\.\S+-amd64"),
    # experimental holds only what differs from sid: both go in the sources.
    "7.3-amd64": _Source("sid experimental", "linux-image-7.3-amd64", r"linux-(base|binary|modules)-7\.3-amd64"),
    # Other architectures' kernels boot with a root filesystem of their own (foreign.py).
    "6.12-arm64": _Source("trixie", "linux-image-arm64", r"linux-image-6\.12\.\S+-arm64", "arm64"),
    "6.12-s390x": _Source("trixie", "linux-image-s390x", r"linux-image-6\.12\.\S+-s390x", "s390x"),
}
KERNELS = tuple(SOURCES)
DEFAULT_KERNEL = "7.3-amd64"

QEMU = MACHINES["amd64"].qemu  # qemu-system-x86_64: its complaints are looked for in the console (KVM)
BUSYBOX = Path("/bin/busybox")
ACCEL_ENV = "KCAPI_HASHLIB_QEMU_ACCEL"
# How many virtual CPUs the guest gets (default 1). The user-mode-linux kernels have one CPU, where threads only
# interleave at timer ticks; with 2 or more, free-threaded Python's threads run at once in the guest kernel
# (TCG runs one host thread per vCPU: -accel tcg,thread=multi).
SMP_ENV = "KCAPI_HASHLIB_QEMU_SMP"
# Under TCG a Debian kernel reaches init in ~15 s on an idle machine; several VMs on two cores take longer.
BOOT_TIMEOUT = 300.0
# Under KVM it reaches init in 1-3 s; a guest that has not after this long is taken for hung (and nothing
# of the command has run: init writes the "booted" marker before starting it).
KVM_BOOT_WAIT = 30.0
KVM_DEVICE = "/dev/kvm"


# --------------------------------------------------------------------------
# kernels: fetched into the cache


def _cache(kernel: str) -> Path:
    return cache_dir() / f"qemu-{kernel}"


def _cached_kernel(kernel: str) -> Optional[Kernel]:
    dest = _cache(kernel)
    try:
        meta = json.loads((dest / "kernel.json").read_text())
    except (OSError, ValueError):
        return None
    version = str(meta.get("version", ""))
    image, modules = dest / "vmlinuz", dest / "lib/modules" / version
    if not version or not image.is_file() or not (modules / "modules.dep").is_file():
        return None
    return Kernel(image, modules, version, cache=dest)


def _find_one(root: Path, patterns: tuple[str, ...], what: str) -> Path:
    found = [p for pattern in patterns for p in sorted(root.glob(pattern))]
    if len(found) != 1:
        raise VMError(f"expected one {what} in the kernel packages, found {[str(p) for p in found] or 'none'}")
    return found[0]


def _fetch_kernel(kernel: str) -> Kernel:
    """Download the kernel's packages into the cache: vmlinuz, lib/modules/<version> (with modules.dep made
    by depmod: Debian's packages leave that to their postinst) and kernel.json. Built in a temporary
    directory beside the destination and renamed into place, so an interrupted fetch leaves nothing that
    looks complete."""
    source = SOURCES[kernel]
    packages.ensure_packages({"apt-get": "apt", "dpkg-deb": "dpkg", "depmod": "kmod", "modprobe": "kmod"})
    dest = _cache(kernel)
    say(f"fetching kernel {kernel} (Debian {source.suites}'s {source.meta}) into {dest}")
    with building(dest) as work:
        apt = packages.Apt(source.suites, work / "apt", source.arch)
        names = apt.depends(source.meta, source.pattern)
        try:
            debs = apt.download(names)
        except VMError:
            # A mirror can list a kernel in its index before its pool has that architecture's .deb (seen:
            # trixie's linux-image-6.12.117+deb13-s390x answered 404 while arm64's was there). The next
            # older kernel of the same series in the index serves: one line says which.
            older = _older_kernel(apt, source, names)
            if older is None:
                raise
            say(f"the mirror has no .deb of {' '.join(names)} (above); using {older[0][0]}, the newest one it has")
            names, debs = older
        root = work / "root"
        for deb in debs.values():
            packages.unpack(deb, root)
        versions = {name: deb.name.split("_")[1] for name, deb in debs.items()}
        shutil.rmtree(work / "apt")
        # bookworm: lib/modules/<v>, boot/vmlinuz-<v>; trixie: usr/lib/modules; 7.3: usr/lib/modules/<v>/vmlinuz
        # (7.3's split packages have no modules.order: depmod does without it)
        moddir = _find_one(root, ("lib/modules/*/kernel", "usr/lib/modules/*/kernel"), "lib/modules/<version>")
        version = moddir.parent.name
        image = _find_one(root, (f"boot/vmlinuz-{version}", f"usr/lib/modules/{version}/vmlinuz"), "vmlinuz")
        os.rename(image, work / "vmlinuz")
        config = [p for p in (root / f"boot/config-{version}", moddir.parent / "config") if p.is_file()]
        if config:
            os.rename(config[0], work / "config")
        (work / "lib/modules").mkdir(parents=True)
        os.rename(moddir.parent, work / "lib/modules" / version)
        shutil.rmtree(root)
        depmod = packages.which("depmod") or "/sbin/depmod"
        packages.run_quiet([depmod, "-b", str(work), version], "depmod")
        if not version.startswith((kernel.split("-")[0] + ".", kernel.split("-")[0] + "-")):
            say(f"warning: Debian {source.suites} now ships kernel {version}, not {kernel}")
        meta = {"kernel": kernel, "suites": source.suites, "version": version, "packages": versions}
        (work / "kernel.json").write_text(json.dumps(meta, indent=1) + "\n")
    cached = _cached_kernel(kernel)
    if cached is None:
        raise VMError(f"kernel {kernel}: cache at {dest} unusable after fetch")
    say(f"kernel {version} ready ({', '.join(f'{n} {v}' for n, v in sorted(versions.items()))})")
    return cached


def _older_kernel(apt: packages.Apt, source: _Source, failed: list[str]) -> Optional[tuple[list[str], dict[str, Path]]]:
    """The newest kernel package matching source.pattern, other than `failed`, whose .deb downloads."""
    if len(failed) != 1:  # split kernels (7.3's base/binary/modules) move together: no mixing versions
        return None
    prefix = re.split(r"[\\(\[]", source.pattern, maxsplit=1)[0]
    out = packages.run_quiet([apt.apt_cache, *apt.opts, "pkgnames", prefix], "apt-cache pkgnames")
    names = [n for n in out.split() if re.fullmatch(source.pattern, n) and n not in failed]
    for name in sorted(names, key=_version_key, reverse=True):
        try:
            return [name], apt.download([name])
        except VMError:
            continue
    return None


def _version_key(name: str) -> tuple[int, ...]:
    """linux-image-6.12.107+deb13-s390x -> (6, 12, 107, 13)."""
    return tuple(int(n) for n in re.findall(r"\d+", name.split("-", 2)[2]))


def resolve_kernel(kernel: str) -> Kernel:
    """The cached kernel, else one fetched now."""
    if kernel not in SOURCES:
        raise VMError(f"unknown kernel {kernel!r}; choose from {', '.join(KERNELS)}", EXIT_SETUP)
    found = _cached_kernel(kernel)
    if found is None:
        with fetch_lock(f"qemu-{kernel}"):
            found = _cached_kernel(kernel) or _fetch_kernel(kernel)
    # The guest loads modules on demand with the host's modprobe (kmod), through guest.py's wrapper.
    packages.ensure_packages({"modprobe": "kmod"})
    return found


# --------------------------------------------------------------------------
# the VM


def smp(setting: Optional[str] = None) -> int:
    """The guest's CPU count: $KCAPI_HASHLIB_QEMU_SMP (1 to 64), default 1."""
    setting = setting if setting is not None else os.environ.get(SMP_ENV, "1")
    try:
        cpus = int(setting)
    except ValueError:
        cpus = 0
    if not 1 <= cpus <= 64:
        raise VMError(f"${SMP_ENV} must be a CPU count from 1 to 64, not {setting!r}", EXIT_SETUP)
    return cpus


def machine(kernel: str) -> Machine:
    """The machine `kernel` runs on (machines.py)."""
    return MACHINES[SOURCES[kernel].arch]


def accel_argv(accel: str, cpus: int = 1, arch: str = "amd64") -> list[str]:
    if arch != "amd64":  # another architecture: only emulation; its machine and CPU come from machines.py
        return ["-accel", "tcg,thread=multi" if cpus > 1 else "tcg", *MACHINES[arch].machine]
    if accel == "tcg":
        # -cpu max: every instruction TCG emulates (AES-NI, PCLMULQDQ, SSSE3/AVX2, SHA ...), so the
        # kernel's x86 crypto drivers load as on real hardware. thread=multi: one host thread per vCPU (MTTCG),
        # so that two guest CPUs really run at once.
        return ["-accel", "tcg,thread=multi" if cpus > 1 else "tcg", "-cpu", "max"]
    if accel == "kvm":
        return ["-accel", "kvm", "-cpu", "host"]
    raise VMError(f"${ACCEL_ENV} must be auto, tcg or kvm, not {accel!r}", EXIT_SETUP)


def kvm_usable(device: str = KVM_DEVICE) -> Optional[str]:
    """None if `device` opens read-write (what qemu -accel kvm needs), else why not."""
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        # ENOENT: no KVM; EACCES: not in the kvm group; ENXIO/ENODEV: a node without a driver (inside
        # user-mode-linux the host's /dev is visible but the device is not)
        return f"{device}: {e.strerror} ({errno.errorcode.get(e.errno or 0, e.errno)})"
    os.close(fd)
    return None


def host_key() -> dict[str, str]:
    """What a KVM verdict is about: this machine (its name and CPU) and the host kernel that runs KVM."""
    model = ""
    try:
        with open("/proc/cpuinfo", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.partition(":")[2].strip()
                    break
    except OSError:
        pass
    return {"host": socket.gethostname(), "kernel": os.uname().release, "cpu": model}


def _verdict_path() -> Path:
    return cache_dir() / "qemu-kvm.json"


def kvm_verdict(path: Optional[Path] = None) -> Optional[str]:
    """ "works" or "hangs" as recorded for this host (host_key()), or None if never tried here."""
    try:
        data = json.loads((path or _verdict_path()).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != host_key():
        return None
    verdict = data.get("verdict")
    return verdict if verdict in ("works", "hangs") else None


def record_kvm_verdict(verdict: str, why: str, path: Optional[Path] = None) -> None:
    path = path or _verdict_path()
    data = {
        "key": host_key(),
        "verdict": verdict,
        "why": why,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, path)
    except OSError as e:  # a read-only cache: the next run tries KVM again
        say(f"warning: cannot record the KVM verdict in {path}: {e}")


def accel_plan(
    setting: Optional[str] = None, device: str = KVM_DEVICE, verdict_path: Optional[Path] = None
) -> list[str]:
    """The accelerators to try, in order: ["kvm", "tcg"] (auto, KVM usable and not seen to hang here),
    ["tcg"], or ["kvm"] (forced)."""
    setting = setting if setting is not None else os.environ.get(ACCEL_ENV, "auto")
    if setting in ("tcg", "kvm"):
        return [setting]
    if setting != "auto":
        raise VMError(f"${ACCEL_ENV} must be auto, tcg or kvm, not {setting!r}", EXIT_SETUP)
    if kvm_usable(device) is not None or kvm_verdict(verdict_path) == "hangs":
        return ["tcg"]
    return ["kvm", "tcg"]


def qemu_argv(
    kern: Kernel,
    job: Job,
    guest: Guest,
    initrd: Path,
    qemu: str,
    accel: str = "tcg",
    root: str = "/",
    binds: tuple[tuple[str, str], ...] = (),
) -> list[str]:
    """`root`: the directory the guest's / is (the host's own, or foreign.root()'s); `binds` (mount tag,
    path): more host directories the initramfs mounts at the same path (initramfs.init_script)."""
    arch = machine(job.kernel)
    append = [
        f"console={arch.console}",
        # a panic reboots at once, and -no-reboot turns that into qemu exiting
        "panic=-1",
        "rdinit=/init",
    ]
    if arch.arch == "amd64":
        # no waiting for the serial port's modem lines, no probing of absent hardware we do not need
        append.append("8250.nr_uarts=1")
    if not job.verbose:
        append.append("quiet")
    if job.options.fips:
        append.append("fips=1")
    # security_model=passthrough: the guest's uids, modes and device nodes are the host's (as root;
    # "none" otherwise: the files keep the caller's owner). multidevs=remap: the host's / spans several
    # filesystems, whose inode numbers would otherwise collide inside the guest.
    security = "passthrough" if os.geteuid() == 0 else "none"
    cpus = smp()
    shares = [
        ("hostroot", root, initramfs.MOUNT_TAG),
        *((f"bind{n}", path, tag) for n, (tag, path) in enumerate(binds)),
    ]
    devices = [
        arg
        for ident, path, tag in shares
        for arg in (
            "-fsdev",
            f"local,id={ident},path={path},security_model={security},multidevs=remap",
            "-device",
            f"{arch.virtio_9p},fsdev={ident},mount_tag={tag}",
        )
    ]
    return [
        qemu,
        *accel_argv(accel, cpus, arch.arch),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
        "-m",
        str(max(job.mem_bytes >> 20, 256)),
        "-smp",
        str(cpus),
        "-chardev",
        f"file,id=console,path={guest.console},append=on",
        *arch.serial,
        "-kernel",
        str(kern.binary),
        "-initrd",
        str(initrd),
        "-append",
        " ".join(append),
        *devices,
        # the run directory again, on its own device: mounted uncached (see initramfs.init_script)
        "-fsdev",
        f"local,id=run,path={guest.dir},security_model={security}",
        "-device",
        f"{arch.virtio_9p},fsdev=run,mount_tag={initramfs.RUN_TAG}",
    ]


class Qemu(Backend):
    name = "qemu"
    kernels = KERNELS
    default_kernel = DEFAULT_KERNEL

    def preflight(self) -> None:
        if os.uname().machine != "x86_64":
            raise VMError("the qemu backend runs only on x86_64 hosts", EXIT_SETUP)

    def _prerequisites(self, arch: Machine) -> None:
        if arch.arch != "amd64":  # the busybox is the foreign root's (foreign.py)
            packages.ensure_packages({arch.qemu: arch.qemu_package})
            return
        packages.ensure_packages({arch.qemu: arch.qemu_package, str(BUSYBOX): "busybox-static"})
        if not initramfs.is_static_elf(BUSYBOX):
            # Debian's busybox package is dynamically linked; busybox-static replaces it.
            raise VMError(f"{BUSYBOX} is not statically linked; install busybox-static", EXIT_SETUP)

    def run(self, job: Job) -> int:
        arch = machine(job.kernel)
        self._prerequisites(arch)
        kern = resolve_kernel(job.kernel)
        for warning in refuse_warnings(kern, job.refuse):
            say("warning: " + warning)
        qemu = packages.which(arch.qemu) or arch.qemu
        root, busybox, env = "/", BUSYBOX, job.env
        binds: tuple[tuple[str, str], ...] = ()
        tmpfs: tuple[str, ...] = ()
        if arch.arch != "amd64":
            # Another architecture's guest runs its own root (Debian's packages, foreign.py), with the working
            # directory and the kernel's cache (the modules the guest's modprobe loads) mounted at their host
            # paths; PATH is that root's, as the host's directories hold binaries it cannot run.
            foreign_root = foreign.root(arch.arch)
            root, busybox = str(foreign_root), foreign.busybox(foreign_root)
            tops = [job.cwd, str(kern.cache or kern.modules)]
            binds = tuple((f"bind{n}", path) for n, path in enumerate(tops))
            tmpfs = ("/tmp",)
            env = foreign.guest_env(job.env)
        job = dataclasses.replace(job, env=env)
        # $TMPDIR is a tmpfs inside the VM. qemu's 9p server truncates and sets attributes by path, so a
        # file that is open but already unlinked (tempfile.TemporaryFile, pytest's output capture) fails
        # ftruncate() with ENOENT; on a tmpfs it works as on the host.
        options = dataclasses.replace(job.options, tmpfs_tmpdir=True)
        plan = accel_plan() if arch.arch == "amd64" else ["tcg"]  # KVM runs only the host's architecture
        smp()  # a bad $KCAPI_HASHLIB_QEMU_SMP fails before anything is prepared
        with Guest.prepared(kern, job.cmd, job.cwd, job.env, job.refuse, job.verbose, options) as guest:
            initrd = guest.dir / "initramfs.cpio"
            initramfs.write(initrd, busybox, kern.modules, arch.root_modules, guest.init, binds, tmpfs)
            for attempt, accel in enumerate(plan):
                fallback = attempt + 1 < len(plan)
                try:
                    argv = qemu_argv(kern, job, guest, initrd, qemu, accel, root, binds)
                    status = self._boot(kern, job, guest, argv, accel, fallback)
                except _KvmHung as hung:
                    record_kvm_verdict("hangs", str(hung))
                    say(f"{hung}; retrying under TCG (software emulation), as every later run on this host will")
                    guest.console.write_bytes(b"")  # the hung attempt's console is not this run's
                    continue
                if accel == "kvm" and fallback and kvm_verdict() != "works":
                    record_kvm_verdict("works", f"a guest reached init under KVM with kernel {kern.version}")
                return status
            raise AssertionError("unreachable: the last accelerator in the plan does not fall back")

    def _boot(self, kern: Kernel, job: Job, guest: Guest, argv: list[str], accel: str, fallback: bool) -> int:
        """One boot under `accel`. With `fallback`, a guest that does not reach init within KVM_BOOT_WAIT
        (or a qemu that exits before it does) raises _KvmHung: the command has not started."""
        proc: Optional[subprocess.Popen[bytes]] = None
        try:
            console = os.open(guest.console, os.O_WRONLY | os.O_APPEND)
            started = time.monotonic()
            try:
                # qemu's own complaints (a bad option, no such device) land in the console file too,
                # which the host side shows when the VM records no status.
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=console,
                    stderr=console,
                    cwd=str(guest.dir),
                    start_new_session=True,
                )
            finally:
                os.close(console)
            wait = KVM_BOOT_WAIT if fallback else BOOT_TIMEOUT
            try:
                return guest.supervise(proc, kern, job.timeout, job.verbose, started, boot_timeout=wait)
            except VMError as e:
                if not fallback or (guest.dir / "booted").exists():
                    raise
                # The guest never reached init: nothing of the command ran, so it may be run again.
                elapsed = time.monotonic() - started
                what = "hung" if elapsed >= wait else "exited"  # supervise killed it at `wait`
                said = _qemu_complaint(guest.console)
                raise _KvmHung(
                    f"the KVM guest {what} before reaching init ({elapsed:.0f} s, kernel {kern.version}"
                    + (f"; qemu: {said}" if said else "")
                    + ")"
                ) from e
        finally:
            if proc is not None and proc.returncode is None:
                kill_group(proc)


def _qemu_complaint(console: Path) -> Optional[str]:
    """qemu's first own line in the console file (its stderr goes there): "qemu-system-x86_64: error: failed
    to set MSR 0x10a to 0x69" (-cpu host on a nested host), "KVM internal error. Suberror: 1" (an emulation
    failure in the decompressor: qemu then stops the guest and waits, which is the hang)."""
    try:
        lines = console.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        if (line.startswith(QEMU + ":") and "warning:" not in line) or line.startswith("KVM internal error"):
            return line.strip()
    return None


class _KvmHung(Exception):
    """A KVM boot that never reached init (qemu.Qemu._boot)."""
