"""Keys from the kernel keyring through the public API (kcapi_hashlib.keyring.KernelKey), on a real kernel.

Differential: every MAC keyed with a KernelKey equals the same MAC keyed with the same bytes by the standard
library / PyCryptodome. Lifetime: a key revoked or invalidated (here or by keyctl, i.e. behind the library's back)
raises KeyringError naming the serial at its next use, and the cached tfm keyed with it is gone. No bytes back:
bytes(), memoryview(), pickle, copy, attributes. Threads and a forked child share one key. Kernels before 6.2
say "too old", under the fallback policy too (there is nothing to fall back to).
"""

from __future__ import annotations

import copy
import errno
import hashlib
import hmac as std_hmac
import os
import pickle
import sys
import threading
from collections.abc import Iterator

import pytest
from Crypto.Cipher import AES as PyAES
from Crypto.Hash import CMAC as PyCMAC

import kcapi_hashlib
from kcapi_hashlib import hmac
from kcapi_hashlib._afalg import keyed
from kcapi_hashlib._afalg import keyring as kr
from kcapi_hashlib.Cipher import AES
from kcapi_hashlib.Hash import CMAC, HMAC, SHA256, SHA512, BLAKE2b
from kcapi_hashlib.keyring import KernelKey, KeyringError
from tests.support import requires

pytestmark = [
    requires.kernel_alg("hash", ("hmac(sha256)", "hmac(sha512)")),
    requires.kernel_alg("hash", "cmac(aes)", only="*cmac*"),
    requires.kernel_alg("hash", ("blake2b-256", "blake2b-512"), only="*blake2b*"),
    requires.kernel_alg("skcipher", ("ecb(aes)", "cbc(aes)", "ctr(aes)"), only="test_aes_modes_*"),
    requires.kernel_alg("aead", "gcm(aes)", only="test_aes_gcm_*"),
    requires.kernel_alg("skcipher", "ctr(aes)", only="test_aes_gcm_*"),
]

KEY = bytes(range(1, 33))  # 32 bytes: an HMAC key, an AES-256 key, a BLAKE2b key
MSG = b"the message" * 10


NEW_ENOUGH = kr.serial_keys_known()
needs_serial = pytest.mark.skipif(
    not NEW_ENOUGH, reason=f"ALG_SET_KEY_BY_KEY_SERIAL arrived in Linux 6.2 (this kernel: {os.uname().release})"
)

_counter = iter(range(1 << 30))


def _desc(tag: str) -> str:
    return f"kcapi-test:{tag}:{os.getpid()}:{next(_counter)}"


@pytest.fixture(params=["logon", "user"])
def key(request: pytest.FixtureRequest) -> Iterator[KernelKey]:
    k = KernelKey.add(request.param, _desc(request.param), KEY)
    yield k
    try:
        k.invalidate()
    except KeyringError:
        pass


def _cached_with(serial: int) -> int:
    return sum(1 for e in list(keyed._lru.values()) if e.serial == serial)


# --- differential ---------------------------------------------------------------------------------------


@needs_serial
@pytest.mark.parametrize("name", ["sha256", "sha512"])
def test_hmac_new_and_digest_equal_bytes_key(key: KernelKey, name: str) -> None:
    expected = std_hmac.new(KEY, MSG, name).digest()
    assert hmac.new(key, MSG, name).digest() == expected
    assert hmac.new(key, digestmod=name).digest() == std_hmac.new(KEY, digestmod=name).digest()
    assert hmac.digest(key, MSG, name) == expected
    assert hmac.HMAC(key, MSG, getattr(kcapi_hashlib, name)).digest() == expected
    h = hmac.new(key, MSG[:7], name)
    h.update(MSG[7:])
    assert h.hexdigest() == expected.hex() and h.name == f"hmac-{name}"


