"""CPython releases newer than the host's: Debian sid's ``python3.X`` with its own glibc and libraries.

    python -m kcapi_vm.pythons 3.14      # prints the interpreter's path, fetching it first if needed
    python -m kcapi_vm.pythons 3.13t     # free-threaded, built from Debian's source (freethreaded.py)

sid's python3.14/python3.15 (with ``libpython3.X-testsuite``: their own ``test.test_hashlib``/``test_hmac``)
need sid's glibc. As for sid's user-mode-linux (uml.py), the packages are fetched once with ``apt-get
download`` into the cache (cache.cache_dir()/python3.X), unpacked into one root beside every shared library
they need (found by following the Depends of the packages, see _closure), and the interpreter is re-pointed
at that root's loader and libraries with patchelf. The result is a plain executable,
``<root>/usr/bin/python3.X``: it finds its stdlib from its own path (sys.prefix is ``<root>/usr``), so a venv
made by it (``-m venv``, a symlink to it) works too, and the VM runs it like any host binary (hostfs).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from . import packages
from .cache import building, cache_dir, fetch_lock
from .exits import EXIT_SETUP, VMError, say

SUITE = "sid"

#: The releases this module installs, and what sid shipped when it was written (a newer one is used, with
#: a warning, rather than failing every fresh machine).
VERSIONS = {"3.13": "3.13.5", "3.14": "3.14.10", "3.15": "3.15.2"}

#: The Debian suite of each release when not sid (trixie's 3.13 needs trixie's glibc 2.41, as sid's need sid's).
SUITES = {"3.13": "trixie"}

#: Dependencies that are data or configuration, not code the interpreter loads (MIME table, time zones,
#: /etc/services and /etc/protocols, ifconfig for one test, readline's inputrc, debconf's question
#: database and what it drags in); the host's own files serve where a test looks for them.
NOT_NEEDED = frozenset(
    {
        "media-types",
        "mime-support",
        "tzdata",
        "netbase",
        "net-tools",
        "readline-common",
        "debconf",
        "debconf-2.0",
        "cdebconf",
        "ca-certificates",
    }
)

#: Library directories of the unpacked root, in the order the loader searches them.
LIB_DIRS = ("usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu")

# Run by the freshly patched interpreter: import every extension module it ships and report every shared
# object mapped into the process; all of them must come from the root (none from the host's older ones).
_CHECK = r"""
import json, os, sys, importlib, sysconfig
dynload = os.path.join(sys.prefix, "lib", "python%d.%d" % sys.version_info[:2], "lib-dynload")
failed = {}
for name in sorted(os.listdir(dynload)):
    if name.endswith(".so"):
        mod = name.split(".")[0]
        try:
            importlib.import_module(mod)
        except ImportError as exc:
            failed[mod] = str(exc)
import ssl, hashlib, test.test_hashlib, test.test_hmac
with open("/proc/self/maps") as f:
    maps = sorted({line.split()[-1] for line in f if ".so" in line.split()[-1]})
print(json.dumps({"version": sys.version.split()[0], "prefix": sys.prefix, "executable": sys.executable,
                  "failed": failed, "maps": maps, "openssl": ssl.OPENSSL_VERSION}))
