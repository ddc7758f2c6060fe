"""MD4, computed by the kernel (its md4 hash): a drop-in for PyCryptodome's ``Crypto.Hash.MD4``. MD4 is broken;
it is here because deployed code still computes it (NTLM, rsync) and strict mode must not send it to userspace."""

from __future__ import annotations

from ._base import PlainHash, module_api


class MD4Hash(PlainHash, alg="md4"):
    """A MD4 hash object. Do not instantiate directly: use :func:`new`."""

    oid = "1.2.840.113549.2.4"  # PyCryptodome's (the table has none: hmac never needs to identify MD4 objects)


new, digest_size, block_size = module_api(MD4Hash)

__all__ = ["MD4Hash", "new", "digest_size", "block_size"]