@needs_serial
def test_stdlib_hmac_after_install_takes_kernel_key(key: KernelKey) -> None:
    with kcapi_hashlib.patched():
        import hmac as patched_hmac

        assert patched_hmac.new(key, MSG, "sha256").digest() == std_hmac.digest(KEY, MSG, "sha256")
        assert patched_hmac.digest(key, MSG, "sha256") == std_hmac.digest(KEY, MSG, "sha256")


@needs_serial
def test_copy_keeps_working(key: KernelKey) -> None:
    h = hmac.new(key, b"prefix-", "sha256")
    c = h.copy()
    c.update(b"tail")
    assert h.digest() == std_hmac.digest(KEY, b"prefix-", "sha256")
    assert c.digest() == std_hmac.digest(KEY, b"prefix-tail", "sha256")
    p = HMAC.new(key, b"prefix-", digestmod=SHA512)
    q = p.copy()
    q.update(b"tail")
    assert q.digest() == std_hmac.digest(KEY, b"prefix-tail", "sha512")
    assert p.hexdigest() == std_hmac.new(KEY, b"prefix-", "sha512").hexdigest()


@needs_serial
def test_pycryptodome_hmac(key: KernelKey) -> None:
    mac = HMAC.new(key, MSG, digestmod=SHA256)
    assert mac.digest() == std_hmac.digest(KEY, MSG, "sha256")
    mac.verify(std_hmac.digest(KEY, MSG, "sha256"))
    with pytest.raises(ValueError, match="MAC check failed"):
        mac.verify(bytes(32))


@needs_serial
@pytest.mark.parametrize("size", [16, 24, 32])
def test_cmac_aes(size: int) -> None:
    k = KernelKey.add("logon", _desc("cmac"), KEY[:size])
    try:
        expected = PyCMAC.new(KEY[:size], MSG, ciphermod=PyAES).digest()
        assert CMAC.new(k, MSG, ciphermod=AES).digest() == expected
        assert CMAC.new(k, MSG, ciphermod=PyAES, mac_len=8).digest() == expected[:8]
        c = CMAC.new(k, MSG[:5], ciphermod=AES)
        d = c.copy()
        d.update(MSG[5:])
        assert d.digest() == expected
    finally:
        k.invalidate()


@needs_serial
def test_cmac_key_size_the_kernel_refuses() -> None:
    k = KernelKey.add("logon", _desc("cmac20"), KEY[:20])
    try:
        with pytest.raises(ValueError, match=rf"cmac\(AES\): the kernel refused KernelKey\(serial={k.serial}"):
            CMAC.new(k, MSG, ciphermod=AES)
    finally:
        k.invalidate()


@needs_serial
@pytest.mark.parametrize("size", [32, 64])
def test_keyed_blake2b(key: KernelKey, size: int) -> None:
    expected = hashlib.blake2b(MSG, key=KEY, digest_size=size).digest()
    assert kcapi_hashlib.blake2b(MSG, key=key, digest_size=size).digest() == expected
    assert BLAKE2b.new(data=MSG, key=key, digest_bytes=size).digest() == expected


@needs_serial
def test_keyed_blake2b_other_sizes_cannot_fall_back(key: KernelKey) -> None:
    previous = kcapi_hashlib.set_policy("fallback")
    try:
        with pytest.raises(kcapi_hashlib.UnsupportedAlgorithm, match="cannot fall back: the key is in the kernel"):
            kcapi_hashlib.blake2b(MSG, key=key, digest_size=31)
        with pytest.raises(kcapi_hashlib.UnsupportedAlgorithm, match="takes no salt"):
            kcapi_hashlib.blake2b(MSG, key=key, salt=b"salt")
    finally:
        kcapi_hashlib.set_policy(previous)


