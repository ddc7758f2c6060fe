"""A root filesystem of another architecture (arm64, s390x), built from Debian's packages, for the qemu
backend's foreign kernels (qemu.py: 6.12-arm64, 6.12-s390x).

An amd64 guest boots with the host's ``/`` as its root, so it runs the caller's own interpreter and
virtualenv. A guest of another architecture cannot run the host's binaries: its root is a directory in the
cache (cache.cache_dir()/root-<arch>) holding that architecture's Debian packages, unpacked: libc,
dash as /bin/sh, coreutils, kmod, util-linux, strace, busybox-static (the initramfs's busybox and the applets
nothing else provides), python3 with pytest, hypothesis and PyCryptodome, as Debian packages them (its
PyCryptodome is pycryptodomex, 3.20 in trixie, importable as `Crypto` too). The command's working directory,
the run directory and the kernel's cache are mounted into it at their host paths (initramfs.init_script's
binds), so ``python3 -m pytest tests/kernel/...`` runs the checkout's code on the guest's python3.

Unpacked, not installed: no maintainer script runs (they would be the foreign architecture's binaries). What
those scripts or the usrmerge layout would have made is made here: /bin, /sbin, /lib and /lib64 as links into
/usr (the ELF interpreter is /lib/ld-linux-aarch64.so.1 or /lib/ld64.so.1), /bin/sh, /etc/passwd and
/etc/group for root, the mount points, and links for the busybox applets (mount, ...) that the unpacked
packages lack.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Optional

from . import packages
from .cache import building, cache_dir, fetch_lock
from .exits import VMError, say
from .machines import MACHINES, Machine

#: The Debian suites a root may come from, in order (the foreign kernels are trixie's). A mirror can list a
#: package in a suite's index before its pool holds that architecture's .deb: seen for trixie's s390x libc6,
#: zlib1g and libssl3t64 after a point release, while arm64's were all there and sid's s390x were too. The
#: first suite whose every package downloads is used, and the root's root.json says which.
SUITES = ("trixie", "sid")

#: What the root holds (with everything they depend on).
PACKAGES = (
    "dash",
    "coreutils",
    "grep",
    "sed",
    "kmod",
    "util-linux",  # setpriv, for --user and --cap (busybox's lacks --reuid)
    "strace",  # the syscall budgets count with it (tests/support/syscalls.py)
    "busybox-static",
    "python3",
    "python3-pytest",
    "python3-hypothesis",
    "python3-pycryptodome",
)

#: Dependencies that are data or configuration the tests do not read, or that only maintainer scripts use.
NOT_NEEDED = frozenset({"tzdata", "media-types", "netbase", "readline-common", "debconf", "debconf-2.0"})

#: Busybox applets linked into /usr/local/bin when no unpacked package provides the command: what
#: guest.py's init uses beyond coreutils, grep and sed (mount, umount, ip, halt, poweroff, tr), and ps, less and
#: vi for looking around a root by hand.
APPLETS = ("mount", "umount", "ip", "halt", "poweroff", "tr", "ps", "less", "vi")


#: What _finish() makes, by version: a root in the cache built by an older version is built again.
LAYOUT = 3


def home(arch: str) -> Path:
    return cache_dir() / f"root-{arch}"


def cached(arch: str) -> Optional[Path]:
    """The root for `arch` if it is in the cache and complete."""
    dest = home(arch)
    try:
        meta = json.loads((dest / "root.json").read_text())
    except (OSError, ValueError):
        return None
    root = dest / "root"
    if (
        meta.get("arch") != arch
        or meta.get("layout") != LAYOUT
        or not (root / "usr/bin/python3").exists()
        or not busybox(root).is_file()
    ):
        return None
    return root


def busybox(root: Path) -> Path:
    return root / "usr/bin/busybox"


def elf_machine(path: Path) -> tuple[int, bool]:
    """(e_machine, big-endian) of the ELF file at `path`."""
    with open(path, "rb") as f:
        head = f.read(20)
    if head[:4] != b"\x7fELF":
        raise VMError(f"{path} is not an ELF file")
    big = head[5] == 2  # EI_DATA: ELFDATA2MSB
    return int.from_bytes(head[18:20], "big" if big else "little"), big


def _merge_usr(root: Path) -> None:
    """/bin, /sbin, /lib, /lib64 as links into /usr, as on an installed Debian (bookworm and later): what
    a package still ships there moves into /usr first."""
    for top in ("bin", "sbin", "lib", "lib64"):
        src, dst = root / top, root / "usr" / top
        if src.is_symlink():
            continue
        if src.is_dir():
            dst.mkdir(parents=True, exist_ok=True)
            for entry in list(src.iterdir()):
                target = dst / entry.name
                if target.is_dir() and entry.is_dir() and not entry.is_symlink():
                    shutil.copytree(entry, target, symlinks=True, dirs_exist_ok=True)
                    shutil.rmtree(entry)
                else:
                    os.replace(entry, target)
            src.rmdir()
        if dst.exists():
            src.symlink_to(f"usr/{top}")


def _finish(root: Path, machine: Machine) -> None:
    _merge_usr(root)
    box = busybox(root)
    if not box.is_file():
        raise VMError(f"busybox-static left no {box}")
    found = elf_machine(box)
    if found != (machine.elf_machine, machine.big_endian):
        raise VMError(f"{box} is for ELF machine {found}, not {machine.arch}'s")
    # dash's postinst makes /bin/sh (a diversion); coreutils' and grep's binaries are in place already.
    sh = root / "usr/bin/sh"
    if not sh.exists():
        sh.symlink_to("dash")
    local = root / "usr/local/bin"
    local.mkdir(parents=True, exist_ok=True)
    for applet in APPLETS:
        if not any((root / d / applet).exists() for d in ("usr/bin", "usr/sbin")):
            (local / applet).symlink_to("/usr/bin/busybox")
    for d in ("proc", "sys", "dev", "tmp", "run", "root", "mnt", "etc"):
        (root / d).mkdir(exist_ok=True)
    (root / "tmp").chmod(0o1777)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    (root / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (root / "etc/hostname").write_text("kcapi-vm\n")
    # Debian packages PyCryptodome under the name Cryptodome (upstream's pycryptodomex); the tests compare
    # against `Crypto`, upstream's name for the same code. A link makes `import Crypto` load it (its modules
    # import each other as Cryptodome.*, which is the same directory).
    dist = root / "usr/lib/python3/dist-packages"
    if (dist / "Cryptodome").is_dir() and not (dist / "Crypto").exists():
        (dist / "Crypto").symlink_to("Cryptodome")


def _build(dest: Path, suite: str, machine: Machine) -> tuple[list[str], dict[str, str]]:
    """Download, unpack and finish the root into `dest` (cache.building: all or nothing); the package names
    and versions."""
    with building(dest) as work:
        apt = packages.Apt(suite, work / "apt", machine.arch)
        names = apt.closure(PACKAGES, NOT_NEEDED)
        debs = apt.download(names)
        root = work / "root"
        for name in names:
            packages.unpack(debs[name], root)
        versions = {name: deb.name.split("_")[1] for name, deb in debs.items()}
        shutil.rmtree(apt.dir)
        _finish(root, machine)
        meta = {"arch": machine.arch, "suite": suite, "layout": LAYOUT, "packages": versions}
        (work / "root.json").write_text(json.dumps(meta, indent=1) + "\n")
    return names, versions


def _fetch(arch: str) -> Path:
    machine = MACHINES[arch]
    packages.ensure_packages({"apt-get": "apt", "apt-cache": "apt", "dpkg-deb": "dpkg"})
    dest = home(arch)
    if dest.exists():  # an older LAYOUT's, or an incomplete one: built again (cache.building renames onto none)
        shutil.rmtree(dest)
    for n, suite in enumerate(SUITES):
        say(f"fetching a Debian {suite} {arch} root (python3, pytest, hypothesis, pycryptodome) into {dest}")
        try:
            names, versions = _build(dest, suite, machine)
            break
        except VMError as e:
            if n + 1 == len(SUITES) or not str(e).startswith("apt-get download failed"):
                raise
            say(f"{suite}: a .deb its index lists is not on the mirror (above); trying {SUITES[n + 1]}")
    found = cached(arch)
    if found is None:
        raise VMError(f"the {arch} root at {dest} is unusable after the fetch")
    say(f"{arch} root ready ({len(names)} packages from {suite}, python3 {versions.get('python3', '?')})")
    return found


def root(arch: str) -> Path:
    """The root filesystem for `arch`: cached, else fetched now."""
    if arch not in MACHINES:
        raise VMError(f"no root filesystem for architecture {arch!r}; known: {', '.join(MACHINES)}")
    found = cached(arch)
    if found is None:
        with fetch_lock(f"root-{arch}"):
            found = cached(arch) or _fetch(arch)
    return found


#: Variables of the caller's environment that name the host's interpreter or libraries: not passed to a
#: foreign guest, whose PATH is its root's own.
HOST_ONLY = frozenset({"PATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONEXECUTABLE", "LD_LIBRARY_PATH", "LD_PRELOAD"})


def guest_env(env: dict[str, str]) -> dict[str, str]:
    """The command's environment inside a foreign root: the caller's, less HOST_ONLY, with Debian's PATH."""
    return {**{k: v for k, v in env.items() if k not in HOST_ONLY}, "PATH": packages.SBIN_PATH}
