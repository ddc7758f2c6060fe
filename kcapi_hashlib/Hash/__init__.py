"""PyCryptodome's ``Crypto.Hash`` API, computed by the kernel.

``from kcapi_hashlib.Hash import SHA256, HMAC, CMAC`` replaces ``from Crypto.Hash import ...``: the same
module names, functions, classes, attributes and errors, with every digest and MAC computed by the kernel's
crypto API (AF_ALG). Algorithms the kernel lacks follow kcapi_hashlib's policy (see kcapi_hashlib.set_policy).
"""

from __future__ import annotations

import importlib
from typing import Any

from .._algorithms import ROWS
from .._callable import as_builtin

__all__ = [
    "HMAC",
    "MD4",
    "MD5",
    "RIPEMD160",
    "SHA1",
    "SHA224",
    "SHA256",
    "SHA384",
    "SHA512",
    "SHA3_224",
    "SHA3_256",
    "SHA3_384",
    "SHA3_512",
    "BLAKE2b",
    "CMAC",
]

# install() patches only these into Crypto.Hash (the submodules are patched one by one).
_REPLACES = ["new"]


@as_builtin()
def new(name: str) -> Any:
    """Return a new hash instance, based on its name or
    on its ASN.1 Object ID"""

    name = name.upper()
    for row in ROWS:
        if row.crypto_new and name in (row.oid, *row.crypto_new):
            module = importlib.import_module(f"{__name__}.{row.module}")
            return module.new(truncate=row.truncate) if row.truncate else module.new()
    raise ValueError(f"Unknown hash {name!s}")
