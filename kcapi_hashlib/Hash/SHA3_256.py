"""SHA3-256, computed by the kernel: a drop-in for PyCryptodome's ``Crypto.Hash.SHA3_256``."""

from __future__ import annotations

from ._base import SHA3Base, digest_function, sha3_module_api


class SHA3_256_Hash(SHA3Base, alg="sha3_256"):
    """A SHA3-256 hash object. Do not instantiate directly: use :func:`new`."""


new, digest_size, block_size = sha3_module_api(SHA3_256_Hash)
digest = digest_function(SHA3_256_Hash)

__all__ = ["SHA3_256_Hash", "new", "digest", "digest_size", "block_size"]
