"""Symmetric ciphers through algif_skcipher (crypto/algif_skcipher.c, crypto/af_alg.c).

Kernel behaviour this module is built around (see also AF_ALG-NOTES.md):

- af_alg_sendmsg: every send that carries any cmsg resets op, IV and assoclen (op = ALG_SET_OP or 0, which is
  DECRYPT; the IV only if ALG_SET_IV is present, and its length must equal the IV size, else EINVAL). A send
  without cmsg keeps them. We never rely on that: every message here carries op (and IV) itself, so a message
  never depends on what an earlier user of the op socket left behind.
- af_alg_sendmsg queues at most SO_SNDBUF (page-masked) bytes; a larger blocking send waits for a recv that
  nobody makes. So one message is at most max_message() bytes, sent in one sendmsg and read back at once.
- _skcipher_recvmsg: while MSG_MORE is pending only whole chunks are processed (chunksize 16 even for
  ctr(aes)), and a recv buffer larger than what will ever be produced blocks forever (af_alg_wait_for_data).
  So every message is complete (no MSG_MORE) and recv asks for exactly the bytes sent.
- skcipher_request_set_crypt(..., ctx->iv): the IV chains in the kernel across recvs for cbc/ctr, but not for
  chacha20 (chacha_stream_xor works on a copy), and ctr steps the counter past a partial final block. The mode
  code therefore keeps the position in userspace and sends the right IV with every message.
- CBC/ECB with a length that is not a multiple of the block size: EINVAL, with the queued data consumed. The
  mode code checks lengths before anything reaches the kernel.
- A message with an empty payload still makes the socket readable: empty inputs never reach the kernel.

Keyed transforms are cached per (algorithm, key): a tfm's key is fixed once op sockets exist (alg_setkey:
EBUSY), so one tfm per key; reusing it makes a cipher with a known key cost sendmsg + recv and nothing else.
Op sockets come from the tfm's idle pool for the length of one call and go back to it, so cipher objects hold
no socket between calls, and a forked child (whose pooled op sockets core drops) never shares one.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Sequence
from typing import Optional

from . import core
from . import keyed as _keyed

try:
    from _blake2 import blake2b as _blake2b
except ImportError:  # pragma: no cover
    _blake2b = None  # type: ignore[misc,assignment]

from .core import (
    ALG_OP_DECRYPT,
    ALG_OP_ENCRYPT,
    ALG_SET_AEAD_ASSOCLEN,
    ALG_SET_IV,
    ALG_SET_OP,
    SOL_ALG,
    Buffer,
    KernelError,
    OpSocket,
    Tfm,
    count,
    kernel_error,
    nbytes,
)

Cmsg = tuple[int, int, bytes]


_OP_ENCRYPT: Cmsg = (SOL_ALG, ALG_SET_OP, struct.pack("=I", ALG_OP_ENCRYPT))
_OP_DECRYPT: Cmsg = (SOL_ALG, ALG_SET_OP, struct.pack("=I", ALG_OP_DECRYPT))


def build_cmsgs(op: Optional[int] = None, iv: Optional[Buffer] = None, assoclen: Optional[int] = None) -> list[Cmsg]:
    """The ancillary data of one AF_ALG sendmsg (af_alg_cmsg_send): ALG_SET_OP (u32), ALG_SET_IV (struct af_alg_iv:
    u32 ivlen + iv) and ALG_SET_AEAD_ASSOCLEN (u32). Remember that any cmsg resets all three in the kernel, and
    a missing op means DECRYPT."""
    out: list[Cmsg] = []
    if op is not None:
        out.append(_OP_ENCRYPT if op == ALG_OP_ENCRYPT else (SOL_ALG, ALG_SET_OP, struct.pack("=I", op)))
    if iv is not None:
        out.append((SOL_ALG, ALG_SET_IV, struct.pack("=I", len(iv)) + bytes(iv)))
    if assoclen is not None:
        out.append((SOL_ALG, ALG_SET_AEAD_ASSOCLEN, struct.pack("=I", assoclen)))
    return out


# --- message size ---------------------------------------------------------------------------------------

_PAGE = core.PAGE
_limit: list[int] = []


def _learn_limit(op: Tfm) -> int:
    """The most bytes one message may carry: SO_SNDBUF and SO_RCVBUF, page-masked (af_alg_sndbuf and
    af_alg_rcvbuf round down to pages). Read once per process from the first tfm socket: both default to the
    net.core.{w,r}mem_default sysctls, the same for every socket, and op sockets inherit nothing else."""
    if not _limit:
        try:
            snd = op.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
            rcv = op.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        except OSError:
            snd = rcv = 16 * _PAGE
        _limit.append(max(min(snd, rcv) & ~(_PAGE - 1), _PAGE))
    return _limit[0]


def max_message() -> int:
    """Bytes one message may carry (known once any keyed tfm exists; before that, a safe lower bound)."""
    return _limit[0] if _limit else _PAGE


# --- keyed transforms ------------------------------------------------------------------------------------

# Keyed tfms come from the one keyed-transform cache (keyed.cached_tfm, shared with HMAC, CMAC and AEAD): one tfm
# per (algorithm, key), since a tfm's key is fixed once op sockets exist (alg_setkey: EBUSY); a cipher with a
# known key then costs sendmsg + recv and nothing else. See keyed.py for the fingerprint, the bound, re-keying in
# place and fork.
_KEY_CACHE_MAX = _keyed.CACHE_SIZE
_key_cache = _keyed._lru


def keyed(name: str, key: Buffer) -> Tfm:
    """The cached tfm of skcipher `name` keyed with `key`; raises AlgUnavailable if the kernel cannot bind
    `name` (remembered: later calls raise without a syscall) or KernelError if it refuses the key."""
    t = _keyed.cached_tfm("skcipher", name, key)
    if not _limit:
        _learn_limit(t)
    return t


def forget_keys() -> None:
    """Drop every cached keyed tfm (the cache is shared: HMAC, CMAC and AEAD keys too)."""
    _keyed.clear()


# --- one message ---------------------------------------------------------------------------------------


def _fail(op: OpSocket, e: OSError, step: str, alg: Tfm) -> KernelError:
    op.close()  # the op socket's state is unknown now (data may be queued): never pool it again
    return kernel_error(e, step, alg.alg_type, alg.name)


def _send(op: OpSocket, alg: Tfm, encrypt: bool, iv: Optional[Buffer], src: Sequence[Buffer], size: int) -> None:
    cmsgs = [_OP_ENCRYPT if encrypt else _OP_DECRYPT]
    if iv is not None:
        cmsgs.append((SOL_ALG, ALG_SET_IV, struct.pack("=I", len(iv)) + bytes(iv)))
    try:
        n = op.sendmsg(src, cmsgs)
    except OSError as e:
        raise _fail(op, e, "sendmsg", alg) from None
    except BaseException:  # KeyboardInterrupt and the like: the socket's state is unknown
        op.close()
        raise
    count(alg, "send", size)
    if n != size:
        op.close()
        raise KernelError(errno.EIO, f"skcipher {alg.name!r}: short send ({n} of {size} bytes)")


def _short(op: OpSocket, alg: Tfm, got: int, size: int) -> KernelError:
    op.close()
    return KernelError(errno.EIO, f"skcipher {alg.name!r}: the kernel returned {got} of {size} bytes")


def message(alg: Tfm, encrypt: bool, iv: Optional[Buffer], src: Sequence[Buffer], dst: Sequence[memoryview]) -> None:
    """One complete skcipher request: sendmsg(op, IV, src...) then recv exactly as many bytes into dst...
    (scattered). sum(len(src)) == sum(len(dst)), 0 < size <= max_message()."""
    size = sum(map(nbytes, src))
    if size > max_message():
        raise ValueError(f"skcipher message of {size} bytes exceeds the socket limit ({max_message()})")
    op = alg.op()
    _send(op, alg, encrypt, iv, src, size)
    try:
        if len(dst) == 1:
            got = op.recv_into(dst[0], size)
        else:
            got = op.recvmsg_into(dst)[0]
    except OSError as e:
        raise _fail(op, e, "recv", alg) from None
    except BaseException:
        op.close()
        raise
    count(alg, "recv")
    if got != size:
        raise _short(op, alg, got, size)
    alg.release(op)


def message_bytes(alg: Tfm, encrypt: bool, iv: Optional[Buffer], src: Sequence[Buffer]) -> bytes:
    """Like message(), returning the output as a new bytes object (recv allocates it: no extra copy)."""
    size = sum(map(nbytes, src))
    if size > max_message():
        raise ValueError(f"skcipher message of {size} bytes exceeds the socket limit ({max_message()})")
    op = alg.op()
    _send(op, alg, encrypt, iv, src, size)
    try:
        out = op.recv(size)
    except OSError as e:
        raise _fail(op, e, "recv", alg) from None
    except BaseException:
        op.close()
        raise
    count(alg, "recv")
    if len(out) != size:
        raise _short(op, alg, len(out), size)
    alg.release(op)
    return out


__all__ = ["build_cmsgs", "forget_keys", "keyed", "max_message", "message", "message_bytes"]