@needs_serial
def test_digestmods_only_userspace_has_raise_under_fallback(key: KernelKey) -> None:
    previous = kcapi_hashlib.set_policy("fallback")
    try:
        with pytest.raises(kcapi_hashlib.UnsupportedAlgorithm, match="cannot fall back: the key is in the kernel"):
            hmac.new(key, MSG, "sha512_256")
        with pytest.raises(TypeError, match="needs a digestmod the kernel runs"):
            hmac.new(key, MSG, lambda d=b"": hashlib.sha256(d))
    finally:
        kcapi_hashlib.set_policy(previous)


def test_pbkdf2_password_is_bytes_only(key: KernelKey) -> None:
    with pytest.raises(TypeError):
        kcapi_hashlib.pbkdf2_hmac("sha256", key, b"salt", 2)  # type: ignore[arg-type]


# --- lifetime -------------------------------------------------------------------------------------------


@needs_serial
@pytest.mark.parametrize("how", ["revoke", "invalidate"])
def test_revoked_behind_our_back_raises_naming_serial_and_drops_cache(key: KernelKey, how: str) -> None:
    assert hmac.digest(key, MSG, "sha256") == std_hmac.digest(KEY, MSG, "sha256")
    assert _cached_with(key.serial) == 1
    getattr(kr, how)(key.serial)  # as `keyctl revoke` from elsewhere would: the library is not told
    with pytest.raises(KeyringError) as info:
        hmac.new(key, MSG, "sha256")
    assert info.value.errno == (errno.EKEYREVOKED if how == "revoke" else errno.ENOKEY)
    assert str(key.serial) in str(info.value)
    assert _cached_with(key.serial) == 0
    with pytest.raises(KeyringError):
        hmac.digest(key, MSG, "sha256")  # a miss now: setsockopt refuses it (KeyUnusable)


@needs_serial
def test_revoke_method_drops_every_algorithm(key: KernelKey) -> None:
    hmac.digest(key, MSG, "sha256")
    hmac.digest(key, MSG, "sha512")
    assert _cached_with(key.serial) == 2
    key.revoke()
    assert _cached_with(key.serial) == 0
    with pytest.raises(KeyringError, match=str(key.serial)) as info:
        HMAC.new(key, MSG, digestmod=SHA256)
    assert info.value.errno == errno.EKEYREVOKED


@needs_serial
def test_timeout_expires(key: KernelKey) -> None:
    hmac.digest(key, MSG, "sha256")
    key.set_timeout(1)
    import time

    time.sleep(1.2)
    with pytest.raises(KeyringError) as info:
        hmac.digest(key, MSG, "sha256")
    assert info.value.errno == errno.EKEYEXPIRED and str(key.serial) in str(info.value)


# --- no bytes back --------------------------------------------------------------------------------------


def test_no_bytes_back(key: KernelKey) -> None:
    for get in (bytes, bytearray, memoryview):
        with pytest.raises(TypeError):
            get(key)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="kernel keyring"):
        pickle.dumps(key)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError):
            key.__reduce_ex__(protocol)
    assert copy.copy(key) is key and copy.deepcopy(key) is key
    assert not hasattr(key, "__dict__")
    for slot in KernelKey.__slots__:
        value = getattr(key, slot)
        assert not isinstance(value, (bytes, bytearray, memoryview)), slot
    with pytest.raises(AttributeError):
        key._payload = KEY  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        key._serial = 1  # type: ignore[misc]
    assert repr(key) == f"KernelKey(serial={key.serial}, type={key.type!r}, description={key.description!r})"
    assert KEY.hex() not in repr(key) and repr(KEY) not in repr(key)


def test_not_constructible_nor_subclassable() -> None:
    with pytest.raises(TypeError, match=r"KernelKey\.add"):
        KernelKey(1)
    with pytest.raises(TypeError, match="cannot be subclassed"):

        class Leaky(KernelKey):  # type: ignore[misc]
            pass


