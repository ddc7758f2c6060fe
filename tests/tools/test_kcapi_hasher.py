"""`kcapi-hashlib sha256hmac ...` (kcapi_hashlib.cli.hasher) against the real kcapi-hasher, byte for byte.

The reference is libkcapi 1.4.0's apps/kcapi-hasher.c built from Debian bookworm's source package by
tests/support/build_kcapi_hasher.sh; both run here, under the same kernel, on copies of the same files, called
by the same name (argv[0]); stdout, stderr, the exit status and the files they leave (fipshmac's .hmac files)
must be identical. Without the reference binary every test fails, saying how to build it.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

import kcapi_hashlib
import kcapi_hashlib.hmac
from kcapi_hashlib import cli
from kcapi_hashlib.cli import hasher
from kcapi_vm.cache import cache_dir

ROOT = Path(__file__).resolve().parents[2]
BUILD = "tests/support/build_kcapi_hasher.sh"


def reference() -> Path:
    path = Path(os.environ.get("KCAPI_HASHLIB_KCAPI_HASHER") or cache_dir() / "kcapi-hasher-1.4.0" / "kcapi-hasher")
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"the reference kcapi-hasher is not built ({path}): run `bash {BUILD}` on the host (it builds libkcapi "
            "1.4.0's apps/kcapi-hasher.c from Debian bookworm's source package; apt and gcc, as root)",
            pytrace=False,
        )
    return path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.pop(kcapi_hashlib._policy.ENV, None)  # the CLI's default policy: strict
    env.pop("KCAPI_HASHER_FORCE_FIPS", None)
    env["LC_ALL"] = "C.UTF-8"
    return env


FILES = {
    "abc": b"abc",
    "empty": b"",
    "sp ace": b"x y\n",
    "big": bytes(range(256)) * 700,  # 175 KiB: the kernel's many pages
    "caf\u00e9": b"caf\xc3\xa9\n",
    "keyfile": b"a key from a file\n",
    "emptykey": b"",
}


def _tree(top: Path) -> dict[str, bytes]:
    return {str(p.relative_to(top)): p.read_bytes() for p in sorted(top.rglob("*")) if p.is_file()}


Result = tuple[subprocess.CompletedProcess[bytes], dict[str, bytes]]


class Both:
    """The same files in two directories: ref/ for kcapi-hasher, ours/ for kcapi-hashlib."""

    def __init__(self, top: Path) -> None:
        self.dirs = {}
        for side in ("ref", "ours"):
            d = top / side
            (d / "dir").mkdir(parents=True)
            for name, data in FILES.items():
                (d / name).write_bytes(data)
            self.dirs[side] = d

    def write(self, name: str, data: bytes) -> None:
        for d in self.dirs.values():
            (d / name).write_bytes(data)

    def run(self, name: str, *args: str, stdin: bytes = b"", process: bool = False) -> tuple[Result, Result]:
        """Both tools on the same arguments; ours in a `python -m kcapi_hashlib` process, or (process=False, the
        faster default) through kcapi_hashlib.cli.main in this one with its streams and directory swapped."""
        real = reference()
        ref = subprocess.run(
            [name, *args], executable=real, input=stdin, capture_output=True, cwd=self.dirs["ref"], env=_env(),
            timeout=120,
        )  # fmt: skip
        if process:
            ours = subprocess.run(
                [sys.executable, "-m", "kcapi_hashlib", name, *args], input=stdin, capture_output=True,
                cwd=self.dirs["ours"], env=_env(), timeout=300,
            )  # fmt: skip
        else:
            ours = _in_process([name, *args], self.dirs["ours"], stdin)
        return (ref, _tree(self.dirs["ref"])), (ours, _tree(self.dirs["ours"]))

    def same(
        self, name: str, *args: str, stdin: bytes = b"", process: bool = False
    ) -> subprocess.CompletedProcess[bytes]:
        (ref, ref_files), (ours, our_files) = self.run(name, *args, stdin=stdin, process=process)
        assert_same(ref, ours)
        assert our_files == ref_files
        return ours


def _in_process(argv: list[str], cwd: Path, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    out, err = io.BytesIO(), io.BytesIO()
    streams = [io.TextIOWrapper(io.BytesIO(stdin)), io.TextIOWrapper(out), io.TextIOWrapper(err)]
    saved = sys.stdin, sys.stdout, sys.stderr
    here = os.getcwd()
    sys.stdin, sys.stdout, sys.stderr = streams
    os.chdir(cwd)
    try:
        status = cli.main(argv)
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os.chdir(here)
        sys.stdin, sys.stdout, sys.stderr = saved
    result = subprocess.CompletedProcess(argv, status, out.getvalue(), err.getvalue())
    for stream in streams:
        stream.detach()
    return result


def assert_same(ref: subprocess.CompletedProcess[bytes], ours: subprocess.CompletedProcess[bytes]) -> None:
    assert ours.stdout == ref.stdout, (ours.stdout, ref.stdout, ours.stderr)
    assert ours.stderr == ref.stderr, (ours.stderr, ref.stderr)
    assert ours.returncode == ref.returncode, (ours.returncode, ref.returncode, ours.stderr)


@pytest.fixture
def both(tmp_path: Path) -> Both:
    reference()
    return Both(tmp_path)


HMACS = ["sha1hmac", "sha224hmac", "sha256hmac", "sha384hmac", "sha512hmac"]
SUMS = ["sha1sum", "sha224sum", "sha256sum", "sha384sum", "sha512sum", "md5sum"]
NAMED = ["abc", "empty", "sp ace", "big", "caf\u00e9"]


# --- generating -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", HMACS + SUMS + ["fipshmac"])
def test_several_files_default_key(both: Both, name: str) -> None:
    result = both.same(name, *NAMED, process=True)
    if name != "fipshmac":
        assert result.stdout.count(b"\n") == len(NAMED)


@pytest.mark.parametrize("name", HMACS)
@pytest.mark.parametrize("options", [["-K", "a key"], ["--tag"]], ids=lambda o: " ".join(o))
def test_every_hmac_with_a_key_and_tagged(both: Both, name: str, options: list[str]) -> None:
    both.same(name, *options, "abc", "empty", "big")


@pytest.mark.parametrize("name", ["sha256hmac", "sha1sum"])
@pytest.mark.parametrize(
    "options",
    [
        ["-K", ""],
        ["-K", "k" * 300],  # longer than any block: the kernel hashes it first
        ["-k", "keyfile"],
        ["--key=a key"],
        ["--key-file", "keyfile"],
        ["-u"],
        ["--tag"],
        ["-z"],
        ["--tag", "-z", "-t", "128"],
        ["-t", "64"],
        ["--truncate=160"],
        ["-b", "-P"],
    ],
    ids=lambda o: " ".join(o)[:20],
)
def test_keys_and_output_options(both: Both, name: str, options: list[str]) -> None:
    both.same(name, *options, "abc", "empty", "big")


@pytest.mark.parametrize("options", [["-h", "sha512"], ["--hash=sha1"], ["-h", "md5"], ["-h", "nope"]])
def test_hash_choice(both: Both, options: list[str]) -> None:
    both.same("sha256hmac", *options, "abc")


def test_stdin(both: Both) -> None:
    both.same("sha256hmac", stdin=FILES["big"], process=True)
    both.same("sha256hmac", "-", stdin=b"abc")
    both.same("sha512sum", "abc", "-", "empty", stdin=b"abc", process=True)


@pytest.mark.parametrize(
    "files",
    [["abc", "missing", "empty"], ["dir", "abc"], ["abc", "empty", "/proc/version"]],
    ids=["missing", "directory", "proc-file"],
)
def test_unreadable_inputs_stop_the_run(both: Both, files: list[str]) -> None:
    """The first file that cannot be hashed ends the run: 251 (-EIO) for open(), 234 (-EINVAL) not regular."""
    both.same("sha256hmac", *files)
    both.same("fipshmac", *files)


@pytest.mark.parametrize(
    "options",
    [["-t", "512"], ["-t", "7"], ["-t", "x"], ["-t", " 16"], ["-k", "missing"], ["-k", "dir"], ["-k", "emptykey"]],
    ids=lambda o: " ".join(o),
)
def test_option_value_errors(both: Both, options: list[str]) -> None:
    both.same("sha256hmac", *options, "abc")


@pytest.mark.parametrize(
    "args",
    [
        ["-x", "abc"],
        ["--s", "abc"],
        ["--k", "abc"],
        ["--tag=1", "abc"],
        ["--check"],
        ["-c"],
        ["--nope"],
        ["--help"],
        ["-uq", "abc"],  # the -n pre-scan's side effect: the leading cluster loses its first letter
        ["abc", "-uq", "empty"],
        ["-n", "sha1hmac", "abc"],
        ["abc", "--name=sha384hmac", "empty"],
        ["-n", "nothing", "abc"],
        ["--", "-x"],
        ["-S"],
        ["-c", "list", "abc"],
    ],
    ids=lambda a: " ".join(a),
)
def test_command_line_grammar(both: Both, args: list[str]) -> None:
    both.write("-x", b"dash")
    if args == ["-S"]:
        (ref, _), (ours, _) = both.run("sha256hmac", *args)
        # kcapi-hasher prints the HMAC of its own binary; kcapi-hashlib has none, and says so.
        assert ref.returncode == 0 and len(ref.stdout) == 128, ref  # hmac(sha512), no newline
        assert ours.returncode == 1 and b"-S/-L" in ours.stderr, ours
        return
    both.same("sha256hmac", *args, process=args[:1] in (["-x"], ["--help"], ["-uq"]))


def test_posixly_correct_stops_at_the_first_operand(both: Both, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSIXLY_CORRECT", "1")
    both.same("sha256hmac", "abc", "-u", "empty")  # "-u" is a file name here
    both.write("-u", b"a file named -u")
    both.same("sha256hmac", "abc", "-u", "empty")
    both.same("sha256hmac", "-u", "abc", "--tag")


def test_version_names_this_project(both: Both) -> None:
    """-v: kcapi-hasher names libkcapi's version; kcapi-hashlib names its own (the one line that differs)."""
    (ref, _), (ours, _) = both.run("sha256hmac", "-v")
    assert (ref.returncode, ref.stdout, ref.stderr) == (0, b"", b"sha256hmac: libkcapi 1.4.0\n")
    version = kcapi_hashlib.__version__
    assert (ours.returncode, ours.stdout, ours.stderr) == (0, b"", f"sha256hmac: kcapi-hashlib {version}\n".encode())


