"""Host packages: finding tools, installing missing ones with apt-get (as root, only with
$KCAPI_HASHLIB_VM_INSTALL=1), downloading a Debian suite's
packages with a private apt configuration, unpacking them, and re-pointing a binary at another glibc with
patchelf."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Optional

from .exits import EXIT_SETUP, VMError, say

SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEBIAN_MIRROR = "http://deb.debian.org/debian"


def which(name: str) -> Optional[str]:
    path = os.environ.get("PATH", "")
    return shutil.which(name, path=path + os.pathsep + SBIN_PATH)


def _have(tool: str) -> bool:
    return os.path.exists(tool) if tool.startswith("/") else which(tool) is not None


_apt_updated = False


def _apt_install(packages: Sequence[str]) -> None:
    """``apt-get install`` as root; apt's output goes to our stderr."""
    global _apt_updated
    apt = which("apt-get")
    if apt is None:
        raise VMError("apt-get not found; install: " + " ".join(packages), EXIT_SETUP)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = [apt, "-q", "-y", "--no-install-recommends", "install", *packages]
    say("installing with apt-get: " + " ".join(packages))
    sys.stderr.flush()
    for attempt in (0, 1):
        if attempt or not _apt_updated:
            # An image may ship without package lists; update once, then retry.
            subprocess.run([apt, "-q", "update"], stdin=subprocess.DEVNULL, stdout=2, env=env, check=False)
            _apt_updated = True
        # apt's chatter goes to (file descriptor) 2, keeping stdout clean
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=2, env=env, check=False)
        if proc.returncode == 0:
            return
    raise VMError("apt-get install failed for: " + " ".join(packages))


# Installing system packages is the machine owner's decision: the runner does it only when told to.
INSTALL_ENV = "KCAPI_HASHLIB_VM_INSTALL"
_YES = ("1", "yes", "true", "on")
_NO = ("", "0", "no", "false", "off")


def install_allowed() -> bool:
    """Whether $KCAPI_HASHLIB_VM_INSTALL allows apt-get install (1/yes/true/on; unset or 0/no/false/off: no).
    Any other value is a usage error: a typo must not decide whether packages get installed."""
    value = os.environ.get(INSTALL_ENV, "").strip().lower()
    if value in _YES:
        return True
    if value in _NO:
        return False
    raise VMError(f"${INSTALL_ENV} must be 1/yes/true/on or 0/no/false/off, not {value!r}", EXIT_SETUP)


def ensure_packages(tools: dict[str, str]) -> None:
    """Make sure each tool (a command name or an absolute path) exists.

    *tools* maps tool -> Debian package. Missing ones are installed with apt-get only when
    $KCAPI_HASHLIB_VM_INSTALL says so (CI sets it) and this is root; otherwise :class:`VMError` (code 2)
    names the packages and both ways to get them. Only ``shutil.which``/stat checks when all present.
    """
    missing = sorted({pkg for tool, pkg in tools.items() if not _have(tool)})
    if not missing:
        return
    command = "apt-get install " + " ".join(missing)
    if not install_allowed():
        raise VMError(
            f"missing prerequisites: {' '.join(missing)}; install them (as root: {command}), or let the runner "
            f"install them with apt-get: {INSTALL_ENV}=1",
            EXIT_SETUP,
        )
    if os.geteuid() != 0:
        raise VMError(
            f"missing prerequisites; {INSTALL_ENV}=1 installs only as root: run as root: {command}", EXIT_SETUP
        )
    _apt_install(missing)
    still = sorted({pkg for tool, pkg in tools.items() if not _have(tool)})
    if still:
        raise VMError("still missing after apt-get install: " + " ".join(still))


def host_codename() -> str:
    """The host's Debian codename (bookworm, trixie, ...), "" if unknown."""
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return ""
    match = re.search(r"^VERSION_CODENAME=\"?([^\"\n]*)", text, re.M)
    return match.group(1) if match else ""


