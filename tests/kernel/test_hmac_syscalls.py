"""Syscall budgets of HMAC, CMAC and keyed BLAKE2b (and of PBKDF2): every syscall of the process,
steady state, counted by strace -f -c inside the kernel VM. Counts are deterministic, so they are asserted.

Measured on Linux 6.1 (user-mode-linux) with CPython 3.11:
- a never-seen key, key cache full: 9 = socket + bind + setsockopt + accept4 + getsockname + write + read, and
  close x2 (the evicted tfm and its idle op socket: the cache drops it and nothing else holds it). A tfm is never
  re-keyed or rebound (_afalg/keyed.py: that is what keeps a tfm handed to one thread under its key), so an
  eviction costs a new tfm where it used to cost a setsockopt on the old one (5 syscalls).
- a never-seen key while the cache still fills: 6 = socket + bind + setsockopt + accept4 + write + read (the
  cached tfms are not closed one by one at exit: lifecycle._forget_at_exit).
- the same key for every message, a fresh hmac.new() or hmac.digest() each time: 2 = write + read.
- alternating hashes with fresh keys: 9, as for one hash (every miss makes its own tfm).
- PBKDF2: exactly 2 per PRF call (one op socket per derivation), plus a handful per derivation (socket,
  bind, setsockopt, accept4, close x2); HKDF: 2 per PRF call, plus a few more (the salt's tfm is cached,
  the PRK's private).
"""

from __future__ import annotations

import pytest

from tests.support import requires
from tests.support.syscalls import steady_state

_FRESH_KEYS = """
import itertools
from kcapi_hashlib import hmac
from kcapi_hashlib._afalg import keyed
keys = (i.to_bytes(8, 'big') for i in itertools.count())
for _ in range(keyed.CACHE_SIZE + 10):  # fill the key cache: the measured ops all evict
    hmac.new(next(keys), b'warm', 'sha256').digest()
"""


pytestmark = [
    requires.hash_names("hmac:sha256", only="test_never_seen_key_*"),
    requires.hash_names("hmac:sha512", only="test_never_seen_key_other_hash_at_most_nine"),
    requires.hash_names("hmac:sha256", only="test_same_key_many_messages_at_most_three"),
    requires.hmacs("name", only="test_same_key_other_hashes"),
    requires.hash_names("hmac:sha256", only="test_pycryptodome_style_hmac_same_key"),
    requires.kernel_alg("hash", "cmac(aes)", only="test_cmac_same_key"),
    requires.hash_names("blake2b", only="test_keyed_blake2b_same_key"),
    requires.hash_names("hmac:sha256", only="test_*pbkdf2*_per_prf_call"),
    requires.hash_names("hmac:sha1", only="test_pbkdf2_two_blocks_one_op_socket"),
    requires.hash_names("hmac:sha256", only="test_hkdf_two_syscalls_per_prf_call"),
    requires.hash_names("hmac:sha256", only="test_sp800_108_with_kcapi_prf_two_syscalls_per_prf_call"),
    requires.hash_names("hmac:sha256", "hmac:sha512", "hmac:sha1", only="test_measured_operations_*"),
    requires.kernel_alg("hash", "cmac(aes)", only="test_measured_operations_*"),
]


def test_never_seen_key_at_most_nine() -> None:
    count = steady_state(_FRESH_KEYS, "hmac.new(next(keys), b'message', 'sha256').digest()")
    assert count.per_op <= 9, count
    # a new tfm per miss (never a re-keyed one), and the evicted tfm closed with its idle op socket: the cache
    # stays bounded in descriptors
    assert count.by_syscall.get("socket", 0) == 1 and count.by_syscall.get("bind", 0) == 1, count
    assert count.by_syscall.get("close", 0) == 2, count


