"""SHA-224, computed by the kernel: a drop-in for PyCryptodome's ``Crypto.Hash.SHA224``."""

from __future__ import annotations

from ._base import PlainHash, digest_function, module_api


class SHA224Hash(PlainHash, alg="sha224"):
    """A SHA-224 hash object. Do not instantiate directly: use :func:`new`."""


new, digest_size, block_size = module_api(SHA224Hash)
digest = digest_function(SHA224Hash)

__all__ = ["SHA224Hash", "new", "digest", "digest_size", "block_size"]
