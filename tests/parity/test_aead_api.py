"""The AEAD modes against PyCryptodome on bad input: the same exception types and messages, no plaintext
after a bad tag (and an output= buffer zeroed), no file descriptor leaked on any path; the policy for
XChaCha20-Poly1305 where the kernel lacks poly1305; install() of ChaCha20_Poly1305."""

from __future__ import annotations

import gc
import os
from types import SimpleNamespace
from typing import Any, Callable

import pytest
from Crypto.Cipher import AES as RefAES
from Crypto.Cipher import ChaCha20_Poly1305 as RefCP

import kcapi_hashlib
from kcapi_hashlib import _afalg
from kcapi_hashlib._afalg import aead, skcipher
from kcapi_hashlib.Cipher import AES, ChaCha20_Poly1305

OURS = SimpleNamespace(AES=AES, CP=ChaCha20_Poly1305)
REF = SimpleNamespace(AES=RefAES, CP=RefCP)
K = bytes(range(16))
K32 = bytes(range(32))
N12 = bytes(12)


def _gcm(m: Any, **kw: Any) -> Any:
    return m.AES.new(K, m.AES.MODE_GCM, nonce=N12, **kw)


def _ccm(m: Any, **kw: Any) -> Any:
    return m.AES.new(K, m.AES.MODE_CCM, nonce=bytes(11), **kw)


def _cp(m: Any) -> Any:
    return m.CP.new(key=K32, nonce=N12)


