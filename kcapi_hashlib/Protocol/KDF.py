"""PyCryptodome's ``Crypto.Protocol.KDF`` key derivation functions (PBKDF2, HKDF, SP800_108_Counter),
computed with the kernel's HMAC.

PBKDF2 and HKDF with a hash module the kernel has run every PRF call of one derivation on one op socket of
a keyed tfm (one sendmsg + one recv per call; see kcapi_hashlib._kdf): a private tfm for a password or an
HKDF PRK, the key cache's tfm for an HKDF salt. With a ``prf`` of your own,
or a hash the kernel cannot run as hmac(...), they compute exactly as PyCryptodome does, over
kcapi_hashlib.Hash.HMAC. SP800_108_Counter always calls your ``prf`` (PyCryptodome takes only a prf there):
pass one built on kcapi_hashlib.Hash.HMAC, whose key cache makes each call one sendmsg + one recv.
"""

from __future__ import annotations

import operator
import struct
import warnings
from functools import reduce
from types import ModuleType
from typing import Any, Callable, Literal, Optional, Union, overload

from .. import _hashes
from .._callable import as_builtin
from .._kdf import pbkdf2_blocks, prf_session
from ..Hash import HMAC, SHA1
from ..hmac import identify

Buffer = Union[bytes, bytearray, memoryview]
PRF = Callable[[bytes, bytes], bytes]

__all__ = ["PBKDF2", "HKDF", "SP800_108_Counter"]

# PyCryptodome's PBKDF2 raises this for count < 1 where it has a C inner loop (every hash module but
# RIPEMD160 and BLAKE2b): ours mirrors it for the kernel's loop.
_ASSISTED = frozenset({"md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha512_224", "sha512_256",
                       "sha3_224", "sha3_256", "sha3_384", "sha3_512"})  # fmt: skip


def _tobytes(s: Any, encoding: str = "latin-1") -> bytes:
    """PyCryptodome's Crypto.Util._bytes.tobytes."""
    if isinstance(s, bytes):
        return s
    elif isinstance(s, str):
        return s.encode(encoding)
    elif isinstance(s, (bytearray, memoryview)):
        return bytes(s)
    raise TypeError(f"Expected a string or a bytes-like object, not {type(s).__name__}")


def _strxor(term1: bytes, term2: bytes) -> bytes:
    if len(term1) != len(term2):
        raise ValueError("Only byte strings of equal length can be xored")
    return (int.from_bytes(term1, "big") ^ int.from_bytes(term2, "big")).to_bytes(len(term1), "big")


def _long_to_bytes(n: int, blocksize: int = 0) -> bytes:
    """PyCryptodome's Crypto.Util.number.long_to_bytes (big endian, zero-padded to a multiple of blocksize)."""
    n = operator.index(n)
    if n < 0 or blocksize < 0:
        raise ValueError("Values must be non-negative")
    result = n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")
    if blocksize > 0 and len(result) % blocksize:
        result = b"\x00" * (blocksize - len(result) % blocksize) + result
    return result


def _kernel_hash(hash_module: Any) -> Optional[str]:
    """hashlib's name of the hash module/object if the kernel can run it as hmac(...) (probed lazily)."""
    if hash_module is None:
        return None
    name = identify(hash_module)
    if name is None or _hashes.ALGORITHMS[name].kernel is None:
        return None
    return name


