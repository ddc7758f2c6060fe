"""AEAD through algif_aead (crypto/algif_aead.c), and the keyed-tfm cache the AEAD modes run on.

Kernel behaviour handled here (docs/kernel-notes.md#algif_aead):
- One operation is one message: encrypt takes AAD||PT and gives AAD||CT||TAG, decrypt takes AAD||CT||TAG and
  gives AAD||PT (the AAD is copied to the output since 4.14: _aead_recvmsg memcpy_sglist). The op, IV and
  assoclen travel as cmsgs with the message (af_alg_sendmsg -> af_alg_cmsg_send); the tag size is a property
  of the tfm (ALG_SET_AEAD_AUTHSIZE, set before accept; crypto_aead_init_tfm defaults it to maxauthsize).
- _aead_recvmsg waits until the whole message is queued (ctx->more clear), so the message must fit the op
  socket's send buffer (af_alg_sndbuf); the output is bounded by its receive buffer (af_alg_get_rsgl stops
  at af_alg_readable and _aead_recvmsg then processes a *shorter* message). Larger messages raise both
  buffers first (SO_*BUFFORCE when privileged) and are refused before sending if they still do not fit:
  a send beyond the buffer blocks forever (af_alg_wait_for_wmem with no reader).
- aead_recvmsg loops while the caller's buffer has room: a buffer longer than the output blocks; we always
  receive exactly the output length. An empty output (decrypt of no AAD and no data) is never received:
  recv(0) does not run the operation at all (the loop body is skipped) and leaves the data queued.
- A bad tag is EBADMSG after the in-place decryption ran: the output buffer may hold unverified plaintext,
  so it is wiped before the error is raised.
- Never splice/vmsplice into AEAD sockets (CVE-2026-31431): every send here copies.

Keyed tfms: one tfm carries one key (alg_setsockopt answers EBUSY while any op socket it accepted lives), so
each (algorithm, key, tag size) gets its own tfm, from the one keyed-transform cache (keyed.cached_tfm: keyed
fingerprints, never key bytes; a tfm's key never changes).
"""

from __future__ import annotations

import errno
import socket
import struct
from typing import Optional, Sequence

from . import core
from . import keyed as _keyed
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

SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
_PAGE = core.PAGE


class BadTag(KernelError):
    """The kernel rejected the authentication tag (EBADMSG); the output was wiped."""


# --- cmsgs ----------------------------------------------------------------------------------------------


def cmsgs(op: int, iv: Optional[Buffer] = None, assoclen: Optional[int] = None) -> list[tuple[int, int, bytes]]:
    """Control messages for af_alg_cmsg_send: ALG_SET_OP, ALG_SET_IV (struct af_alg_iv: u32 len + bytes) and
    ALG_SET_AEAD_ASSOCLEN (u32). Any cmsg resets all three in the kernel, so every message carries them."""
    out = [_SET_OP[op] if op in _SET_OP else (SOL_ALG, ALG_SET_OP, _u32(op))]
    if iv is not None:
        out.append((SOL_ALG, ALG_SET_IV, _u32(len(iv)) + bytes(iv)))
    if assoclen is not None:
        out.append((SOL_ALG, ALG_SET_AEAD_ASSOCLEN, _u32(assoclen)))
    return out


_u32 = struct.Struct("I").pack  # the kernel's u32, native order
# The two ALG_SET_OP messages, made once (immutable tuples)
_SET_OP = {op: (SOL_ALG, ALG_SET_OP, _u32(op)) for op in (ALG_OP_ENCRYPT, ALG_OP_DECRYPT)}


# --- socket buffer sizes -------------------------------------------------------------------------------

_default_bufs: list[int] = []  # [usable send bytes, usable receive bytes] of a fresh op socket
_force_ok = [True]  # SO_*BUFFORCE may be tried (emptied at the first EPERM: capabilities do not come back)


def _usable(op: OpSocket, opt: int) -> int:
    # af_alg_sndbuf / af_alg_rcvbuf use sk_{snd,rcv}buf & PAGE_MASK
    return int(op.getsockopt(socket.SOL_SOCKET, opt)) & ~(_PAGE - 1)


