"""SHA-384, computed by the kernel: a drop-in for PyCryptodome's ``Crypto.Hash.SHA384``."""

from __future__ import annotations

from ._base import PlainHash, digest_function, module_api


class SHA384Hash(PlainHash, alg="sha384"):
    """A SHA-384 hash object. Do not instantiate directly: use :func:`new`."""


new, digest_size, block_size = module_api(SHA384Hash)
digest = digest_function(SHA384Hash)

__all__ = ["SHA384Hash", "new", "digest", "digest_size", "block_size"]
