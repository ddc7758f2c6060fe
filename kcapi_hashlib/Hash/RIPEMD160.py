"""RIPEMD-160, computed by the kernel: a drop-in for PyCryptodome's ``Crypto.Hash.RIPEMD160``."""

from __future__ import annotations

from ._base import PlainHash, module_api


class RIPEMD160Hash(PlainHash, alg="ripemd160"):
    """A RIPEMD-160 hash object. Do not instantiate directly: use :func:`new`."""


new, digest_size, block_size = module_api(RIPEMD160Hash)

__all__ = ["RIPEMD160Hash", "new", "digest_size", "block_size"]
