"""kcapi_hashlib in subinterpreters: results equal the stdlib's, and a closed interpreter leaves no descriptor
behind (its atexit callbacks run when it is closed; detaching its sockets there, as the main interpreter may at
process exit, would keep them and keyed transforms' keys in the kernel for the life of the process).

A fresh process per Python (so its descriptor table is only this test's) creates and closes 10 interpreters one
after another, each computing HMACs under its own keys, a hash and a PBKDF2 (the io_uring ring where it is on),
then 4 at once from threads, and prints what it counted. It runs on the interpreter running the suite where that
can make subinterpreters from Python (concurrent.interpreters, 3.14+; _interpreters, 3.13; _xxsubinterpreters
before), and on sid's 3.13, 3.14 and 3.15 where the VM runner has them cached (python -m kcapi_vm.pythons
3.14 fetches one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import pytest

from kcapi_vm import pythons
from kcapi_vm.exits import VMError
from tests.support import requires

pytestmark = requires.hash_names("sha256", "hmac:sha256", "hmac:sha1", "hmac:sha512")

REPO = str(Path(__file__).resolve().parents[2])

# Run inside each subinterpreter: {n} is its number, {out} the file it writes its findings to.
INSIDE = r"""
import hashlib, hmac, json, os, sys
sys.path.insert(0, {repo!r})
import kcapi_hashlib
from kcapi_hashlib import hmac as khmac
from kcapi_hashlib._afalg import core
before = len(os.listdir("/proc/self/fd"))
wrong = []
for j in range(6):
    key, msg = b"key-%d-%d" % ({n}, j), b"message " * j
    for name in ("sha1", "sha256", "sha512"):
        if khmac.new(key, msg, name).digest() != hmac.new(key, msg, name).digest():
            wrong.append(("hmac.new", name, j))
        if khmac.digest(key, msg, name) != hmac.digest(key, msg, name):
            wrong.append(("hmac.digest", name, j))
if kcapi_hashlib.sha256(b"x%d" % {n}).digest() != hashlib.sha256(b"x%d" % {n}).digest():
    wrong.append("sha256")
pw = b"pw%d" % {n}
if kcapi_hashlib.pbkdf2_hmac("sha256", pw, b"salt", 1100) != hashlib.pbkdf2_hmac("sha256", pw, b"salt", 1100):
    wrong.append("pbkdf2")
from kcapi_hashlib._afalg import uring
with open({out!r}, "w") as f:
    json.dump(dict(wrong=wrong, ops=core.kernel_operations(), tfms=len(core.live_tfms()),
                   opened=len(os.listdir("/proc/self/fd")) - before, uring=uring.unavailable()), f)
"""

DRIVER = r"""
import json, os, sys, threading
repo, work = sys.argv[1], sys.argv[2]
try:
    from concurrent import interpreters  # 3.14+
    def run(code):
        interp = interpreters.create()
        try:
            interp.exec(code)
        finally:
            interp.close()
    api = "concurrent.interpreters"
except ImportError:
    try:
        import _interpreters  # 3.13
        def run(code):
            iid = _interpreters.create()
            try:
                failed = _interpreters.exec(iid, code)
                if failed is not None:
                    raise RuntimeError(failed)
            finally:
                _interpreters.destroy(iid)
        api = "_interpreters"
    except ImportError:
        import _xxsubinterpreters as _legacy  # 3.12 and older
        def run(code):
            iid = _legacy.create()
            try:
                _legacy.run_string(iid, code)
            finally:
                _legacy.destroy(iid)
        api = "_xxsubinterpreters"
inside = sys.stdin.read()
fds = lambda: len(os.listdir("/proc/self/fd"))
# libffi keeps one descriptor for the process from its first closure (static trampolines: it maps pages of its
# own .so, tramp.c ffi_tramp_init); the first ctypes user makes it. Made here first, so it is in the base.
import ctypes
_keep = ctypes.CFUNCTYPE(ctypes.c_int)(lambda: 0)
base = fds()
left, found = [], []
for n in range(10):
    out = os.path.join(work, "seq%d.json" % n)
    run(inside.format(n=n, out=out, repo=repo))
    left.append(fds() - base)
    found.append(json.load(open(out)))
errors = []
def worker(n):
    try:
        out = os.path.join(work, "thr%d.json" % n)
        run(inside.format(n=100 + n, out=out, repo=repo))
        found.append(json.load(open(out)))
    except BaseException as e:
        errors.append(repr(e))
threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(dict(api=api, version=sys.version.split()[0], base=base, left=left,
                      after_threads=fds() - base, found=found, errors=errors)))
"""


def _own_api() -> Optional[str]:
    for name in ("concurrent.interpreters", "_interpreters", "_xxsubinterpreters"):
        try:
            __import__(name)
            return name
        except ImportError:
            pass
    return None


def _candidates() -> list[Any]:
    own = _own_api()
    params: list[Any] = [
        pytest.param(
            sys.executable,
            id=f"running-{sys.version_info[0]}.{sys.version_info[1]}",
            marks=[]
            if own
            else [pytest.mark.skip(reason=f"Python {sys.version.split()[0]} cannot make subinterpreters from Python")],
        )
    ]
    for version in ("3.13", "3.14", "3.15"):
        try:
            path = pythons.cached(version)
        except VMError as e:  # a runner that does not know this version
            path, why = None, str(e)
        else:
            why = ""
        reason = why or f"sid's Python {version} is not in the VM runner's cache (python -m kcapi_vm.pythons {version})"
        params.append(pytest.param(str(path) if path else None, id=f"sid-{version}",
                                   marks=[] if path else [pytest.mark.skip(reason=reason)]))  # fmt: skip
    return params


@pytest.mark.parametrize("python", _candidates())
def test_closed_interpreters_leave_no_descriptors(python: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [python, "-c", DRIVER, REPO, str(tmp_path)],
        input=INSIDE,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": REPO},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    print(python, {k: v for k, v in report.items() if k != "found"})
    assert not report["errors"], report["errors"]
    found = report["found"]
    assert len(found) == 14, report
    assert [f["wrong"] for f in found] == [[]] * 14, found
    # Each interpreter really used the kernel: operations counted, transforms of its own, and (one at a time, so
    # measurable) descriptors opened.
    assert all(f["ops"] > 0 and f["tfms"] > 0 for f in found), found
    assert all(f["opened"] > 0 for f in found[:10]), found[:10]
    assert report["left"] == [0] * 10, f"descriptors left after each closed interpreter: {report['left']}"
    assert report["after_threads"] == 0, report