CASES: dict[str, Callable[[Any], Any]] = {
    # constructors
    "gcm key 15": lambda m: m.AES.new(bytes(15), m.AES.MODE_GCM, nonce=N12),
    "gcm key str": lambda m: m.AES.new("k" * 16, m.AES.MODE_GCM, nonce=N12),
    "gcm nonce empty": lambda m: m.AES.new(K, m.AES.MODE_GCM, nonce=b""),
    "gcm nonce str": lambda m: m.AES.new(K, m.AES.MODE_GCM, nonce="n" * 12),
    "gcm nonce int": lambda m: m.AES.new(K, m.AES.MODE_GCM, nonce=5),
    "gcm mac_len 3": lambda m: _gcm(m, mac_len=3),
    "gcm mac_len 17": lambda m: _gcm(m, mac_len=17),
    "gcm unknown param": lambda m: _gcm(m, foo=1),
    "gcm threads -1": lambda m: _gcm(m, threads=-1),
    "gcm threads float": lambda m: _gcm(m, threads=2.5),
    "gcm two positionals": lambda m: m.AES.new(K, m.AES.MODE_GCM, N12, N12),
    "ccm nonce 6": lambda m: m.AES.new(K, m.AES.MODE_CCM, nonce=bytes(6)),
    "ccm nonce 14": lambda m: m.AES.new(K, m.AES.MODE_CCM, nonce=bytes(14)),
    "ccm mac_len 5": lambda m: _ccm(m, mac_len=5),
    "ccm mac_len 18": lambda m: _ccm(m, mac_len=18),
    "ccm msg_len too big": lambda m: m.AES.new(K, m.AES.MODE_CCM, nonce=bytes(13), msg_len=70000),
    "ccm unknown param": lambda m: _ccm(m, foo=1),
    "ccm key 20": lambda m: m.AES.new(bytes(20), m.AES.MODE_CCM, nonce=bytes(11)),
    "cp key 31": lambda m: m.CP.new(key=bytes(31), nonce=N12),
    "cp key str": lambda m: m.CP.new(key="k" * 32, nonce=N12),
    "cp nonce 11": lambda m: m.CP.new(key=K32, nonce=bytes(11)),
    "cp nonce str": lambda m: m.CP.new(key=K32, nonce="n" * 12),
    "cp positional": lambda m: m.CP.new(K32),
    # data
    "gcm encrypt str": lambda m: _gcm(m).encrypt("text"),
    "gcm decrypt str": lambda m: _gcm(m).decrypt("text"),
    "gcm update str": lambda m: _gcm(m).update("text"),
    "gcm output short": lambda m: _gcm(m).encrypt(b"abc", output=bytearray(2)),
    "gcm output bytes": lambda m: _gcm(m).encrypt(b"abc", output=b"xyz"),
    "gcm output readonly view": lambda m: _gcm(m).decrypt(b"abc", output=memoryview(b"xyz")),
    "gcm verify str": lambda m: _gcm(m).verify("0" * 16),
    "gcm verify short": lambda m: _gcm(m).verify(b"0" * 15),
    "gcm hexverify not hex": lambda m: _gcm(m).hexverify("zz"),
    "gcm decrypt_and_verify bad tag": lambda m: _gcm(m).decrypt_and_verify(b"secret", bytes(16)),
    "gcm decrypt_and_verify short tag": lambda m: _gcm(m).decrypt_and_verify(b"secret", bytes(4)),
    "ccm encrypt str": lambda m: _ccm(m).encrypt("text"),
    "ccm output short": lambda m: _ccm(m).encrypt(b"abc", output=bytearray(2)),
    "ccm aad longer than declared": lambda m: _ccm(m, assoc_len=2).update(b"abc"),
    "ccm aad shorter than declared": lambda m: _ccm(m, assoc_len=4).update(b"abc").encrypt(b"x"),
    "ccm msg longer than declared": lambda m: _ccm(m, msg_len=2).encrypt(b"abc"),
    "ccm msg shorter than declared": lambda m: [(c := _ccm(m, msg_len=4)).encrypt(b"abc"), c.digest()],
    "ccm second encrypt undeclared": lambda m: [(c := _ccm(m)).encrypt(b"abc"), c.encrypt(b"d")],
    "ccm decrypt_and_verify bad tag": lambda m: _ccm(m).decrypt_and_verify(b"secret", bytes(16)),
    "cp encrypt str": lambda m: _cp(m).encrypt("text"),
    "cp update str": lambda m: _cp(m).update("text"),
    "cp output short": lambda m: _cp(m).encrypt(b"abc", output=bytearray(1)),
    "cp decrypt_and_verify bad tag": lambda m: _cp(m).decrypt_and_verify(b"secret", bytes(16)),
    # state
    "gcm update after encrypt": lambda m: [(c := _gcm(m)).encrypt(b"a"), c.update(b"b")],
    "gcm decrypt after encrypt": lambda m: [(c := _gcm(m)).encrypt(b"a"), c.decrypt(b"b")],
    "gcm verify after encrypt": lambda m: [(c := _gcm(m)).encrypt(b"a"), c.verify(bytes(16))],
    "gcm digest after decrypt": lambda m: [(c := _gcm(m)).decrypt(b"a"), c.digest()],
    "cp update after decrypt": lambda m: [(c := _cp(m)).decrypt(b"a"), c.update(b"b")],
}


def _outcome(fn: Callable[[], Any]) -> tuple[str, object]:
    try:
        r = fn()
    except Exception as e:
        return (type(e).__name__, str(e))
    return ("ok", None if r is None or not isinstance(r, (bytes, tuple)) else r)


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _settle() -> None:
    gc.collect()
    aead.clear()
    skcipher.forget_keys()


@pytest.mark.parametrize("case", list(CASES))
def test_same_error_as_pycryptodome(case: str) -> None:
    want = _outcome(lambda: CASES[case](REF))
    _outcome(lambda: CASES[case](OURS))  # first use binds the probed algorithms (kept for the process)
    _settle()
    before = _fds()
    got = _outcome(lambda: CASES[case](OURS))
    assert got == want
    _settle()
    assert _fds() == before, "file descriptors leaked"


def test_cases_reach_the_kernel_and_cover_every_kind() -> None:
    before = _afalg.kernel_operations()
    kinds = {_outcome(lambda fn=fn: fn(OURS))[0] for fn in CASES.values()}  # type: ignore[misc]
    assert {"ValueError", "TypeError", "MessageTooLongError", "Error"} <= kinds
    assert _afalg.kernel_operations() > before


