"""The `kcapi-hashlib` command, run for real as `python -m kcapi_hashlib ...` subprocesses under the kernel.

`sum` is held to coreutils byte for byte: the same files go through sha256sum/md5sum/... and through the CLI,
and stdout, exit status and (with the program name swapped) stderr must be identical.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Optional

import pytest

import kcapi_hashlib
import kcapi_hashlib._hashes  # binds the submodule: the package imports private modules lazily
from kcapi_hashlib import _afalg
from kcapi_hashlib._afalg import core
from kcapi_hashlib.cli import checksum
from kcapi_hashlib.cli.proc import crypto_entry, proc_crypto

ROOT = Path(__file__).resolve().parents[2]
PROG = "kcapi-hashlib"

# hashlib name -> the coreutils program computing the same digest.
COREUTILS = {
    "sha256": "sha256sum",
    "md5": "md5sum",
    "sha1": "sha1sum",
    "sha224": "sha224sum",
    "sha384": "sha384sum",
    "sha512": "sha512sum",
    "blake2b": "b2sum",
}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.pop(kcapi_hashlib._policy.ENV, None)  # the CLI's policy: the default, strict
    env["LC_ALL"] = "C.UTF-8"
    return env


def cli(*args: str, cwd: Optional[Path] = None, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "kcapi_hashlib", *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        env=_env(),
        timeout=300,
    )


def coreutils(program: str, *args: str, cwd: Path, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    path = shutil.which(program)
    assert path is not None, f"{program} (coreutils) is needed to compare against"
    # argv[0] is the bare name, as coreutils prints it in its messages.
    return subprocess.run(
        [program, *args], executable=path, input=stdin, capture_output=True, cwd=cwd, env=_env(), timeout=300
    )


def assert_same(
    ours: subprocess.CompletedProcess[bytes], theirs: subprocess.CompletedProcess[bytes], program: str
) -> None:
    assert ours.stdout == theirs.stdout, (ours.stdout, theirs.stdout, ours.stderr)
    assert ours.returncode == theirs.returncode, (ours.returncode, theirs.returncode, ours.stderr)
    assert ours.stderr.replace(PROG.encode(), program.encode()) == theirs.stderr, (ours.stderr, theirs.stderr)


NAMES = ["empty", "abc", "big", "sp ace", "back\\slash", "new\nline", "-dash", "caf\u00e9"]


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "abc").write_bytes(b"abc")
    # Larger than file_digest's splice threshold: this one goes file -> pipe -> kernel.
    (tmp_path / "big").write_bytes(os.urandom(1 << 20) + b"tail")
    (tmp_path / "sp ace").write_bytes(b"space in the name\n")
    (tmp_path / "back\\slash").write_bytes(b"backslash")
    (tmp_path / "new\nline").write_bytes(b"newline")
    (tmp_path / "-dash").write_bytes(b"dash")
    (tmp_path / "caf\u00e9").write_bytes(b"utf-8 name")
    return tmp_path


# --- sum: generating ----------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", sorted(COREUTILS))
def test_sum_output_is_coreutils_output(files: Path, algorithm: str) -> None:
    program = COREUTILS[algorithm]
    args = ["--", *NAMES, "-"]
    stdin = b"from standard input\n"
    ours = cli("sum", "-a", algorithm, *args, cwd=files, stdin=stdin)
    theirs = coreutils(program, *args, cwd=files, stdin=stdin)
    assert_same(ours, theirs, program)
    assert ours.returncode == 0
    assert ours.stdout.count(b"\n") == len(NAMES) + 1  # the escaped "new\nline" adds no line of its own


@pytest.mark.parametrize("options", [["-b"], ["-t"], ["--tag"], ["-z"], ["--tag", "-z"], ["-b", "--tag"]])
@pytest.mark.parametrize("algorithm", ["sha256", "md5", "sha1", "blake2b"])
def test_sum_modes_are_coreutils_modes(files: Path, algorithm: str, options: list[str]) -> None:
    program = COREUTILS[algorithm]
    args = [*options, "--", *NAMES]
    assert_same(cli("sum", "-a", algorithm, *args, cwd=files), coreutils(program, *args, cwd=files), program)


@pytest.mark.parametrize("bits", ["160", "256", "384", "512"])
def test_sum_blake2b_lengths_are_b2sum(files: Path, bits: str) -> None:
    for options in (["-l", bits], ["-l", bits, "--tag"]):
        args = [*options, "abc", "big"]
        assert_same(cli("sum", "-a", "blake2b", *args, cwd=files), coreutils("b2sum", *args, cwd=files), "b2sum")


def test_sum_reads_stdin_without_arguments(files: Path) -> None:
    data = (files / "big").read_bytes()
    ours = cli("sum", cwd=files, stdin=data)
    assert_same(ours, coreutils("sha256sum", cwd=files, stdin=data), "sha256sum")
    assert ours.stdout == hashlib.sha256(data).hexdigest().encode() + b"  -\n"


def test_sum_of_a_redirected_regular_file(files: Path) -> None:
    """stdin that is a regular file is spliced like any other file: same digest as coreutils."""
    for name in ("big", "abc", "empty"):
        with open(files / name, "rb") as f:
            ours = subprocess.run(
                [sys.executable, "-m", "kcapi_hashlib", "sum", "-"], stdin=f, capture_output=True, env=_env()
            )
        assert ours.returncode == 0, ours.stderr
        assert ours.stdout == hashlib.sha256((files / name).read_bytes()).hexdigest().encode() + b"  -\n"


def test_sum_agrees_with_this_process_kernel_digest(files: Path) -> None:
    data = (files / "big").read_bytes()
    before = _afalg.kernel_operations()
    here = kcapi_hashlib.sha256(data).hexdigest()
    assert _afalg.kernel_operations() > before  # computed by the kernel in this process too
    assert here == hashlib.sha256(data).hexdigest()
    assert cli("sum", "big", cwd=files).stdout == f"{here}  big\n".encode()


def test_sum_into_a_closed_pipe_stops_quietly(files: Path) -> None:
    """`kcapi-hashlib sum ... | head -1`: no traceback when the reader goes away."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "kcapi_hashlib", "sum", *["abc"] * 5000],
        cwd=files, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(),
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=300) == 1
    assert first == hashlib.sha256(b"abc").hexdigest().encode() + b"  abc\n"
    assert err == b""