def _fit(op: OpSocket, in_len: int, out_len: int, alg: Tfm) -> None:
    """Make sure one message of in_len bytes and its out_len-byte output fit the op socket's buffers."""
    if not _default_bufs:
        _default_bufs.extend((_usable(op, socket.SO_SNDBUF), _usable(op, socket.SO_RCVBUF)))
    if in_len <= _default_bufs[0] and out_len <= _default_bufs[1]:
        return  # every op socket starts with the default sizes, and we only ever raise them
    for force, plain, need in (
        (SO_SNDBUFFORCE, socket.SO_SNDBUF, in_len),
        (SO_RCVBUFFORCE, socket.SO_RCVBUF, out_len),
    ):
        want = need + 2 * _PAGE
        # The kernel doubles the value and caps SO_*BUF at net.core.{w,r}mem_max; the FORCE variants need
        # CAP_NET_ADMIN and have no cap (net/core/sock.c sk_setsockopt: SO_SNDBUFFORCE sets
        # sk_sndbuf = max(2 * val, SOCK_MIN_SNDBUF)), so once one succeeded the size is known: no getsockopt.
        if _force_ok:
            try:
                op.setsockopt(socket.SOL_SOCKET, force, want)
                continue
            except PermissionError:  # no CAP_NET_ADMIN (sk_setsockopt: EPERM): not tried again in this process
                _force_ok.clear()
            except OSError:
                pass
        try:
            op.setsockopt(socket.SOL_SOCKET, plain, want)
        except OSError as e:
            raise kernel_error(e, "setsockopt(SO_SNDBUF)", alg.alg_type, alg.name) from None
        have = _usable(op, plain)
        if have < need:
            raise KernelError(
                errno.EMSGSIZE,
                f"{alg.alg_type} {alg.name!r}: a {need}-byte AEAD message does not fit the socket buffer "
                f"({have} bytes; raise net.core.wmem_max/rmem_max or run with CAP_NET_ADMIN): "
                "the kernel's AEAD interface takes a whole message at once",
            )


def too_big(e: KernelError) -> bool:
    """Whether the kernel refused an AEAD operation for its size: the message does not fit the socket buffers
    (EMSGSIZE from _fit), or the kernel could not allocate its scatterlists (ENOMEM/ENOBUFS from
    af_alg_alloc_areq / sock_kmalloc, bounded by optmem_max). The modes then stream the MAC or follow the policy."""
    return e.errno in (errno.EMSGSIZE, errno.ENOMEM, errno.ENOBUFS)


# --- operations -----------------------------------------------------------------------------------------


def _wipe(bufs: Sequence[memoryview]) -> None:
    for b in bufs:
        memoryview(b).cast("B")[:] = bytes(nbytes(b))


def crypt(
    alg: Tfm,
    op: OpSocket,
    encrypt: bool,
    iv: Buffer,
    assoclen: int,
    data: Sequence[Buffer],
    out: Sequence[memoryview],
) -> None:
    """One AEAD operation on `op`: sendmsg(data) then recvmsg_into(out) for exactly the output length.

    data is AAD||PT (encrypt) or AAD||CT||TAG (decrypt); out must total AAD||CT||TAG or AAD||PT. On EBADMSG the
    output is wiped and BadTag raised; any other failure leaves `op` unusable (the caller closes it)."""
    in_len = sum(map(nbytes, data))
    out_len = sum(map(nbytes, out))
    if out_len == 0:
        raise ValueError("an AEAD operation with no output cannot be run (recv(0) does not run it)")
    _fit(op, in_len, out_len, alg)
    try:
        n = op.sendmsg(data, cmsgs(ALG_OP_ENCRYPT if encrypt else ALG_OP_DECRYPT, iv, assoclen), 0)
    except OSError as e:
        raise kernel_error(e, "sendmsg", alg.alg_type, alg.name) from None
    if n != in_len:
        count(alg, "send", in_len)
        raise KernelError(errno.EIO, f"{alg.alg_type} {alg.name!r}: short send ({n} of {in_len} bytes)")
    try:
        got = op.recvmsg_into(out)[0]
    except OSError as e:
        count_exchange(alg, in_len)
        if e.errno == errno.EBADMSG:
            _wipe(out)  # the in-place decryption already ran: never leave unverified plaintext behind
            raise BadTag(errno.EBADMSG, f"{alg.name}: authentication tag mismatch (EBADMSG)") from None
        raise kernel_error(e, "recvmsg", alg.alg_type, alg.name) from None
    count_exchange(alg, in_len)  # the send and this recv
    if got != out_len:
        _wipe(out)
        raise KernelError(errno.EIO, f"{alg.alg_type} {alg.name!r}: short output ({got} of {out_len} bytes)")