@pytest.mark.parametrize("mode", ("gcm", "gcm-nonce16", "gcm-mac5", "ccm", "cp"))
def test_bad_tag_leaves_no_plaintext(mode: str) -> None:
    make: Callable[[], Any]
    if mode == "gcm":
        make = lambda: AES.new(K, AES.MODE_GCM, nonce=N12)  # noqa: E731
    elif mode == "gcm-nonce16":
        make = lambda: AES.new(K, AES.MODE_GCM, nonce=bytes(16))  # noqa: E731
    elif mode == "gcm-mac5":
        make = lambda: AES.new(K, AES.MODE_GCM, nonce=N12, mac_len=5)  # noqa: E731
    elif mode == "ccm":
        make = lambda: AES.new(K, AES.MODE_CCM, nonce=bytes(11))  # noqa: E731
    else:
        make = lambda: ChaCha20_Poly1305.new(key=K32, nonce=N12)  # noqa: E731
    secret = b"attack at dawn" * 10
    enc = make()
    enc.update(b"hdr")
    ct, tag = enc.encrypt_and_digest(secret)
    bad = bytes([tag[0] ^ 1]) + tag[1:]
    dec = make()
    dec.update(b"hdr")
    if mode == "cp":  # PyCryptodome's ChaCha20_Poly1305.decrypt_and_verify has no output=
        with pytest.raises(ValueError, match=r"^MAC check failed$"):
            dec.decrypt_and_verify(ct, bad)
    else:
        out = bytearray(b"\xaa" * len(ct))
        with pytest.raises(ValueError, match=r"^MAC check failed$"):
            dec.decrypt_and_verify(ct, bad, output=out)
        assert out == bytes(len(ct)), "unverified plaintext left in the output buffer"
    # The same object then accepts the right tag, as PyCryptodome's does.
    dec.verify(tag)


def test_xchacha_follows_the_policy_without_poly1305() -> None:
    key, nonce = K32, bytes(24)
    if _afalg.probe("hash", "poly1305") is None:
        c = ChaCha20_Poly1305.new(key=key, nonce=nonce)
        assert isinstance(c, ChaCha20_Poly1305.ChaCha20Poly1305Cipher)
        assert c.encrypt_and_digest(b"x") == RefCP.new(key=key, nonce=nonce).encrypt_and_digest(b"x")
        return
    with pytest.raises(kcapi_hashlib.UnsupportedAlgorithm, match="XChaCha20-Poly1305"):
        ChaCha20_Poly1305.new(key=key, nonce=nonce)
    kcapi_hashlib.set_policy("fallback")
    with pytest.warns(kcapi_hashlib.KernelFallbackWarning):
        c = ChaCha20_Poly1305.new(key=key, nonce=nonce)
    assert c.encrypt_and_digest(b"x") == RefCP.new(key=key, nonce=nonce).encrypt_and_digest(b"x")


def test_install_routes_chacha20_poly1305() -> None:
    import Crypto.Cipher.ChaCha20_Poly1305 as target

    original = target.new
    with kcapi_hashlib.patched():
        assert target.new is ChaCha20_Poly1305.new
        before = _afalg.kernel_operations()
        c = target.new(key=K32, nonce=N12)
        c.encrypt_and_digest(b"data")
        assert _afalg.kernel_operations() > before
    assert target.new is original


def test_fork_child_gets_its_own_tfms() -> None:
    c = AES.new(K, AES.MODE_GCM, nonce=N12)
    want = c.encrypt_and_digest(b"before fork")
    pid = os.fork()
    if pid == 0:  # child: the parent's cached tfms are forgotten; new ones give the same results
        code = 0
        try:
            got = AES.new(K, AES.MODE_GCM, nonce=N12).encrypt_and_digest(b"before fork")
            other = AES.new(bytes(16), AES.MODE_GCM, nonce=N12).encrypt_and_digest(b"x")
            code = 0 if got == want and other[0] else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 if hasattr(os, "waitstatus_to_exitcode") else status == 0
    assert AES.new(K, AES.MODE_GCM, nonce=N12).encrypt_and_digest(b"before fork") == want
