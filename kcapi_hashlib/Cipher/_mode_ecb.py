"""Electronic Code Book (ECB) on the kernel's ecb(<cipher>): PyCryptodome's EcbMode.

Each call sends the data (whole blocks) as complete messages of at most max_message() bytes, each carrying
its op: ECB has no chaining state, so encrypt and decrypt may be mixed freely, as in PyCryptodome.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Optional

from .._afalg import Tfm
from ._common import Buffer, CipherMethods, Writable, io_views, kernel, run_blocks

__all__ = ["EcbMode"]


def _no_iv(src: memoryview, out: memoryview, end: int) -> bytes:
    raise AssertionError("ECB has no IV")  # pragma: no cover - blocks() asks only when iv is not None


class EcbMode(CipherMethods):
    """*Electronic Code Book (ECB)*, NIST SP 800-38A section 6.1: every block enciphered on its own."""

    def __init__(self, alg: Tfm, block_size: int) -> None:
        self.block_size = block_size
        self._alg = alg

    def _crypt(self, encrypt: bool, data: Buffer, output: Optional[Writable]) -> Optional[bytes]:
        """Whole blocks; c.encrypt(a) + c.encrypt(b) == c.encrypt(a + b)."""
        src, dst = io_views(data, output, quirk=not encrypt)
        if len(src) % self.block_size:
            raise ValueError("Data must be aligned to block boundary in ECB mode")
        return run_blocks(self._alg, encrypt, None, src, dst, _no_iv)


def _create_ecb_cipher(factory: ModuleType, **kwargs: Any) -> EcbMode:
    """PyCryptodome's factory: key checked by the cipher module, no other parameter."""
    key = factory._create_base_cipher(kwargs)
    if kwargs:
        raise TypeError(f"Unknown parameters for ECB: {kwargs!s}")
    return EcbMode(kernel(f"ecb({factory._KERNEL})", key, f"{factory._NAME}-ECB"), factory.block_size)
