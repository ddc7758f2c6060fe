"""kcapi_hashlib's public constructors and functions behave like hashlib's builtins wherever
real code relies on it: stored on a class they do not bind (Django's `digest = hashlib.sha256`), they keep their
names, docs and signatures, pickle and copy like the originals, and install() keeps identity checks working."""

from __future__ import annotations

import copy
import hashlib
import hmac
import inspect
import pickle
import warnings
from typing import Any, Callable

import pytest

import kcapi_hashlib
import kcapi_hashlib._hashes  # binds the submodule: the package imports private modules lazily
from kcapi_hashlib import _afalg
from kcapi_hashlib import hmac as khmac
from kcapi_hashlib._callable import builtin

STDLIB_SHA256 = hashlib.sha256  # captured before any install()
HASHLIB_NAMES = (
    "md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3_224", "sha3_256", "sha3_384", "sha3_512",
    "shake_128", "shake_256", "blake2b", "blake2s", "new", "file_digest", "pbkdf2_hmac",
)  # fmt: skip


def _public_callables() -> dict[str, Callable[..., Any]]:
    from kcapi_hashlib import Random
    from kcapi_hashlib.Cipher import AES, DES3, ChaCha20, ChaCha20_Poly1305
    from kcapi_hashlib.Hash import CMAC, HMAC, SHA3_256, SHA256, SHA512, BLAKE2b
    from kcapi_hashlib.Hash import new as hash_new
    from kcapi_hashlib.Protocol import KDF

    found: dict[str, Callable[..., Any]] = {}
    for name in HASHLIB_NAMES:
        found[f"kcapi_hashlib.{name}"] = getattr(kcapi_hashlib, name)
    found["hmac.new"] = khmac.new
    found["hmac.digest"] = khmac.digest
    for mod in (SHA256, SHA512, SHA3_256, BLAKE2b, HMAC, CMAC, AES, DES3, ChaCha20, ChaCha20_Poly1305, Random):
        found[f"{mod.__name__}.new"] = mod.new
    found["Hash.SHA256.digest"] = SHA256.digest
    found["Hash.new"] = hash_new
    for name in ("PBKDF2", "HKDF", "SP800_108_Counter"):
        found[f"KDF.{name}"] = getattr(KDF, name)
    found["Random.get_random_bytes"] = Random.get_random_bytes
    return found


CALLABLES = _public_callables()


@pytest.mark.parametrize("label", sorted(CALLABLES))
def test_does_not_bind_on_a_class_and_keeps_its_identity(label: str) -> None:
    fn = CALLABLES[label]
    assert isinstance(fn, builtin), label

    class Holder:
        attr = fn

    assert Holder.attr is fn and Holder().attr is fn  # as a builtin: no method is made
    assert fn.__name__ == label.rsplit(".", 1)[1]
    assert fn.__qualname__ == fn.__name__
    assert fn.__doc__ and fn.__doc__ == fn.__wrapped__.__doc__  # type: ignore[attr-defined]
    assert inspect.signature(fn) == inspect.signature(fn.__wrapped__)  # type: ignore[attr-defined]
    assert pickle.loads(pickle.dumps(fn)) is fn  # by qualified name, as builtins and functions pickle
    assert copy.copy(fn) is fn and copy.deepcopy(fn) is fn


def test_django_pattern_digest_stored_on_a_class() -> None:
    class PBKDF2PasswordHasher:  # django.contrib.auth.hashers' shape
        digest = kcapi_hashlib.sha256
        new = kcapi_hashlib.new
        mac = khmac.new
        derive = kcapi_hashlib.pbkdf2_hmac

        def encode(self, password: bytes, salt: bytes) -> tuple[bytes, bytes, bytes]:
            a = self.derive(self.digest().name, password, salt, 3)
            b = self.mac(b"k", password, self.digest).digest()
            c = self.new("sha256", password).digest()
            return a, b, c

    before = _afalg.kernel_operations()
    a, b, c = PBKDF2PasswordHasher().encode(b"pw", b"salt")
    assert a == hashlib.pbkdf2_hmac("sha256", b"pw", b"salt", 3)
    assert b == hmac.new(b"k", b"pw", STDLIB_SHA256).digest()
    assert c == STDLIB_SHA256(b"pw").digest()
    assert _afalg.kernel_operations() > before  # the kernel computed them


def test_after_install_the_pattern_works_on_hashlib_itself() -> None:
    with kcapi_hashlib.patched():

        class Signer:  # itsdangerous' shape: a class attribute taken from the hashlib module
            default_digest_method = hashlib.sha1

            def sign(self, data: bytes) -> bytes:
                return hmac.new(b"key", data, self.default_digest_method).digest()

        assert hashlib.sha1 is kcapi_hashlib.sha1
        before = _afalg.kernel_operations()
        got = Signer().sign(b"data")
        assert _afalg.kernel_operations() > before
        assert pickle.loads(pickle.dumps(hashlib.sha256)) is hashlib.sha256
    assert got == hmac.new(b"key", b"data", hashlib.sha1).digest()


