"""The accounting API, `kcapi-hashlib run` (argv, sys.path[0], __main__, exit status,
tracebacks, SIGINT as `python` gives them; the report, children merged), the KCAPI_HASHLIB_INSTALL start-up
hook (subprocess, multiprocessing spawn/fork/forkserver), the Cryptodome namespace and the pytest plugin.
Every program runs in a fresh interpreter under the real kernel, with a timeout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import kcapi_hashlib
from kcapi_hashlib import _afalg

TIMEOUT = 240
LAUNCHER = [sys.executable, "-m", "kcapi_hashlib", "run"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KCAPI_HASHLIB_")}
    env.update(extra)
    return env


def _run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=TIMEOUT)


def _write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source))
    return path


def _row(report: dict[str, Any], side: str, algorithm: str) -> dict[str, Any]:
    rows = [r for r in report[side] if r["algorithm"] == algorithm]
    assert rows, (side, algorithm, report)
    return rows[0]


# --- the accounting API ---------------------------------------------------------------------------------


def test_accounting_counts_operations_and_bytes_per_algorithm() -> None:
    kcapi_hashlib.reset_accounting()
    before = _afalg.kernel_operations()
    kcapi_hashlib.sha256(b"x" * 1000).digest()
    kcapi_hashlib.hmac.new(b"k", bytearray(300), "sha1").digest()
    snap = kcapi_hashlib.accounting()
    sha = _row(snap, "kernel", "sha256")
    mac = _row(snap, "kernel", "hmac(sha1)")
    assert (sha["type"], sha["bytes"]) == ("hash", 1000)
    assert (mac["type"], mac["bytes"]) == ("hash", 300)
    # every AF_ALG operation of the process is in exactly one row
    assert sum(r["operations"] for r in snap["kernel"]) == _afalg.kernel_operations() - before
    assert snap["pid"] == os.getpid()


def test_accounting_records_fallbacks_and_refusals_with_their_reasons() -> None:
    kcapi_hashlib.reset_accounting()
    with pytest.raises(kcapi_hashlib.UnsupportedAlgorithm):
        kcapi_hashlib.new("shake_128")
    previous = kcapi_hashlib.set_policy("fallback")
    try:
        with pytest.warns(kcapi_hashlib.KernelFallbackWarning):
            kcapi_hashlib.blake2b(b"x", salt=b"pepper")
    finally:
        kcapi_hashlib.set_policy(previous)
        kcapi_hashlib.reset_fallback_counts()
    snap = kcapi_hashlib.accounting()
    refused = _row(snap, "refused", "shake_128")
    assert refused["count"] == 1 and "no AF_ALG hash for shake_128" in next(iter(refused["reasons"]))
    fell = _row(snap, "fallbacks", "blake2b")
    assert fell["kind"] == "hash" and "takes no salt" in next(iter(fell["reasons"]))


# --- the launcher ---------------------------------------------------------------------------------------

PROGRAM = """\
import hashlib, json, os, sys
import __main__
ours = type(hashlib.sha256(b"x")).__module__.startswith("kcapi_hashlib")
main_is_me = __main__.__dict__ is globals()
print(json.dumps({"argv": sys.argv, "path0": sys.path[0], "name": __name__, "main_is_me": main_is_me,
                  "ours": ours, "file": __file__}))
hashlib.sha256(b"a" * 100).digest()
what = sys.argv[1] if len(sys.argv) > 1 else ""
if what == "raise":
    raise RuntimeError("boom")
if what == "sigint":
    raise KeyboardInterrupt
if what == "exit":
    sys.exit(7)
if what == "shake":
    hashlib.shake_128(b"x").hexdigest(4)
