"""kcapi_hashlib.Random: bytes from the kernel DRBG (AF_ALG "rng" "stdrng"), 128 bytes per recv, and a forked
child that never uses its parent's RNG socket."""

from __future__ import annotations

import os

import pytest

from kcapi_hashlib import Random, _afalg
from kcapi_hashlib._afalg import rng
from tests.support import requires

pytestmark = requires.kernel_alg("rng", "stdrng")


@pytest.mark.parametrize("n", [0, 1, 15, 127, 128, 129, 255, 256, 1000, 4097])
def test_lengths_and_recv_count(n: int) -> None:
    Random.get_random_bytes(1)
    before = _afalg.stats()["recv"]
    out = Random.get_random_bytes(n)
    assert type(out) is bytes and len(out) == n
    assert _afalg.stats()["recv"] - before == -(-n // rng.MAXSIZE)


def test_outputs_differ_and_look_random() -> None:
    samples = {Random.get_random_bytes(16) for _ in range(200)}
    assert len(samples) == 200
    big = Random.get_random_bytes(1 << 16)
    assert 200 < len(set(big)) <= 256  # all byte values show up in 64 KiB
    assert abs(sum(bin(b).count("1") for b in big) - 4 * len(big)) < 0.02 * 4 * len(big)


def test_new_read_and_compat_methods() -> None:
    f = Random.new()
    assert len(f.read(40)) == 40
    f.flush()
    f.reinit()
    f.close()
    assert len(f.read(3)) == 3  # PyCryptodome's close() is a no-op too
    assert Random.atfork() is None
    with pytest.raises(TypeError):  # positional-only, as os.urandom (PyCryptodome's get_random_bytes)
        Random.get_random_bytes(n=5)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        os.urandom(n=5)  # type: ignore[call-arg]


def _socket_inode() -> int:
    return os.fstat(rng._state[0][1].fileno()).st_ino


def test_forked_child_uses_its_own_socket_and_drbg() -> None:
    Random.get_random_bytes(8)
    parent_inode = _socket_inode()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(r)
            fresh = not rng._state  # the inherited sockets were closed at fork
            out = Random.get_random_bytes(32)
            child_inode = _socket_inode()
            os.write(w, b"%d %d %s" % (fresh, child_inode, out.hex().encode()))
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        fresh_s, inode_s, hex_out = f.read().split()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert fresh_s == b"1"
    assert int(inode_s) != parent_inode
    assert len(bytes.fromhex(hex_out.decode())) == 32
    # The parent's socket is untouched by the child's close and still serves.
    assert _socket_inode() == parent_inode
    assert Random.get_random_bytes(32) != bytes.fromhex(hex_out.decode())


def test_unseeded_drbg_is_refused_by_the_kernel() -> None:
    """Why rng.py seeds: an AF_ALG DRBG that was never given ALG_SET_KEY answers recv with EINVAL."""
    t = _afalg.Tfm("rng", rng.NAME)
    op = t.accept()
    try:
        with pytest.raises(OSError) as e:
            op.recv(16)
        assert e.value.errno == 22
    finally:
        op.close()
        t.close()
