"""Syscall budgets of the ciphers and the RNG (every syscall of the process, steady state, strace -f -c).

- CBC/CTR encryption of 1 MiB: at most 1 + 1 MiB / SO_SNDBUF sendmsg + recv pairs (one complete message per
  socket buffer), and nothing else.
- A call with a key used before: one sendmsg + one recv (the keyed tfm is cached, the op socket pooled).
- get_random_bytes(n): ceil(n / 128) recv calls (algif_rng's MAXSIZE).
"""

from __future__ import annotations

import socket

import pytest

from kcapi_hashlib._afalg import skcipher
from tests.support import requires
from tests.support.syscalls import Count, steady_state

pytestmark = [
    *requires.ciphers("op"),  # the measured code, per parametrized case
    *requires.cipher_code("AES.MODE_CFB", only="test_cfb8_encryption_is_a_pair_per_segment"),
    # a random IV is get_random_bytes: algif_rng's stdrng
    *requires.cipher_code("AES.MODE_CBC", only="test_random_iv_costs_one_recv"),
    requires.kernel_alg("rng", "stdrng", only="test_random_iv_costs_one_recv"),
    requires.kernel_alg("rng", "stdrng", only="test_get_random_bytes"),
    *requires.cipher_code("AES.MODE_CBC", only="test_new_key_every_call"),
]

SETUP = """
from kcapi_hashlib.Cipher import AES, DES3, ChaCha20
from kcapi_hashlib.Random import get_random_bytes
key = bytes(range(32))
iv = bytes(16)
data = bytes({size})
out = bytearray({size})
"""


def _sndbuf() -> int:
    """SO_SNDBUF of an op socket, as the kernel reports it to this process."""
    tfm = skcipher.keyed("cbc(aes)", bytes(16))
    op = tfm.op()
    try:
        return int(op.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))
    finally:
        tfm.release(op)


def _count(op: str, size: int) -> Count:
    c = steady_state(SETUP.format(size=size), op, n=20)
    print(f"{op.strip()} [{size} B]: {c}")
    return c


def _allocator(c: Count) -> float:
    """What the memory allocator spends now and then (a brk every so many operations): not ours, and < 1."""
    spent = sum(c.by_syscall.get(name, 0) for name in ("brk", "mmap", "munmap"))
    assert spent < 1, str(c)
    return spent


def _ours(c: Count) -> float:
    return c.per_op - _allocator(c)


# On a socket, write/writev are a sendmsg and read/readv a recvmsg without flags (net/socket.c:
# sock_write_iter, sock_read_iter): whichever core uses, they are the same kernel operations.
SENDS = ("sendmsg", "sendto", "write", "writev")
RECVS = ("recvfrom", "recvmsg", "read", "readv")


def _pairs(c: Count) -> tuple[float, float]:
    sends = sum(c.by_syscall.get(name, 0) for name in SENDS)
    recvs = sum(c.by_syscall.get(name, 0) for name in RECVS)
    return sends, recvs


@pytest.mark.parametrize(
    "op",
    [
        "AES.new(key[:16], AES.MODE_CBC, iv).encrypt(data)",
        "AES.new(key, AES.MODE_CTR, nonce=iv[:8]).encrypt(data)",
        "AES.new(key, AES.MODE_CBC, iv).decrypt(data, output=out)",
        "AES.new(key, AES.MODE_CTR, nonce=iv[:8]).decrypt(data, output=out)",
    ],
)
def test_one_mib_within_socket_buffers(op: str) -> None:
    sndbuf = _sndbuf()
    budget = 1 + (1 << 20) / sndbuf
    c = _count(op, 1 << 20)
    sends, recvs = _pairs(c)
    assert sends == recvs
    assert sends <= budget, f"{sends} send/recv pairs > 1 + 1 MiB / SO_SNDBUF ({budget:.2f}): {c}"
    assert abs(_ours(c) - sends - recvs) < 1e-9, str(c)  # nothing but the pairs


@pytest.mark.parametrize(
    "op, size",
    [
        ("AES.new(key, AES.MODE_CBC, iv).encrypt(data)", 64),
        ("AES.new(key[:16], AES.MODE_ECB).decrypt(data)", 64),
        ("AES.new(key, AES.MODE_CTR, nonce=iv[:8]).encrypt(data)", 61),
        ("AES.new(key, AES.MODE_CFB, iv, segment_size=128).encrypt(data)", 64),
        ("AES.new(key, AES.MODE_CFB, iv).decrypt(data)", 64),
        ("AES.new(key, AES.MODE_OFB, iv).encrypt(data)", 64),
        ("AES.new(key, AES.MODE_XTS, tweak=iv).encrypt(data)", 512),
        ("DES3.new(key[:24], DES3.MODE_CBC, iv[:8]).encrypt(data)", 64),
        ("ChaCha20.new(key=key, nonce=iv[:12]).encrypt(data)", 100),
        ("ChaCha20.new(key=key, nonce=iv + iv[:8]).decrypt(data, output=out)", 100),
        ("AES.new(key, AES.MODE_CTR, nonce=iv[:8]).encrypt(data, output=out)", 4096),
    ],
)
def test_known_key_is_one_pair(op: str, size: int) -> None:
    c = _count(op, size)
    assert _pairs(c) == (1, 1)
    assert abs(_ours(c) - 2) < 1e-9, str(c)


def test_cfb8_encryption_is_a_pair_per_segment() -> None:
    """Documented cost of CFB-8 encryption (each segment needs the previous ciphertext): 2 syscalls a byte."""
    c = _count("AES.new(key, AES.MODE_CFB, iv).encrypt(data)", 32)
    assert _pairs(c) == (32, 32)
    assert abs(_ours(c) - 64) < 1e-9, str(c)


def test_random_iv_costs_one_recv() -> None:
    c = _count("AES.new(key, AES.MODE_CBC).encrypt(data)", 64)
    assert _pairs(c) == (1, 2)
    assert abs(_ours(c) - 3) < 1e-9, str(c)


@pytest.mark.parametrize("n, recvs", [(1, 1), (16, 1), (128, 1), (129, 2), (1000, 8)])
def test_get_random_bytes(n: int, recvs: int) -> None:
    c = _count(f"get_random_bytes({n})", 0)
    assert _pairs(c) == (0, recvs)
    assert abs(_ours(c) - recvs) < 1e-9, str(c)


def test_new_key_every_call() -> None:
    """A key never seen, cache full: a new tfm (socket, bind, setsockopt(ALG_SET_KEY)), accept4 (+ the getsockname
    CPython's accept() makes) and the pair; the least recently used tfm and its idle op socket are closed (never
    re-keyed: _afalg/keyed.py)."""
    setup = SETUP.format(size=64) + (
        "import os\nkeys = iter([os.urandom(16) for _ in range(400)])\n"
        f"for _ in range({skcipher._KEY_CACHE_MAX + 8}):\n"  # fill the (shared) key cache
        "    AES.new(next(keys), AES.MODE_CBC, iv).encrypt(data)\n"
    )
    c = steady_state(setup, "AES.new(next(keys), AES.MODE_CBC, iv).encrypt(data)", n=100)
    print(f"new key per call: {c}")
    assert _pairs(c) == (1, 1)
    assert c.by_syscall.get("socket", 0) == 1 and c.by_syscall.get("bind", 0) == 1, str(c)
    assert c.by_syscall.get("close", 0) == 2, str(c)
    assert _ours(c) <= 9 + 1e-9, str(c)