"""


@pytest.fixture
def prog(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    _write(tmp_path / "pkg" / "__init__.py", "")
    _write(tmp_path / "pkg" / "tool.py", PROGRAM)
    return _write(tmp_path / "prog.py", PROGRAM)


def _first_json(out: str) -> dict[str, Any]:
    return json.loads(out.splitlines()[0])  # type: ignore[no-any-return]


def test_script_sees_what_python_script_gives(prog: Path, tmp_path: Path) -> None:
    plain = _run([sys.executable, "prog.py", "a", "b"], tmp_path)
    ran = _run([*LAUNCHER, "--report", str(tmp_path / "r.txt"), "--", "prog.py", "a", "b"], tmp_path)
    assert plain.returncode == ran.returncode == 0, ran.stderr
    p, r = _first_json(plain.stdout), _first_json(ran.stdout)
    assert p["ours"] is False and r["ours"] is True  # installed before the program's first import
    for key in ("argv", "path0", "name", "main_is_me", "file"):
        assert r[key] == p[key], key


def test_module_sees_what_python_m_gives(prog: Path, tmp_path: Path) -> None:
    plain = _run([sys.executable, "-m", "pkg.tool", "x"], tmp_path)
    ran = _run([*LAUNCHER, "--report", str(tmp_path / "r.txt"), "-m", "pkg.tool", "x"], tmp_path)
    assert plain.returncode == ran.returncode == 0, ran.stderr
    p, r = _first_json(plain.stdout), _first_json(ran.stdout)
    assert r["ours"] is True
    for key in ("argv", "path0", "name", "main_is_me", "file"):
        assert r[key] == p[key], key


@pytest.mark.parametrize("what,status", [("exit", 7), ("raise", 1), ("sigint", -signal.SIGINT)])
def test_exit_status_and_traceback_as_python_gives_them(prog: Path, tmp_path: Path, what: str, status: int) -> None:
    plain = _run([sys.executable, "prog.py", what], tmp_path)
    ran = _run([*LAUNCHER, "--report", str(tmp_path / "r.txt"), "prog.py", what], tmp_path)
    assert plain.returncode == ran.returncode == status, ran.stderr
    assert ran.stderr == plain.stderr  # the same traceback: it starts at the program's own frames
    assert (tmp_path / "r.txt").exists()  # the report is written whatever the exit


def test_strict_fails_as_usual_and_the_report_names_the_refusal(prog: Path, tmp_path: Path) -> None:
    ran = _run([*LAUNCHER, "--json", "--report", str(tmp_path / "r.json"), "prog.py", "shake"], tmp_path)
    assert ran.returncode == 1
    assert "UnsupportedAlgorithm: unsupported hash type shake_128" in ran.stderr  # a ValueError, as hashlib's
    report = json.loads((tmp_path / "r.json").read_text())
    assert _row(report, "refused", "shake_128")["count"] == 1
    assert _row(report, "kernel", "sha256")["bytes"] == 100  # sha256(b"x") never reached the kernel: no digest


def test_fallback_report_shows_every_userspace_computation(prog: Path, tmp_path: Path) -> None:
    ran = _run([*LAUNCHER, "--policy", "fallback", "--report", "-", "prog.py", "shake"], tmp_path)
    assert ran.returncode == 0, ran.stderr
    table = ran.stdout.split("\n", 1)[1]
    assert "computed in userspace (fallback)" in table and "hash shake_128: 1" in table
    assert "no AF_ALG hash for shake_128" in table
    assert "sha256" in table


CHILDREN = """\
import hashlib, multiprocessing, subprocess, sys

def work(n):
    return hashlib.sha256(b"c" * n).hexdigest()

