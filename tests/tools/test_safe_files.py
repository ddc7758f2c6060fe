"""Files the launcher and the start-up hook write are created safely (the --report PATH: resolved when given, no
symlink followed, no FIFO blocked on, no hard-linked file truncated; the report directory's markers: O_EXCL), and
KernelKey.add gives possessor-only permissions by default (KEYCTL_SETPERM 0x3f000000, read back with
KEYCTL_DESCRIBE: works on Linux 6.1, which has no ALG_SET_KEY_BY_KEY_SERIAL)."""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import kcapi_hashlib
from kcapi_hashlib import _autoinstall
from kcapi_hashlib._afalg import keyring as _kr
from kcapi_hashlib.keyring import POSSESSOR_ONLY, KernelKey

TIMEOUT = 240
ROOT = Path(kcapi_hashlib.__file__).resolve().parents[1]
PROGRAM = "import hashlib\nhashlib.sha256(b'x').digest()\n"


def _run_launcher(tmp_path: Path, report: str, source: str = PROGRAM) -> subprocess.CompletedProcess[str]:
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(source))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KCAPI_HASHLIB_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])  # this tree's code
    argv = [sys.executable, "-m", "kcapi_hashlib", "run", "--json", "--report", report, str(app)]
    return subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT)


def test_report_path_is_resolved_before_the_program_runs(tmp_path: Path) -> None:
    # Before: a relative --report was opened at exit, relative to wherever the program had chdir'd to.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ran = _run_launcher(tmp_path, "report.json", f"{PROGRAM}import os\nos.chdir({str(elsewhere)!r})\n")
    assert ran.returncode == 0, ran.stderr
    assert '"sha256"' in (tmp_path / "report.json").read_text()
    assert not (elsewhere / "report.json").exists()


def test_report_does_not_follow_a_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    (tmp_path / "report.json").symlink_to(victim)
    ran = _run_launcher(tmp_path, str(tmp_path / "report.json"))
    assert ran.returncode == 0
    assert victim.read_text() == "keep me\n"  # before: overwritten through the link
    assert "cannot write the report to" in ran.stderr and '"sha256"' in ran.stderr  # the report is not lost


def test_report_does_not_truncate_a_file_with_other_hard_links(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    os.link(victim, tmp_path / "report.json")
    ran = _run_launcher(tmp_path, str(tmp_path / "report.json"))
    assert victim.read_text() == "keep me\n"  # before: truncated and overwritten
    assert "2 hard links" in ran.stderr, ran.stderr


def test_report_does_not_block_on_a_fifo(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "report.json")
    ran = _run_launcher(tmp_path, str(tmp_path / "report.json"))  # before: blocked until TIMEOUT (no reader)
    assert ran.returncode == 0
    assert "cannot write the report to" in ran.stderr, ran.stderr


def test_report_replaces_a_regular_file_of_ours(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text("x" * 100_000)
    ran = _run_launcher(tmp_path, str(tmp_path / "report.json"))
    assert ran.returncode == 0, ran.stderr
    report = json.loads((tmp_path / "report.json").read_text())  # the old 100 kB are gone: it parses
    assert [(r["algorithm"], r["operations"], r["bytes"]) for r in report["kernel"]] == [("sha256", 4, 1)]
    # what the program computed, here too (this process's own kernel operation)
    assert kcapi_hashlib.sha256(b"x").digest() == hashlib.sha256(b"x").digest()


def test_markers_never_write_through_what_is_already_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    directory = tmp_path / "reports"
    directory.mkdir()
    (directory / "4242.signal").symlink_to(victim)
    os.mkfifo(directory / "4243.signal")
    monkeypatch.setenv("KCAPI_HASHLIB_REPORT_DIR", str(directory))
    _autoinstall._note("signal", "9", 4242)  # before: wrote "9" into the victim
    _autoinstall._note("signal", "9", 4243)  # before: blocked (no reader)
    _autoinstall._note("signal", "15", 4244)
    assert victim.read_text() == "keep me\n"
    assert (directory / "4244.signal").read_text() == "15"
    assert (directory / "4244.signal").stat().st_mode & 0o077 == 0


# --- KernelKey.add's permissions --------------------------------------------------------------------------


def _perm(serial: int) -> int:
    """The key's permission mask as KEYCTL_DESCRIBE gives it ("type;uid;gid;perm;description", perm in hex)."""
    buf = ctypes.create_string_buffer(4096)
    n = _kr._keyctl(_kr.KEYCTL_DESCRIBE, "KEYCTL_DESCRIBE", serial, buf, ctypes.c_size_t(len(buf)))
    return int(buf.raw[: n - 1].decode().split(";")[3], 16)


@pytest.mark.parametrize("key_type", ["logon", "user"])
def test_added_keys_are_possessor_only_by_default(key_type: str) -> None:
    key = KernelKey.add(key_type, f"kcapi-test:perm:{os.getpid()}", b"k" * 32)
    try:
        # before (UML 6.1): 0x3d010000 for logon, 0x3f010000 for user (the kernel's default, with KEY_USR_VIEW)
        assert _perm(key.serial) == POSSESSOR_ONLY == 0x3F000000
    finally:
        key.invalidate()


def test_perm_none_keeps_the_kernels_default_and_perm_sets_one() -> None:
    default = KernelKey.add("user", f"kcapi-test:default:{os.getpid()}", b"k" * 32, perm=None)
    chosen = KernelKey.add("user", f"kcapi-test:chosen:{os.getpid()}", b"k" * 32, perm=0x3F010000)
    try:
        assert _perm(default.serial) & 0x00010000  # KEY_USR_VIEW: the kernel's default lets the uid view it
        assert _perm(chosen.serial) == 0x3F010000
    finally:
        default.invalidate()
        chosen.invalidate()
    with pytest.raises(ValueError, match="perm must be a key permission mask"):
        KernelKey.add("user", "kcapi-test:bad", b"k", perm=-1)
