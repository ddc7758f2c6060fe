"""`kcapi-hashlib demo`: doctor, list, and a kernel-served digest of a file next to hashlib's."""

from __future__ import annotations

import argparse
import os
import sys

from .._afalg import procfs
from .doctor import diagnose
from .listing import algorithm_report
from .output import TRY_VM, out


def interpreter_binary() -> str:
    """The running interpreter's binary: the executable, or libpython where that holds the code (shared builds
    leave a small executable; the larger file shows the zero-copy splice path)."""
    import sysconfig

    candidates = [sys.executable]
    libdir, library = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("LDLIBRARY")
    if libdir and library:
        candidates.append(os.path.join(libdir, library))
    existing = [c for c in candidates if os.path.isfile(c)]
    return max(existing, key=os.path.getsize) if existing else sys.executable


def cmd_demo(args: argparse.Namespace) -> int:
    import hashlib

    import kcapi_hashlib

    from .. import _afalg

    out("== kcapi-hashlib doctor ==")
    ok, findings, verdict = diagnose()
    for finding in findings:
        out(f"  {finding.topic}: [{finding.status}] {finding.detail}")
    out(f"  {verdict}")
    if not ok:
        out()
        out("The kernel cannot serve digests here: the verdict above says what this host needs.")
        out(f"Only to try the package here, {TRY_VM}; this demo:")
        out(f"  {sys.executable} -m kcapi_hashlib vm -- {sys.executable} -m kcapi_hashlib demo")
        return 1
    out()
    out("== kcapi-hashlib list ==")
    for r in algorithm_report(["hash"]):
        state = "yes" if r["available"] else f"no ({r['errno'] or 'none in kernel'})"
        out(f"  {r['name']:<12} {r['kernel'] or '-':<12} {r['driver'] or '-':<18} {state}")
    out()
    path = os.path.realpath(args.file or interpreter_binary())
    algorithm = args.algorithm
    out(f"== {algorithm} of {path} ({os.path.getsize(path)} bytes) ==")
    before = _afalg.stats()
    with open(path, "rb") as f:
        kernel_digest = kcapi_hashlib.file_digest(f, algorithm).hexdigest()
    after = _afalg.stats()
    used = ", ".join(f"{k} {after[k] - before[k]}" for k in after if after[k] != before[k]) or "none"
    with open(path, "rb") as f:
        h = hashlib.new(algorithm)
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
        stdlib_digest = h.hexdigest()
    from .._hashes import ALGORITHMS

    kname = ALGORITHMS[algorithm].kernel or algorithm
    entry = procfs.chosen("hash", kname)
    driver = entry.driver if entry else "?"
    out(f"  kernel  ({kname}, driver {driver}): {kernel_digest}")
    out(f"  hashlib ({algorithm}):{' ' * max(0, len(kname) + len(driver) + 10 - len(algorithm))} {stdlib_digest}")
    out(f"  kernel operations: {used}")
    match = kernel_digest == stdlib_digest
    out(f"  match: {'yes' if match else 'NO'}")
    return 0 if match else 1
