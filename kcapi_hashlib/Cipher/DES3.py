"""Triple DES on the kernel's des3_ede: a drop-in for PyCryptodome's Crypto.Cipher.DES3.

Modes ECB, CBC, CTR (kernel ecb/cbc/ctr(des3_ede)), CFB and OFB (composed from them, see their modules);
OpenPGP and EAX follow the policy (kcapi_hashlib.Cipher's docstring). Keys are 16 or 24 bytes with
PyCryptodome's parity adjustment and degeneracy check; a 16-byte (two-key) key K1 || K2 is given to the
kernel, which takes only 24-byte keys (des3_ede_setkey), as K1 || K2 || K1, the same cipher.
"""

from __future__ import annotations

from typing import Any

from .._callable import as_builtin
from . import MODE_CBC, MODE_CFB, MODE_CTR, MODE_EAX, MODE_ECB, MODE_OFB, MODE_OPENPGP
from ._common import key_bytes
from ._legacy import REPLACES, declare, pop_key

#: Size of a data block (in bytes)
block_size: int = 8
#: Size of a key (in bytes)
key_size: tuple[int, int] = (16, 24)

_NAME, _KERNEL, _PYCRYPTODOME = "DES3", "des3_ede", "Crypto.Cipher.DES3"


@as_builtin()
def adjust_key_parity(key_in: bytes) -> bytes:
    """Set the parity bits in a TDES key (PyCryptodome's DES3.adjust_key_parity).

    Raises ValueError if the key is not 16 or 24 bytes long, or if it degenerates into single DES."""

    def parity_byte(key_byte: int) -> int:
        parity = 1
        for i in range(1, 8):
            parity ^= (key_byte >> i) & 1
        return (key_byte & 0xFE) | parity

    if len(key_in) not in key_size:
        raise ValueError("Not a valid TDES key")

    key_out = b"".join([bytes([parity_byte(x)]) for x in key_in])

    if key_out[:8] == key_out[8:16] or key_out[-16:-8] == key_out[-8:]:
        raise ValueError("Triple DES key degenerates to single DES")

    return key_out


def _tobytes(s: Any) -> bytes:
    """Crypto.Util._bytes.tobytes: a str is encoded as latin-1."""
    if isinstance(s, bytes):
        return s
    if isinstance(s, str):
        return s.encode("latin-1")
    if isinstance(s, (bytearray, memoryview)):
        return bytes(s)
    raise TypeError(f"Expected a string or a bytes-like object, not {type(s).__name__}")


def _create_base_cipher(dict_parameters: dict[str, Any]) -> bytes:
    """Pop and check the key with PyCryptodome's errors; returns the 24-byte key the kernel takes."""
    key = adjust_key_parity(_tobytes(pop_key(dict_parameters)))
    if len(key) == 16:
        key = key + key[:8]  # two-key TDES: K3 = K1
    return key_bytes(key)


new = declare(
    __name__, "Create a new Triple DES cipher, as Crypto.Cipher.DES3.new (key: 16 or 24 bytes, parity ignored)."
)

__all__ = [
    "new", "adjust_key_parity", "block_size", "key_size",
    "MODE_ECB", "MODE_CBC", "MODE_CFB", "MODE_OFB", "MODE_CTR", "MODE_OPENPGP", "MODE_EAX",
]  # fmt: skip
# install() replaces only these in Crypto.Cipher.DES3 (adjust_key_parity behaves the same in both).
_REPLACES = REPLACES
