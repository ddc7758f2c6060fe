"""AES on the kernel: a drop-in for PyCryptodome's Crypto.Cipher.AES.

    from kcapi_hashlib.Cipher import AES
    ct = AES.new(key, AES.MODE_CBC, iv).encrypt(data)

Every block operation is done by the kernel's "aes" (through ecb(aes), cbc(aes), ctr(aes), xts(aes), gcm(aes),
ccm(aes)). MODE_XTS (the kernel's xts(aes), IEEE 1619 / NIST SP 800-38E) is beyond PyCryptodome; see
_mode_xts. OpenPGP, EAX, SIV, OCB, KW and KWP follow the policy (kcapi_hashlib.Cipher's docstring).
"""

from __future__ import annotations

import sys
from typing import Any, Union

from .._callable import as_builtin
from . import MODE_XTS, _create_cipher
from ._common import key_bytes

Buffer = Union[bytes, bytearray, memoryview]

MODE_ECB = 1  #: Electronic Code Book
MODE_CBC = 2  #: Cipher-Block Chaining
MODE_CFB = 3  #: Cipher Feedback
MODE_OFB = 5  #: Output Feedback
MODE_CTR = 6  #: Counter mode
MODE_OPENPGP = 7  #: OpenPGP mode (policy: see the module docstring)
MODE_CCM = 8  #: Counter with CBC-MAC
MODE_EAX = 9  #: EAX (policy)
MODE_SIV = 10  #: Synthetic IV (policy)
MODE_GCM = 11  #: Galois Counter Mode
MODE_OCB = 12  #: Offset Code Book (policy)
MODE_KW = 13  #: Key Wrap (policy)
MODE_KWP = 14  #: Key Wrap with Padding (policy)
# MODE_XTS (100): XEX-based tweaked codebook with ciphertext stealing, the kernel's xts(aes).

#: Size of a data block (in bytes)
block_size: int = 16
#: The valid sizes of a key (in bytes)
key_size: tuple[int, int, int] = (16, 24, 32)

# The factory interface the mode modules use (as PyCryptodome's modes use its cipher modules).
_NAME = "AES"
_KERNEL = "aes"  # the kernel's cra_name of the block cipher: modes bind "cbc(aes)" and so on
_PYCRYPTODOME = "Crypto.Cipher.AES"


def _create_base_cipher(dict_parameters: dict[str, Any]) -> bytes:
    """Pop and check the key (and PyCryptodome's use_aesni, meaningless here) from the parameters, with
    PyCryptodome's errors; returns the key as bytes. The kernel transform is made by the mode."""
    dict_parameters.pop("use_aesni", True)
    try:
        key = dict_parameters.pop("key")
    except KeyError:
        raise TypeError("Missing 'key' parameter") from None
    if len(key) not in key_size:
        raise ValueError(f"Incorrect AES key length ({len(key)} bytes)")
    return key_bytes(key)


@as_builtin()
def new(key: Buffer, mode: int, *args: Any, **kwargs: Any) -> Any:
    """Create a new AES cipher, as Crypto.Cipher.AES.new.

    Args:
      key: 16, 24 or 32 bytes (AES-128/192/256); for MODE_XTS 32 or 64 (two keys).
      mode: a MODE_* constant.

    Keyword Args (by mode, as PyCryptodome):
      iv / IV (CBC, CFB, OFB), nonce (CTR, GCM, CCM), segment_size (CFB), initial_value and counter (CTR),
      mac_len (GCM, CCM), msg_len and assoc_len (CCM), use_aesni and threads (accepted; the kernel decides),
      tweak (XTS: 16 bytes, or the data unit sequence number as an int).
    """
    kwargs["add_aes_modes"] = True
    return _create_cipher(sys.modules[__name__], key, mode, *args, **kwargs)


# install() replaces these names in Crypto.Cipher.AES (only those it has).
__all__ = [
    "new", "block_size", "key_size",
    "MODE_ECB", "MODE_CBC", "MODE_CFB", "MODE_OFB", "MODE_CTR", "MODE_OPENPGP", "MODE_CCM", "MODE_EAX",
    "MODE_SIV", "MODE_GCM", "MODE_OCB", "MODE_KW", "MODE_KWP", "MODE_XTS",
]  # fmt: skip
