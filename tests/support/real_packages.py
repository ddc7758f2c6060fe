"""Real packages' own test suites, run with and without kcapi_hashlib (the pytest plugin).

    python tests/support/real_packages.py fetch DIR                          # on a host with the package index
    python -m kcapi_hashlib vm -- python tests/support/real_packages.py run DIR [--only NAME]

`fetch` downloads each package's sdist (its tests) and installs the packages and their test requirements into
DIR/site (pip --target; nothing touches the running environment). `run` runs each suite (or its named
crypto-relevant part) three times with PYTHONPATH=DIR/site: plain, `--kcapi --kcapi-policy strict` and
`--kcapi --kcapi-policy fallback`, and prints per package the pytest outcome of each, the AF_ALG operations
the plugin counted and what was computed in userspace. It prints; it asserts nothing (a script, not a test).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

# name -> (sdist requirement, what to run inside the unpacked sdist, extra test requirements)
PACKAGES: dict[str, tuple[str, list[str], list[str]]] = {
    "itsdangerous": ("itsdangerous==2.2.0", ["tests"], ["freezegun"]),
    "pyjwt": ("pyjwt==2.15.1", ["tests"], []),
    "pyotp": ("pyotp==2.12.1", ["test.py"], []),
    "passlib": (
        "passlib==1.7.4",
        [
            "passlib/tests/test_crypto_digest.py",
            "passlib/tests/test_utils_pbkdf2.py",
            "passlib/tests/test_handlers_django.py",
            "passlib/tests/test_handlers_pbkdf2.py",
        ],
        [],
    ),
}
TIMEOUT = 900


def fetch(root: Path) -> int:
    sdists, site = root / "sdist", root / "site"
    sdists.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    for req, _, extra in PACKAGES.values():
        subprocess.run([*pip, "download", "-q", "--no-deps", "--no-binary", ":all:", "-d", str(sdists), req],
                       check=True, timeout=TIMEOUT)  # fmt: skip
        subprocess.run([*pip, "install", "-q", "--target", str(site), "--upgrade", req, *extra],
                       check=True, timeout=TIMEOUT)  # fmt: skip
    for tgz in sdists.glob("*.tar.gz"):
        with tarfile.open(tgz) as tf:
            tf.extractall(root / "src")  # our own download of a named sdist
    return 0


def _source(root: Path, name: str) -> Path:
    req = PACKAGES[name][0]
    base, version = req.split("==")
    for d in (root / "src").iterdir():
        if d.name.lower().replace("_", "-") == f"{base}-{version}".lower():
            return d
    raise SystemExit(f"{name}: sdist not unpacked under {root / 'src'} (run `fetch` first)")


# pytest -q's last line: "297 passed in 15.41s", "3 failed, 10 passed, 1 skipped in 2.0s" (no "=" around it)
_SUMMARY = re.compile(r"^=*\s*((?:\d+ \w+(?:, )?)+) in [\d.]+s", re.MULTILINE)


def _pytest(src: Path, site: Path, targets: list[str], extra: list[str]) -> tuple[str, str]:
    env = dict(os.environ, PYTHONPATH=str(site))
    env.pop("KCAPI_HASHLIB_INSTALL", None)
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(src), "-o",
            "addopts=", *extra, *targets]  # fmt: skip
    try:
        out = subprocess.run(argv, cwd=src, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return "TIMEOUT", ""
    text = out.stdout + out.stderr
    found = _SUMMARY.findall(text)
    accounting = text.split("kcapi_hashlib accounting", 1)[1] if "kcapi_hashlib accounting" in text else ""
    accounting = _SUMMARY.split(accounting)[0] if accounting else ""
    return (found[-1] if found else f"rc={out.returncode}: {text[-300:]}"), accounting


def run(root: Path, only: list[str]) -> int:
    site = root / "site"
    for name, (_, targets, _) in PACKAGES.items():
        if only and name not in only:
            continue
        src = _source(root, name)
        print(f"== {name} ({' '.join(targets)})", flush=True)
        plain, _ = _pytest(src, site, targets, [])
        print(f"  without kcapi_hashlib : {plain}", flush=True)
        for policy in ("strict", "fallback"):
            extra = ["-p", "kcapi_hashlib.pytest_plugin", "--kcapi", "--kcapi-policy", policy]
            outcome, accounting = _pytest(src, site, targets, extra)
            print(f"  --kcapi {policy:<8} : {outcome}", flush=True)
            for line in accounting.splitlines()[1:]:
                if line.strip() and not line.startswith("="):
                    print(f"      {line}")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("fetch", "run"))
    parser.add_argument("dir", type=Path)
    parser.add_argument("--only", action="append", default=[], choices=sorted(PACKAGES))
    args = parser.parse_args(argv)
    return fetch(args.dir) if args.action == "fetch" else run(args.dir, args.only)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
