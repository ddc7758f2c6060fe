"""Driver choice and visibility: kcapi_hashlib.new(name, data, driver=...) binds one kernel
implementation by its cra_driver_name, validated against /proc/crypto; _hashes.implementations(name) and
`kcapi-hashlib list` show every implementation with module, priority, self-test, fips_allowed and whether
AF_ALG reaches it; `doctor --fips` says whether the kernel is in FIPS mode and what fallback would compute.

Every digest is checked against hashlib's (differential), on whatever drivers this kernel has (generic ones
under user-mode-linux; arch drivers such as sha256-avx2/sha256-ni under the qemu amd64 kernels)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import kcapi_hashlib
from kcapi_hashlib import _afalg, _hashes
from kcapi_hashlib._afalg import procfs
from tests.support import requires

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [requires.hash_names("sha256", "sha1", "blake2b")]

KERNEL_HASHES = sorted(
    name
    for name, alg in _hashes.ALGORITHMS.items()
    if alg.kernel and _afalg.probe("hash", alg.kernel) is None and name in hashlib.algorithms_available
)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    env.pop("KCAPI_HASHLIB_POLICY", None)
    return subprocess.run(
        [sys.executable, "-m", "kcapi_hashlib", *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.mark.parametrize("name", KERNEL_HASHES)
def test_every_reachable_driver_computes_hashlibs_digest(name: str) -> None:
    impls = _hashes.implementations(name)
    assert impls, f"/proc/crypto lists no implementation of {name} after binding it"
    assert sum(i.default for i in impls) == 1, impls
    assert [i.priority for i in impls] == sorted((i.priority for i in impls), reverse=True)
    data = bytes(range(256)) * 300  # past the userspace buffer: streamed to the kernel
    want = hashlib.new(name, data).hexdigest()
    reachable = [i for i in impls if i.reachable]
    assert reachable, impls
    for impl in reachable:
        assert impl.reason is None and not impl.internal
        h = kcapi_hashlib.new(name, data[:10], driver=impl.driver)
        assert isinstance(h, kcapi_hashlib.HASH) and h.name == name
        c = h.copy()
        h.update(data[10:])
        assert h.hexdigest() == want, impl.driver
        c.update(data[10:])
        assert c.hexdigest() == want
        assert kcapi_hashlib.new(name, driver=impl.driver).hexdigest() == hashlib.new(name).hexdigest()
    for impl in impls:
        if not impl.reachable:
            assert impl.reason, impl
            with pytest.raises(kcapi_hashlib.UnsupportedAlgorithm, match=impl.driver):
                kcapi_hashlib.new(name, driver=impl.driver)


def test_implementations_match_proc_crypto() -> None:
    impls = _hashes.implementations("sha256")
    listed = {i.driver: i for i in procfs.parse() if i.name == "sha256"}
    for impl in impls:
        entry = listed[impl.driver]
        assert (impl.module, impl.priority, impl.selftest, impl.internal) == (
            entry.module,
            entry.priority,
            entry.selftest,
            entry.internal,
        )
        # fips_allowed is reported only while the kernel is in FIPS mode (crypto/proc.c c_show)
        assert (impl.fips_allowed is None) == (procfs.fips_enabled() is not True)
    chosen = procfs.chosen("hash", "sha256")
    assert chosen is not None and next(i for i in impls if i.default).driver == chosen.driver


def test_a_driver_of_another_algorithm_is_refused_naming_both() -> None:
    other = next(i.driver for i in _hashes.implementations("sha1") if i.reachable)
    with pytest.raises(ValueError) as info:
        kcapi_hashlib.new("sha256", b"abc", driver=other)
    text = str(info.value)
    assert repr(other) in text and "'sha1'" in text and "'sha256'" in text
    for impl in _hashes.implementations("sha256"):
        assert impl.driver in text  # the drivers sha256 does have


def test_an_unknown_driver_is_refused_naming_the_real_ones() -> None:
    with pytest.raises(
        ValueError, match="no kernel driver 'sha256-no-such-driver' for sha256: 'sha256' has the drivers"
    ):
        kcapi_hashlib.new("sha256", driver="sha256-no-such-driver")
    with pytest.raises(ValueError, match="no kernel driver 'sha256'"):  # the cra_name is no driver name
        kcapi_hashlib.new("sha256", driver="sha256")


def test_driver_argument_errors() -> None:
    with pytest.raises(TypeError, match="'driver' must be str, not int"):
        kcapi_hashlib.new("sha256", driver=1)
    with pytest.raises(ValueError, match="unsupported hash"):
        kcapi_hashlib.new("no-such-hash", driver="sha256-generic")
    with pytest.raises(ValueError, match="the kernel has no AF_ALG hash for sha512_256"):
        kcapi_hashlib.new("sha512_256", driver="sha512-generic")
    with pytest.raises(TypeError):  # hashlib's own error for an unknown keyword, as without driver=
        kcapi_hashlib.new("sha256", b"", driver="sha256-generic", bogus=1)
    with pytest.raises(TypeError, match="Strings must be encoded"):
        kcapi_hashlib.new("sha256", "text", driver=_hashes.implementations("sha256")[0].driver)  # type: ignore[arg-type]


def test_blake2b_by_driver_with_size_and_key() -> None:
    impl = next(i for i in _hashes.implementations("blake2b", 32) if i.reachable)
    assert impl.kernel == "blake2b-256"
    got = kcapi_hashlib.new("blake2b", b"msg", digest_size=32, key=b"k" * 32, driver=impl.driver).hexdigest()
    assert got == hashlib.blake2b(b"msg", digest_size=32, key=b"k" * 32).hexdigest()
    with pytest.raises(ValueError, match="salt"):
        kcapi_hashlib.new("blake2b", b"msg", digest_size=32, salt=b"s", driver=impl.driver)
    with pytest.raises(ValueError, match="implements shash 'blake2b-256', not 'blake2b-512'"):
        kcapi_hashlib.new("blake2b", b"msg", driver=impl.driver)  # digest_size 64: blake2b-512's drivers


def test_internal_implementations_are_refused() -> None:
    internal = [i for i in procfs.parse() if i.internal and i.type in procfs.PROC_TYPES["hash"]]
    names = {row.kernel: row.name for row in _hashes.ALGORITHMS.values() if row.kernel}
    usable = [i for i in internal if i.name in names]
    if not usable:
        pytest.skip(f"this kernel ({os.uname().release}) has no internal implementation of a hash kcapi_hashlib has")
    impl = usable[0]
    with pytest.raises(kcapi_hashlib.UnsupportedAlgorithm, match="internal"):
        kcapi_hashlib.new(names[impl.name], driver=impl.driver)


def test_threads_share_a_driver_tfm() -> None:
    driver = next(i.driver for i in _hashes.implementations("sha256") if i.default)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(30):
                data = os.urandom(n * 97 + i)
                h = kcapi_hashlib.new("sha256", driver=driver)
                h.update(data[:5])
                h.update(data[5:])
                assert h.digest() == hashlib.sha256(data).digest()
        except BaseException as e:  # re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_driver_choice_after_fork() -> None:
    driver = next(i.driver for i in _hashes.implementations("sha1") if i.default)
    h = kcapi_hashlib.new("sha1", b"parent", driver=driver)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        ok = False
        try:
            c = h.copy()
            c.update(b" child")
            ok = c.digest() == hashlib.sha1(b"parent child").digest()
            ok = ok and kcapi_hashlib.new("sha1", b"x", driver=driver).digest() == hashlib.sha1(b"x").digest()
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert h.digest() == hashlib.sha1(b"parent").digest()


# --- /proc/crypto parsing, on a kernel in FIPS mode's text (the kernels here run without fips=1) -------------

FIPS_TEXT = textwrap.dedent(
    """\
    name         : sha256
    driver       : sha256-generic
    module       : kernel
    priority     : 100
    refcnt       : 1
    selftest     : passed
    internal     : no
    fips         : yes
    type         : shash
    blocksize    : 64
    digestsize   : 32

    name         : sha256
    driver       : sha256-ni
    module       : sha256_ssse3
    priority     : 250
    refcnt       : 1
    selftest     : unknown
    internal     : no
    fips         : yes
    type         : shash

    name         : md5
    driver       : md5-generic
    module       : md5
    priority     : 0
    refcnt       : 1
    selftest     : passed
    internal     : no
    fips         : no
    type         : shash

    name         : sha256
    driver       : sha256-avx2
    module       : sha256_ssse3
    priority     : 170
    refcnt       : 1
    selftest     : passed
    internal     : no
    fips         : yes
    type         : ahash
    async        : yes

    name         : __sha256
    driver       : __sha256-internal
    module       : kernel
    priority     : 900
    refcnt       : 1
    selftest     : passed
    internal     : yes
    type         : shash

    name         : sha512
    driver       : sha512-generic
    module       : kernel
    priority     : 0
    refcnt       : 1
    selftest     : unknown
    internal     : no
    type         : larval
    flags        : 0x10
    """
)


def test_proc_crypto_parser_reads_fips_async_internal_and_skips_larvals() -> None:
    impls = procfs.parse(FIPS_TEXT)
    assert [i.driver for i in impls] == [
        "sha256-generic", "sha256-ni", "md5-generic", "sha256-avx2", "__sha256-internal",
    ]  # fmt: skip
    by = {i.driver: i for i in impls}
    assert by["sha256-generic"].fips_allowed is True and by["md5-generic"].fips_allowed is False
    assert by["__sha256-internal"].fips_allowed is None and by["__sha256-internal"].internal
    assert by["sha256-avx2"].asynchronous is True and by["sha256-generic"].asynchronous is None
    assert [i.driver for i in procfs.of("hash", "sha256", FIPS_TEXT)] == ["sha256-ni", "sha256-avx2", "sha256-generic"]
    # a bind by cra_name: tested ones first, then the highest priority (sha256-ni's self-test has not run)
    chosen = procfs.chosen("hash", "sha256", FIPS_TEXT)
    assert chosen is not None and chosen.driver == "sha256-avx2"
    assert procfs.by_driver("sha512-generic", FIPS_TEXT) is None  # larval: not registered yet
    assert procfs.names(FIPS_TEXT) >= {"sha256", "md5", "__sha256"}


def test_unreachable_names_the_reason() -> None:
    impl = procfs.parse(FIPS_TEXT)[3]
    err = _afalg.AlgUnavailable(2, "bind", "hash", impl.driver)
    text = procfs.unreachable(impl, err)
    assert "/proc/crypto lists sha256-avx2 (sha256) but AF_ALG cannot bind it: ENOENT" in text
    assert "masks asynchronous" in text
    internal = procfs.parse(FIPS_TEXT)[4]
    assert "internal (CRYPTO_ALG_INTERNAL)" in procfs.unreachable(internal, err)


# --- the CLI --------------------------------------------------------------------------------------------------


def test_list_json_carries_every_implementation() -> None:
    result = _cli("list", "--json", "--kind", "hash")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)["algorithms"]}
    for name in KERNEL_HASHES:
        row = rows[name]
        theirs = {i.driver: i for i in _hashes.implementations(name)}
        ours = {d["driver"]: d for d in row["implementations"]}
        assert set(ours) == set(theirs), name
        for driver, d in ours.items():
            t = theirs[driver]
            assert (d["module"], d["priority"], d["selftest"], d["internal"], d["fips_allowed"], d["reachable"]) == (
                t.module, t.priority, t.selftest, t.internal, t.fips_allowed, t.reachable,
            ), driver  # fmt: skip
            assert d["default"] == (driver == row["driver"])
    assert rows["sha512_256"]["implementations"] == []


def test_list_table_shows_module_fips_async_and_reach() -> None:
    result = _cli("list", "--kind", "hash")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "NAME", "KERNEL", "DRIVER", "PRIORITY", "SELFTEST", "AVAILABLE", "MODULE", "FIPS", "ASYNC", "AF_ALG",
    ]  # fmt: skip
    sha256 = next(line.split() for line in lines if line.startswith("sha256 "))
    default = next(i for i in _hashes.implementations("sha256") if i.default)
    assert sha256[2] == default.driver and sha256[6] == default.module and sha256[-1] == "yes"
    others = [line.split() for line in lines if line.startswith("  +")]
    listed = {i.driver for n in KERNEL_HASHES for i in _hashes.implementations(n) if not i.default}
    assert {o[2] for o in others if o[1] in {_hashes.ALGORITHMS[n].kernel for n in KERNEL_HASHES}} == listed


def test_doctor_fips_reports_mode_and_fallback() -> None:
    result = _cli("doctor", "--fips", "--json", "-a", "sha256", "-a", "sm3", "-a", "no-such")
    assert result.returncode == 0, result.stderr
    fips = json.loads(result.stdout)["fips"]
    assert fips["fips_enabled"] == procfs.fips_enabled()
    assert fips["unknown"] == ["no-such"]
    entries = {e["name"]: e for e in fips["algorithms"]}
    assert set(entries) == {"sha256", "sm3"}
    sha256 = entries["sha256"]
    assert sha256["served_by_kernel"] is True and sha256["fallback"] is None
    assert sha256["driver"] == next(i.driver for i in _hashes.implementations("sha256") if i.default)
    if not entries["sm3"]["served_by_kernel"]:
        assert "strict raises" in entries["sm3"]["fallback"] and "hashlib" in entries["sm3"]["fallback"]
    text = _cli("doctor", "--fips", "-a", "sha256").stdout
    assert "FIPS: /proc/sys/crypto/fips_enabled" in text
    assert f"  sha256: sha256 -> {sha256['driver']}: " in text