def test_never_seen_key_while_the_cache_fills_at_most_seven() -> None:
    count = steady_state(
        "from kcapi_hashlib import hmac\nimport itertools\nkeys = (i.to_bytes(8, 'big') for i in itertools.count())",
        "hmac.new(next(keys), b'message', 'sha256').digest()",
        n=40,  # fewer than keyed.CACHE_SIZE: every key gets a new tfm
    )
    # socket, bind, setsockopt, accept4, the getsockname CPython makes for the socket object that owns the
    # accepted descriptor (single ownership: tests/kernel/test_fd_ownership.py), write, read.
    assert count.per_op <= 7, count
    assert count.by_syscall.get("socket", 0) == 1, count


def test_never_seen_key_digest_function_at_most_nine() -> None:
    count = steady_state(_FRESH_KEYS, "hmac.digest(next(keys), b'message', 'sha256')")
    assert count.per_op <= 9, count


def test_never_seen_key_other_hash_at_most_nine() -> None:
    # Alternating algorithms cost what one algorithm does: no tfm is ever rebound to another algorithm.
    setup = _FRESH_KEYS + "names = itertools.cycle(['sha256', 'sha512'])"
    count = steady_state(setup, "hmac.new(next(keys), b'message', next(names)).digest()")
    assert count.per_op <= 9, count
    assert count.by_syscall.get("socket", 0) == 1, count


_SAME_KEY = "from kcapi_hashlib import hmac\nKEY = bytes(range(32))"


@pytest.mark.parametrize(
    "op",
    [
        "hmac.new(KEY, b'header.payload', 'sha256').digest()",
        "hmac.new(KEY, b'header.payload', 'sha256').hexdigest()",
        "hmac.digest(KEY, b'header.payload', 'sha256')",
        "h = hmac.new(KEY, digestmod='sha256'); h.update(b'header.'); h.update(b'payload'); h.digest()",
        "hmac.compare_digest(hmac.digest(KEY, b'header.payload', 'sha256'), b'x' * 32)",
    ],
)
def test_same_key_many_messages_at_most_three(op: str) -> None:
    count = steady_state(_SAME_KEY, op)
    assert count.per_op <= 3, count


@pytest.mark.parametrize("name", ["sha1", "sha512", "sha3_256", "md5"])
def test_same_key_other_hashes(name: str) -> None:
    count = steady_state(_SAME_KEY, f"hmac.new(KEY, b'msg', {name!r}).digest()")
    assert count.per_op <= 3, count


def test_pycryptodome_style_hmac_same_key() -> None:
    count = steady_state(
        "from kcapi_hashlib.Hash import HMAC, SHA256\nKEY = bytes(range(32))", "HMAC.new(KEY, b'm', SHA256).digest()"
    )
    assert count.per_op <= 3, count


def test_cmac_same_key() -> None:
    count = steady_state(
        "from kcapi_hashlib.Hash import CMAC\nfrom Crypto.Cipher import AES\nKEY = bytes(range(16))",
        "CMAC.new(KEY, b'message', ciphermod=AES).digest()",
    )
    assert count.per_op <= 3, count


def test_keyed_blake2b_same_key() -> None:
    count = steady_state(
        "from kcapi_hashlib.Hash import BLAKE2b\nKEY = bytes(range(32))",
        "BLAKE2b.new(data=b'message', key=KEY, digest_bytes=32).digest()",
    )
    assert count.per_op <= 3, count


def _per_prf(setup: str, op: str, small: int, large: int, calls_per_iteration: int = 1) -> tuple[float, float]:
    """(syscalls per PRF call, syscalls per derivation besides the PRF calls)."""
    # Counts are exact, so a few derivations of modest length pin the slope (strace under the VM is slow).
    a = steady_state(setup, op.format(count=small), n=4)
    b = steady_state(setup, op.format(count=large), n=4)
    per_prf = (b.per_op - a.per_op) / ((large - small) * calls_per_iteration)
    return per_prf, a.per_op - per_prf * small * calls_per_iteration