def stream(alg: Tfm, op: OpSocket, iv: Buffer, data: Sequence[Buffer], out: Sequence[memoryview]) -> None:
    """One one-shot skcipher encryption on `op` (a stream cipher: ctr(aes), chacha20, xchacha20, or the
    CBC-MAC's cbc(aes)) with an explicit IV: sendmsg with ALG_SET_OP+ALG_SET_IV and no MSG_MORE, then
    receive exactly the input length into `out` (algif_skcipher: a final partial block is processed when
    nothing more is pending; a longer buffer would block)."""
    in_len = sum(map(nbytes, data))
    out_len = sum(map(nbytes, out))
    if in_len != out_len or in_len == 0:
        raise ValueError("a stream operation needs equal, non-zero input and output lengths")
    _fit(op, in_len, in_len, alg)
    try:
        n = op.sendmsg(data, cmsgs(ALG_OP_ENCRYPT, iv), 0)
    except OSError as e:
        raise kernel_error(e, "sendmsg", alg.alg_type, alg.name) from None
    if n != in_len:
        count(alg, "send", in_len)
        raise KernelError(errno.EIO, f"{alg.alg_type} {alg.name!r}: short send ({n} of {in_len} bytes)")
    try:
        got = op.recv_into(out[0], out_len) if len(out) == 1 else op.recvmsg_into(out)[0]
    except OSError as e:
        count(alg, "send", in_len)
        raise kernel_error(e, "recv", alg.alg_type, alg.name) from None
    count_exchange(alg, in_len)  # the send and this recv
    if got != out_len:
        raise KernelError(errno.EIO, f"{alg.alg_type} {alg.name!r}: short output ({got} of {out_len} bytes)")


# --- keyed tfm cache ------------------------------------------------------------------------------------


def acquire(alg_type: str, name: str, key: Buffer, authsize: Optional[int] = None) -> tuple[Tfm, OpSocket]:
    """The cached tfm keyed with `key` (and tag size `authsize`, None = the algorithm's default) and an idle op
    socket of it. Give the op socket back with tfm.release(op) once its operation finished, or drop it.

    A tfm's key never changes (keyed.py), so the pair stays under `key` whatever other threads do to the cache."""
    t = _keyed.cached_tfm(alg_type, name, key, authsize=authsize)
    return t, t.op()


def clear() -> None:
    """Drop every cached keyed tfm (all kinds: the cache is shared)."""
    _keyed.clear()


# --- one operation on a cached keyed tfm ----------------------------------------------------------------


def aead_once(
    name: str,
    key: Buffer,
    authsize: Optional[int],
    encrypt: bool,
    iv: Buffer,
    assoclen: int,
    data: Sequence[Buffer],
    out: Sequence[memoryview],
) -> None:
    """crypt() on a pooled op socket of the cached tfm for (name, key, authsize): sendmsg + recvmsg in steady
    state. A bad tag leaves the op socket clean (the kernel consumed the message), so it is pooled again."""
    t, op = acquire("aead", name, key, authsize)
    try:
        crypt(t, op, encrypt, iv, assoclen, data, out)
    except BadTag:
        t.release(op)
        raise
    except BaseException:
        op.close()  # the kernel state of this op socket is unknown now
        raise
    t.release(op)


def stream_once(name: str, key: Buffer, iv: Buffer, data: Sequence[Buffer], out: Sequence[memoryview]) -> None:
    """stream() on a pooled op socket of the cached skcipher tfm for (name, key)."""
    t, op = acquire("skcipher", name, key)
    try:
        stream(t, op, iv, data, out)
    except BaseException:
        op.close()
        raise
    t.release(op)