@pytest.mark.parametrize("name", ["missing", "a directory", "it's"])
def test_sum_unreadable_files_are_reported_as_coreutils_does(files: Path, name: str) -> None:
    (files / "a directory").mkdir()
    args = ["abc", name, "big"]
    ours = cli("sum", *args, cwd=files)
    assert_same(ours, coreutils("sha256sum", *args, cwd=files), "sha256sum")
    assert ours.returncode == 1
    assert ours.stdout.count(b"\n") == 2  # the readable files are still summed


def test_sum_usage_errors_exit_1(files: Path) -> None:
    for args in (["-c", "--tag", "x"], ["--tag", "-t", "abc"], ["--status", "abc"], ["-c", "-z", "x"]):
        ours = cli("sum", *args, cwd=files)
        theirs = coreutils("sha256sum", *args, cwd=files)
        assert ours.returncode == theirs.returncode == 1, (args, ours.stderr)
        first = theirs.stderr.splitlines()[0].replace(b"sha256sum", PROG.encode())
        assert ours.stderr.splitlines()[0] == first
    bad = cli("sum", "-a", "shake_128", "abc", cwd=files)
    assert bad.returncode == 1 and b"unsupported algorithm" in bad.stderr


def test_sum_refuses_what_the_kernel_cannot_serve(files: Path) -> None:
    """Strict policy: an algorithm the kernel can't bind is an error naming the kernel's reason, not a
    silent userspace digest."""
    assert _afalg.probe("hash", "sm3") is not None or _afalg.probe("hash", "blake2s-256") is not None
    name = "sm3" if _afalg.probe("hash", "sm3") is not None else "blake2s"
    result = cli("sum", "-a", name, "abc", cwd=files)
    assert result.returncode == 1
    assert result.stdout == b""
    assert f"unsupported hash type {name}".encode() in result.stderr
    assert b"ENOENT" in result.stderr


# --- sum -c: checking ---------------------------------------------------------------------------------


def _listing(files: Path, program: str, *options: str) -> bytes:
    made = coreutils(program, *options, "--", *NAMES, cwd=files)
    assert made.returncode == 0, made.stderr
    return made.stdout


@pytest.mark.parametrize("algorithm", ["sha256", "md5", "sha1", "sha512", "blake2b"])
@pytest.mark.parametrize("style", [[], ["--tag"], ["-b"]])
def test_check_good_listing(files: Path, algorithm: str, style: list[str]) -> None:
    program = COREUTILS[algorithm]
    (files / "good.sum").write_bytes(_listing(files, program, *style))
    ours = cli("sum", "-a", algorithm, "-c", "good.sum", cwd=files)
    assert_same(ours, coreutils(program, "-c", "good.sum", cwd=files), program)
    assert ours.returncode == 0
    assert ours.stdout.count(b": OK\n") == len(NAMES)
    assert b"\\new\\nline: OK\n" in ours.stdout  # a name with a newline is shown escaped