def run_quiet(cmd: list[str], what: str, cwd: Optional[Path] = None) -> str:
    """Run a helper, its output captured; shown (and VMError raised) only if it fails."""
    proc = subprocess.run(
        cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout)
        raise VMError(f"{what} failed (exit {proc.returncode}): {shlex.join(cmd)}")
    return proc.stdout


class Apt:
    """A private apt configuration under one directory (sources, lists, state, cache), so the system's apt
    setup is never touched; it sees the packages of one architecture, `arch`. `suites` is one Debian suite or
    several separated by spaces ("sid experimental": experimental holds only what differs from sid).
    $KCAPI_HASHLIB_DEBIAN_MIRROR overrides the mirror. The package lists are fetched when it is made."""

    def __init__(self, suites: str, apt: Path, arch: str = "amd64") -> None:
        self.suites = suites
        self.arch = arch  # Debian's architecture name: amd64, arm64, s390x
        self.apt_get = which("apt-get") or "apt-get"
        self.apt_cache = which("apt-cache") or "apt-cache"
        self.dir = apt
        for sub in ("lists/partial", "cache/archives/partial", "state", "etc", "debs"):
            (apt / sub).mkdir(parents=True)
        mirror = os.environ.get("KCAPI_HASHLIB_DEBIAN_MIRROR", DEBIAN_MIRROR)
        (apt / "etc/sources.list").write_text("".join(f"deb {mirror} {suite} main\n" for suite in suites.split()))
        (apt / "state/status").write_text("")
        settings = {
            "Dir::Etc::SourceList": f"{apt}/etc/sources.list",
            "Dir::Etc::SourceParts": "/dev/null",
            "Dir::Etc::Preferences": "/dev/null",
            "Dir::Etc::PreferencesParts": "/dev/null",
            "Dir::State": f"{apt}/state",
            "Dir::State::Lists": f"{apt}/lists",
            "Dir::State::status": f"{apt}/state/status",
            "Dir::Cache": f"{apt}/cache",
            "APT::Architecture": arch,
            "APT::Architectures": arch,
            "APT::Default-Release": "",
        }
        if os.geteuid() == 0:
            # as root apt drops to _apt for downloads, which cannot write here
            settings["APT::Sandbox::User"] = "root"
        self.opts = [arg for key, value in settings.items() for arg in ("-o", f"{key}={value}")]
        run_quiet([self.apt_get, "-q", *self.opts, "update"], "apt-get update")

    def depends(self, package: str, pattern: str) -> list[str]:
        """The names of the dependencies of `package` (its candidate version) that match the regular
        expression `pattern` (at least one): a metapackage's versioned packages, e.g. linux-image-amd64 ->
        [linux-image-6.1.0-50-amd64]."""
        out = run_quiet([self.apt_cache, *self.opts, "depends", "--no-recommends", package], "apt-cache depends")
        names = []
        for line in out.splitlines():
            # "  Depends: linux-image-6.1.0-50-amd64" (alternatives are prefixed with "|")
            match = re.match(r"\s*\|?Depends:\s*(\S+)", line)
            if match and re.fullmatch(pattern, match.group(1)):
                names.append(match.group(1))
        if not names:
            raise VMError(f"{package} depends on nothing matching {pattern!r}:\n{out}")
        return list(dict.fromkeys(names))

    def download(self, packages: Sequence[str]) -> dict[str, Path]:
        """Download `packages` (of this architecture) into <dir>/debs; package name -> its .deb."""
        run_quiet([self.apt_get, "-q", *self.opts, "download", *packages], "apt-get download", cwd=self.dir / "debs")
        debs = {p.name.split("_")[0]: p for p in (self.dir / "debs").glob("*.deb")}
        if set(debs) != set(packages):
            raise VMError(f"apt-get download gave {sorted(debs)}")
        return debs

    def records(self, names: Iterable[str]) -> dict[str, dict[str, str]]:
        """``apt-cache show`` of the candidate version of each of `names` that exists (virtual ones do not)."""
        cmd = [self.apt_cache, "-q", *self.opts, "show", "--no-all-versions"]
        proc = subprocess.run([*cmd, *names], stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        records: dict[str, dict[str, str]] = {}
        for stanza in proc.stdout.split("\n\n"):
            fields = dict(re.findall(r"^([A-Za-z-]+): ?(.*)$", stanza, re.M))
            if "Package" in fields:
                records[fields["Package"]] = fields
        return records

    def closure(self, wanted: Sequence[str], not_needed: Collection[str] = ()) -> list[str]:
        """`wanted` and every package they need at run time (Depends, Pre-Depends), minus `not_needed`.

        A dependency with alternatives is met by the first one that is a real package; a virtual package
        (``libssl3``) by the package providing it (``libssl3t64``).
        """
        records = self.records(wanted)
        missing = [w for w in wanted if w not in records]
        if missing:
            raise VMError(f"Debian {self.suites} ({self.arch}) has no package {', '.join(missing)}")
        chosen = set(wanted)
        todo = list(wanted)
        while todo:
            name = todo.pop()
            fields = records[name]
            deps = parse_depends(fields.get("Pre-Depends", "") + "," + fields.get("Depends", ""))
            need = [alts for alts in deps if not any(a in not_needed for a in alts)]
            unknown = sorted({a for alts in need for a in alts if a not in records})
            if unknown:
                records.update(self.records(unknown))
            for alts in need:
                if any(a in chosen for a in alts):
                    continue
                real = [a for a in alts if a in records] or self._providers(alts, records)
                if not real:
                    raise VMError(f"{name}: nothing in Debian {self.suites} ({self.arch}) provides {' | '.join(alts)}")
                chosen.add(real[0])
                todo.append(real[0])
        return sorted(chosen)

    def _providers(self, alts: Sequence[str], records: dict[str, dict[str, str]]) -> list[str]:
        out = run_quiet([self.apt_cache, "-q", *self.opts, "showpkg", *alts], "apt-cache showpkg")
        names: list[str] = []
        for block in out.split("Reverse Provides:")[1:]:
            for line in block.strip().splitlines():
                if not line or line.startswith("Package:"):
                    break
                names.append(line.split()[0])
        if names:
            records.update(self.records(names))
        return [n for n in names if n in records]


def parse_depends(field: str) -> list[list[str]]:
    """``a (>= 1), b | c:any`` -> [["a"], ["b", "c"]]: package names, alternatives in order."""
    out = []
    for clause in field.split(","):
        alts = [re.split(r"[\s(:\[]", alt.strip(), maxsplit=1)[0] for alt in clause.split("|")]
        alts = [a for a in alts if a]
        if alts:
            out.append(alts)
    return out


def apt_download(suite: str, packages: Sequence[str], apt: Path) -> dict[str, Path]:
    """Download `packages` (amd64) from Debian `suite` (or suites, separated by spaces) into `apt`/debs;
    package name -> its .deb. The private apt configuration lives under `apt` (see Apt)."""
    return Apt(suite, apt).download(packages)


def unpack(deb: Path, into: Path) -> None:
    run_quiet([which("dpkg-deb") or "dpkg-deb", "-x", str(deb), str(into)], "dpkg-deb -x")


def libc_dir(root: Path) -> Path:
    """The directory of an unpacked libc6 holding its loader and libc.so.6."""
    # trixie/sid libc6 is merged-/usr (usr/lib/...); bookworm's is lib/...
    for rel in ("usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu"):
        cand = root / rel
        if (cand / "ld-linux-x86-64.so.2").is_file() and (cand / "libc.so.6").is_file():
            return cand
    raise VMError(f"no ld-linux-x86-64.so.2/libc.so.6 under {root}")


def patch_interpreter(binary: Path, libdir: Path) -> None:
    """Point `binary` at the loader and libraries in `libdir` (patchelf --set-interpreter, --set-rpath)."""
    patchelf = which("patchelf")
    if patchelf is None:
        raise VMError("patchelf not found", EXIT_SETUP)
    subprocess.run(
        [patchelf, "--set-interpreter", str(libdir / "ld-linux-x86-64.so.2"), "--set-rpath", str(libdir), str(binary)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
