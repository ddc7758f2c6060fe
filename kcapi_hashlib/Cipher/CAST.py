"""CAST-128 (RFC 2144) on the kernel's cast5: a drop-in for PyCryptodome's Crypto.Cipher.CAST.

Modes ECB, CBC, CTR (kernel ecb/cbc/ctr(cast5)), CFB and OFB (composed from them, see their modules); OpenPGP
and EAX follow the policy (kcapi_hashlib.Cipher's docstring), as does the whole cipher where the kernel cannot
bind cast5 (not on Linux 7.3's af_alg_restrict allowlist). Keys are 5 to 16 bytes, as PyCryptodome.
"""

from __future__ import annotations

from . import MODE_CBC, MODE_CFB, MODE_CTR, MODE_EAX, MODE_ECB, MODE_OFB, MODE_OPENPGP
from ._legacy import REPLACES, declare, key_check

#: Size of a data block (in bytes)
block_size: int = 8
#: Size of a key (in bytes)
key_size: range = range(5, 16 + 1)

_NAME, _KERNEL, _PYCRYPTODOME = "CAST", "cast5", "Crypto.Cipher.CAST"

_create_base_cipher = key_check(__name__, _NAME, key_size)
new = declare(__name__, "Create a new CAST-128 cipher, as Crypto.Cipher.CAST.new (key: 5 to 16 bytes).")

__all__ = [
    "new", "block_size", "key_size",
    "MODE_ECB", "MODE_CBC", "MODE_CFB", "MODE_OFB", "MODE_CTR", "MODE_OPENPGP", "MODE_EAX",
]  # fmt: skip
_REPLACES = REPLACES
