"""PyCryptodome's Crypto.Cipher on the kernel: AES, DES3, DES, Blowfish, CAST, ARC4 and ChaCha20 (and, from
their own modules, ChaCha20_Poly1305 and the AEAD modes of AES).

A block cipher object is a module (AES, DES3, DES, Blowfish, CAST: the "factory") combined with a mode of operation
(_mode_*.py), exactly as in PyCryptodome; _create_cipher below is PyCryptodome's dispatcher, argument rules
and messages included. Modes are done by the kernel (ECB, CBC, CTR, XTS, GCM, CCM), composed from kernel
block operations (CFB, OFB: see their modules), or, for the modes kcapi_hashlib has no kernel implementation
of (OpenPGP, EAX, SIV, OCB, KW, KWP), left to the policy: strict (the default) raises UnsupportedAlgorithm
(a ValueError) saying so; fallback builds PyCryptodome's own object, counted in fallback_counts(). The same
policy applies to a whole cipher where the kernel cannot bind it (blowfish and cast5 are not on Linux 7.3's
af_alg_restrict allowlist, for example).

"PyCryptodome" is whichever of its two distributions is installed: pycryptodome (the Crypto package, preferred)
or pycryptodomex 3.x alone (Cryptodome): fallbacks import from that one (real_module()).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Optional

from ._common import (
    InterruptedCipherError,
    MessageTooLongError,
    Unavailable,
    pycryptodome_fallback,
    real_module,
    real_package,
)

MODE_ECB = 1
MODE_CBC = 2
MODE_CFB = 3
MODE_OFB = 5
MODE_CTR = 6
MODE_OPENPGP = 7
MODE_CCM = 8
MODE_EAX = 9
MODE_SIV = 10
MODE_GCM = 11
MODE_OCB = 12
MODE_KW = 13
MODE_KWP = 14
MODE_GCM_SIV = 15  # PyCryptodome 4.5 (no kernel has GCM-SIV: the policy decides)
# XTS (IEEE 1619, NIST SP 800-38E) on the kernel's xts(aes), in two APIs:
# - 16: PyCryptodome 4.5's (AES.new(key, MODE_XTS, tweak=16 bytes), one data unit per object: _mode_xts45);
# - 100: kcapi_hashlib's own from before PyCryptodome had XTS (tweak may be the data unit number, each call is
#   the next data unit: _mode_xts). AES.MODE_XTS is 16 whatever PyCryptodome is installed, so one program gives one
#   ciphertext on every host (XTS has no tag: a meaning that changed with the installed package would decrypt to
#   garbage without an error); AES.MODE_XTS_UNITS names 100.
MODE_XTS_45 = 16
MODE_XTS_UNITS = 100

_MODE_NAMES = {
    MODE_ECB: "ECB", MODE_CBC: "CBC", MODE_CFB: "CFB", MODE_OFB: "OFB", MODE_CTR: "CTR", MODE_OPENPGP: "OPENPGP",
    MODE_CCM: "CCM", MODE_EAX: "EAX", MODE_SIV: "SIV", MODE_GCM: "GCM", MODE_OCB: "OCB", MODE_KW: "KW",
    MODE_KWP: "KWP", MODE_GCM_SIV: "GCM_SIV", MODE_XTS_45: "XTS", MODE_XTS_UNITS: "XTS",
}  # fmt: skip


def _create_cipher(factory: ModuleType, key: Any, mode: Any, *args: Any, **kwargs: Any) -> Any:
    """PyCryptodome's Crypto.Cipher._create_cipher, dispatching to the kernel-backed modes."""
    original = (args, dict(kwargs))
    kwargs["key"] = key

    if args:
        if mode in (8, 9, 10, 11, 12) or (mode == MODE_GCM_SIV and _API_45):
            if len(args) > 1:
                raise TypeError("Too many arguments for this mode")
            kwargs["nonce"] = args[0]
        elif mode == MODE_XTS_45:
            raise TypeError("The tweak must be passed as a keyword argument")
        elif mode in (2, 3, 5, 7):
            if len(args) > 1:
                raise TypeError("Too many arguments for this mode")
            kwargs["IV"] = args[0]
        elif mode == 6:
            if len(args) > 0:
                raise TypeError("Too many arguments for this mode")
        elif mode == 1:
            raise TypeError("IV is not meaningful for the ECB mode")
        elif mode == MODE_XTS_UNITS:
            if len(args) > 1:
                raise TypeError("Too many arguments for this mode")
            kwargs["tweak"] = args[0]

    extra_modes = kwargs.pop("add_aes_modes", False)
    try:
        res = _dispatch(factory, mode, extra_modes, kwargs)
    except Unavailable as e:
        return _fallback(factory, key, mode, original, e.what, e.reason)
    if res is None:
        if mode in _POLICY_MODES and (extra_modes or mode in (MODE_OPENPGP, MODE_EAX)):
            what = f"{factory._NAME}-{_MODE_NAMES[mode]}"
            reason = f"kcapi_hashlib has no kernel implementation of {_MODE_NAMES[mode]} mode"
            return _fallback(factory, key, mode, original, what, reason)
        raise ValueError("Mode not supported")
    return res


