"""What the kernel-served legacy ciphers (DES, Triple DES, Blowfish, CAST; ARC4's key check) share.

DES.py, DES3.py, Blowfish.py and CAST.py are declarations: each states its sizes (block_size, key_size) and names
(_NAME: PyCryptodome's; _KERNEL: the kernel's cra_name the modes bind, as "cbc(des)"; _PYCRYPTODOME: the module it
stands in for), takes Cipher's MODE_* values (PyCryptodome's), and gets from here what the mode modules call:
_create_base_cipher (key_check) and new (declare), PyCryptodome's new(key, mode, *args, **kwargs).

PyCryptodome's _create_base_cipher of each pops `key` (TypeError "Missing 'key' parameter"), checks len(key)
against the module's key sizes (ValueError "Incorrect <NAME> key length (N bytes)"), then hands the key to C
code (TypeError "Object type ... cannot be passed to C code" for a str or another non-buffer): the same order
here, so the same error for the same bad key. (DES3 checks its key with adjust_key_parity instead, as PyCryptodome.)

The kernel's implementations take the same key lengths: des_setkey 8 bytes (weak keys are accepted, since AF_ALG
never sets CRYPTO_TFM_REQ_FORBID_WEAK_KEYS: crypto_des_verify_key), bf_setkey 4..56 bytes (crypto/blowfish_generic.c,
BF_MIN_KEY_SIZE/BF_MAX_KEY_SIZE), cast5_setkey 5..16 bytes, with the 12 rounds of RFC 2144 for keys of 80 bits
or fewer (crypto/cast5_generic.c: c->rr = key_len <= 10).
"""

from __future__ import annotations

import sys
from collections.abc import Container, Iterable, Sized
from typing import Any, Callable, Protocol, Union

from .._callable import make_builtin
from . import _create_cipher
from ._common import key_bytes

Buffer = Union[bytes, bytearray, memoryview]

#: What install() replaces in PyCryptodome's module of a 64-bit block cipher: new and the modes it has.
REPLACES = ["new", "MODE_ECB", "MODE_CBC", "MODE_CFB", "MODE_OFB", "MODE_CTR", "MODE_OPENPGP", "MODE_EAX"]


class NewFunction(Protocol):
    def __call__(self, key: Buffer, mode: int, *args: Any, **kwargs: Any) -> Any: ...


def check_length(key: Sized, name: str, sizes: Union[Container[int], Iterable[int]]) -> None:
    """PyCryptodome's key length check and message (len() first: a key without one is its TypeError)."""
    if len(key) not in sizes:
        raise ValueError(f"Incorrect {name} key length ({len(key)} bytes)")


def pop_key(dict_parameters: dict[str, Any]) -> Any:
    """The `key` parameter, popped as PyCryptodome's _create_base_cipher does (unchecked)."""
    try:
        return dict_parameters.pop("key")
    except KeyError:
        raise TypeError("Missing 'key' parameter") from None


def base_key(dict_parameters: dict[str, Any], name: str, sizes: Container[int]) -> bytes:
    """Pop and check the key with PyCryptodome's errors, in its order; returns it as bytes for the kernel."""
    key = pop_key(dict_parameters)
    check_length(key, name, sizes)
    return key_bytes(key)


def key_check(module: str, name: str, sizes: Container[int]) -> Callable[[dict[str, Any]], bytes]:
    """The _create_base_cipher of cipher module `module` (its __name__): base_key for `name` (PyCryptodome's name,
    as its messages say it)."""

    def _create_base_cipher(dict_parameters: dict[str, Any]) -> bytes:
        return base_key(dict_parameters, name, sizes)

    _create_base_cipher.__module__ = module
    _create_base_cipher.__qualname__ = "_create_base_cipher"
    return _create_base_cipher


def declare(module: str, doc: str) -> NewFunction:
    """The new() of cipher module `module` (its __name__): PyCryptodome's dispatcher (Cipher._create_cipher) over
    the module's own declaration, a builtin-like callable named `module`.new with docstring `doc`."""

    def new(key: Buffer, mode: int, *args: Any, **kwargs: Any) -> Any:
        return _create_cipher(sys.modules[module], key, mode, *args, **kwargs)

    new.__doc__ = doc
    new.__module__, new.__qualname__ = module, "new"  # as a def in `module` would be (TypeError messages say it)
    return make_builtin(new)
