"""AES on the kernel: a drop-in for PyCryptodome's Crypto.Cipher.AES.

    from kcapi_hashlib.Cipher import AES
    ct = AES.new(key, AES.MODE_CBC, iv).encrypt(data)

Every block operation is done by the kernel's "aes" (through ecb(aes), cbc(aes), ctr(aes), xts(aes), gcm(aes),
ccm(aes)). MODE_XTS (the kernel's xts(aes), IEEE 1619 / NIST SP 800-38E) is PyCryptodome 4.5's (16, _mode_xts45)
whatever is installed; kcapi_hashlib's older API is MODE_XTS_UNITS (100, _mode_xts): see kcapi_hashlib.Cipher.
OpenPGP, EAX, SIV, OCB, KW, KWP and GCM-SIV follow the policy (kcapi_hashlib.Cipher's docstring).
"""

from __future__ import annotations

import sys
from typing import Any, Union

from .._callable import as_builtin
from ..keyring import KernelKey
from . import _API_45, MODE_XTS, MODE_XTS_UNITS, _create_cipher
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
if _API_45:
    MODE_GCM_SIV = 15  #: AES-GCM-SIV (policy; PyCryptodome 4.5)
# MODE_XTS: XEX-based tweaked codebook with ciphertext stealing, the kernel's xts(aes): 16 (PyCryptodome 4.5's API,
# on every install); MODE_XTS_UNITS (100) is kcapi_hashlib's older API, see kcapi_hashlib.Cipher.

#: Size of a data block (in bytes)
block_size: int = 16
#: The valid sizes of a key (in bytes)
key_size: tuple[int, int, int] = (16, 24, 32)

# The factory interface the mode modules use (as PyCryptodome's modes use its cipher modules).
_NAME = "AES"
_KERNEL = "aes"  # the kernel's cra_name of the block cipher: modes bind "cbc(aes)" and so on
_PYCRYPTODOME = "Crypto.Cipher.AES"


# The modes a kernel keyring key (kcapi_hashlib.keyring.KernelKey) works with: each is built only of kernel
# transforms keyed with the key (ecb/cbc/ctr/gcm(aes), and GCM's ctr(aes) + ghash of E_K(0)). The others raise.
_KEYRING_MODES = {MODE_ECB: "ECB", MODE_CBC: "CBC", MODE_CTR: "CTR", MODE_GCM: "GCM", MODE_CFB: "CFB", MODE_OFB: "OFB"}
_MODE_NAMES = {MODE_OPENPGP: "OPENPGP", MODE_CCM: "CCM", MODE_EAX: "EAX", MODE_SIV: "SIV", MODE_OCB: "OCB"}
_MODE_NAMES.update({MODE_KW: "KW", MODE_KWP: "KWP", MODE_XTS: "XTS", MODE_XTS_UNITS: "XTS", 15: "GCM_SIV"})


def _create_base_cipher(dict_parameters: dict[str, Any]) -> Any:
    """Pop and check the key (and PyCryptodome's use_aesni, meaningless here) from the parameters, with
    PyCryptodome's errors; returns the key as bytes (a KernelKey as itself: its size is the kernel's to check,
    unless known). The kernel transform is made by the mode."""
    dict_parameters.pop("use_aesni", True)
    try:
        key = dict_parameters.pop("key")
    except KeyError:
        raise TypeError("Missing 'key' parameter") from None
    if isinstance(key, KernelKey):
        if key.size is not None and key.size not in key_size:
            raise ValueError(f"Incorrect AES key length ({key.size} bytes)")
        return key
    if len(key) not in key_size:
        raise ValueError(f"Incorrect AES key length ({len(key)} bytes)")
    return key_bytes(key)


@as_builtin()
def new(key: Union[Buffer, KernelKey], mode: int, *args: Any, **kwargs: Any) -> Any:
    """Create a new AES cipher, as Crypto.Cipher.AES.new.

    Args:
      key: 16, 24 or 32 bytes (AES-128/192/256); for MODE_XTS 32 or 64 (two keys). Or a
        kcapi_hashlib.keyring.KernelKey (a key in the kernel keyring) for MODE_ECB, CBC, CTR, CFB, OFB and GCM:
        the kernel keys its transforms from it and its bytes never enter this process (no fallback).
      mode: a MODE_* constant.

    Keyword Args (by mode, as PyCryptodome):
      iv / IV (CBC, CFB, OFB), nonce (CTR, GCM, CCM), segment_size (CFB), initial_value and counter (CTR),
      mac_len (GCM, CCM), msg_len and assoc_len (CCM), use_aesni and threads (accepted; the kernel decides),
      tweak (MODE_XTS: 16 bytes, by keyword, one data unit per object as PyCryptodome 4.5; MODE_XTS_UNITS: 16
      bytes or the data unit sequence number as an int, each call the next data unit).
    """
    if isinstance(key, KernelKey) and mode not in _KEYRING_MODES:
        name = _MODE_NAMES.get(mode, repr(mode))
        why = (
            "it splits the key's bytes into its two keys"
            if mode in (MODE_XTS, MODE_XTS_UNITS)
            else "it is not built only of kernel transforms keyed by serial here (it, or its PyCryptodome "
            "fallback, needs the key's bytes)"
        )
        raise TypeError(
            f"AES MODE_{name} cannot use a kernel keyring key ({key!r}): {why}, and a keyring key has no bytes to "
            "give; the modes that take one are " + ", ".join(f"MODE_{n}" for n in _KEYRING_MODES.values())
        )
    kwargs["add_aes_modes"] = True
    return _create_cipher(sys.modules[__name__], key, mode, *args, **kwargs)


# install() replaces these names in Crypto.Cipher.AES (only those it has).
__all__ = [
    "new", "block_size", "key_size",
    "MODE_ECB", "MODE_CBC", "MODE_CFB", "MODE_OFB", "MODE_CTR", "MODE_OPENPGP", "MODE_CCM", "MODE_EAX",
    "MODE_SIV", "MODE_GCM", "MODE_OCB", "MODE_KW", "MODE_KWP", "MODE_XTS", "MODE_XTS_UNITS",
]  # fmt: skip
if _API_45:
    __all__ += ["MODE_GCM_SIV"]