def _corrupted(listing: bytes) -> bytes:
    lines = listing.split(b"\n")
    first = lines[1]  # "abc"'s line: flip its first hex digit
    lines[1] = (b"1" if first[:1] != b"1" else b"2") + first[1:]
    lines.insert(3, b"this line is not a checksum line")
    lines.insert(4, b"# a comment")
    lines.insert(5, b"")
    lines.append(b"0" * 64 + b"  missing-file")
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize(
    "options", [[], ["--quiet"], ["--status"], ["-w"], ["--strict"], ["--ignore-missing"], ["--quiet", "-w"]]
)
def test_check_corrupted_listing(files: Path, options: list[str]) -> None:
    (files / "bad.sum").write_bytes(_corrupted(_listing(files, "sha256sum")))
    ours = cli("sum", "-c", *options, "bad.sum", cwd=files)
    theirs = coreutils("sha256sum", "-c", *options, "bad.sum", cwd=files)
    assert_same(ours, theirs, "sha256sum")
    assert ours.returncode == 1
    if "--status" not in options:
        assert b"abc: FAILED\n" in ours.stdout
        assert f"{PROG}: WARNING: 1 computed checksum did NOT match".encode() in ours.stderr


def test_check_messages_and_status(files: Path) -> None:
    (files / "bad.sum").write_bytes(_corrupted(_listing(files, "sha256sum")))
    result = cli("sum", "-c", "bad.sum", cwd=files)
    assert result.returncode == 1
    assert b"abc: FAILED\n" in result.stdout
    assert b"big: OK\n" in result.stdout
    assert b"missing-file: FAILED open or read\n" in result.stdout
    assert result.stderr.splitlines() == [
        f"{PROG}: missing-file: No such file or directory".encode(),
        f"{PROG}: WARNING: 1 line is improperly formatted".encode(),
        f"{PROG}: WARNING: 1 listed file could not be read".encode(),
        f"{PROG}: WARNING: 1 computed checksum did NOT match".encode(),
    ]


def test_check_from_stdin_and_odd_listings(files: Path) -> None:
    listing = _listing(files, "sha256sum")
    ours = cli("sum", "-c", cwd=files, stdin=listing)
    assert_same(ours, coreutils("sha256sum", "-c", cwd=files, stdin=listing), "sha256sum")
    assert ours.returncode == 0
    upper = b"".join(
        line[:64].upper() + line[64:] if not line.startswith(b"\\") else line for line in listing.splitlines(True)
    )
    reversed_ = b"".join(line[:64] + b" " + line[66:] for line in listing.splitlines(True) if line[:1] != b"\\")
    crlf = listing.replace(b"\n", b"\r\n")
    for name, content in {"upper": upper, "reversed": reversed_, "crlf": crlf, "junk": b"junk\n"}.items():
        (files / name).write_bytes(content)
        assert_same(cli("sum", "-c", name, cwd=files), coreutils("sha256sum", "-c", name, cwd=files), "sha256sum")
    both = ["-c", "reversed", "upper", "no-such-listing", "."]
    assert_same(cli("sum", *both, cwd=files), coreutils("sha256sum", *both, cwd=files), "sha256sum")
    only_missing = b"0" * 64 + b"  missing-file\n"
    (files / "only_missing").write_bytes(only_missing)
    args = ["-c", "--ignore-missing", "only_missing"]
    assert_same(cli("sum", *args, cwd=files), coreutils("sha256sum", *args, cwd=files), "sha256sum")


# --- list -------------------------------------------------------------------------------------------------


def test_list_shows_sha256_available_with_driver_and_selftest() -> None:
    result = cli("list")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.decode().splitlines()[1:] if line.strip()}
    sha256 = rows["sha256"]
    assert sha256[1] == "sha256"  # kernel name
    assert sha256[2].startswith("sha256-")  # driver, e.g. sha256-generic
    assert sha256[4] == "passed"
    assert sha256[5] == "yes"
    for name in kcapi_hashlib._hashes.ALGORITHMS:
        assert name in rows


