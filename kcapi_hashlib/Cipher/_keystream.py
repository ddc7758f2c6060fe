"""The one keystream engine of Cipher/: a counter-mode stream cipher (ctr(<cipher>), chacha20, xchacha20) run by
the kernel from any byte position, its output XORed with the data by the kernel itself.

Used by CTR (big-endian counters), ChaCha20/XChaCha20, and the keystream halves of GCM (GCTR), CCM (CTR from
A_1, and S_0) and ChaCha20-Poly1305 (and its one-time Poly1305 key, block -1).

- Each kernel message starts on a key-stream block boundary with the IV of that block (iv_at(block index)): the
  bytes of its first block before the position are zeros that are sent and received into scratch space, so the
  kernel never needs to remember a position (chacha20 does not chain its IV across requests:
  chacha_stream_xor works on a copy; ctr steps its counter past a partial final block, which is therefore
  processed as the last one: crypto/algif_skcipher.c _skcipher_recvmsg runs a request over whatever was sent
  once no MSG_MORE is pending).
- boundary(block index) is the first block index after it where a message must end: where the mode's counter
  field wraps and the kernel's increment would carry past it (ctr increments the whole block, crypto_inc;
  chacha20 only state word 12), the next message then carries the wrapped IV. None: no such place.
- Pieces: at most one socket buffer (skcipher.max_message()), one sendmsg + one recv each and nothing else.
  Callers that stream large messages (the AEAD modes) pass their key as `raise_with`: a remainder larger than
  one socket buffer then goes in pieces of up to 512 KiB with the op socket's buffers raised for it
  (_afalg.aead.stream_once: send + recv + a setsockopt per buffer, fewer syscalls per MiB), shrinking
  512 -> 384 -> 256 -> 128 KiB where the kernel refuses a piece for its size (what worked is remembered for
  the process): an unprivileged SO_SNDBUF is capped at 2 * net.core.wmem_max (416 KiB by default:
  sk_setsockopt), and sock_kmalloc of the scatterlists (af_alg_alloc_tsgl, af_alg_get_rsgl) is bounded by
  net.core.optmem_max (20 KiB on 6.1, which stops one operation between 640 and 768 KiB).

No socket is touched here: kernel work goes through kcapi_hashlib._afalg.skcipher and .aead.
"""

from __future__ import annotations

from typing import Callable, Optional

from .._afalg import KernelError, Tfm
from .._afalg import aead as _k
from .._afalg import skcipher as _sk
from ._common import Buffer, finish, new_output, zeros

IvAt = Callable[[int], bytes]
Boundary = Callable[[int], Optional[int]]

# The smallest raised piece, and where raised pieces start (see the module docstring); _chunk[0] is what
# worked so far in this process.
_SMALLEST = 128 * 1024
_LARGEST = 512 * 1024
_chunk = [_LARGEST]


def xor(
    alg: Tfm,
    src: memoryview,
    dst: memoryview,
    position: int,
    block: int,
    iv_at: IvAt,
    boundary: Optional[Boundary] = None,
    raise_with: Optional[Buffer] = None,
) -> None:
    """dst = src XOR the key stream of `alg` (a keyed skcipher tfm, block size `block`) from byte `position`
    (negative: before block 0, as the AEAD modes' key blocks are). `raise_with`: the tfm's key, to allow
    pieces larger than one socket buffer (module docstring)."""
    n = len(src)
    done = 0
    while done < n:
        index, head = divmod(position + done, block)
        one_buffer = _sk.max_message() // block * block
        big = raise_with is not None and head + n - done > one_buffer and _chunk[0] > one_buffer
        limit = _chunk[0] if big else one_buffer
        room = limit - head
        stop = boundary(index) if boundary is not None else None
        if stop is not None:
            room = min(room, (stop - index) * block - head)
        take = min(n - done, room)
        send: list[Buffer] = [src[done : done + take]]
        recv: list[memoryview] = [dst[done : done + take]]
        if head:
            send.insert(0, zeros(head))
            recv.insert(0, memoryview(bytearray(head)))
        if not big:
            _sk.message(alg, True, iv_at(index), send, recv)
        else:
            assert raise_with is not None
            try:
                _k.stream_once(alg.name, raise_with, iv_at(index), send, recv)
            except KernelError as e:
                # Refused for its size (stream_once closed the op socket): the same piece again, smaller; dst
                # is rewritten whole by the retry.
                if limit <= _SMALLEST or not _k.too_big(e):
                    raise
                _chunk[0] = max(_SMALLEST, limit - (128 * 1024 if limit <= 384 * 1024 else limit // 4))
                continue
        done += take


def crypt(
    alg: Tfm,
    src: memoryview,
    dst: Optional[memoryview],
    position: int,
    block: int,
    iv_at: IvAt,
    boundary: Optional[Boundary] = None,
) -> Optional[bytes]:
    """xor() into `dst`, or into a new bytes object that is returned (dst None); nothing reaches the kernel for
    an empty input. What CTR and ChaCha20's encrypt()/decrypt() return."""
    n = len(src)
    if dst is None:
        if n == 0:
            return b""
        obj, out = new_output(n)
        xor(alg, src, out, position, block, iv_at, boundary)
        return finish(obj)
    if n:
        xor(alg, src, dst, position, block, iv_at, boundary)
    return None


__all__ = ["crypt", "xor"]
