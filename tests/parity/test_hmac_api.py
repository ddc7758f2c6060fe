"""The MAC and KDF surface against what it replaces: the running interpreter's hmac and hashlib.pbkdf2_hmac,
and PyCryptodome's Crypto.Hash (hash modules, HMAC, CMAC) and Crypto.Protocol.KDF (PBKDF2, HKDF,
SP800_108_Counter): names, signatures, attributes, return types, exception types and texts, warnings, the
policy for hashes the kernel lacks, and install()/uninstall()."""

from __future__ import annotations

import binascii
import hashlib
import hmac as std_hmac
import importlib
import inspect
import pickle
import sys
import warnings
from types import ModuleType
from typing import Any, Callable

import pytest
from Crypto.Cipher import AES, DES3
from Crypto.Hash import CMAC as PyCMAC
from Crypto.Hash import HMAC as PyHMAC
from Crypto.Protocol import KDF as PyKDF

import kcapi_hashlib
from kcapi_hashlib import hmac as khmac
from kcapi_hashlib.Hash import CMAC, HMAC, SHA256
from kcapi_hashlib.Protocol import KDF


def _params(fn: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    """(name, kind, default) of each parameter: the signature without annotations."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def _error(fn: Callable[[], object]) -> tuple[type, str]:
    try:
        fn()
    except Exception as e:  # the type is what is compared
        return type(e), str(e)
    raise AssertionError("no exception")


def _same_error(ours: Callable[[], object], theirs: Callable[[], object]) -> None:
    (t1, m1), (t2, m2) = _error(ours), _error(theirs)
    assert issubclass(t1, t2) and m1 == m2, ((t1, m1), (t2, m2))


# --- the stdlib's hmac ----------------------------------------------------------------------------------


def test_hmac_names() -> None:
    for name in ("new", "HMAC", "digest", "compare_digest", "digest_size", "trans_5C", "trans_36"):
        assert hasattr(khmac, name), name
    assert khmac.compare_digest is std_hmac.compare_digest  # re-exported, never reimplemented
    assert (khmac.trans_5C, khmac.trans_36, khmac.digest_size) == (std_hmac.trans_5C, std_hmac.trans_36, None)
    assert khmac.HMAC.blocksize == std_hmac.HMAC.blocksize == 64


def test_hmac_signatures() -> None:
    assert _params(khmac.new) == _params(std_hmac.new)
    assert _params(khmac.digest) == _params(std_hmac.digest)
    assert _params(khmac.HMAC) == _params(std_hmac.HMAC)
    for method in ("update", "copy", "digest", "hexdigest", "_current"):
        assert _params(getattr(khmac.HMAC, method)) == _params(getattr(std_hmac.HMAC, method)), method
    assert isinstance(khmac.HMAC.name, property)


@pytest.mark.parametrize("digestmod", ["sha256", "SHA256", hashlib.sha256, kcapi_hashlib.sha256, SHA256])
def test_hmac_object(digestmod: Any) -> None:
    ours = khmac.new(b"key", b"msg", digestmod)
    theirs = std_hmac.new(b"key", b"msg", "sha256")
    assert (ours.name, ours.digest_size, ours.block_size) == (theirs.name, theirs.digest_size, theirs.block_size)
    assert ours.update(b"more") is None and theirs.update(b"more") is None
    assert type(ours.digest()) is bytes and type(ours.hexdigest()) is str
    assert ours.digest() == theirs.digest() and ours.hexdigest() == theirs.hexdigest()
    assert type(ours.copy()) is khmac.HMAC
    assert khmac.digest(b"key", b"msg", digestmod) == std_hmac.digest(b"key", b"msg", "sha256")
    with pytest.raises(TypeError):
        pickle.dumps(ours)
    with pytest.raises((TypeError, AttributeError)):
        pickle.dumps(theirs)


def test_hmac_errors() -> None:
    for mod in ("sha256", hashlib.sha256):
        _same_error(lambda m=mod: khmac.new("key", b"m", m), lambda m=mod: std_hmac.new("key", b"m", m))
        _same_error(
            lambda m=mod: khmac.new(memoryview(b"k"), b"m", m), lambda m=mod: std_hmac.new(memoryview(b"k"), b"m", m)
        )
        _same_error(lambda m=mod: khmac.new(1, b"m", m), lambda m=mod: std_hmac.new(1, b"m", m))  # type: ignore[arg-type]
        _same_error(lambda m=mod: khmac.new(b"k", "m", m), lambda m=mod: std_hmac.new(b"k", "m", m))  # type: ignore[arg-type]
        _same_error(
            lambda m=mod: khmac.new(b"k", digestmod=m).update("m"),
            lambda m=mod: std_hmac.new(b"k", digestmod=m).update("m"),
        )  # type: ignore[arg-type]
        _same_error(lambda m=mod: khmac.digest("k", b"m", m), lambda m=mod: std_hmac.digest("k", b"m", m))  # type: ignore[arg-type]
        _same_error(lambda m=mod: khmac.digest(b"k", "m", m), lambda m=mod: std_hmac.digest(b"k", "m", m))  # type: ignore[arg-type]
        _same_error(lambda m=mod: khmac.digest(b"k", None, m), lambda m=mod: std_hmac.digest(b"k", None, m))  # type: ignore[arg-type]
    _same_error(lambda: khmac.new(b"k", b"m"), lambda: std_hmac.new(b"k", b"m"))
    _same_error(lambda: khmac.new(b"k", b"m", None), lambda: std_hmac.new(b"k", b"m", None))
    _same_error(lambda: khmac.HMAC(b"k", msg=b"m", digestmod=""), lambda: std_hmac.HMAC(b"k", msg=b"m", digestmod=""))
    _same_error(lambda: khmac.new(b"k", b"m", "no-such-hash"), lambda: std_hmac.new(b"k", b"m", "no-such-hash"))
    _same_error(lambda: khmac.digest(b"k", b"m", "no-such-hash"), lambda: std_hmac.digest(b"k", b"m", "no-such-hash"))


def test_hmac_block_size_warnings() -> None:
    class NoBlockSize:
        def __init__(self, data: bytes = b"") -> None:
            self._h = kcapi_hashlib.sha256(data)
            self.digest_size = 32

        def update(self, data: bytes) -> None:
            self._h.update(data)

        def digest(self) -> bytes:
            return self._h.digest()  # type: ignore[no-any-return]

        def copy(self) -> Any:
            return self

    for make in (khmac.HMAC, std_hmac.HMAC):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            make(b"a", b"b", digestmod=NoBlockSize)
        assert [str(w.message) for w in caught] == ["No block_size attribute on given digest object; Assuming 64."]
        NoBlockSize.block_size = 8  # type: ignore[attr-defined]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            make(b"a", b"b", digestmod=NoBlockSize)
        assert [str(w.message) for w in caught] == ["block_size of 8 seems too small; using our default of 64."]
        del NoBlockSize.block_size  # type: ignore[attr-defined]


def test_hmac_pep247_module_digestmod() -> None:
    module = ModuleType("my_sha256")
    module.new = lambda d=b"": kcapi_hashlib.sha256(d)  # type: ignore[attr-defined]
    assert khmac.new(b"k", b"m", module).digest() == std_hmac.new(b"k", b"m", "sha256").digest()
    assert khmac.digest(b"k", b"m", module) == std_hmac.digest(b"k", b"m", "sha256")


def test_hmac_hash_the_kernel_lacks_follows_the_policy() -> None:
    # strict (the default): ValueError like hashlib's, carrying the reason
    err = _error(lambda: khmac.new(b"k", b"m", "sha512_256"))
    assert issubclass(err[0], ValueError) and err[1] == "unsupported hash type sha512_256"
    assert issubclass(_error(lambda: khmac.digest(b"k", b"m", "sha512_256"))[0], kcapi_hashlib.UnsupportedAlgorithm)
    # fallback: the standard library computes it, counted and warned about
    kcapi_hashlib.set_policy("fallback")
    kcapi_hashlib.reset_fallback_counts()
    with pytest.warns(kcapi_hashlib.KernelFallbackWarning):
        h = khmac.new(b"k", b"m", "sha512_256")
    assert h.digest() == std_hmac.new(b"k", b"m", "sha512_256").digest() and h.name == "hmac-sha512_256"
    assert khmac.digest(b"k", b"m", "sha512_256") == std_hmac.digest(b"k", b"m", "sha512_256")
    assert kcapi_hashlib.fallback_counts().get("sha512_256", 0) >= 2


def test_clear_key_cache_is_public() -> None:
    khmac.digest(b"k", b"m", "sha256")
    assert khmac.clear_key_cache() >= 1
    assert khmac.clear_key_cache() == 0


# --- hashlib.pbkdf2_hmac --------------------------------------------------------------------------------


def test_pbkdf2_hmac_signature_and_result_type() -> None:
    assert [p[0] for p in _params(kcapi_hashlib.pbkdf2_hmac)] == [
        "hash_name",
        "password",
        "salt",
        "iterations",
        "dklen",
    ]
    assert inspect.signature(kcapi_hashlib.pbkdf2_hmac).parameters["dklen"].default is None
    assert "dklen=None" in hashlib.pbkdf2_hmac.__text_signature__  # type: ignore[attr-defined]
    out = kcapi_hashlib.pbkdf2_hmac(hash_name="sha256", password=b"pw", salt=b"s", iterations=1, dklen=None)
    assert type(out) is bytes and out == hashlib.pbkdf2_hmac("sha256", b"pw", b"s", 1)


@pytest.mark.parametrize(
    "args",
    [
        ("sha256", "pw", b"s", 1),
        ("sha256", b"pw", "s", 1),
        ("sha256", None, b"s", 1),
        ("sha256", b"pw", b"s", 0),
        ("sha256", b"pw", b"s", -1),
        ("sha256", b"pw", b"s", 2**31),
        ("sha256", b"pw", b"s", 2**64),
        ("sha256", b"pw", b"s", 1.0),
        ("sha256", b"pw", b"s", 1, 0),
        ("sha256", b"pw", b"s", 1, -1),
        ("sha256", b"pw", b"s", 1, 2**31),
        ("sha256", b"pw", b"s", 1, 1.5),
        (1, b"pw", b"s", 1),
        ("no-such-hash", b"pw", b"s", 0),
    ],
)
def test_pbkdf2_hmac_errors(args: tuple[Any, ...]) -> None:
    ours, theirs = _error(lambda: kcapi_hashlib.pbkdf2_hmac(*args)), _error(lambda: hashlib.pbkdf2_hmac(*args))
    assert issubclass(ours[0], theirs[0])
    if args[0] != "no-such-hash":  # OpenSSL's text for an unknown digest is its own ("[digital envelope ...]")
        assert ours[1] == theirs[1]
    else:
        # hashlib's wording for a name it has no hash for; 3.15 says "algorithm" (hashlib.h)
        wording = "unsupported hash algorithm" if sys.version_info >= (3, 15) else "unsupported hash type"
        assert ours[1] == f"{wording} no-such-hash"


def test_pbkdf2_hmac_accepts_what_hashlib_accepts() -> None:
    for args in [
        ("SHA256", b"pw", b"s", 3),
        ("sha1", memoryview(b"pw"), bytearray(b"s"), True, 7),
        ("md5", b"", b"", 1, 100),
    ]:
        assert kcapi_hashlib.pbkdf2_hmac(*args) == hashlib.pbkdf2_hmac(*args)


# --- PyCryptodome's hash modules ------------------------------------------------------------------------

HASH_MODULES = ["MD5", "SHA1", "SHA224", "SHA256", "SHA384", "SHA512", "SHA3_224", "SHA3_256", "SHA3_384", "SHA3_512",
                "BLAKE2b", "RIPEMD160"]  # fmt: skip
_PUBLIC = {"new", "digest", "digest_size", "block_size"}


@pytest.mark.parametrize("leaf", HASH_MODULES)
def test_hash_module_surface(leaf: str) -> None:
    ours = importlib.import_module(f"kcapi_hashlib.Hash.{leaf}")
    theirs = importlib.import_module(f"Crypto.Hash.{leaf}")
    classes = [n for n, v in vars(theirs).items() if inspect.isclass(v) and v.__module__ == theirs.__name__]
    for name in classes + [n for n in _PUBLIC if hasattr(theirs, n)]:
        assert hasattr(ours, name), name
        if not callable(getattr(theirs, name)):
            assert getattr(ours, name) == getattr(theirs, name), name
    for name in _PUBLIC - set(vars(theirs)):
        assert not hasattr(ours, name), f"{leaf}.{name} is not in PyCryptodome's module"
    for fn in ("new", "digest"):
        if hasattr(theirs, fn):
            assert _params(getattr(ours, fn)) == _params(getattr(theirs, fn)), fn
    (cls,) = classes
    ours_cls, theirs_cls = getattr(ours, cls), getattr(theirs, cls)
    assert _params(ours_cls) == _params(theirs_cls)
    for attr in ("digest_size", "block_size", "oid"):
        assert getattr(ours_cls, attr, None) == getattr(theirs_cls, attr, None), attr
    for method, fn in vars(theirs_cls).items():
        if inspect.isfunction(fn) and not method.startswith("_"):
            assert _params(getattr(ours_cls, method)) == _params(fn), method


def _new(module: ModuleType, data: Any = None) -> Any:
    return module.new(data=data) if module.__name__.endswith("BLAKE2b") else module.new(data)


@pytest.mark.parametrize("leaf", HASH_MODULES)
def test_hash_objects_behave_alike(leaf: str) -> None:
    ours = importlib.import_module(f"kcapi_hashlib.Hash.{leaf}")
    theirs = importlib.import_module(f"Crypto.Hash.{leaf}")
    a, b = _new(ours, b"abc"), _new(theirs, b"abc")
    assert (a.digest_size, a.block_size, getattr(a, "oid", None)) == (
        b.digest_size,
        b.block_size,
        getattr(b, "oid", None),
    )
    ra, rb = a.update(b"def"), b.update(b"def")
    assert (ra is a, rb is None) in ((True, False), (False, True)) or (ra is None and rb is None)
    assert (ra is a) == (rb is b)
    assert a.digest() == b.digest() and a.hexdigest() == b.hexdigest()
    _same_error(lambda: a.update("text"), lambda: b.update("text"))
    _same_error(lambda: _new(ours, "text"), lambda: _new(theirs, "text"))
    if hasattr(a, "copy") and hasattr(b, "copy"):
        assert type(a.copy()) is type(a) and a.copy().digest() == b.copy().digest()
    if not leaf.startswith("BLAKE2b"):
        assert type(a.new()) is type(a) and a.new(b"x").digest() == b.new(b"x").digest()
    if hasattr(theirs, "digest"):
        assert ours.digest(b"abc") == theirs.digest(b"abc")


def test_sha3_and_blake2b_refuse_update_after_digest() -> None:
    for leaf in ("SHA3_256", "BLAKE2b"):
        ours, theirs = (importlib.import_module(f"{p}.Hash.{leaf}") for p in ("kcapi_hashlib", "Crypto"))
        a, b = _new(ours, b"x"), _new(theirs, b"x")
        a.digest()
        b.digest()
        _same_error(lambda a=a: a.update(b"y"), lambda b=b: b.update(b"y"))
        c = (
            ours.new(data=b"x", update_after_digest=True)
            if leaf == "BLAKE2b"
            else ours.new(b"x", update_after_digest=True)
        )
        c.digest()
        c.update(b"y")


def test_sha512_truncation_and_blake2b_parameters() -> None:
    from Crypto.Hash import SHA512 as PySHA512
    from Crypto.Hash import BLAKE2b as PyBLAKE2b

    from kcapi_hashlib.Hash import SHA512, BLAKE2b

    _same_error(lambda: SHA512.new(truncate="128"), lambda: PySHA512.new(truncate="128"))
    _same_error(lambda: SHA512.digest(b"", truncate="1"), lambda: PySHA512.digest(b"", truncate="1"))
    for truncate in ("224", "256"):  # the kernel has no SHA-512/t: strict raises, like any missing hash
        err = _error(lambda t=truncate: SHA512.new(truncate=t))
        assert issubclass(err[0], kcapi_hashlib.UnsupportedAlgorithm)
    for kwargs in ({"digest_bytes": 0}, {"digest_bits": 12}, {"digest_bytes": 32, "digest_bits": 256},
                   {"digest_bytes": 1.5}, {"key": b"k" * 65}, {"digest_bits": True}):  # fmt: skip
        _same_error(lambda k=kwargs: BLAKE2b.new(**k), lambda k=kwargs: PyBLAKE2b.new(**k))
    for size in (20, 32, 48, 64):
        for key in (b"", b"k" * 64):
            a, b = (
                BLAKE2b.new(data=b"m", digest_bytes=size, key=key),
                PyBLAKE2b.new(data=b"m", digest_bytes=size, key=key),
            )
            assert a.digest() == b.digest() and getattr(a, "oid", None) == getattr(b, "oid", None)
            a.verify(b.digest())
            _same_error(lambda a=a: a.verify(b"x"), lambda b=b: b.verify(b"x"))
            _same_error(lambda a=a: a.hexverify(5), lambda b=b: b.hexverify(5))  # type: ignore[arg-type]


def test_hash_package_new() -> None:
    from Crypto import Hash as PyHash

    from kcapi_hashlib import Hash

    for name in ("SHA256", "sha-256", "2.16.840.1.101.3.4.2.1", "SHA1", "SHA3-512", "sha384", "SHA224"):
        assert type(Hash.new(name)).__name__ == type(PyHash.new(name)).__name__
        assert Hash.new(name).digest() == PyHash.new(name).digest()
    _same_error(lambda: Hash.new("MD5"), lambda: PyHash.new("MD5"))
    assert _params(Hash.new) == _params(PyHash.new)


# --- PyCryptodome's HMAC and CMAC -----------------------------------------------------------------------


def test_pycryptodome_hmac_surface() -> None:
    assert _params(HMAC.new) == _params(PyHMAC.new)
    assert _params(HMAC.HMAC) == _params(PyHMAC.HMAC)
    for method in ("update", "copy", "digest", "verify", "hexdigest", "hexverify"):
        assert _params(getattr(HMAC.HMAC, method)) == _params(getattr(PyHMAC.HMAC, method)), method
    assert HMAC.__all__ == PyHMAC.__all__
    from Crypto.Hash import SHA3_256 as PySHA3_256
    from Crypto.Hash import SHA256 as PySHA256

    for mod in (PySHA256, SHA256, PySHA256.new(), PySHA3_256):
        a, b = HMAC.new(b"key", b"msg", mod), PyHMAC.new(b"key", b"msg", mod if mod is not SHA256 else PySHA256)
        assert a.update(b"x") is a
        assert (a.digest_size, getattr(a, "oid", None)) == (b.update(b"x").digest_size, getattr(b, "oid", None))
        assert a.digest() == b.digest() and a.hexdigest() == b.hexdigest()
        assert type(a.copy()) is HMAC.HMAC


def test_pycryptodome_hmac_errors_and_default() -> None:
    from Crypto.Hash import SHA256 as PySHA256

    _same_error(lambda: HMAC.new("key", b"m", SHA256), lambda: PyHMAC.new("key", b"m", PySHA256))
    _same_error(lambda: HMAC.new("k" * 65, b"m", SHA256), lambda: PyHMAC.new("k" * 65, b"m", PySHA256))
    _same_error(lambda: HMAC.new(b"key", "m", SHA256), lambda: PyHMAC.new(b"key", "m", PySHA256))
    _same_error(lambda: HMAC.new(b"k", b"m", SHA256).update("x"), lambda: PyHMAC.new(b"k", b"m", PySHA256).update("x"))
    _same_error(
        lambda: HMAC.new(b"k", b"m", SHA256).verify(b"x" * 32),
        lambda: PyHMAC.new(b"k", b"m", PySHA256).verify(b"x" * 32),
    )
    _same_error(
        lambda: HMAC.new(b"k", b"m", SHA256).hexverify("zz"), lambda: PyHMAC.new(b"k", b"m", PySHA256).hexverify("zz")
    )
    assert _error(lambda: HMAC.new(b"k", b"m", SHA256).hexverify("zz"))[0] is binascii.Error
    _same_error(lambda: HMAC.new(b"k", b"m", hashlib.sha256), lambda: PyHMAC.new(b"k", b"m", hashlib.sha256))
    for make in (HMAC.new, PyHMAC.new):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tag = make(b"key", b"msg").digest()
        assert len(caught) == 1 and caught[0].category is DeprecationWarning
        assert caught[0].filename == __file__  # attributed to the caller
        assert str(caught[0].message).startswith("HMAC without 'digestmod' uses MD5")
        assert tag == std_hmac.new(b"key", b"msg", "md5").digest()


def test_cmac_surface() -> None:
    assert _params(CMAC.new) == _params(PyCMAC.new)
    assert _params(CMAC.CMAC) == _params(PyCMAC.CMAC)
    assert CMAC.digest_size is None and CMAC.CMAC.digest_size is None
    for method in ("update", "copy", "digest", "verify", "hexdigest", "hexverify"):
        assert _params(getattr(CMAC.CMAC, method)) == _params(getattr(PyCMAC.CMAC, method)), method
    a, b = CMAC.new(bytes(16), b"m", AES), PyCMAC.new(bytes(16), b"m", AES)
    assert a.update(b"x") is a and b.update(b"x") is b
    assert a.digest_size == b.digest_size == 16 and a.digest() == b.digest() and type(a.copy()) is CMAC.CMAC


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.new(b"", b"m", ciphermod=AES),  # the kernel would say EINVAL; PyCryptodome's text wins
        lambda m: m.new(b"k" * 15, ciphermod=AES),
        lambda m: m.new("k" * 16, ciphermod=AES),
        lambda m: m.new(b"k" * 16),
        lambda m: m.new(b"k" * 16, ciphermod=AES, mac_len=3),
        lambda m: m.new(b"k" * 16, ciphermod=AES, mac_len=17),
        lambda m: m.new(b"k" * 16, "abc", ciphermod=AES),
        lambda m: m.new(b"k" * 16, "a" * 16, ciphermod=AES),
        lambda m: m.new(b"k" * 16, ciphermod=AES).verify(b"\0" * 16),
        lambda m: m.new(b"k" * 16, ciphermod=AES).hexverify("zz"),
        lambda m: m.new(bytes(8) * 3, ciphermod=DES3),
        lambda m: m.new(bytes(range(8)) * 2, ciphermod=DES3),
        lambda m: m.new(bytes(range(20)), ciphermod=DES3),
    ],
)
def test_cmac_errors(call: Callable[[Any], object]) -> None:
    ours, theirs = _error(lambda: call(CMAC)), _error(lambda: call(PyCMAC))
    assert issubclass(ours[0], theirs[0]) and ours[1] == theirs[1]


def test_cmac_update_after_digest() -> None:
    for m in (CMAC, PyCMAC):
        mac = m.new(b"k" * 16, b"m", AES)
        mac.digest()
        assert _error(lambda mac=mac: mac.update(b"x")) == (
            TypeError,
            "update() cannot be called after digest() or verify()",
        )
        mac = m.new(b"k" * 16, b"m", AES, update_after_digest=True)
        first = mac.digest()
        mac.update(b"x")
        assert mac.digest() != first
    a = CMAC.new(b"k" * 16, b"m", AES, update_after_digest=True)
    b = PyCMAC.new(b"k" * 16, b"m", AES, update_after_digest=True)
    for chunk in (b"", b"x" * 15, b"y" * 17):
        a.update(chunk)
        b.update(chunk)
        assert a.digest() == b.digest()


# --- PyCryptodome's KDFs ---------------------------------------------------------------------------------


def test_kdf_surface() -> None:
    for name in ("PBKDF2", "HKDF", "SP800_108_Counter"):
        assert _params(getattr(KDF, name)) == _params(getattr(PyKDF, name)), name


def test_kdf_errors_and_warnings() -> None:
    from Crypto.Hash import RIPEMD160 as PyRIPEMD160
    from Crypto.Hash import SHA1 as PySHA1

    from kcapi_hashlib.Hash import RIPEMD160, SHA1

    prf = lambda p, s: b"x"  # noqa: E731
    _same_error(lambda: KDF.PBKDF2(b"p", b"s", 16, 1, prf, SHA1), lambda: PyKDF.PBKDF2(b"p", b"s", 16, 1, prf, PySHA1))
    _same_error(
        lambda: KDF.PBKDF2(b"p", b"s", 16, 0, hmac_hash_module=SHA1),
        lambda: PyKDF.PBKDF2(b"p", b"s", 16, 0, hmac_hash_module=PySHA1),
    )
    _same_error(
        lambda: KDF.PBKDF2(b"p", b"s", 16, 0, hmac_hash_module=RIPEMD160),
        lambda: PyKDF.PBKDF2(b"p", b"s", 16, 0, hmac_hash_module=PyRIPEMD160),
    )
    _same_error(
        lambda: KDF.PBKDF2(1, b"s", 16, 1, hmac_hash_module=SHA1),
        lambda: PyKDF.PBKDF2(1, b"s", 16, 1, hmac_hash_module=PySHA1),
    )  # type: ignore[arg-type]
    _same_error(
        lambda: KDF.PBKDF2("\u0394", b"s", 16, 1, hmac_hash_module=SHA1),
        lambda: PyKDF.PBKDF2("\u0394", b"s", 16, 1, hmac_hash_module=PySHA1),
    )
    _same_error(lambda: KDF.HKDF(b"m", 20 * 256, b"s", SHA1), lambda: PyKDF.HKDF(b"m", 20 * 256, b"s", PySHA1))
    _same_error(lambda: KDF.HKDF("m", 20, b"s", SHA1), lambda: PyKDF.HKDF("m", 20, b"s", PySHA1))  # type: ignore[arg-type]
    _same_error(
        lambda: KDF.SP800_108_Counter(b"m", 16, prf, label=b"a\0b"),
        lambda: PyKDF.SP800_108_Counter(b"m", 16, prf, label=b"a\0b"),
    )
    _same_error(
        lambda: KDF.SP800_108_Counter(b"m", 16, prf, label="abc"),
        lambda: PyKDF.SP800_108_Counter(b"m", 16, prf, label="abc"),
    )  # type: ignore[arg-type]
    for pbkdf2, mod in ((KDF.PBKDF2, SHA1), (PyKDF.PBKDF2, PySHA1)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            key = pbkdf2(b"pw", b"salt")
        assert len(caught) == 1 and caught[0].category is DeprecationWarning and caught[0].filename == __file__
        assert "'count' (1000 iterations) and 'hmac_hash_module' (HMAC-SHA1)" in str(caught[0].message)
        assert key == hashlib.pbkdf2_hmac("sha1", b"pw", b"salt", 1000, 16)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert pbkdf2(b"pw", b"salt", 16, hmac_hash_module=mod) == key
        assert len(caught) == 1 and "'count' (1000 iterations) uses" in str(caught[0].message)
    assert KDF.PBKDF2("pässword", "salt", 32, 5, hmac_hash_module=SHA1) == PyKDF.PBKDF2(
        "pässword", "salt", 32, 5, hmac_hash_module=PySHA1
    )
    assert KDF.HKDF(b"m", 10, b"s", SHA1, num_keys=3) == PyKDF.HKDF(b"m", 10, b"s", PySHA1, num_keys=3)
    assert isinstance(KDF.HKDF(b"m", 10, b"s", SHA1, num_keys=3), list)


# --- install() ------------------------------------------------------------------------------------------


def test_install_replaces_and_uninstall_restores() -> None:
    import Crypto.Hash
    import Crypto.Hash.CMAC
    import Crypto.Hash.HMAC
    import Crypto.Hash.SHA256
    import Crypto.Protocol.KDF

    originals = (std_hmac.new, std_hmac.HMAC, std_hmac.digest, hashlib.pbkdf2_hmac, Crypto.Hash.SHA256.new,
                 Crypto.Hash.HMAC.new, Crypto.Hash.CMAC.new, Crypto.Protocol.KDF.PBKDF2, Crypto.Protocol.KDF.HKDF,
                 Crypto.Hash.new)  # fmt: skip
    scrypt_want = PyKDF.scrypt(b"pw", b"salt", 16, 16, 1, 1)
    holder = ModuleType("holder_of_names")
    holder.new = std_hmac.new  # type: ignore[attr-defined]  # as after `from hmac import new`
    sys.modules["holder_of_names"] = holder
    try:
        with kcapi_hashlib.patched():
            assert std_hmac.new is khmac.new and std_hmac.HMAC is khmac.HMAC and std_hmac.digest is khmac.digest
            assert holder.new is khmac.new  # type: ignore[attr-defined]
            assert hashlib.pbkdf2_hmac is kcapi_hashlib.pbkdf2_hmac
            assert Crypto.Hash.SHA256.new is SHA256.new and Crypto.Hash.HMAC.new is HMAC.new
            assert Crypto.Hash.CMAC.new is CMAC.new and Crypto.Protocol.KDF.PBKDF2 is KDF.PBKDF2
            assert Crypto.Hash.new is importlib.import_module("kcapi_hashlib.Hash").new
            assert std_hmac.compare_digest is khmac.compare_digest
            # code written for the originals now runs on the kernel, with the same results
            assert std_hmac.new(b"k", b"m", "sha256").digest() == khmac.new(b"k", b"m", "sha256").digest()
            assert type(Crypto.Hash.HMAC.new(b"k", b"m", Crypto.Hash.SHA256)) is HMAC.HMAC
            # scrypt has no kernel implementation: strict refuses it (no silent userspace
            # computation), fallback computes PyCryptodome's, counted
            with pytest.raises(kcapi_hashlib.UnsupportedAlgorithm, match="scrypt"):
                Crypto.Protocol.KDF.scrypt(b"pw", b"salt", 16, 16, 1, 1)
            kcapi_hashlib.set_policy("fallback")
            kcapi_hashlib.reset_fallback_counts()  # warned once per algorithm: make this the first time
            with pytest.warns(kcapi_hashlib.KernelFallbackWarning):
                assert Crypto.Protocol.KDF.scrypt(b"pw", b"salt", 16, 16, 1, 1) == scrypt_want
            kcapi_hashlib.set_policy("strict")
    finally:
        del sys.modules["holder_of_names"]
    after = (std_hmac.new, std_hmac.HMAC, std_hmac.digest, hashlib.pbkdf2_hmac, Crypto.Hash.SHA256.new,
             Crypto.Hash.HMAC.new, Crypto.Hash.CMAC.new, Crypto.Protocol.KDF.PBKDF2, Crypto.Protocol.KDF.HKDF,
             Crypto.Hash.new)  # fmt: skip
    assert all(a is b for a, b in zip(after, originals))
    assert holder.new is originals[0]  # type: ignore[attr-defined]


def test_cmac_cipher_the_kernel_lacks_follows_the_policy() -> None:
    from Crypto.Cipher import ARC2

    key, msg = b"sixteen byte key", b"m" * 37
    err = _error(lambda: CMAC.new(key, msg, ciphermod=ARC2))
    assert issubclass(err[0], kcapi_hashlib.UnsupportedAlgorithm) and err[1] == "unsupported cmac type cmac(ARC2)"
    params = {"effective_keylen": 64}
    err = _error(lambda: CMAC.new(key, msg, ciphermod=AES, cipher_params=params))  # the kernel takes no params
    assert issubclass(err[0], ValueError)
    kcapi_hashlib.set_policy("fallback")
    kcapi_hashlib.reset_fallback_counts()
    with pytest.warns(kcapi_hashlib.KernelFallbackWarning):
        ours = CMAC.new(key, msg, ciphermod=ARC2, mac_len=6)
    theirs = PyCMAC.new(key, msg, ciphermod=ARC2, mac_len=6)
    assert ours.digest() == theirs.digest()
    copy_ours, copy_theirs = ours.copy(), theirs.copy()
    with pytest.raises(TypeError):
        ours.update(b"x")  # digest() was called: refused, as PyCryptodome's
    for chunk in (b"", b"a" * 8, b"b" * 3, b"c" * 13):
        copy_ours = CMAC.new(key, msg + chunk, ciphermod=ARC2)
        copy_theirs = PyCMAC.new(key, msg + chunk, ciphermod=ARC2)
        assert copy_ours.digest() == copy_theirs.digest()
    a = CMAC.new(key, msg, ciphermod=ARC2, update_after_digest=True)
    b = PyCMAC.new(key, msg, ciphermod=ARC2, update_after_digest=True)
    for chunk in (b"x" * 5, b"", b"y" * 8, b"z" * 11):
        a.update(chunk)
        b.update(chunk)
        assert a.digest() == b.digest()
        assert a.copy().update(b"q").digest() == b.copy().update(b"q").digest()
    assert kcapi_hashlib.fallback_counts().get("cmac(ARC2)", 0) >= 3


def test_pycryptodome_hash_the_kernel_lacks_follows_the_policy() -> None:
    from Crypto.Hash import SHA512 as PySHA512

    from kcapi_hashlib.Hash import SHA512

    assert issubclass(_error(lambda: HMAC.new(b"k", b"m", PySHA512.new(truncate="256")))[0], ValueError)
    kcapi_hashlib.set_policy("fallback")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kcapi_hashlib.KernelFallbackWarning)
        h = SHA512.new(b"abc", truncate="256")
        assert h.digest() == PySHA512.new(b"abc", truncate="256").digest() and h.oid == "2.16.840.1.101.3.4.2.6"
        mac = HMAC.new(b"k", b"m", PySHA512.new(truncate="224"))
        assert mac.digest() == PyHMAC.new(b"k", b"m", PySHA512.new(truncate="224")).digest()
