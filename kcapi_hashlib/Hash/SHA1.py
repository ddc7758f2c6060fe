"""SHA-1, computed by the kernel: a drop-in for PyCryptodome's ``Crypto.Hash.SHA1``."""

from __future__ import annotations

from ._base import PlainHash, module_api


class SHA1Hash(PlainHash, alg="sha1"):
    """A SHA-1 hash object. Do not instantiate directly: use :func:`new`."""


new, digest_size, block_size = module_api(SHA1Hash)

__all__ = ["SHA1Hash", "new", "digest_size", "block_size"]