"""

#: Extension modules whose library is in a package python3.X does not depend on (python3.X-gdbm,
#: python3.X-tk, ...): their import may fail, nothing else's may.
OPTIONAL_EXTENSIONS = frozenset({"_gdbm", "_tkinter", "_dbm"})


def _check_version(version: str) -> None:
    if version not in VERSIONS:
        raise VMError(f"unknown Python {version!r}; choose from {', '.join(VERSIONS)}", EXIT_SETUP)


def home(version: str) -> Path:
    """Where Python `version` lives in the cache."""
    return cache_dir() / f"python{version}"


def _roots(dest: Path) -> list[Path]:
    return [dest / "root" / rel for rel in LIB_DIRS]


def _patch(binary: Path, dest: Path, now: Optional[Path] = None) -> None:
    """Point `binary` at the loader and libraries of the root under `dest` (which is at `now` today)."""
    # The loader is sid's own (sid's python3.X needs glibc >= 2.42; the host may have 2.36). The library path
    # is DT_RPATH, not the DT_RUNPATH that patchelf writes by default (packages.patch_interpreter): glibc
    # searches a DT_RUNPATH only for the executable's own dependencies, but the executable's DT_RPATH also for
    # objects loaded later by dlopen() and their dependencies (extension modules -> libssl.so.3, libffi.so.8,
    # ...), which otherwise come from the host's /etc/ld.so.cache, built for the host's glibc.
    patchelf = packages.which("patchelf")
    if patchelf is None:
        raise VMError("patchelf not found", EXIT_SETUP)
    now = now or dest
    libdir = dest / packages.libc_dir(now / "root").relative_to(now)
    rpath = os.pathsep.join(str(d) for d in _roots(dest))
    packages.run_quiet(
        [
            patchelf,
            "--set-interpreter",
            str(libdir / "ld-linux-x86-64.so.2"),
            "--force-rpath",
            "--set-rpath",
            rpath,
            str(binary),
        ],
        "patchelf",
    )


def _meta(dest: Path) -> Optional[dict[str, str]]:
    try:
        meta = json.loads((dest / "python.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def cached(version: str) -> Optional[Path]:
    """The cached interpreter for `version`, or None (re-patched if the cache was moved)."""
    _check_version(version)
    dest = home(version)
    meta = _meta(dest)
    binary = dest / "root/usr/bin" / f"python{version}"
    if meta is None or not binary.is_file():
        return None
    if meta.get("home") != str(dest):
        # The cache was moved: the patched-in loader and library paths are stale.
        packages.ensure_packages({"patchelf": "patchelf"})
        _patch(binary, dest)
        meta["home"] = str(dest)
        (dest / "python.json").write_text(json.dumps(meta, indent=1) + "\n")
    return binary


# --------------------------------------------------------------------------
# the fetch


def run_check(binary: Path, check: str = _CHECK, *args: str) -> dict[str, object]:
    """Run `check` (a script printing one JSON object as its last line) with `binary`, isolated from the caller's
    PYTHON* and LD_LIBRARY_PATH; its result, or VMError when the interpreter does not start. freethreaded.py's
    check of a built interpreter uses it too."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "LD_LIBRARY_PATH"}
    proc = subprocess.run(
        [str(binary), "-I", "-c", check, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise VMError(f"{binary} does not start:\n{proc.stderr[-3000:]}")
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _verify(binary: Path, work: Path, version: str) -> str:
    """Run the patched interpreter: every extension module imports, every library it maps is the root's."""
    result = run_check(binary)
    failed = {m: why for m, why in dict(result["failed"]).items() if m not in OPTIONAL_EXTENSIONS}  # type: ignore[call-overload]
    if failed:
        raise VMError(f"python{version}: extension modules do not import: {failed}")
    root = str(work / "root") + os.sep
    foreign = [m for m in result["maps"] if not str(m).startswith(root)]  # type: ignore[attr-defined]
    if foreign:
        raise VMError(f"python{version} loaded libraries from outside {root}: {foreign}")
    full = str(result["version"])
    if not full.startswith(version + "."):
        raise VMError(f"python{version} says it is {full}")
    return full


def _fetch(version: str) -> Path:
    if os.uname().machine != "x86_64":
        raise VMError(f"Python {version}: fetching is only supported on x86_64/amd64")
    packages.ensure_packages({"apt-get": "apt", "apt-cache": "apt", "dpkg-deb": "dpkg", "patchelf": "patchelf"})
    dest = home(version)
    suite = SUITES.get(version, SUITE)
    say(f"fetching Python {version} (Debian {suite}'s python{version}) into {dest}")
    with building(dest) as work:
        wanted = [
            f"python{version}",
            f"python{version}-minimal",
            f"libpython{version}-minimal",
            f"libpython{version}-stdlib",
            f"libpython{version}-testsuite",
        ]
        # The package lists (fetched as the private apt configuration is made), then everything the closure names.
        apt = packages.Apt(suite, work / "apt")
        names = apt.closure(wanted, NOT_NEEDED)
        debs = apt.download(names)
        for name in names:
            packages.unpack(debs[name], work / "root")
        package_version = debs[f"python{version}"].name.split("_")[1]
        shutil.rmtree(apt.dir)
        binary = work / "root/usr/bin" / f"python{version}"
        # Check it patched for where it is now, then patch it for where it will live.
        _patch(binary, work)
        full = _verify(binary, work, version)
        _patch(binary, dest, work)
        if full != VERSIONS[version]:
            say(f"warning: Debian {suite} now ships Python {full}, not {VERSIONS[version]}")
        meta = {"version": full, "package": package_version, "packages": " ".join(names), "home": str(dest)}
        (work / "python.json").write_text(json.dumps(meta, indent=1) + "\n")
    say(f"Python {full} ready ({suite} python{version} {package_version}, {len(names)} packages)")
    found = cached(version)
    if found is None:
        raise VMError(f"Python {version}: cache at {dest} unusable after fetch")
    return found


def install(version: str) -> Path:
    """The path of a working ``python<version>`` executable (sid's, from the cache; fetched if not there)."""
    found = cached(version)
    if found is None:
        with fetch_lock(f"python{version}"):
            found = cached(version) or _fetch(version)
    return found


def main(argv: Sequence[str]) -> int:
    from . import freethreaded  # 3.13t: built from Debian's source package with --disable-gil

    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        choices = ",".join((*VERSIONS, *freethreaded.VERSIONS))
        sys.stderr.write(f"usage: python -m kcapi_vm.pythons {{{choices}}}\n")
        return EXIT_SETUP
    try:
        print(freethreaded.install(argv[0]) if argv[0].endswith("t") else install(argv[0]))
    except VMError as exc:
        say(f"error: {exc}")
        return exc.code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