def test_list_json_matches_proc_crypto_and_probes() -> None:
    result = cli("list", "--json")
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    report = {row["name"]: row for row in listing["algorithms"] if row["kind"] == "hash"}
    assert set(report) == set(kcapi_hashlib._hashes.ALGORITHMS)
    assert listing["process"]["uid"] == os.getuid() and listing["process"]["socket"] == "ok"
    blocks = proc_crypto()  # after the CLI bound them, the algorithms are registered
    for name, row in report.items():
        kernel = row["kernel"]
        if kernel is None:
            assert row["available"] is False and row["reason"]
            continue
        assert row["available"] == (_afalg.probe("hash", kernel) is None), name
        if row["available"]:
            entry = crypto_entry(blocks, "hash", kernel)
            assert entry is not None, name
            assert row["driver"] == entry["driver"]
            assert row["priority"] == int(entry["priority"])
            assert row["selftest"] == "passed"
        else:
            assert row["errno"] == "ENOENT" and "ENOENT" in row["reason"]
    assert report["sha256"]["available"] and report["sha256"]["driver"]


def test_proc_crypto_parser_picks_the_kernel_choice() -> None:
    text = textwrap.dedent(
        """\
        name         : sha256
        driver       : sha256-generic
        priority     : 100
        selftest     : passed
        internal     : no
        type         : shash

        name         : sha256
        driver       : sha256-avx2
        priority     : 170
        selftest     : passed
        internal     : no
        type         : shash

        name         : sha256
        driver       : __sha256-internal
        priority     : 900
        selftest     : passed
        internal     : yes
        type         : shash
        """
    )
    blocks = proc_crypto(text)
    assert len(blocks) == 3
    entry = crypto_entry(blocks, "hash", "sha256")
    assert entry is not None and entry["driver"] == "sha256-avx2"
    assert crypto_entry(blocks, "hash", "sha1") is None


# --- doctor -----------------------------------------------------------------------------------------------


def test_doctor_in_the_vm_exits_0() -> None:
    result = cli("doctor")
    out = result.stdout.decode()
    assert result.returncode == 0, out + result.stderr.decode()
    assert "socket(AF_ALG)   [ok]" in out
    assert "algif_hash       [ok] binds hash 'sha256'" in out
    assert out.rstrip().splitlines()[-1].startswith("OK: AF_ALG works here")
    report = json.loads(cli("doctor", "--json").stdout)
    assert report["usable"] is True
    assert {f["topic"] for f in report["findings"]} >= {"socket(AF_ALG)", "seccomp", "af_alg_restrict", "policy"}


_SECCOMP_DENY_AF_ALG = """
import ctypes, os, struct, sys
# A seccomp filter as container runtimes install: socket(AF_ALG, ...) -> EPERM, everything else allowed.
AUDIT_ARCH, NR_SOCKET = {arch:#x}, {nr}
def stmt(code, k):
    return struct.pack("HBBI", code, 0, 0, k)
def jeq(k, jt, jf):
    return struct.pack("HBBI", 0x15, jt, jf, k)
prog = b"".join([
    stmt(0x20, 4), jeq(AUDIT_ARCH, 0, 5),        # arch
    stmt(0x20, 0), jeq(NR_SOCKET, 0, 3),         # syscall number
    stmt(0x20, 16), jeq(38, 0, 1),               # args[0] (family) == AF_ALG
    stmt(0x06, 0x00050000 | 1),                  # SECCOMP_RET_ERRNO | EPERM
    stmt(0x06, 0x7FFF0000),                      # SECCOMP_RET_ALLOW
])
buf = ctypes.create_string_buffer(prog)
class FProg(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
fprog = FProg(len(prog) // 8, ctypes.addressof(buf))
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
assert libc.prctl(38, 1, None, 0, 0) == 0, os.strerror(ctypes.get_errno())  # PR_SET_NO_NEW_PRIVS
rc = libc.prctl(22, 2, ctypes.byref(fprog), 0, 0)  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
assert rc == 0, os.strerror(ctypes.get_errno())
os.execv(sys.executable, [sys.executable, "-m", "kcapi_hashlib", "doctor"])
"""

_SECCOMP_ARCH = {"x86_64": (0xC000003E, 41), "aarch64": (0xC00000B7, 198)}


