"""MD5, computed by the kernel: a drop-in for PyCryptodome's ``Crypto.Hash.MD5``."""

from __future__ import annotations

from ._base import PlainHash, module_api


class MD5Hash(PlainHash, alg="md5"):
    """A MD5 hash object. Do not instantiate directly: use :func:`new`."""


new, digest_size, block_size = module_api(MD5Hash)

__all__ = ["MD5Hash", "new", "digest_size", "block_size"]
