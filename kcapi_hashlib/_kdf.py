"""Key derivation on the kernel's HMAC: hashlib.pbkdf2_hmac's surface, and the PRF chains shared with
kcapi_hashlib.Protocol.KDF.

The kernel has no pbkdf2 template, so PBKDF2 (RFC 8018 section 5.2) iterates the kernel's hmac(<hash>)
here: U1 = PRF(P, S || INT(i)), Uj = PRF(P, Uj-1). Every derivation keys one private tfm with the password
(never the shared key cache: a password-keyed tfm should not outlive its derivation) and runs every PRF call
on ONE op socket of it: one sendmsg + one recv each (see _afalg.keyed.MacSession).
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable, Optional, Union

from . import _afalg, _hash_args, _hashes, _policy
from ._afalg import keyed as _keyed
from ._callable import as_builtin
from .hmac import kernel_tfm

Buffer = Union[bytes, bytearray, memoryview]

_INT_MAX = 2**31 - 1
_LONG_MAX = 2**63 - 1

_stdlib_pbkdf2_hmac: Optional[Callable[..., bytes]]
try:  # the stdlib's C implementation: the fallback policy's userspace PBKDF2
    from _hashlib import pbkdf2_hmac as _stdlib_pbkdf2_hmac
except ImportError:  # pragma: no cover - CPython built without OpenSSL
    _stdlib_pbkdf2_hmac = None
try:  # its error for an unknown digest (a ValueError; a CPython without OpenSSL has neither)
    from _hashlib import UnsupportedDigestmodError as _UnsupportedDigestmodError
except ImportError:
    _UnsupportedDigestmodError = ValueError  # type: ignore[misc, assignment]


@contextmanager
def prf_session(name: str, key: Buffer, cached: bool = False) -> Iterator[Optional[_keyed.MacSession]]:
    """A MAC session of the kernel's hmac(<name>) keyed with `key`, or None if the kernel cannot run that HMAC
    here. The tfm is private (closed afterwards) unless cached=True (then it comes from the key cache: for
    keys that are not secrets of this derivation alone, such as an HKDF salt)."""
    tfm = kernel_tfm(name, key, cached=cached)
    if tfm is None:
        yield None
        return
    try:
        with _keyed.MacSession(tfm, _hashes.ALGORITHMS[name].digest_size) as session:
            yield session
    finally:
        if not cached:
            tfm.close()


# From this many iterations on, U2..Uc run as io_uring chains (_afalg.uring: one io_uring_enter per batch of
# uring.BATCH iterations instead of a send + recv each); the ring is made once per thread (io_uring_setup and
# its mmaps), so a handful of iterations stays on send/recv.
URING_MIN_ITERATIONS = 16


def pbkdf2_blocks(mac: _keyed.MacSession, salt: Buffer, iterations: int, blocks: range, size: int) -> bytes:
    """T_i = U1 ^ ... ^ Uc for i in blocks (RFC 8018 section 5.2 step 3).

    U1 is one send + one recv; U2..Uc go through the kernel as linked io_uring requests where this process can
    use io_uring (see _afalg.uring), else one send + one recv each. A chain the ring could not complete is
    redone here with send/recv from the same U1 (uring.mac_chain answers None and switches itself off)."""
    out = bytearray()
    for i in blocks:
        u = mac(salt, i.to_bytes(4, "big"))
        acc = int.from_bytes(u, "big")
        chained = None
        if iterations >= URING_MIN_ITERATIONS:
            try:
                from ._afalg import uring
            except ImportError:  # pragma: no cover - a Python built without ctypes: send/recv
                pass
            else:
                chained = uring.mac_chain(mac, u, iterations - 1)
        if chained is not None:
            acc ^= chained[0]
        else:
            for _ in range(iterations - 1):
                u = mac(u)
                acc ^= int.from_bytes(u, "big")
        out += acc.to_bytes(size, "big")
    return bytes(out)


def _c_long(value: Any, clinic: bool) -> int:
    """A C long as CPython's _hashopenssl.c reads it: `iterations` through Argument Clinic (clinic=True),
    `dklen` through PyLong_AsLong: both take __index__ only)."""
    n = operator.index(value)
    if not -_LONG_MAX - 1 <= n <= _LONG_MAX:
        raise OverflowError("Python int too large to convert to C long")
    return n


@as_builtin("kcapi_hashlib")
def pbkdf2_hmac(hash_name: str, password: Buffer, salt: Buffer, iterations: int, dklen: Optional[int] = None) -> bytes:
    """Password based key derivation function 2 (PKCS #5 v2.0) with HMAC as pseudorandom function.

    Computed by the kernel's hmac(<hash>), one op socket per derivation."""
    # Argument checks in the order of CPython's _hashopenssl.c pbkdf2_hmac_impl (same types and messages).
    if not isinstance(hash_name, str):
        if _stdlib_pbkdf2_hmac is not None:
            _stdlib_pbkdf2_hmac(hash_name, b"", b"", 1)  # its argument parser's TypeError, before any work
        raise TypeError(f"pbkdf2_hmac() argument 'hash_name' must be str, not {_hashes.tp_name(hash_name)}")
    pw = _hashes.byte_view(password)
    sa = _hashes.byte_view(salt)
    iterations = _c_long(iterations, True)
    name = _hashes.canonical_name(hash_name)
    alg = _hashes.ALGORITHMS.get(name) if name is not None else None
    if name is None or alg is None or alg.digest_size == 0:
        if _stdlib_pbkdf2_hmac is None:  # pragma: no cover
            raise _UnsupportedDigestmodError(_hash_args.UNSUPPORTED + hash_name)
        # The original's error type for a name it cannot use (UnsupportedDigestmodError; ValueError for an
        # XOF): asked with empty inputs, it raises before any work. The text is hashlib's wording, not
        # OpenSSL's, which depends on its build ("[digital envelope routines] unsupported", "no reason supplied").
        try:
            _stdlib_pbkdf2_hmac(hash_name, b"", b"", 1, 1)
        except ValueError as e:
            raise type(e)(_hash_args.UNSUPPORTED + hash_name) from None
        _policy.unavailable("hash", hash_name, _hashes.no_kernel_hash(hash_name))
        return _stdlib_pbkdf2_hmac(hash_name, pw, sa, iterations, dklen)
    if iterations < 1:
        raise ValueError("iteration value must be greater than 0.")
    if iterations > _INT_MAX:
        raise OverflowError("iteration value is too great.")
    if dklen is None:
        size = alg.digest_size
    else:
        size = _c_long(dklen, False)
    if size < 1:
        raise ValueError("key length must be greater than 0.")
    if size > _INT_MAX:
        raise OverflowError("key length is too great.")

    reason: object = _hashes.no_kernel_hash(name)
    if alg.kernel is not None:
        with prf_session(name, pw) as mac:
            if mac is not None:
                blocks = range(1, -(-size // alg.digest_size) + 1)
                return pbkdf2_blocks(mac, sa, iterations, blocks, alg.digest_size)[:size]
        reason = _afalg.probe("hash", f"hmac({alg.kernel})") or reason
    _policy.unavailable("hash", name, reason)
    if _stdlib_pbkdf2_hmac is None:  # pragma: no cover
        raise _UnsupportedDigestmodError(_hash_args.UNSUPPORTED + hash_name)
    return _stdlib_pbkdf2_hmac(name, pw, sa, iterations, size)
