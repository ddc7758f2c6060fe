"""Blowfish on the kernel's blowfish: a drop-in for PyCryptodome's Crypto.Cipher.Blowfish.

Modes ECB, CBC, CTR (kernel ecb/cbc/ctr(blowfish)), CFB and OFB (composed from them, see their modules); OpenPGP
and EAX follow the policy (kcapi_hashlib.Cipher's docstring), as does the whole cipher where the kernel cannot
bind blowfish (not on Linux 7.3's af_alg_restrict allowlist). Keys are 4 to 56 bytes, as PyCryptodome.
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
key_size: range = range(4, 56 + 1)

_NAME = "Blowfish"
_KERNEL = "blowfish"
_PYCRYPTODOME = "Crypto.Cipher.Blowfish"


def _create_base_cipher(dict_parameters: dict[str, Any]) -> bytes:
    return base_key(dict_parameters, _NAME, key_size)


@as_builtin()
def new(key: Buffer, mode: int, *args: Any, **kwargs: Any) -> Any:
    """Create a new Blowfish cipher, as Crypto.Cipher.Blowfish.new (key: 4 to 56 bytes)."""
    return _create_cipher(sys.modules[__name__], key, mode, *args, **kwargs)


__all__ = [
    "new", "block_size", "key_size",
    "MODE_ECB", "MODE_CBC", "MODE_CFB", "MODE_OFB", "MODE_CTR", "MODE_OPENPGP", "MODE_EAX",
]  # fmt: skip
_REPLACES = ["new", "MODE_ECB", "MODE_CBC", "MODE_CFB", "MODE_OFB", "MODE_CTR", "MODE_OPENPGP", "MODE_EAX"]