@pytest.mark.parametrize("name", ["sm3hmac", "sm3sum"])
def test_sm3_as_the_kernel_has_it(both: Both, name: str) -> None:
    """Computed where the kernel has sm3; both name the bind failure (status 242) where it has not."""
    both.same(name, "abc", "empty")


def test_fipshmac_check_directory(both: Both) -> None:
    both.same("fipshmac", "-d", "dir", "abc", "sp ace")
    both.same("fipshmac", "-d", "nodir", "abc", "empty")  # .hmac files it cannot create are skipped


# --- checking -------------------------------------------------------------------------------------------------


def _listing(both: Both, name: str, *options: str, files: tuple[str, ...] = tuple(NAMED)) -> bytes:
    (ref, _), _ours = both.run(name, *options, *files)
    assert ref.returncode == 0, ref
    return ref.stdout


@pytest.mark.parametrize("name", ["sha256hmac", "sha512hmac", "sha1hmac", "sha256sum", "md5sum"])
def test_check_good_listing(both: Both, name: str) -> None:
    both.write("good.list", _listing(both, name))
    result = both.same(name, "-c", "good.list")
    # ... but "café": kcapi-hasher cuts the bytes that are not printable ASCII off the end of every line.
    assert result.stdout.count(b": OK\n") == len(NAMED) - 1 and b"caf: Not OK\n" in result.stdout
    both.same(name, "--quiet", "-c", "good.list")
    both.same(name, "-q", "--check=good.list")


