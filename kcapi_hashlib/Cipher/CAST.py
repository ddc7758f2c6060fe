"""CAST-128 (RFC 2144) on the kernel's cast5: a drop-in for PyCryptodome's Crypto.Cipher.CAST.

Modes ECB, CBC, CTR (kernel ecb/cbc/ctr(cast5)), CFB and OFB (composed from them, see their modules); OpenPGP
and EAX follow the policy (kcapi_hashlib.Cipher's docstring), as does the whole cipher where the kernel cannot
bind cast5 (not on Linux 7.3's af_alg_restrict allowlist). Keys are 5 to 16 bytes, as PyCryptodome.
"""

from __future__ import annotations

import sys
from typing import Any, Union

from .._callable import as_builtin
from . import _create_cipher
from ._legacy import base_key

Buffer = Union[bytes, bytearray, memoryview]

MODE_ECB = 1
MODE_CBC = 2
MODE_CFB = 3
MODE_OFB = 5
MODE_CTR = 6
MODE_OPENPGP = 7
MODE_EAX = 9

#: Size of a data block (in bytes)
block_size: int = 8
#: Size of a key (in bytes)
key_size: range = range(5, 16 + 1)

_NAME = "CAST"
_KERNEL = "cast5"
_PYCRYPTODOME = "Crypto.Cipher.CAST"


def _create_base_cipher(dict_parameters: dict[str, Any]) -> bytes:
    return base_key(dict_parameters, _NAME, key_size)


@as_builtin()
def new(key: Buffer, mode: int, *args: Any, **kwargs: Any) -> Any:
    """Create a new CAST-128 cipher, as Crypto.Cipher.CAST.new (key: 5 to 16 bytes)."""
    return _create_cipher(sys.modules[__name__], key, mode, *args, **kwargs)


__all__ = [
    "new", "block_size", "key_size",
    "MODE_ECB", "MODE_CBC", "MODE_CFB", "MODE_OFB", "MODE_CTR", "MODE_OPENPGP", "MODE_EAX",
]  # fmt: skip
_REPLACES = ["new", "MODE_ECB", "MODE_CBC", "MODE_CFB", "MODE_OFB", "MODE_CTR", "MODE_OPENPGP", "MODE_EAX"]
