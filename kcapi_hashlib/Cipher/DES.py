"""Single DES on the kernel's des: a drop-in for PyCryptodome's Crypto.Cipher.DES.

Modes ECB, CBC, CTR (kernel ecb/cbc/ctr(des)), CFB and OFB (composed from them, see their modules); OpenPGP and
EAX follow the policy (kcapi_hashlib.Cipher's docstring), as does the whole cipher where the kernel cannot bind
des (Linux 7.3's af_alg_restrict allowlist has only ecb(des) and cbc(des), for CAP_NET_ADMIN). Keys are 8 bytes
(parity bits ignored, weak keys accepted: both as PyCryptodome).
"""

from __future__ import annotations

from . import MODE_CBC, MODE_CFB, MODE_CTR, MODE_EAX, MODE_ECB, MODE_OFB, MODE_OPENPGP
from ._legacy import REPLACES, declare, key_check

#: Size of a data block (in bytes)
block_size: int = 8
#: Size of a key (in bytes)
key_size: int = 8

_NAME, _KERNEL, _PYCRYPTODOME = "DES", "des", "Crypto.Cipher.DES"

_create_base_cipher = key_check(__name__, _NAME, (key_size,))
new = declare(__name__, "Create a new DES cipher, as Crypto.Cipher.DES.new (key: 8 bytes).")

__all__ = [
    "new", "block_size", "key_size",
    "MODE_ECB", "MODE_CBC", "MODE_CFB", "MODE_OFB", "MODE_CTR", "MODE_OPENPGP", "MODE_EAX",
]  # fmt: skip
_REPLACES = REPLACES
