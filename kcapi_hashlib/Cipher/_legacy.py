"""What the kernel-served 64-bit block ciphers (DES, Blowfish, CAST) share: PyCryptodome's key check.

PyCryptodome's _create_base_cipher of each pops `key` (TypeError "Missing 'key' parameter"), checks len(key)
against the module's key sizes (ValueError "Incorrect <NAME> key length (N bytes)"), then hands the key to C
code (TypeError "Object type ... cannot be passed to C code" for a str or another non-buffer): the same order
here, so the same error for the same bad key.

The kernel's implementations take the same key lengths: des_setkey 8 bytes (weak keys are accepted, since AF_ALG
never sets CRYPTO_TFM_REQ_FORBID_WEAK_KEYS: crypto_des_verify_key), bf_setkey 4..56 bytes (crypto/blowfish_generic.c,
BF_MIN_KEY_SIZE/BF_MAX_KEY_SIZE), cast5_setkey 5..16 bytes, with the 12 rounds of RFC 2144 for keys of 80 bits
or fewer (crypto/cast5_generic.c: c->rr = key_len <= 10).
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from ._common import key_bytes


def base_key(dict_parameters: dict[str, Any], name: str, sizes: Container[int]) -> bytes:
    """Pop and check the key with PyCryptodome's errors, in its order; returns it as bytes for the kernel."""
    try:
        key = dict_parameters.pop("key")
    except KeyError:
        raise TypeError("Missing 'key' parameter") from None
    if len(key) not in sizes:
        raise ValueError(f"Incorrect {name} key length ({len(key)} bytes)")
    return key_bytes(key)