@as_builtin()
def PBKDF2(
    password: Union[str, Buffer],
    salt: Union[str, Buffer],
    dkLen: int = 16,
    count: Optional[int] = None,
    prf: Optional[PRF] = None,
    hmac_hash_module: Optional[ModuleType] = None,
) -> bytes:
    """Derive one or more keys from a password (or passphrase).

    This function performs key derivation according to the PKCS#5 standard (v2.0).

    Args:
     password (string or byte string):
        The secret password to generate the key from.

        Strings will be encoded as ISO 8859-1 (also known as Latin-1),
        which does not allow any characters with codepoints > 255.
     salt (string or byte string):
        A (byte) string to use for better protection from dictionary attacks.
        This value does not need to be kept secret, but it should be randomly
        chosen for each derivation. It is recommended to use at least 16 bytes.

        Strings will be encoded as ISO 8859-1 (also known as Latin-1),
        which does not allow any characters with codepoints > 255.
     dkLen (integer):
        The cumulative length of the keys to produce.
     count (integer):
        The number of iterations to carry out. It is mandatory.

        .. deprecated:: 4.0
            If omitted, 1000 iterations are used, with a :class:`DeprecationWarning`.
            This default will be removed.
     prf (callable):
        A pseudorandom function. It must be a function that returns a
        pseudorandom byte string from two parameters: a secret and a salt.
        This parameter is mutually exclusive with ``hmac_hash_module``.
     hmac_hash_module (module):
        A module from ``Crypto.Hash`` (or ``kcapi_hashlib.Hash``) implementing a Merkle-Damgard
        cryptographic hash, which PBKDF2 must use in combination with HMAC
        (for instance, :mod:`Crypto.Hash.SHA256`).
        This parameter is mutually exclusive with ``prf``,
        and one of the two is mandatory.

        .. deprecated:: 4.0
            If both are omitted, **HMAC-SHA1** is used, with a
            :class:`DeprecationWarning`. This default will be removed.

    Return:
        A byte string of length ``dkLen`` that can be used as key material.
    """

    password = _tobytes(password)
    salt = _tobytes(salt)

    if prf and hmac_hash_module:
        raise ValueError("'prf' and 'hmac_hash_module' are mutually exclusive")

    missing = []
    if count is None:
        missing.append("'count' (1000 iterations)")
        count = 1000
    if prf is None and hmac_hash_module is None:
        missing.append("'hmac_hash_module' (HMAC-SHA1)")
        hmac_hash_module = SHA1
    if missing:
        warnings.warn(
            "PBKDF2 without {} uses weak defaults, which are deprecated and will be removed: "
            "pass them explicitly (for instance, count=600000, hmac_hash_module=SHA256)".format(" and ".join(missing)),
            DeprecationWarning,
            stacklevel=2,
        )

    name = None if prf or not isinstance(dkLen, int) else _kernel_hash(hmac_hash_module)
    if name is not None:
        size = _hashes.ALGORITHMS[name].digest_size
        blocks = range(1, -(-dkLen // size) + 1) if dkLen > 0 else range(1, 1)
        if blocks and name in _ASSISTED:
            # PyCryptodome's C inner loop: "iterations < 1" in Python, then cffi's conversion to size_t.
            if count < 1:
                raise ValueError("The number of iterations must be positive")
            if not isinstance(count, int):
                raise TypeError("an integer is required")
            if count >= 2**64:
                raise OverflowError("int too big to convert")
        elif blocks:
            range(count)  # PyCryptodome's loop over range(count): the interpreter's TypeError for a non-int
            if count < 1:
                reduce(_strxor, ())  # PyCryptodome's own error here: the interpreter's TypeError for reduce()
        with prf_session(name, password) as mac:
            if mac is not None:
                return pbkdf2_blocks(mac, salt, count, blocks, size)[:dkLen]

    # Generic (and slow) implementation, as PyCryptodome's (HMAC over kcapi_hashlib.Hash.HMAC)
    if prf is None:
        prf = lambda p, s: HMAC.new(p, s, hmac_hash_module).digest()  # noqa: E731

    def link(s: list[bytes]) -> bytes:
        s[0], s[1] = s[1], prf(password, s[1])
        return s[0]

    key = b""
    i = 1
    while len(key) < dkLen:
        s = [prf(password, salt + struct.pack(">I", i))] * 2
        key += reduce(_strxor, (link(s) for j in range(count)))
        i += 1

    return key[:dkLen]


def _HKDF_extract(salt: Buffer, ikm: Buffer, hashmod: ModuleType) -> bytes:
    prk = HMAC.new(salt, ikm, digestmod=hashmod).digest()
    return prk


def _HKDF_expand(prk: Buffer, info: Buffer, L: int, hashmod: ModuleType) -> bytes:
    t = [b""]
    n = 1
    tlen = 0
    while tlen < L:
        hmac = HMAC.new(prk, t[-1] + info + struct.pack("B", n), digestmod=hashmod)
        t.append(hmac.digest())
        tlen += hashmod.digest_size
        n += 1
    okm = b"".join(t)
    return okm[:L]


def _kernel_hkdf(name: str, master: Buffer, salt: Buffer, info: Buffer, L: int) -> Optional[bytes]:
    """RFC 5869 on the kernel: extract on the cached tfm keyed with the salt (a public, often constant value),
    expand on a private tfm keyed with the PRK (a secret of this derivation alone: never cached)."""
    # Bytes throughout (a memoryview of wide items is its bytes), as PyCryptodome's HMAC reads them: the salt
    # is the HMAC key (memoryview.tobytes(): any layout), the master secret a message (C-contiguous only).
    salt = salt.tobytes() if isinstance(salt, memoryview) else salt
    master = _hashes.byte_view(master)
    with prf_session(name, salt, cached=True) as extract:
        if extract is None:
            return None
        prk = extract(master)
    t = [b""]
    with prf_session(name, prk) as expand:
        if expand is None:
            return None
        n = 1
        tlen = 0
        while tlen < L:
            t.append(expand(t[-1], info, struct.pack("B", n)))
            tlen += len(t[-1])
            n += 1
    return b"".join(t)[:L]


@overload
def HKDF(
    master: Buffer,
    key_len: int,
    salt: Optional[Buffer],
    hashmod: ModuleType,
    num_keys: Literal[1] = 1,
    context: Optional[Buffer] = None,
) -> bytes: ...


@overload
def HKDF(
    master: Buffer,
    key_len: int,
    salt: Optional[Buffer],
    hashmod: ModuleType,
    num_keys: int,
    context: Optional[Buffer] = None,
) -> Union[bytes, list[bytes]]: ...


@as_builtin()
def HKDF(
    master: Buffer,
    key_len: int,
    salt: Optional[Buffer],
    hashmod: ModuleType,
    num_keys: int = 1,
    context: Optional[Buffer] = None,
) -> Union[bytes, list[bytes]]:
    """Derive one or more keys from a master secret using
    the HMAC-based KDF defined in RFC5869_.

    Args:
     master (byte string):
        The unguessable value used by the KDF to generate the other keys.
        It must be a high-entropy secret, though not necessarily uniform.
        It must not be a password.
     key_len (integer):
        The length in bytes of every derived key.
     salt (byte string):
        A non-secret, reusable value that strengthens the randomness
        extraction step.
        Ideally, it is as long as the digest size of the chosen hash.
        If empty, a string of zeroes in used.
     hashmod (module):
        A cryptographic hash algorithm from :mod:`Crypto.Hash` (or :mod:`kcapi_hashlib.Hash`).
        :mod:`Crypto.Hash.SHA512` is a good choice.
     num_keys (integer):
        The number of keys to derive. Every key is :data:`key_len` bytes long.
        The maximum cumulative length of all keys is
        255 times the digest size.
     context (byte string):
        Optional identifier describing what the keys are used for.

    Return:
        A byte string or a tuple of byte strings.

    .. _RFC5869: https://www.rfc-editor.org/rfc/rfc5869
    """

    output_len = key_len * num_keys
    if output_len > (255 * hashmod.digest_size):
        raise ValueError("Too much secret data to derive")
    if not salt:
        salt = b"\x00" * hashmod.digest_size
    if context is None:
        context = b""

    name = _kernel_hash(hashmod)
    okm = None
    if name is not None and isinstance(master, (bytes, bytearray, memoryview)):
        if not isinstance(salt, (bytes, bytearray, memoryview)) or not isinstance(context, (bytes, bytearray)):
            name = None  # PyCryptodome's own errors, from the generic path below
        else:
            okm = _kernel_hkdf(name, master, salt, context, output_len)
    if okm is None:
        prk = _HKDF_extract(salt, master, hashmod)
        okm = _HKDF_expand(prk, context, output_len, hashmod)

    if num_keys == 1:
        return okm[:key_len]
    kol = [okm[idx : idx + key_len] for idx in range(0, output_len, key_len)]
    return list(kol[:num_keys])


@overload
def SP800_108_Counter(
    master: bytes,
    key_len: int,
    prf: PRF,
    num_keys: Literal[None] = None,
    label: bytes = b"",
    context: bytes = b"",
) -> bytes: ...


@overload
def SP800_108_Counter(
    master: bytes, key_len: int, prf: PRF, num_keys: Literal[1], label: bytes = b"", context: bytes = b""
) -> bytes: ...


@overload
def SP800_108_Counter(
    master: bytes, key_len: int, prf: PRF, num_keys: int, label: bytes = b"", context: bytes = b""
) -> Union[bytes, list[bytes]]: ...


@as_builtin()
def SP800_108_Counter(
    master: bytes,
    key_len: int,
    prf: PRF,
    num_keys: Optional[int] = None,
    label: bytes = b"",
    context: bytes = b"",
) -> Union[bytes, list[bytes]]:
    """Derive one or more keys from a master secret using
    a pseudorandom function in Counter Mode, as specified in
    `NIST SP 800-108r1 <https://nvlpubs.nist.gov/nistpubs/SpecialPublications/NIST.SP.800-108r1.pdf>`_.

    Args:
     master (byte string):
        The secret value used by the KDF to derive the other keys.
        It must not be a password.
        The length on the secret must be consistent with the input expected by
        the :data:`prf` function.
     key_len (integer):
        The length in bytes of each derived key.
     prf (function):
        A pseudorandom function that takes two byte strings as parameters:
        the secret and an input. It returns another byte string.
        (For the kernel to compute it: ``lambda s, x: HMAC.new(s, x, SHA256).digest()`` with
        kcapi_hashlib.Hash's HMAC and SHA256.)
     num_keys (integer):
        The number of keys to derive. Every key is :data:`key_len` bytes long.
        By default, only 1 key is derived.
     label (byte string):
        Optional description of the purpose of the derived keys
        (for instance, an ASCII string).
        It must not contain zero bytes.
     context (byte string):
        Optional information pertaining to
        the protocol that uses the keys, such as the identity of the
        participants, nonces, session IDs, etc.
        It can contain any byte value.

    Return:
        - a byte string (if ``num_keys`` is not specified, or it is 1), or
        - a list of byte strings (if ``num_keys`` is 2 or more).
    """

    if num_keys is None:
        num_keys = 1

    # The zero byte after the label separates it from the context. With no zero
    # byte in the label, different (label, context) pairs always give different
    # inputs to the PRF, as NIST SP 800-108r1 requires (Section 6.4, Input Data Encoding).
    label = bytes(label)
    if b"\x00" in label:
        raise ValueError("Null byte found in label")

    key_len_enc = _long_to_bytes(key_len * num_keys * 8, 4)
    output_len = key_len * num_keys

    i = 1
    dk = b""
    while len(dk) < output_len:
        info = _long_to_bytes(i, 4) + label + b"\x00" + context + key_len_enc
        dk += prf(master, info)
        i += 1
        if i > 0xFFFFFFFF:
            raise ValueError("Overflow in SP800 108 counter")

    if num_keys == 1:
        return dk[:key_len]
    else:
        kol = [dk[idx : idx + key_len] for idx in range(0, output_len, key_len)]
        return kol