# The send/recv path of PBKDF2 (io_uring's batches, used from 16 iterations where the kernel allows io_uring, have
# their own budget in test_pbkdf2_uring.py).
_SENDRECV = "\nfrom kcapi_hashlib import _kdf\n_kdf.URING_MIN_ITERATIONS = 1 << 62"


def test_pbkdf2_hmac_two_syscalls_per_prf_call() -> None:
    per_prf, fixed = _per_prf(
        "import kcapi_hashlib" + _SENDRECV, "kcapi_hashlib.pbkdf2_hmac('sha256', b'pw', b'salt', {count})", 100, 400
    )
    assert per_prf == 2, per_prf
    assert fixed <= 12, fixed  # socket, bind, setsockopt, accept, close x2, ...


def test_pbkdf2_two_blocks_one_op_socket() -> None:
    count = steady_state("import kcapi_hashlib", "kcapi_hashlib.pbkdf2_hmac('sha1', b'pw', b'salt', 100, 40)", n=10)
    assert count.by_syscall.get("accept4", 0) + count.by_syscall.get("accept", 0) == 1, count
    assert count.by_syscall.get("socket", 0) == 1, count  # one private tfm per derivation (closed after)
    assert count.per_op <= 2 * 200 + 12, count


def test_protocol_pbkdf2_two_syscalls_per_prf_call() -> None:
    setup = "from kcapi_hashlib.Protocol.KDF import PBKDF2\nfrom kcapi_hashlib.Hash import SHA256" + _SENDRECV
    per_prf, fixed = _per_prf(setup, "PBKDF2(b'pw', b'salt', 32, {count}, hmac_hash_module=SHA256)", 100, 400)
    assert per_prf == 2, per_prf
    assert fixed <= 12, fixed


def test_hkdf_two_syscalls_per_prf_call() -> None:
    setup = "from kcapi_hashlib.Protocol.KDF import HKDF\nfrom kcapi_hashlib.Hash import SHA256"
    # output of 32 * n bytes = n expand PRF calls (+1 extract)
    per_prf, fixed = _per_prf(setup, "HKDF(b'ikm' * 8, 32 * {count}, b'salt', SHA256)", 10, 100)
    assert per_prf == 2, per_prf
    assert fixed <= 12, fixed  # extract on the cached salt tfm; expand on a private tfm keyed with the PRK


def test_sp800_108_with_kcapi_prf_two_syscalls_per_prf_call() -> None:
    setup = (
        "from kcapi_hashlib.Protocol.KDF import SP800_108_Counter\nfrom kcapi_hashlib.Hash import HMAC, SHA256\n"
        "prf = lambda s, x: HMAC.new(s, x, SHA256).digest()"
    )
    per_prf, _ = _per_prf(setup, "SP800_108_Counter(b'k' * 32, 32 * {count}, prf)", 10, 100)
    assert per_prf == 2, per_prf


def test_measured_operations_compute_what_the_stdlib_computes() -> None:
    # The budgets above are measured in child interpreters; here the same calls run in this process.
    import hashlib
    import hmac as std_hmac

    from Crypto.Cipher import AES
    from Crypto.Hash import CMAC as PyCMAC

    import kcapi_hashlib
    from kcapi_hashlib import hmac
    from kcapi_hashlib.Hash import CMAC

    key = bytes(range(32))
    assert hmac.digest(key, b"header.payload", "sha256") == std_hmac.digest(key, b"header.payload", "sha256")
    assert (
        hmac.new(b"\0" * 7 + b"\1", b"message", "sha512").digest()
        == std_hmac.new(b"\0" * 7 + b"\1", b"message", "sha512").digest()
    )
    assert kcapi_hashlib.pbkdf2_hmac("sha1", b"pw", b"salt", 100, 40) == hashlib.pbkdf2_hmac(
        "sha1", b"pw", b"salt", 100, 40
    )
    assert CMAC.new(key[:16], b"message", ciphermod=AES).digest() == PyCMAC.new(key[:16], b"message", AES).digest()
