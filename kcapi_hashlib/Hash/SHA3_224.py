"""SHA3-224, computed by the kernel: a drop-in for PyCryptodome's ``Crypto.Hash.SHA3_224``."""

from __future__ import annotations

from ._base import SHA3Base, digest_function, sha3_module_api


class SHA3_224_Hash(SHA3Base, alg="sha3_224"):
    """A SHA3-224 hash object. Do not instantiate directly: use :func:`new`."""


new, digest_size, block_size = sha3_module_api(SHA3_224_Hash)
digest = digest_function(SHA3_224_Hash)

__all__ = ["SHA3_224_Hash", "new", "digest", "digest_size", "block_size"]
