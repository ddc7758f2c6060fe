"""SHA-256, computed by the kernel: a drop-in for PyCryptodome's ``Crypto.Hash.SHA256``."""

from __future__ import annotations

from ._base import PlainHash, digest_function, module_api


class SHA256Hash(PlainHash, alg="sha256"):
    """A SHA-256 hash object. Do not instantiate directly: use :func:`new`."""


new, digest_size, block_size = module_api(SHA256Hash)
digest = digest_function(SHA256Hash)

__all__ = ["SHA256Hash", "new", "digest", "digest_size", "block_size"]
