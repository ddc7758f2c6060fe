"""Free-threaded CPython (``--disable-gil``) built from Debian's own CPython source package.

    python -m kcapi_vm.pythons 3.13t     # prints the interpreter's path, building it first if needed

Debian ships no free-threaded interpreter (no python3.Xt package), and the hosts CI reaches are Debian's archive
and PyPI only (PyPI's Python installers download from elsewhere). What the archive serves is the source of its
python3.X packages: ``apt-get source --download-only`` with a private deb-src list (sid, experimental, trixie,
trixie-backports), newest version first; only the upstream ``.orig.tar.xz`` inside is used. It is configured
with ``--disable-gil`` (no PGO/LTO, no test modules, no ensurepip: tox's virtualenv seeds pip itself), built
with ``make -j<cpus>``, installed into the cache (cache.cache_dir()/python3.Xt/install) and kept there: one
build per machine, like the kernels. The interpreter is linked statically against libpython, so it finds its
stdlib from its own path and the directory may move. Built against the host's libraries (libffi for ctypes,
OpenSSL for ssl/_hashlib (pip needs https), zlib, bz2, lzma), which the build installs as root when missing.

Measured on the 2-core development host (2026-12-07), with other builds and VMs running (load 5-10): 3.13.15
(sid's source package; sid's 3.14/3.15 and 3.13.18 sources are listed but their files are not served, HTTP 404)
took 9.4 min with -j2 (configure 45 s, make 8 min, install 40 s), 17 min at nice 10; 23 MB download.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Optional

from . import packages
from .cache import building, cache_dir, fetch_lock
from .exits import EXIT_SETUP, VMError, say

#: The free-threaded releases this module builds: "3.13t" from Debian's python3.13 source package.
VERSIONS = ("3.13t", "3.14t", "3.15t")

#: Where the source packages are looked for, newest suite first (apt picks the highest version anyway).
SUITES = ("sid", "experimental", "trixie", "trixie-backports")

#: What the build needs from the host: a tool or a header -> its Debian package.
BUILD_DEPS = {
    "gcc": "gcc",
    "make": "make",
    "pkg-config": "pkg-config",
    "/usr/include/x86_64-linux-gnu/ffi.h": "libffi-dev",  # ctypes (kcapi_hashlib's io_uring and keyring layers)
    "/usr/include/zlib.h": "zlib1g-dev",  # zipfile/wheels: pip
    "/usr/include/openssl/ssl.h": "libssl-dev",  # ssl (pip over https), _hashlib (the tests' references)
    "/usr/include/bzlib.h": "libbz2-dev",  # bz2 (file_digest over compressed readers)
    "/usr/include/lzma.h": "liblzma-dev",  # lzma (idem)
}

#: Modules kcapi_hashlib and its tests need from the interpreter: a build missing one is refused.
REQUIRED_MODULES = ("ctypes", "_blake2", "_socket", "mmap", "ssl", "_hashlib", "zlib", "bz2", "lzma")

_CHECK = """
import importlib, json, sys, sysconfig
missing = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except ImportError as exc:
        missing[name] = str(exc)
print(json.dumps({"version": sys.version.split()[0], "prefix": sys.prefix, "missing": missing,
                  "gil_disabled": sysconfig.get_config_var("Py_GIL_DISABLED"), "gil": sys._is_gil_enabled()}))