def test_size_known_only_where_the_kernel_tells(key: KernelKey) -> None:
    assert len(key) == 32 and key.size == 32 and bool(key)
    found = KernelKey.find(key.description or "", type=key.type or "")
    assert found == key and hash(found) == hash(key)
    if key.type == "user":
        assert len(found) == 32  # KEYCTL_READ with no buffer: the length only
    else:
        assert found.size is None and bool(found)
        with pytest.raises(TypeError, match="not known"):
            len(found)
        assert len(KernelKey.find(key.description or "", size=32)) == 32
        assert KernelKey.from_serial(key.serial).size is None


def test_payload_buffers_not_kept() -> None:
    for payload in (bytearray(KEY), memoryview(KEY), memoryview(bytearray(KEY)), KEY):
        before = sys.getrefcount(payload)
        k = KernelKey.add("user", _desc("buf"), payload)
        assert sys.getrefcount(payload) == before, type(payload)
        assert k.size == 32 and kr.payload_size(k.serial) == 32
        k.invalidate()


def test_errors_name_what_went_wrong() -> None:
    with pytest.raises(KeyringError) as info:
        KernelKey.find(_desc("absent"))
    assert info.value.errno == errno.ENOKEY and "ENOKEY" in str(info.value)
    session = kr._keyctl(kr.KEYCTL_GET_KEYRING_ID, "KEYCTL_GET_KEYRING_ID", -3, kr.ctypes.c_int(1))
    with pytest.raises(ValueError, match="'keyring' key: AF_ALG takes only"):
        KernelKey.from_serial(session)
    with pytest.raises(ValueError, match="'service:' prefix"):
        KernelKey.add("logon", "no-prefix", KEY)
    with pytest.raises(ValueError, match="AF_ALG takes only"):
        KernelKey.add("keyring", "x:y", b"")
    with pytest.raises(ValueError, match="not one of"):
        KernelKey.add("logon", _desc("k"), KEY, keyring="nowhere")


# --- threads, fork --------------------------------------------------------------------------------------


@needs_serial
def test_threads_share_one_key(key: KernelKey) -> None:
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(50):
                msg = f"{i}:{j}".encode()
                h = hmac.new(key, msg, "sha256")
                if j % 5 == 0:
                    h = h.copy()
                assert h.digest() == std_hmac.digest(KEY, msg, "sha256")
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


@needs_serial
def test_fork_child_uses_key(key: KernelKey) -> None:
    hmac.digest(key, MSG, "sha256")  # cached in the parent before the fork
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(r)
            os.write(w, hmac.new(key, MSG, "sha256").digest() + hmac.digest(key, MSG, "sha512"))
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert out == std_hmac.digest(KEY, MSG, "sha256") + std_hmac.digest(KEY, MSG, "sha512")
    assert hmac.digest(key, MSG, "sha256") == out[:32]  # the parent's cached tfm still right


# --- kernels before 6.2 ---------------------------------------------------------------------------------


@pytest.mark.skipif(NEW_ENOUGH, reason="kernel >= 6.2 has ALG_SET_KEY_BY_KEY_SERIAL (the too-old error is for 6.1)")
@pytest.mark.parametrize("policy", ["strict", "fallback"])
def test_too_old_kernel_raises_under_every_policy(key: KernelKey, policy: str) -> None:
    previous = kcapi_hashlib.set_policy(policy)
    try:
        for call in (
            lambda: hmac.new(key, MSG, "sha256"),
            lambda: hmac.digest(key, MSG, "sha256"),
            lambda: HMAC.new(key, MSG, digestmod=SHA256),
            lambda: CMAC.new(key, MSG, ciphermod=AES),
        ):
            with pytest.raises(kcapi_hashlib.UnsupportedAlgorithm) as info:
                call()
            text = str(info.value)
            assert "too old" in text and "arrived in Linux 6.2" in text, text
            assert f"policy {policy!r} cannot fall back: the key is in the kernel keyring" in text, text
            assert info.value.errno == errno.ENOPROTOOPT
        with pytest.raises(kcapi_hashlib.UnsupportedAlgorithm, match=r"arrived in Linux 6\.2.*cannot fall back"):
            AES.new(key, AES.MODE_CBC, iv=bytes(16)).encrypt(bytes(16))
        # GCM keys its gcm(aes) tfm at the first operation: the kernel's refusal comes as the KernelError itself
        with pytest.raises(kcapi_hashlib.KernelError, match=r"too old for keyring keys.*arrived in Linux 6\.2"):
            AES.new(key, AES.MODE_GCM, nonce=bytes(12)).encrypt_and_digest(b"x")
    finally:
        kcapi_hashlib.set_policy(previous)
    assert kcapi_hashlib.fallback_counts().get("sha256", 0) == 0


