"""Syscall budgets of AEAD messages larger than one socket buffer (every syscall of the process, steady state,
strace -f -c; the budgets count no vDSO calls, see tests/support/syscalls.py).

An AES-GCM message beyond _aead._ONESHOT (192 KiB) is the keystream of ctr(aes) plus GHASH from the kernel's
'ghash' hash keyed with H (6.1), or, where the kernel has no 'ghash' (7.x), one gcm(aes) operation with raised
socket buffers. Either way the cost must not grow with the number of messages (no tfm per message: the 'ghash'
tfm keyed with H comes from the keyed cache) and must be bounded per MiB: keystream pieces of up to 512 KiB,
each send + recv + the socket-buffer raise (setsockopt per buffer). The fixed part is H and E_K(J0) (a ctr
block each, 2 syscalls apiece) and the GHASH stream (AAD send, data send, the clone that finalizes: accept, tail
send, recv, and the close of the stream's op socket).

Measured on UML 6.1 as root: 1 MiB 19, 4 MiB 43 syscalls/message (before the keyed 'ghash' tfm and the larger
pieces: 37 and 85).
"""

from __future__ import annotations

import socket

import pytest

from tests.support import requires
from tests.support.syscalls import steady_state

pytestmark = [*requires.cipher_code("AES.MODE_GCM")]

SETUP = """
import os
from kcapi_hashlib.Cipher import AES, ChaCha20_Poly1305
key = os.urandom(32)
nonce = os.urandom(12)
aad = os.urandom(16)
data = os.urandom({size})
c = AES.new(key, AES.MODE_GCM, nonce=nonce)
c.update(aad)
ct, tag = c.encrypt_and_digest(data)
"""

MIB = 1 << 20
# Per message: H (2) + E_K(J0) (2) + GHASH stream (AAD send, data send, the clone's accept4 + getsockname, its
# send + recv, the close of the stream's op socket: 7) = 11, plus 1 for the allocator (brk); per 512 KiB
# keystream piece: send + recv + 2 setsockopt (root: SO_*BUFFORCE) = 4.
FIXED = 12


def _force_allowed() -> bool:
    """Whether this process may set SO_SNDBUFFORCE (CAP_NET_ADMIN), probed on a plain UDP socket."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.setsockopt(socket.SOL_SOCKET, 32, 1 << 20)  # SO_SNDBUFFORCE
        except PermissionError:
            return False
    return True


# With CAP_NET_ADMIN: keystream pieces of 512 KiB, each send + recv + 2 SO_*BUFFORCE. Without it the buffer is
# capped at 2 * net.core.wmem_max (416 KiB by default): pieces of 384 KiB, each send + recv + setsockopt and
# getsockopt per buffer (the refused SO_*BUFFORCE is tried once per process).
PIECE, PER_PIECE = (512 * 1024, 4) if _force_allowed() else (384 * 1024, 6)


def _budget(size: int) -> float:
    return FIXED + PER_PIECE * -(-size // PIECE)


@pytest.mark.parametrize("size", (MIB, 4 * MIB))
def test_gcm_encrypt_and_digest_large(size: int) -> None:
    op = "c = AES.new(key, AES.MODE_GCM, nonce=nonce)\nc.update(aad)\nc.encrypt_and_digest(data)"
    c = steady_state(SETUP.format(size=size), op, n=8)
    print(c)
    assert c.per_op <= _budget(size), str(c)
    # Nothing is bound per message: the tfms (gcm's ctr(aes) keystream, 'ghash' keyed with H) are the cache's.
    for name in ("socket", "bind"):
        assert c.by_syscall.get(name, 0) == 0, str(c)


@pytest.mark.parametrize("size", (MIB, 4 * MIB))
def test_gcm_decrypt_and_verify_large(size: int) -> None:
    op = "c = AES.new(key, AES.MODE_GCM, nonce=nonce)\nc.update(aad)\nc.decrypt_and_verify(ct, tag)"
    c = steady_state(SETUP.format(size=size), op, n=8)
    print(c)
    assert c.per_op <= _budget(size), str(c)
    for name in ("socket", "bind"):
        assert c.by_syscall.get(name, 0) == 0, str(c)


def test_gcm_large_pieces_per_mib() -> None:
    # The per-MiB cost is what stays bounded: 3 MiB more cost only their keystream pieces.
    op = "c = AES.new(key, AES.MODE_GCM, nonce=nonce)\nc.update(aad)\nc.encrypt_and_digest(data)"
    one = steady_state(SETUP.format(size=MIB), op, n=8).per_op
    four = steady_state(SETUP.format(size=4 * MIB), op, n=4).per_op
    print(one, four)
    assert four - one <= _budget(4 * MIB) - _budget(MIB) + 1, (one, four)  # + 1: the allocator (brk)
