"""install() / uninstall() / patched(): put kcapi_hashlib in place of hashlib (and hmac, Crypto.*) for code
that imports them afterwards and for modules that already hold a reference.

The target modules are patched in place, attribute by attribute, so `import hashlib` done before or after
install() sees kernel constructors; names imported with `from hashlib import sha256` into other modules are
found and replaced too. uninstall() puts back exactly what was there.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading
from types import ModuleType
from typing import Any, Iterator

from . import _gates
from ._algorithms import ROWS
from ._callable import builtin


def _hash_modules() -> list[tuple[str, str]]:
    """Crypto.Hash.<M> -> kcapi_hashlib.Hash.<M> for every hash module of the algorithm table (kcapi_hashlib's
    _algorithms.ROWS: `module`, or `mirror_module` where the module is no plain new(data) one, e.g. BLAKE2b),
    for the hashes the kernel has (the others have no kcapi_hashlib.Hash module: SHA-512/t is SHA512's)."""
    out: list[tuple[str, str]] = []
    for row in ROWS:
        name = row.module or row.mirror_module
        if row.kernel is None or not name:
            continue
        pair = (f"Crypto.Hash.{name}", f"kcapi_hashlib.Hash.{name}")
        if pair not in out:
            out.append(pair)
    return out


# target module -> our module that replaces its public names.
REPLACEMENTS: list[tuple[str, str]] = [
    ("hashlib", "kcapi_hashlib"),
    ("hmac", "kcapi_hashlib.hmac"),
    ("Crypto.Hash", "kcapi_hashlib.Hash"),
    ("Crypto.Hash.HMAC", "kcapi_hashlib.Hash.HMAC"),
    ("Crypto.Hash.CMAC", "kcapi_hashlib.Hash.CMAC"),
    *_hash_modules(),
    ("Crypto.Protocol.KDF", "kcapi_hashlib.Protocol.KDF"),
    ("Crypto.Cipher.AES", "kcapi_hashlib.Cipher.AES"),
    ("Crypto.Cipher.DES3", "kcapi_hashlib.Cipher.DES3"),
    ("Crypto.Cipher.DES", "kcapi_hashlib.Cipher.DES"),
    ("Crypto.Cipher.Blowfish", "kcapi_hashlib.Cipher.Blowfish"),
    ("Crypto.Cipher.CAST", "kcapi_hashlib.Cipher.CAST"),
    ("Crypto.Cipher.ARC4", "kcapi_hashlib.Cipher.ARC4"),
    ("Crypto.Cipher.ChaCha20", "kcapi_hashlib.Cipher.ChaCha20"),
    ("Crypto.Cipher.ChaCha20_Poly1305", "kcapi_hashlib.Cipher.ChaCha20_Poly1305"),
    ("Crypto.Random", "kcapi_hashlib.Random"),
]
# pycryptodomex installs the same modules as Cryptodome.* (deployed code imports either): both are replaced.
REPLACEMENTS += [("Cryptodome" + t[len("Crypto") :], ours) for t, ours in REPLACEMENTS if t.startswith("Crypto.")]

_MISSING = object()
# Serializes install() and uninstall() and protects _saved. Taken by try/acquire/finally with the release inline,
# never by `with` (kcapi_hashlib/_afalg/accounting.py says why).
_lock = threading.RLock()
# (module, attribute, original value); restored in reverse order
_saved: list[tuple[ModuleType, str, Any]] = []


class TypeLike(builtin):
    """What install() puts where the original is a class but kcapi_hashlib's replacement is a constructor
    function: hashlib.blake2b and hashlib.blake2s are types (_blake2.blake2b), and so are sha3_*/shake_* where
    hashlib takes them from _sha3. Real code checks `isinstance(h, hashlib.blake2b)` and reads class attributes
    (hashlib.blake2b.MAX_DIGEST_SIZE, SALT_SIZE, ...); a plain function there makes isinstance() raise TypeError
    ("arg 2 must be a type"). isinstance() and issubclass() consult __instancecheck__/__subclasscheck__ on the
    type of their second argument whatever it is (PyObject_IsInstance), so this callable answers them:

    - isinstance(x, hashlib.blake2b): True for the original type's instances (made before install(), or by a
      fallback) and for kcapi_hashlib's hash objects of that name (what the constructor returns now).
    - issubclass(C, hashlib.blake2b): the original's answer (kcapi_hashlib has one HASH class for every name).
    - other attributes: the replacement's, else the original class's (MAX_DIGEST_SIZE, ...).
    Subclassing it (`class H(hashlib.blake2b)`) raises TypeError saying why: that would hash in userspace unseen."""

    def __new__(cls, func: Any, original: type, name: str, module: str) -> TypeLike:
        return super().__new__(cls, getattr(func, "__wrapped__", func))  # type: ignore[return-value]

    def __init__(self, func: Any, original: type, name: str, module: str) -> None:
        super().__init__(getattr(func, "__wrapped__", func), module, name)
        self.__dict__["_kcapi_replacement"] = func
        self.__dict__["_kcapi_original"] = original

    def __instancecheck__(self, obj: Any) -> bool:
        from ._hashes import HASH

        if isinstance(obj, self.__dict__["_kcapi_original"]):
            return True
        return isinstance(obj, HASH) and getattr(obj, "name", None) == self.__name__

    def __subclasscheck__(self, cls: Any) -> bool:
        return issubclass(cls, self.__dict__["_kcapi_original"])

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[type, ...]:
        raise TypeError(
            f"{self.__module__}.{self.__name__} cannot be subclassed after kcapi_hashlib.install(): it is "
            "kcapi_hashlib's constructor, and a subclass of the original class would hash in userspace unseen"
        )

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_kcapi_"):
            raise AttributeError(attr)
        try:
            return getattr(self.__dict__["_kcapi_replacement"], attr)
        except AttributeError:
            return getattr(self.__dict__["_kcapi_original"], attr)


def _replacement_for(target: ModuleType, name: str, original: Any, replacement: Any) -> Any:
    if isinstance(original, type) and not isinstance(replacement, type) and callable(replacement):
        return TypeLike(replacement, original, name, target.__name__)
    return replacement


def _public_names(ours: ModuleType, target: ModuleType) -> list[str]:
    names: list[str] = list(getattr(ours, "_REPLACES", None) or getattr(ours, "__all__", None) or ())
    # Only names the target has: install() must not invent API the real module lacks.
    return [n for n in names if hasattr(target, n)]


def _set(module: ModuleType, name: str, value: Any) -> None:
    _saved.append((module, name, getattr(module, name, _MISSING)))
    setattr(module, name, value)


def _unset(module: ModuleType, name: str) -> None:
    _saved.append((module, name, getattr(module, name)))
    delattr(module, name)


# hashlib's sets of names, which kcapi_hashlib computes by binding every algorithm: install() leaves them to a
# module __getattr__ (PEP 562) in hashlib, so that nothing is bound until a program looks at them.
_LAZY_SETS = ("algorithms_available", "algorithms_guaranteed")


def _hashlib_getattr(name: str) -> Any:
    """hashlib.__getattr__ while installed: kcapi_hashlib's algorithms_available/algorithms_guaranteed, computed
    when asked for (each look probes, as kcapi_hashlib's own do)."""
    if name in _LAZY_SETS:
        from ._hashes import algorithm_names  # not from the package, whose __getattr__ loads this module

        return algorithm_names(name)
    raise AttributeError(f"module 'hashlib' has no attribute {name!r}")


def install() -> None:
    """Replace hashlib (and the other mirrored modules that are importable) with kcapi_hashlib's. All or nothing:
    if any step fails (a module of ours that does not import, say), everything this call replaced is put back
    before the exception propagates, and installed() stays False. Nothing is bound in the kernel here: each
    algorithm is bound when the program first uses it."""
    lock = _lock
    try:  # not `with`: see accounting.py
        lock.acquire()
        if _saved:
            return
        try:
            _install()
        except BaseException:
            _restore()
            raise
    finally:
        try:
            lock.release()
        except RuntimeError as e:  # un-acquired: see accounting.py
            if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                raise  # a signal handler's, raised after release() returned


def _install() -> None:
    """install()'s work, under _lock."""
    swaps: dict[int, tuple[str, Any, Any]] = {}
    for target_name, ours_name in REPLACEMENTS:
        try:
            target = importlib.import_module(target_name)
        except ImportError:
            continue  # e.g. PyCryptodome not installed: nothing to replace
        ours = importlib.import_module(ours_name)
        names = _public_names(ours, target)  # before hashlib's sets go: hasattr() would then compute them
        if target_name == "hashlib":
            for name in _LAZY_SETS:
                if name in names:
                    _unset(target, name)
            _set(target, "__getattr__", _hashlib_getattr)
        for name in names:
            if target_name == "hashlib" and name in _LAZY_SETS:
                continue
            original = getattr(target, name)
            replacement = getattr(ours, name)
            if original is replacement:
                continue
            replacement = _replacement_for(target, name, original, replacement)
            _set(target, name, replacement)
            if callable(original) and not isinstance(original, type):
                swaps[id(original)] = (name, original, replacement)
    # What those modules' packages have and the kernel does not serve here (ARC4, MD4, scrypt, ...): behind
    # the policy, so that strict never computes in userspace unseen (kcapi_hashlib._gates).
    for target_name, kind, algorithm, reason, attrs in _gates.GATES:
        for prefix in ("Crypto", "Cryptodome"):
            try:
                target = importlib.import_module(prefix + target_name[len("Crypto") :])
            except ImportError:
                continue
            for name, replacement in _gates.gates_for(target, attrs, kind, algorithm, reason):
                original = getattr(target, name)
                _set(target, name, replacement)
                swaps[id(original)] = (name, original, replacement)
    # Modules that did `from hashlib import sha256` hold the original function: replace those too. Only a
    # reference under the same name counts, and never in the module that defines the object: the same
    # object can be something else elsewhere (PyCryptodome's get_random_bytes IS os.urandom; hashlib.sha256
    # IS _hashlib.openssl_sha256), and those must stay as they are.
    targets = {name for name, _ in REPLACEMENTS}
    targets |= {prefix + g[0][len("Crypto") :] for g in _gates.GATES for prefix in ("Crypto", "Cryptodome")}
    for mod_name, mod in list(sys.modules.items()):
        if mod is None or mod_name in targets or mod_name.startswith("kcapi_hashlib"):
            continue
        try:
            namespace = vars(mod)
        except TypeError:
            continue
        for attr, value in list(namespace.items()):
            hit = swaps.get(id(value))
            if hit is None or hit[1] is not value or hit[0] != attr:
                continue
            if getattr(value, "__module__", None) == mod_name:
                continue
            _set(mod, attr, hit[2])


def uninstall() -> None:
    """Restore every attribute install() replaced."""
    lock = _lock
    try:  # not `with`: see accounting.py
        lock.acquire()
        _restore()
    finally:
        try:
            lock.release()
        except RuntimeError as e:  # un-acquired: see accounting.py
            if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                raise  # a signal handler's, raised after release() returned


def _restore() -> None:
    """Put back what _saved holds, last first (under _lock)."""
    while _saved:
        module, name, original = _saved.pop()
        if original is _MISSING:
            # (not there if a signal handler's exception landed between _set's record and its setattr)
            if name in vars(module):
                delattr(module, name)
        else:
            setattr(module, name, original)


def installed() -> bool:
    return bool(_saved)


@contextlib.contextmanager
def patched() -> Iterator[None]:
    """with kcapi_hashlib.patched(): ... — install() for the block, uninstall() after (if it installed)."""
    was = installed()
    install()
    try:
        yield
    finally:
        if not was:
            uninstall()