def _corrupt(listing: bytes, *lines: int) -> bytes:
    out = listing.splitlines(keepends=True)
    for n in lines:
        out[n] = (b"0" if out[n][:1] != b"0" else b"1") + out[n][1:]
    return b"".join(out)


@pytest.mark.parametrize("options", [[], ["--quiet"], ["--status"]])
def test_check_corrupted_lines(both: Both, options: list[str]) -> None:
    listing = _listing(both, "sha256hmac", files=("abc", "empty", "sp ace", "big"))
    both.write("one.list", _corrupt(listing, 1))
    both.write("two.list", _corrupt(listing, 0, 3))
    assert both.same("sha256hmac", *options, "-c", "one.list").returncode == 1
    assert both.same("sha256hmac", *options, "-c", "two.list").returncode == 2


def test_check_missing_listed_file(both: Both) -> None:
    listing = _listing(both, "sha256hmac", files=("abc", "empty"))
    both.write("gone.list", listing + listing.replace(b"abc", b"gone"))
    both.same("sha256hmac", "-c", "gone.list")


@pytest.mark.parametrize(
    "bad",
    [
        b"this line is not a checksum line\n",  # a blank, then no second blank: the check stops, status 1
        b"garbage-without-a-blank\n",  # skipped
        b"\n",
        b"\tleading tab\n",
        b"abc \n",
        b"0123  \n",
    ],
    ids=["words", "no-blank", "empty-line", "leading-tab", "one-space", "short-hex"],
)
def test_check_malformed_lines(both: Both, bad: bytes) -> None:
    listing = _listing(both, "sha256hmac", files=("abc", "empty", "big"))
    lines = listing.splitlines(keepends=True)
    both.write("bad.list", b"".join([lines[0], bad, *lines[1:]]))
    both.same("sha256hmac", "-c", "bad.list")