def test_hashlib_new_serves_every_name_the_original_accepts() -> None:
    previous = kcapi_hashlib.set_policy("fallback")  # names the kernel lacks (shake_*, sha512_256) fall back
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", kcapi_hashlib.KernelFallbackWarning)
            for name in sorted(hashlib.algorithms_available):
                try:
                    expected = hashlib.new(name, b"abc")
                except ValueError:  # listed but refused by this OpenSSL (e.g. its legacy provider)
                    continue
                got = kcapi_hashlib.new(name, b"abc")
                if name.startswith("shake"):
                    assert got.digest(16) == expected.digest(16), name
                else:
                    assert got.digest() == expected.digest(), name
                assert got.name == expected.name or got.name == kcapi_hashlib._hashes.canonical_name(name), name
    finally:
        kcapi_hashlib.set_policy(previous)


def test_hmac_class_is_subclassable_after_install() -> None:
    with kcapi_hashlib.patched():

        class Tagged(hmac.HMAC):
            def tag(self) -> str:
                return "t:" + self.hexdigest()

        t = Tagged(b"k", b"m", "sha256")
        assert isinstance(t, khmac.HMAC)
        assert t.tag() == "t:" + t.copy().hexdigest()
        assert type(t.copy()) is Tagged
    assert t.hexdigest() == hmac.new(b"k", b"m", "sha256").hexdigest()


@pytest.mark.parametrize("which", ["stdlib", "ours"])
def test_digestmod_is_either_librarys_constructor(which: str) -> None:
    ctor = STDLIB_SHA256 if which == "stdlib" else kcapi_hashlib.sha256
    before = _afalg.kernel_operations()
    assert khmac.new(b"key", b"msg", ctor).digest() == hmac.new(b"key", b"msg", STDLIB_SHA256).digest()
    assert khmac.digest(b"key", b"msg", ctor) == hmac.digest(b"key", b"msg", STDLIB_SHA256)
    assert _afalg.kernel_operations() > before
    assert khmac.new(b"key", b"msg", ctor)._hmac is not None  # the kernel's hmac(sha256), not RFC 2104 by hand


def test_the_wrapper_adds_no_syscall() -> None:
    from tests.support.syscalls import steady_state

    wrapped = steady_state("import kcapi_hashlib as h", "h.sha256(b'abc').digest()")
    bare = steady_state("import kcapi_hashlib as h\nf = h.sha256.__wrapped__", "f(b'abc').digest()")
    assert wrapped.per_op == bare.per_op, (wrapped, bare)


# hashlib's names that are classes here (blake2b/blake2s always; sha3/shake where hashlib takes them from _sha3)
HASHLIB_TYPES = [n for n in HASHLIB_NAMES if isinstance(getattr(hashlib, n, None), type)]  # file_digest: 3.11+


@pytest.mark.parametrize("name", HASHLIB_TYPES)
def test_isinstance_against_hashlib_types_works_after_install(name: str) -> None:
    """`isinstance(h, hashlib.blake2b)`: a plain function there made isinstance() raise TypeError."""
    from kcapi_hashlib._algorithms import BY_NAME

    original = getattr(hashlib, name)
    made_before = original()
    other = "blake2s" if name != "blake2s" else "blake2b"
    other_before = getattr(hashlib, other)()
    kernel_row = BY_NAME[name].kernel
    in_kernel = kernel_row is not None and _afalg.probe("hash", kernel_row) is None
    attrs = {a: getattr(original, a) for a in ("MAX_DIGEST_SIZE", "MAX_KEY_SIZE", "SALT_SIZE", "PERSON_SIZE")
             if hasattr(original, a)}  # fmt: skip
    previous = kcapi_hashlib.set_policy("fallback")  # blake2s: the kernel dropped its shash in 5.19
    try:
        with kcapi_hashlib.patched(), warnings.catch_warnings():
            warnings.simplefilter("ignore", kcapi_hashlib.KernelFallbackWarning)
            ctor = getattr(hashlib, name)
            assert ctor is not original
            before = _afalg.kernel_operations()
            h = ctor(b"abc")
            assert h.hexdigest() == original(b"abc").hexdigest()
            if in_kernel:
                assert _afalg.kernel_operations() > before  # the kernel's hash, not the original class
            assert isinstance(h, ctor) and isinstance(hashlib.new(name), ctor)
            assert isinstance(made_before, ctor) and issubclass(original, ctor)
            assert not isinstance(hashlib.sha256(), ctor) and not isinstance(other_before, ctor)
            assert {a: getattr(ctor, a) for a in attrs} == attrs  # class attributes read through it
            assert (ctor.digest_size, ctor.block_size) == (h.digest_size, h.block_size)

            class Holder:
                digest = ctor  # stored on a class, it does not bind (the Django pattern)

            assert Holder().digest(b"abc").digest() == h.digest()
            assert pickle.loads(pickle.dumps(ctor)) is ctor and copy.deepcopy(ctor) is ctor
            with pytest.raises(TypeError, match=r"cannot be subclassed after kcapi_hashlib\.install"):
                exec("class Sub(ctor): pass", {"ctor": ctor})
    finally:
        kcapi_hashlib.set_policy(previous)
    assert getattr(hashlib, name) is original