def test_doctor_explains_a_seccomp_block() -> None:
    """A real seccomp filter (what Docker's and containerd's default profiles do) makes the kernel refuse
    socket(AF_ALG) with EPERM: doctor exits 1 and names seccomp as the cause."""
    machine = platform.machine()
    assert machine in _SECCOMP_ARCH, f"no seccomp filter written for {machine}"
    arch, nr = _SECCOMP_ARCH[machine]
    script = _SECCOMP_DENY_AF_ALG.format(arch=arch, nr=nr)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, env=_env(), timeout=300)
    out = result.stdout.decode()
    assert result.returncode == 1, out + result.stderr.decode()
    assert "socket(AF_ALG)   [FAIL] EPERM: AF_ALG is blocked for this process" in out
    assert "Seccomp: 2 (filter), Seccomp_filters: 1, NoNewPrivs: 1" in out
    assert "seccomp          [FAIL]" in out
    assert "-> blocked (seccomp): allow socket() with address family 38 (AF_ALG) in the seccomp profile" in out
    assert "--security-opt seccomp=" in out
    assert (
        out.rstrip()
        .splitlines()[-1]
        .startswith(
            "NOT USABLE: AF_ALG is blocked for this process by a seccomp filter (EPERM): "
            "allow socket() with address family 38 (AF_ALG) in the seccomp profile"
        )
    )


@pytest.mark.parametrize(
    ("err", "expected"),
    [
        (errno.EAFNOSUPPORT, ["no AF_ALG sockets", "EAFNOSUPPORT", "CONFIG_CRYPTO_USER_API"]),
        (errno.EPERM, ["blocked", "EPERM", "seccomp"]),
        (errno.EACCES, ["blocked", "EACCES", "seccomp"]),
        (errno.ENOENT, ["cannot bind hash algorithm 'sm3'", "ENOENT", "refused/blacklisted", "a kernel built with it"]),
        (errno.ENOKEY, ["needs a key", "ENOKEY"]),
        (errno.EBUSY, ["EBUSY", "operation sockets"]),
        (errno.ENOMEM, ["ENOMEM", "optmem_max"]),
        (errno.ENOBUFS, ["ENOBUFS", "optmem_max"]),
        (errno.EINVAL, ["EINVAL", os.strerror(errno.EINVAL)]),
    ],
)
def test_explain_names_the_cause(err: int, expected: list[str]) -> None:
    text = _afalg.explain(err, "bind", "hash", "sm3")
    for part in expected:
        assert part in text, (part, text)
    exc = _afalg.AlgUnavailable(err, "bind", "hash", "sm3")
    assert exc.errno == err and str(exc) == text
    # its parts, as list and doctor show them: the sentence opens with the summary and (but for ENOENT, whose
    # remedy list narrows by what the kernel shows it has) closes with the remedy
    assert exc.cause and text.startswith(exc.summary), (exc.summary, text)
    assert exc.explanation == core.explanation(err, "bind", "hash", "sm3")
    if err != errno.ENOENT and exc.remedy:
        assert text.endswith("; " + exc.remedy), (exc.remedy, text)


@pytest.mark.parametrize(
    ("evidence", "cause", "remedy"),
    [
        (None, "not in kernel", "use a kernel built with it"),
        ("its modules are in this kernel's module index", "module refused", "modprobe crypto-NAME"),
        ("/proc/crypto lists it", "not bindable", "'kcapi-hashlib list' shows its implementations"),
    ],
)
def test_enoent_cause_follows_what_the_kernel_shows(evidence: Optional[str], cause: str, remedy: str) -> None:
    """ENOENT's sentence is one; its cause and remedy follow where the kernel shows it has the name (the module
    index: a module that did not load; /proc/crypto: registered, but not as this type)."""
    seen: list[str] = []

    def has(name: str) -> Optional[str]:
        seen.append(name)
        return evidence

    parts = core.explanation(errno.ENOENT, "bind", "hash", "sm3", has=has)
    assert seen == ["sm3"]
    assert parts.cause == cause and remedy in parts.remedy, parts
    assert parts.sentence == _afalg.explain(errno.ENOENT, "bind", "hash", "sm3")
    if evidence is not None:
        assert parts.remedy.startswith(evidence), parts


def test_quotef_is_coreutils_quoting(tmp_path: Path) -> None:
    """Error messages quote names as coreutils does (checked against sha256sum's own messages)."""
    names = ["plain.txt", "sp ace", "it's", "a\tb", "x:y", "#hash", "a#b", "~t", "caf\u00e9", "$x", ""]
    for name in names:
        theirs = coreutils("sha256sum", name, cwd=tmp_path)
        assert theirs.returncode == 1
        shown = theirs.stderr.decode().split(": ", 1)[1].rsplit(": ", 1)[0]
        assert checksum.quotef(name.encode()) == shown, name
