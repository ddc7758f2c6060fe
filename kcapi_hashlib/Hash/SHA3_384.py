"""SHA3-384, computed by the kernel: a drop-in for PyCryptodome's ``Crypto.Hash.SHA3_384``."""

from __future__ import annotations

from ._base import SHA3Base, digest_function, sha3_module_api


class SHA3_384_Hash(SHA3Base, alg="sha3_384"):
    """A SHA3-384 hash object. Do not instantiate directly: use :func:`new`."""


new, digest_size, block_size = sha3_module_api(SHA3_384_Hash)
digest = digest_function(SHA3_384_Hash)

__all__ = ["SHA3_384_Hash", "new", "digest", "digest_size", "block_size"]