# mode -> (module, function) of the kernel-backed modes: those of every block cipher, and those only AES.new
# passes (add_aes_modes), in the order PyCryptodome's dispatcher tries them. Each module is imported on first use.
_BASIC_MODES = {
    1: ("_mode_ecb", "_create_ecb_cipher"), 2: ("_mode_cbc", "_create_cbc_cipher"),
    3: ("_mode_cfb", "_create_cfb_cipher"), 5: ("_mode_ofb", "_create_ofb_cipher"),
    6: ("_mode_ctr", "_create_ctr_cipher"),
}  # fmt: skip
_AES_MODES = {
    8: ("_mode_ccm", "_create_ccm_cipher"), 11: ("_mode_gcm", "_create_gcm_cipher"),
    MODE_XTS_45: ("_mode_xts45", "_create_xts_cipher"), MODE_XTS_UNITS: ("_mode_xts", "_create_xts_cipher"),
}  # fmt: skip
# (module, function) -> the function, once imported. Single dict calls only (get, setitem: atomic with or without
# the GIL); two threads importing at once store the same function.
_creators: dict[tuple[str, str], Any] = {}


def _dispatch(factory: ModuleType, mode: Any, extra_modes: bool, kwargs: dict[str, Any]) -> Any:
    if type(mode) is int:
        where = _BASIC_MODES.get(mode) or (_AES_MODES.get(mode) if extra_modes else None)
    else:
        # Anything else is compared with ==, in the tables' order, as PyCryptodome's dispatcher compares: a mode
        # that equals one of these numbers is that mode, hashable or not (bool, float, an object with __eq__).
        where = None
        for table in (_BASIC_MODES, _AES_MODES) if extra_modes else (_BASIC_MODES,):
            for number, entry in table.items():
                if mode == number:
                    where = entry
                    break
            if where is not None:
                break
    if where is None:
        return None
    create = _creators.get(where)
    if create is None:
        create = _creators[where] = _load(where[0])
    return create(factory, **kwargs)


def _load(module: str) -> Any:
    """A mode module's creator, on its first use; each import written out (the import graph test sees them)."""
    create: Any
    if module == "_mode_ecb":
        from ._mode_ecb import _create_ecb_cipher as create
    elif module == "_mode_cbc":
        from ._mode_cbc import _create_cbc_cipher as create
    elif module == "_mode_cfb":
        from ._mode_cfb import _create_cfb_cipher as create
    elif module == "_mode_ofb":
        from ._mode_ofb import _create_ofb_cipher as create
    elif module == "_mode_ctr":
        from ._mode_ctr import _create_ctr_cipher as create
    elif module == "_mode_ccm":
        from ._mode_ccm import _create_ccm_cipher as create
    elif module == "_mode_gcm":
        from ._mode_gcm import _create_gcm_cipher as create
    elif module == "_mode_xts45":
        from ._mode_xts45 import _create_xts_cipher as create
    else:
        from ._mode_xts import _create_xts_cipher as create
    return create


def _installed_version() -> Optional[tuple[int, int]]:
    """(major, minor) of the PyCryptodome whose API is mirrored (real_package(): Crypto, else pycryptodomex's
    Cryptodome), from its version_info (the package's __init__ only: version and exception classes); None if
    neither is installed or it has no readable version."""
    package = real_package()
    if package is None:
        return None
    try:
        info = importlib.import_module(package).version_info
        return int(info[0]), int(info[1])
    except (ImportError, AttributeError, TypeError, ValueError, IndexError):
        return None


#: The PyCryptodome API level mirrored: the installed version's, 4.5 where none is installed (the current API).
#: 4.5 added MODE_GCM_SIV (15) and MODE_XTS (16) and the CTR nonce attribute rules; before it, 15 is "Mode not
#: supported" (16 stays the kernel's XTS with 4.5's API, which under the fallback policy has nothing to fall to).
API_VERSION: tuple[int, int] = _installed_version() or (4, 5)
_API_45 = API_VERSION >= (4, 5)
MODE_XTS = MODE_XTS_45

# Modes PyCryptodome has and the kernel does not serve here: the policy decides (see the module docstring).
_POLICY_MODES: tuple[int, ...] = (MODE_OPENPGP, MODE_EAX, MODE_SIV, MODE_OCB, MODE_KW, MODE_KWP)
if _API_45:
    _POLICY_MODES += (MODE_GCM_SIV,)


def _fallback(
    factory: ModuleType,
    key: Any,
    mode: Any,
    original: tuple[tuple[Any, ...], dict[str, Any]],
    what: str,
    reason: object,
) -> Any:
    """Under the fallback policy: PyCryptodome's own cipher object for the same arguments (its dispatcher and
    its factory module, never the names install() may have replaced with ours)."""
    args, kwargs = original

    def make(real_factory: ModuleType) -> Any:
        if mode == MODE_XTS_UNITS or (mode == MODE_XTS_45 and not _API_45):  # PyCryptodome has no such mode
            raise _unsupported(what, reason)
        if factory._NAME == "AES":
            kwargs["add_aes_modes"] = True
        # the dispatcher of the package real_factory comes from (Crypto or Cryptodome)
        dispatcher = importlib.import_module(real_factory.__name__.rsplit(".", 1)[0])._create_cipher
        return dispatcher(real_factory, key, mode, *args, **kwargs)

    return pycryptodome_fallback(what, reason, real_module(factory._PYCRYPTODOME), make)


def _unsupported(what: str, reason: object) -> Exception:
    from .._policy import UnsupportedAlgorithm

    return UnsupportedAlgorithm(f"unsupported cipher type {what}", f"{reason}; PyCryptodome has no such mode")


__all__ = ["API_VERSION", "InterruptedCipherError", "MessageTooLongError", "real_module", "real_package"]
