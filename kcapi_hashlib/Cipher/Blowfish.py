"""Blowfish on the kernel's blowfish: a drop-in for PyCryptodome's Crypto.Cipher.Blowfish.

Modes ECB, CBC, CTR (kernel ecb/cbc/ctr(blowfish)), CFB and OFB (composed from them, see their modules); OpenPGP
and EAX follow the policy (kcapi_hashlib.Cipher's docstring), as does the whole cipher where the kernel cannot
bind blowfish (not on Linux 7.3's af_alg_restrict allowlist). Keys are 4 to 56 bytes, as PyCryptodome.
"""

from __future__ import annotations

from . import MODE_CBC, MODE_CFB, MODE_CTR, MODE_EAX, MODE_ECB, MODE_OFB, MODE_OPENPGP
from ._legacy import REPLACES, declare, key_check

#: Size of a data block (in bytes)
block_size: int = 8
#: Size of a key (in bytes)
key_size: range = range(4, 56 + 1)

_NAME, _KERNEL, _PYCRYPTODOME = "Blowfish", "blowfish", "Crypto.Cipher.Blowfish"

_create_base_cipher = key_check(__name__, _NAME, key_size)
new = declare(__name__, "Create a new Blowfish cipher, as Crypto.Cipher.Blowfish.new (key: 4 to 56 bytes).")

__all__ = [
    "new", "block_size", "key_size",
    "MODE_ECB", "MODE_CBC", "MODE_CFB", "MODE_OFB", "MODE_CTR", "MODE_OPENPGP", "MODE_EAX",
]  # fmt: skip
_REPLACES = REPLACES