"""


def _check_version(version: str) -> str:
    """ "3.13t" -> "3.13"."""
    if version not in VERSIONS:
        raise VMError(f"unknown free-threaded Python {version!r}; choose from {', '.join(VERSIONS)}", EXIT_SETUP)
    return version[:-1]


def home(version: str) -> Path:
    """Where free-threaded Python `version` ("3.13t") lives in the cache."""
    return cache_dir() / f"python{version}"


def _binary(dest: Path, version: str) -> Path:
    return dest / "install/bin" / f"python{version}"


def cached(version: str) -> Optional[Path]:
    """The cached interpreter for `version`, or None."""
    _check_version(version)
    dest = home(version)
    try:
        meta = json.loads((dest / "python.json").read_text())
    except (OSError, ValueError):
        return None
    binary = _binary(dest, version)
    return binary if isinstance(meta, dict) and binary.is_file() else None


def _private_apt(work: Path) -> list[str]:
    """apt options for a private deb-src configuration under `work` (the system's apt setup is never
    touched), its lists fetched."""
    for sub in ("lists/partial", "cache/archives/partial", "state", "etc"):
        (work / sub).mkdir(parents=True)
    mirror = os.environ.get("KCAPI_HASHLIB_DEBIAN_MIRROR", packages.DEBIAN_MIRROR)
    (work / "etc/sources.list").write_text("".join(f"deb-src {mirror} {s} main\n" for s in SUITES))
    (work / "state/status").write_text("")
    settings = {
        "Dir::Etc::SourceList": f"{work}/etc/sources.list",
        "Dir::Etc::SourceParts": "/dev/null",
        "Dir::Etc::Preferences": "/dev/null",
        "Dir::Etc::PreferencesParts": "/dev/null",
        "Dir::State": f"{work}/state",
        "Dir::State::Lists": f"{work}/lists",
        "Dir::State::status": f"{work}/state/status",
        "Dir::Cache": f"{work}/cache",
    }
    if os.geteuid() == 0:
        settings["APT::Sandbox::User"] = "root"  # as root apt drops to _apt for downloads, which cannot write here
    opts = [arg for key, value in settings.items() for arg in ("-o", f"{key}={value}")]
    packages.run_quiet([packages.which("apt-get") or "apt-get", "-q", *opts, "update"], "apt-get update")
    return opts


def _source_versions(opts: list[str], package: str) -> list[str]:
    """Every version of source `package` the lists name, newest first."""
    apt_cache = packages.which("apt-cache") or "apt-cache"
    proc = subprocess.run(
        [apt_cache, "-q", *opts, "showsrc", "--only-source", package],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    versions = [line.split(":", 1)[1].strip() for line in proc.stdout.splitlines() if line.startswith("Version:")]
    dpkg = packages.which("dpkg") or "dpkg"

    def newer(a: str, b: str) -> bool:
        return subprocess.run([dpkg, "--compare-versions", a, "gt", b], check=False).returncode == 0

    ordered: list[str] = []
    for v in dict.fromkeys(versions):
        i = 0
        while i < len(ordered) and not newer(v, ordered[i]):
            i += 1
        ordered.insert(i, v)
    return ordered


def fetch_source(minor: str, work: Path) -> tuple[Path, str]:
    """The newest python<minor> source package whose files Debian serves: (its .orig.tar.xz, its version).
    Versions the lists name but whose files are gone (HTTP 404) are skipped, each said on stderr."""
    opts = _private_apt(work / "apt")
    package = f"python{minor}"
    versions = _source_versions(opts, package)
    if not versions:
        raise VMError(f"Debian ({', '.join(SUITES)}) lists no source package {package}")
    tried = []
    for version in versions:
        into = work / "src" / version
        into.mkdir(parents=True)
        proc = subprocess.run(
            [packages.which("apt-get") or "apt-get", "-q", *opts, "source", "--download-only", f"{package}={version}"],
            cwd=into,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        orig = sorted(into.glob(f"{package}_*.orig.tar.xz"))
        if proc.returncode == 0 and orig:
            return orig[0], version
        why = next((line for line in proc.stdout.splitlines() + proc.stderr.splitlines() if "404" in line), "")
        tried.append(f"{version}: {why or (proc.stderr.strip().splitlines() or ['failed'])[-1]}")
        say(f"{package} {version}: source not served ({why or 'apt-get source failed'})")
        shutil.rmtree(into)
    raise VMError(f"no {package} source package is served by Debian:\n  " + "\n  ".join(tried))


def _unpack(orig: Path, into: Path) -> Path:
    with tarfile.open(orig) as tar:
        if hasattr(tarfile, "data_filter"):  # 3.12, 3.11.4, 3.10.12
            tar.extractall(into, filter="data")
        else:  # the archive is Debian's, checked by apt against the signed Sources index
            tar.extractall(into)
    tops = [p for p in into.iterdir() if (p / "configure").is_file()]
    if len(tops) != 1:
        raise VMError(f"{orig.name}: expected one CPython source tree, found {[p.name for p in into.iterdir()]}")
    return tops[0]


def _run_logged(cmd: list[str], cwd: Path, log: Path, what: str) -> None:
    with open(log, "ab") as out:
        proc = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-40:]
        sys.stderr.write("\n".join(tail) + "\n")
        raise VMError(f"{what} failed (exit {proc.returncode}); the log was {log}")


def _verify(binary: Path, version: str) -> dict[str, object]:
    from .pythons import run_check  # pythons imports this module when asked for a free-threaded version

    result = run_check(binary, _CHECK, *REQUIRED_MODULES)
    if result["missing"]:
        raise VMError(f"python{version} lacks modules kcapi_hashlib needs: {result['missing']}")
    if result["gil_disabled"] != 1 or result["gil"] is not False:
        raise VMError(f"python{version} is not free-threaded: {result}")
    return result


def _build(version: str) -> Path:
    minor = _check_version(version)
    packages.ensure_packages({"apt-get": "apt", "apt-cache": "apt", "dpkg": "dpkg", **BUILD_DEPS})
    dest = home(version)
    say(f"building free-threaded Python {version} (Debian's python{minor} source, --disable-gil) into {dest}")
    started = time.monotonic()
    with building(dest) as work:
        orig, package_version = fetch_source(minor, work)
        src = _unpack(orig, work / "build")
        # Beside the cache entry, not in it: the work directory goes if the build fails.
        log = dest.parent / f"python{version}-build.log"
        log.write_bytes(b"")
        jobs = str(max(1, len(os.sched_getaffinity(0))))
        configure = [
            "./configure",
            "--disable-gil",
            f"--prefix={work / 'install'}",
            "--without-ensurepip",
            "--disable-test-modules",
        ]
        _run_logged(configure, src, log, "configure")
        _run_logged(["make", f"-j{jobs}"], src, log, "make")
        _run_logged(["make", "altinstall"], src, log, "make altinstall")
        shutil.rmtree(work / "build")
        shutil.rmtree(work / "apt")
        shutil.rmtree(work / "src")
        result = _verify(_binary(work, version), version)
        seconds = round(time.monotonic() - started)
        meta = {"version": result["version"], "source": f"python{minor} {package_version}", "build_seconds": seconds}
        (work / "python.json").write_text(json.dumps(meta, indent=1) + "\n")
    found = cached(version)
    if found is None:
        raise VMError(f"Python {version}: cache at {dest} unusable after the build")
    # The install was made under the work directory's name and moved: it finds its prefix from its own path.
    _verify(found, version)
    say(f"Python {meta['version']} free-threaded ready ({meta['source']}, built in {seconds} s)")
    return found


def install(version: str) -> Path:
    """The path of a working free-threaded ``python<version>`` (built from Debian's source once, then cached)."""
    found = cached(version)
    if found is None:
        with fetch_lock(f"python{version}"):
            found = cached(version) or _build(version)
    return found
