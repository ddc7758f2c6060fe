"""Symmetric ciphers through algif_skcipher (crypto/algif_skcipher.c, crypto/af_alg.c).

Kernel behaviour this module is built around (docs/kernel-notes.md#algif_skcipher):

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
    count_exchange,
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
# known key then costs sendmsg + recv and nothing else. See keyed.py for the fingerprint, the bound, why a tfm's key
# never changes, and fork.
_KEY_CACHE_MAX = _keyed.CACHE_SIZE


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
    """sendmsg of a whole request. A send that went through is counted by the caller, with its recv
    (count_exchange: one hold of the accounting lock for both), or alone where the recv fails."""
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
    if n != size:
        count(alg, "send", size)
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
        count(alg, "send", size)
        raise _fail(op, e, "recv", alg) from None
    except BaseException:
        count(alg, "send", size)
        op.close()
        raise
    count_exchange(alg, size)
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
        count(alg, "send", size)
        raise _fail(op, e, "recv", alg) from None
    except BaseException:
        count(alg, "send", size)
        op.close()
        raise
    count_exchange(alg, size)
    if len(out) != size:
        raise _short(op, alg, len(out), size)
    alg.release(op)
    return out


# --- a stream cipher that keeps its state in the kernel (ecb(arc4)) -------------------------------------------

# Bumped in a forked child: a Stream made before the fork shares its kernel objects with the parent.
_stream_generation = [0]


def _stream_after_fork_in_child() -> None:
    _stream_generation[0] += 1


core.at_fork_in_child(_stream_after_fork_in_child)


class Stream:
    """One continuous key stream of a stateful stream cipher (ecb(arc4)): a private keyed tfm (never the shared
    keyed cache) and one op socket that stays open for the object's life, every send with MSG_MORE.

    Where the kernel keeps that state differs by version, and both ways are served by the same calls:
    - Up to 6.4, crypto/arc4.c's crypto_arc4_crypt works on the tfm's own context (crypto_skcipher_ctx): the
      state survives every request and is shared by every op socket of the tfm, and by every user of a cached
      tfm with the same key. Hence a private tfm per object (observed on 6.1: a second op socket of the same tfm
      continues the first one's key stream).
    - From 6.5, arc4 is an lskcipher whose state lives in the request (crypto_arc4_crypt(..., u8 *siv, u32
      flags)); algif_skcipher's _skcipher_recvmsg exports it to the op socket (ctx->state) only while the
      message is still open (ctx->more: CRYPTO_SKCIPHER_REQ_NOTFINAL, then CRYPTO_SKCIPHER_REQ_CONT on the next
      recv). A complete message restarts from the key (observed on 6.12 and 7.2). Hence MSG_MORE on every send:
      the message never ends while the object lives. arc4's chunk size is 1, so a recv with MSG_MORE pending
      returns every byte sent (_skcipher_recvmsg trims only to whole chunks).
    The first send carries ALG_SET_OP (any cmsg resets op/IV: af_alg_sendmsg), later sends carry none, so they
    keep it. Each call queues at most max_message() bytes and reads them all back before the next send.

    After fork the child's Stream must not touch the parent's kernel state (the two would each take part of one
    key stream): on its first call in the child it makes its own tfm and op socket and discards the key stream
    up to its position, so it continues as a copy, the way PyCryptodome's state is copied into the child.

    Not thread-safe and not re-entrant: the owner serializes calls and treats any exception from crypt() as
    leaving the stream unknown (the op socket is closed then; every later call raises KernelError)."""

    __slots__ = ("_name", "_key", "_alg", "_op", "_started", "_position", "_generation")

    def __init__(self, name: str, key: Buffer) -> None:
        self._name = name
        self._key = bytes(key)
        self._position = 0
        self._op: Optional[OpSocket] = None
        self._open()

    def _open(self) -> None:
        self._alg = core.keyed_tfm("skcipher", self._name, self._key)  # AlgUnavailable / KernelError (key)
        if not _limit:
            _learn_limit(self._alg)
        self._op = self._alg.accept()
        self._started = False
        self._generation = _stream_generation[0]

    @property
    def position(self) -> int:
        """Key stream bytes used so far."""
        return self._position

    def crypt(self, src: memoryview, dst: memoryview) -> None:
        """dst[:] = src XOR the next len(src) key stream bytes (flat byte views of equal length; may overlap
        exactly, for in-place use)."""
        if self._generation != _stream_generation[0]:
            self._respawn()
        n = len(src)
        step = max_message()
        done = 0
        while done < n:
            end = min(n, done + step)
            self._chunk(src[done:end], dst[done:end])
            done = end

    def _respawn(self) -> None:
        """In a forked child: our own kernel state, advanced to where the copied object stands."""
        op, self._op = self._op, None
        if op is not None:
            op.close()  # only this process's descriptor: the parent's stream is untouched
        position = self._position
        self._open()
        step = max_message()
        scratch = bytearray(min(step, position))
        view = memoryview(scratch)
        left = position
        self._position = 0
        while left:
            k = min(left, step)
            self._chunk(view[:k], view[:k])
            left -= k

    def _chunk(self, src: memoryview, dst: memoryview) -> None:
        op = self._op
        alg = self._alg
        if op is None:
            raise KernelError(errno.EIO, f"skcipher {self._name!r}: the stream was interrupted earlier")
        size = len(src)
        self._op = None  # held by nothing while it works: an exception leaves it to close itself
        try:
            if self._started:
                n = op.sendmsg([src], (), socket.MSG_MORE)
            else:
                n = op.sendmsg([src], [_OP_ENCRYPT], socket.MSG_MORE)
            count(alg, "send", size)
            if n != size:
                op.close()
                raise KernelError(errno.EIO, f"skcipher {alg.name!r}: short send ({n} of {size} bytes)")
            self._started = True
            got = 0
            while got < size:  # with MSG_MORE pending a recv may return less than was sent: ask for the rest
                k = op.recv_into(dst[got:], size - got)
                count(alg, "recv")
                if k <= 0:
                    raise _short(op, alg, got, size)
                got += k
        except OSError as e:
            if isinstance(e, KernelError):
                raise
            raise _fail(op, e, "sendmsg/recv", alg) from None
        except BaseException:
            op.close()
            raise
        self._position += size
        self._op = op

    def close(self) -> None:
        op, self._op = self._op, None
        if op is not None:
            op.close()
        self._alg.close()

    def __del__(self) -> None:
        op = getattr(self, "_op", None)
        if op is not None:
            op.close()  # quietly, before the socket's own finalizer would (with a ResourceWarning)


__all__ = ["Stream", "build_cmsgs", "forget_keys", "keyed", "max_message", "message", "message_bytes"]