# --- AES -------------------------------------------------------------------------------------------------

_AES_MODES = {
    "ECB": (AES.MODE_ECB, {}),
    "CBC": (AES.MODE_CBC, {"iv": bytes(range(16))}),
    "CTR": (AES.MODE_CTR, {"nonce": b"8 bytes!"}),
    "CFB": (AES.MODE_CFB, {"iv": bytes(range(16))}),
    "OFB": (AES.MODE_OFB, {"iv": bytes(range(16))}),
}


@needs_serial
@pytest.mark.parametrize("size", [16, 32])
@pytest.mark.parametrize("mode", list(_AES_MODES))
def test_aes_modes_equal_bytes_key(mode: str, size: int) -> None:
    m, kw = _AES_MODES[mode]
    data = bytes(range(256)) * 4 + (b"" if mode in ("ECB", "CBC") else b"tail")
    k = KernelKey.add("logon", _desc("aes"), KEY[:size])
    try:
        ct = AES.new(k, m, **kw).encrypt(data)
        assert ct == PyAES.new(KEY[:size], m, **kw).encrypt(data)
        assert AES.new(k, m, **kw).decrypt(ct) == data
    finally:
        k.invalidate()


@needs_serial
@pytest.mark.parametrize(("nonce_len", "mac_len"), [(12, 16), (12, 8), (12, 5), (16, 16)])
def test_aes_gcm_equal_bytes_key(key: KernelKey, nonce_len: int, mac_len: int) -> None:
    nonce = bytes(range(nonce_len))
    data = bytes(range(256)) * 3
    c = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=mac_len)
    c.update(b"header")
    ct, tag = c.encrypt_and_digest(data)
    r = PyAES.new(KEY, PyAES.MODE_GCM, nonce=nonce, mac_len=mac_len)
    r.update(b"header")
    assert (ct, tag) == r.encrypt_and_digest(data)
    d = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=mac_len)
    d.update(b"header")
    assert d.decrypt_and_verify(ct, tag) == data
    e = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=mac_len)
    e.update(b"header")
    with pytest.raises(ValueError, match="MAC check failed"):
        e.decrypt_and_verify(ct, bytes(mac_len))


def test_aes_modes_needing_key_bytes_refuse(key: KernelKey) -> None:
    for mode, kw in ((AES.MODE_CCM, {"nonce": bytes(11)}), (AES.MODE_EAX, {}), (AES.MODE_XTS, {})):
        with pytest.raises(TypeError, match="cannot use a kernel keyring key"):
            AES.new(key, mode, **kw)
    short = KernelKey.add("logon", _desc("aes20"), KEY[:20])
    try:
        with pytest.raises(ValueError, match=r"Incorrect AES key length \(20 bytes\)"):
            AES.new(short, AES.MODE_CBC, iv=bytes(16))
        undeclared = KernelKey.from_serial(short.serial)  # size unknown here: the kernel's setkey refuses it
        if NEW_ENOUGH:
            with pytest.raises(ValueError, match="the kernel refused"):
                AES.new(undeclared, AES.MODE_CBC, iv=bytes(16))
    finally:
        short.invalidate()
