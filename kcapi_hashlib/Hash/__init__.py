"""PyCryptodome's ``Crypto.Hash`` API, computed by the kernel.

``from kcapi_hashlib.Hash import SHA256, HMAC, CMAC`` replaces ``from Crypto.Hash import ...``: the same
module names, functions, classes, attributes and errors, with every digest and MAC computed by the kernel's
crypto API (AF_ALG). Algorithms the kernel lacks follow kcapi_hashlib's policy (see kcapi_hashlib.set_policy).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "HMAC",
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


def new(name: str) -> Any:
    """Return a new hash instance, based on its name or
    on its ASN.1 Object ID"""

    name = name.upper()
    if name in ("1.3.14.3.2.26", "SHA1", "SHA-1"):
        from . import SHA1

        return SHA1.new()
    if name in ("2.16.840.1.101.3.4.2.4", "SHA224", "SHA-224"):
        from . import SHA224

        return SHA224.new()
    if name in ("2.16.840.1.101.3.4.2.1", "SHA256", "SHA-256"):
        from . import SHA256

        return SHA256.new()
    if name in ("2.16.840.1.101.3.4.2.2", "SHA384", "SHA-384"):
        from . import SHA384

        return SHA384.new()
    if name in ("2.16.840.1.101.3.4.2.3", "SHA512", "SHA-512"):
        from . import SHA512

        return SHA512.new()
    if name in ("2.16.840.1.101.3.4.2.5", "SHA512-224", "SHA-512-224"):
        from . import SHA512

        return SHA512.new(truncate="224")
    if name in ("2.16.840.1.101.3.4.2.6", "SHA512-256", "SHA-512-256"):
        from . import SHA512

        return SHA512.new(truncate="256")
    if name in ("2.16.840.1.101.3.4.2.7", "SHA3-224", "SHA-3-224"):
        from . import SHA3_224

        return SHA3_224.new()
    if name in ("2.16.840.1.101.3.4.2.8", "SHA3-256", "SHA-3-256"):
        from . import SHA3_256

        return SHA3_256.new()
    if name in ("2.16.840.1.101.3.4.2.9", "SHA3-384", "SHA-3-384"):
        from . import SHA3_384

        return SHA3_384.new()
    if name in ("2.16.840.1.101.3.4.2.10", "SHA3-512", "SHA-3-512"):
        from . import SHA3_512

        return SHA3_512.new()
    else:
        raise ValueError(f"Unknown hash {name!s}")