def test_check_line_forms(both: Both) -> None:
    """CRLF ends, trailing tabs, upper-case hex, the binary marker, a name with spaces, BSD lines (never OK)."""
    listing = _listing(both, "sha256hmac", files=("abc", "sp ace", "caf\u00e9"))
    first, second, third = listing.splitlines()
    forms = [
        first + b"\r\n",
        second + b"\t\n",
        first.upper().replace(b"ABC", b"abc") + b"\n",
        first.replace(b"  ", b" *", 1) + b"\n",
        third + b"\n",
    ]
    both.write("forms.list", b"".join(forms))
    both.same("sha256hmac", "-c", "forms.list")
    both.write("bsd.list", _listing(both, "sha256hmac", "--tag", files=("abc", "empty")))
    both.same("sha256hmac", "-c", "bsd.list")


def test_check_from_stdin_and_unreadable_listings(both: Both) -> None:
    listing = _listing(both, "sha384hmac", files=("abc", "big"))
    both.same("sha384hmac", "-c", "-", stdin=listing, process=True)
    both.same("sha384hmac", "-c", "no.list")  # 253
    both.same("sha384hmac", "-c", "dir")  # fopen() of a directory succeeds, fgets() reads nothing: 1
    both.same("sha384hmac", "-c", "empty")  # no line: 1


def test_check_with_a_key(both: Both) -> None:
    both.write("keyed.list", _listing(both, "sha256hmac", "-K", "k1", files=("abc", "big")))
    both.same("sha256hmac", "-K", "k1", "-c", "keyed.list")
    both.same("sha256hmac", "-K", "k2", "-c", "keyed.list")
    both.same("sha256hmac", "-k", "keyfile", "-c", "keyed.list")


# --- fipscheck ------------------------------------------------------------------------------------------------


def test_fipscheck(both: Both) -> None:
    both.same("fipshmac", "abc", "big")
    assert both.same("fipscheck", "abc", process=True).returncode == 0
    both.same("fipscheck", "big")
    both.write(".big.hmac", _corrupt((both.dirs["ref"] / ".big.hmac").read_bytes(), 0))
    assert both.same("fipscheck", "big").returncode == 1
    both.same("fipscheck", "empty")  # no .empty.hmac: 253
    both.same("fipscheck")
    both.same("fipscheck", "abc", "big")
    both.same("fipscheck", "-c", "x", "abc")
    both.same("fipscheck", "--help")


# --- the invocation name --------------------------------------------------------------------------------------


def test_a_link_named_sha512hmac_is_sha512hmac(both: Both, tmp_path: Path) -> None:
    """argv[0]: a link to the kcapi-hashlib script named like kcapi-hasher's links, messages naming the path."""
    # The interpreter's own console script (a pyenv shim on PATH would dispatch on the link's name itself).
    script = Path(sys.executable).parent / "kcapi-hashlib"
    if not script.is_file():
        pytest.fail(f"no kcapi-hashlib console script beside {sys.executable} (pip install -e .)")
    links = tmp_path / "links"
    links.mkdir()
    (links / "sha512hmac").symlink_to(script)
    (links / "ref-sha512hmac").symlink_to(reference())
    for args in (["abc", "empty"], ["-x"], ["-n", "sha1hmac", "abc"]):
        ref = subprocess.run(
            [str(links / "sha512hmac"), *args], executable=links / "ref-sha512hmac", capture_output=True,
            cwd=both.dirs["ref"], env=_env(), timeout=120,
        )  # fmt: skip
        ours = subprocess.run(
            [str(links / "sha512hmac"), *args], capture_output=True, cwd=both.dirs["ours"], env=_env(), timeout=300
        )
        assert_same(ref, ours)


def test_every_name_is_a_subcommand() -> None:
    assert set(hasher.NAMES) >= {f"{h}hmac" for h in ("sha1", "sha224", "sha256", "sha384", "sha512", "sm3")}
    assert {"fipshmac", "fipscheck", "sha256sum", "md5sum"} <= set(hasher.NAMES)
    assert hasher.lookup("sha256hmac-extra") == "sha256hmac"  # kcapi-hasher compares prefixes
    assert hasher.lookup("kcapi-hashlib") is None


@pytest.mark.parametrize("name", ["sha256hmac", "sha512hmac", "fipshmac", "sha1sum"])
def test_the_default_keys_are_kcapi_hashers(both: Both, name: str) -> None:
    """The keys in kcapi_hashlib.cli.hasher: this process's kernel HMAC of "abc" is the reference's output."""
    hash_name, key, _mode = hasher.NAMES[name]
    (ref, ref_files), _ours = both.run(name, "abc")
    printed = ref_files[".abc.hmac"] if name == "fipshmac" else ref.stdout
    if key is None:
        expected = kcapi_hashlib.new(hash_name, b"abc").hexdigest()
    else:
        expected = kcapi_hashlib.hmac.new(key, b"abc", hash_name).hexdigest()
    assert printed.split()[0] == expected.encode()