if __name__ == "__main__":
    method = sys.argv[1]
    out = subprocess.run([sys.executable, "-c", "import hashlib; print(type(hashlib.sha1()).__module__);"
                          "hashlib.sha1(b'z' * 5000).digest()"], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "kcapi_hashlib._hash_object", out
    if method != "none":
        ctx = multiprocessing.get_context(method)
        p = ctx.Process(target=work, args=(7000,))
        p.start(); p.join(120)
        assert p.exitcode == 0, p.exitcode
    print("done")
"""


@pytest.mark.parametrize("method", ["spawn", "forkserver", "fork"])
def test_children_are_kernel_backed_and_merged_into_the_report(tmp_path: Path, method: str) -> None:
    _write(tmp_path / "kids.py", CHILDREN)
    ran = _run([*LAUNCHER, "--json", "--report", str(tmp_path / "r.json"), "kids.py", method], tmp_path)
    assert ran.returncode == 0, ran.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert _row(report, "kernel", "sha1")["bytes"] == 5000  # the subprocess
    assert _row(report, "kernel", "sha256")["bytes"] == 7000  # the multiprocessing child
    assert len(report["processes"]) >= 3, report["processes"]  # launcher, subprocess, process (+ forkserver)


KILLED = """
import hashlib, multiprocessing, os, signal, subprocess, sys, time

def work(ready):
    hashlib.sha256(b"counted, never reported").digest()
    ready.set()
    time.sleep(600)

if __name__ == "__main__":
    ctx = multiprocessing.get_context(sys.argv[1])
    ready = ctx.Event()
    p = ctx.Process(target=work, args=(ready,))
    p.start()
    assert ready.wait(120)
    p.kill(); p.join(120)
    assert p.exitcode == -signal.SIGKILL, p.exitcode
    child = subprocess.Popen([sys.executable, "-c", "import sys, time; print(flush=True); time.sleep(600)"],
                             stdout=subprocess.PIPE)
    child.stdout.readline()  # it has started (and written its marker)
    child.terminate(); child.wait(120)
    print(p.pid, child.pid)
"""


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_children_killed_by_a_signal_are_named_in_the_report(tmp_path: Path, method: str) -> None:
    """A child killed by a signal runs no exit handler, so it cannot report its counts: the report says so per
    child (the signal seen by its kernel-backed parent's wait) instead of silently leaving it out."""
    _write(tmp_path / "killed.py", KILLED)
    ran = _run([*LAUNCHER, "--json", "--report", str(tmp_path / "r.json"), "killed.py", method], tmp_path)
    assert ran.returncode == 0, ran.stderr
    killed, terminated = map(int, ran.stdout.split())
    report = json.loads((tmp_path / "r.json").read_text())
    assert {"pid": killed, "signal": "SIGKILL"} in report["unreported"], report["unreported"]
    assert {"pid": terminated, "signal": "SIGTERM"} in report["unreported"], report["unreported"]
    assert killed not in report["processes"] and terminated not in report["processes"]
    table = _run([*LAUNCHER, "killed.py", method], tmp_path)
    assert table.returncode == 0, table.stderr
    assert "killed by SIGKILL, no report" in table.stderr and "killed by SIGTERM, no report" in table.stderr


WAITS = """
import hashlib, os, signal, sys, time

def child():
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        hashlib.sha256(b"counted, never reported").digest()
        os.write(w, b"x")
        time.sleep(600)
        os._exit(0)
    os.close(w)
    assert os.read(r, 1) == b"x"  # it has started (and written its marker)
    os.close(r)
    os.kill(pid, signal.SIGKILL)
    return pid

reaped = []
pid = child(); assert os.wait()[0] == pid; reaped.append(pid)
pid = child(); assert os.wait3(0)[0] == pid; reaped.append(pid)
pid = child(); assert os.wait4(pid, 0)[0] == pid; reaped.append(pid)
pid = child()
assert os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT).si_pid == pid  # seen, not reaped: waitpid reaps it
assert os.waitpid(pid, 0)[0] == pid; reaped.append(pid)
if hasattr(os, "pidfd_open"):
    pid = child(); fd = os.pidfd_open(pid)
    assert os.waitid(os.P_PIDFD, fd, os.WEXITED).si_pid == pid; os.close(fd); reaped.append(pid)
print(*reaped)
"""


def test_children_reaped_by_any_wait_call_are_named_in_the_report(tmp_path: Path) -> None:
    """os.wait, wait3, wait4, waitid (by pid and by pidfd, with WNOWAIT too) see a killed child as waitpid does."""
    _write(tmp_path / "waits.py", WAITS)
    ran = _run([*LAUNCHER, "--json", "--report", str(tmp_path / "r.json"), "waits.py"], tmp_path)
    assert ran.returncode == 0, ran.stderr
    reaped = [int(p) for p in ran.stdout.split()]
    assert len(reaped) >= 4, ran.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    for pid in reaped:
        assert report["unreported"].count({"pid": pid, "signal": "SIGKILL"}) == 1, (pid, report["unreported"])


def test_environment_hook_without_the_launcher(tmp_path: Path) -> None:
    app = _write(tmp_path / "app.py", "import hashlib, hmac\nprint(hashlib.sha256.__module__, hmac.new.__module__)\n")
    on = _run([sys.executable, str(app)], tmp_path, KCAPI_HASHLIB_INSTALL="1")
    off = _run([sys.executable, str(app)], tmp_path, KCAPI_HASHLIB_INSTALL="0")
    assert on.returncode == off.returncode == 0, on.stderr
    assert on.stdout.split() == ["kcapi_hashlib", "kcapi_hashlib.hmac"]
    assert off.stdout.split() == ["_hashlib", "hmac"]


# --- the Cryptodome namespace ---------------------------------------------------------------------------


def test_cryptodome_namespace_is_replaced_as_crypto_is() -> None:
    pytest.importorskip("Cryptodome", reason="pycryptodomex is a test requirement (the `test` extra)")
    from Cryptodome.Cipher import AES, ARC2
    from Cryptodome.Hash import SHA256

    with kcapi_hashlib.patched():
        from Cryptodome.Cipher import AES as AES_now
        from Cryptodome.Hash import HMAC, MD4

        before = _afalg.kernel_operations()
        key = bytes(16)
        ct, tag = AES_now.new(key, AES_now.MODE_GCM, nonce=bytes(12)).encrypt_and_digest(b"data")
        mac = HMAC.new(b"k", b"m", digestmod=SHA256).hexdigest()
        assert _afalg.kernel_operations() > before
        assert AES_now.new.__module__ == "kcapi_hashlib.Cipher.AES"
        assert MD4.new(b"x").hexdigest() == "51b834b7c1ef0b59ea50888fcb39ace2"  # PyCryptodome's answer
        assert type(MD4.new()).__module__ == "kcapi_hashlib.Hash.MD4"  # the kernel's md4
        with pytest.raises(kcapi_hashlib.UnsupportedAlgorithm, match="unsupported cipher type ARC2"):
            ARC2.new(key, ARC2.MODE_ECB)
    # pycryptodomex itself agrees
    assert AES.new(key, AES.MODE_GCM, nonce=bytes(12)).encrypt_and_digest(b"data") == (ct, tag)
    from Cryptodome.Hash import HMAC as RealHMAC

    assert RealHMAC.new(b"k", b"m", digestmod=SHA256).hexdigest() == mac


# --- the pytest plugin ----------------------------------------------------------------------------------

SUITE = """\
import hashlib

def test_kernel():
    assert type(hashlib.sha256(b"x")).__module__ == "kcapi_hashlib._hash_object"

def test_swallows_a_refusal():
    try:
        hashlib.new("shake_128", b"x").hexdigest(4)
    except ValueError:
        pass  # code that 'copes': under strict the plugin still fails this test
"""


@pytest.mark.parametrize("policy,outcome", [("strict", "1 failed, 1 passed"), ("fallback", "2 passed")])
def test_pytest_plugin(tmp_path: Path, policy: str, outcome: str) -> None:
    _write(tmp_path / "test_suite.py", SUITE)
    args = ["-p", "kcapi_hashlib.pytest_plugin", "--kcapi", "--kcapi-policy", policy, "-p", "no:cacheprovider"]
    ran = _run([sys.executable, "-m", "pytest", "-q", "--rootdir", str(tmp_path), *args, "test_suite.py"], tmp_path)
    assert outcome in ran.stdout, ran.stdout + ran.stderr
    assert f"kcapi_hashlib accounting (policy {policy})" in ran.stdout
    assert "test_suite.py::test_swallows_a_refusal" in ran.stdout
    if policy == "strict":
        assert "the kernel could not serve hash shake_128" in ran.stdout


def test_pytest_plugin_is_inert_without_the_option(tmp_path: Path) -> None:
    _write(
        tmp_path / "test_suite.py",
        "import hashlib\n\ndef test_it():\n    assert hashlib.sha256.__module__ != 'kcapi_hashlib'\n",
    )
    ran = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_suite.py"], tmp_path)
    assert "1 passed" in ran.stdout, ran.stdout + ran.stderr
    assert "kcapi_hashlib accounting" not in ran.stdout
