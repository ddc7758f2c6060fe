"""Random bytes from the kernel's DRBG through algif_rng (crypto/algif_rng.c).

- rng_recvmsg returns at most MAXSIZE (128) bytes per recv: a short read, not an error, so reads loop.
- A DRBG bound through AF_ALG is not instantiated until seeded: recv answers EINVAL (drbg_generate: "not yet
  seeded") until ALG_SET_KEY on the tfm has called crypto_rng_reset. We seed with an empty string: the DRBG
  then instantiates from the kernel's own entropy (drbg_kcapi_seed -> drbg_instantiate -> drbg_seed pulls
  get_random_bytes and, where configured, jitterentropy); the seed data would only be a personalization string.
- All op sockets of one tfm share one DRBG. After fork the parent's tfm and op socket are the child's too, so
  the child closes its copies of both (core.at_fork_in_child) and binds its own, freshly seeded DRBG on first use.

seeded() binds a DRBG instance of its own and seeds it with caller's data (libkcapi's kcapi_rng_seed). What the
kernel does with it (crypto/algif_rng.c rng_setkey -> crypto_rng_reset -> crypto/drbg.c drbg_kcapi_seed):
the seed is the personalization string of drbg_instantiate (SP 800-90A 10.x: mixed into the initial state),
and the DRBG still pulls its own entropy (get_random_bytes, jitterentropy where built): the output is NOT a
function of the seed. It is reproducible only with ALG_SET_DRBG_ENTROPY (rng_setentropy), which replaces that
entropy with the caller's test entropy: the CAVP test interface, compiled only with
CONFIG_CRYPTO_USER_API_RNG_CAVP (else setsockopt answers ENOPROTOOPT) and allowed only with CAP_SYS_ADMIN
(EACCES), at most 128 bytes (EMSGSIZE), set before the seed. ALG_SET_KEY answers EBUSY once an op socket
exists, so a seeded instance is seeded once, when it is made.
"""

from __future__ import annotations

import atexit
import errno
from typing import Optional

from . import core
from .core import SOL_ALG, AlgUnavailable, KernelError, OpSocket, Tfm, count, kernel_error

NAME = "stdrng"  # the highest-priority DRBG the kernel has (crypto_alloc_rng picks by priority)
MAXSIZE = 128  # algif_rng.c: #define MAXSIZE 128
ALG_SET_DRBG_ENTROPY = 6  # include/uapi/linux/if_alg.h (Linux >= 5.10)


# [tfm, op socket] of this process, made on first use.
_state: list[tuple[Tfm, OpSocket]] = []
_failure: list[core.AlgUnavailable] = []


def _open() -> tuple[Tfm, OpSocket]:
    if _failure:
        raise _failure[0]
    try:
        t = core.keyed_tfm("rng", NAME, b"")  # seeding: see the module docstring
    except core.AlgUnavailable as e:
        if not e.transient:  # EMFILE, ENOMEM...: the next call tries again
            _failure.append(e)
        raise
    try:
        op = t.accept()
    except BaseException:
        t.close()
        raise
    pair = (t, op)
    _state.append(pair)
    return pair


class EntropyRefused(AlgUnavailable):
    """setsockopt(ALG_SET_DRBG_ENTROPY) refused: str() says the kernel's reason (crypto/algif_rng.c)."""

    def __init__(self, err: int, name: str) -> None:
        super().__init__(err, "setsockopt(ALG_SET_DRBG_ENTROPY)", "rng", name)
        why = {
            errno.ENOPROTOOPT: "this kernel has no CAVP test interface: it is built without "
            "CONFIG_CRYPTO_USER_API_RNG_CAVP (crypto/algif_rng.c installs rng_setentropy only with it)",
            errno.EACCES: "rng_setentropy requires CAP_SYS_ADMIN",
            errno.EMSGSIZE: f"the test entropy is longer than {MAXSIZE} bytes (rng_setentropy)",
        }.get(err)
        if why is not None:
            self.strerror = f"rng {name!r}: setsockopt(ALG_SET_DRBG_ENTROPY) failed with {errno.errorcode[err]}: {why}"

    def __str__(self) -> str:
        return str(self.strerror)


def seeded(seed: bytes, entropy: Optional[bytes] = None, name: str = NAME) -> tuple[Tfm, OpSocket]:
    """A DRBG instance of its own: bind `name`, set the test entropy if given (ALG_SET_DRBG_ENTROPY), seed it
    with `seed` (ALG_SET_KEY: the personalization string, see the module docstring), accept its op socket.
    AlgUnavailable where it cannot be bound or the entropy is refused; KernelError if the seed is refused."""
    t = core.keyed_tfm("rng", name, seed) if entropy is None else _with_entropy(name, entropy, seed)
    try:
        op = t.accept()
    except BaseException:
        t.close()
        raise
    return t, op


def _with_entropy(name: str, entropy: bytes, seed: bytes) -> Tfm:
    failure = core.bind_failure("rng", name)
    if failure is not None:
        raise failure
    try:
        t = Tfm("rng", name)
    except AlgUnavailable as e:
        core.remember_failure(e)
        raise
    try:
        try:
            t._live().setsockopt(SOL_ALG, ALG_SET_DRBG_ENTROPY, entropy)
        except OSError as e:
            raise EntropyRefused(e.errno or errno.EIO, name) from None
        t._setkey(seed)
    except BaseException:
        t.close()
        raise
    return t


def read_from(t: Tfm, op: OpSocket, view: memoryview) -> None:
    """Fill view from the DRBG behind op (MAXSIZE bytes per recv)."""
    done, size = 0, len(view)
    while done < size:
        try:
            n = op.recv_into(view[done : done + MAXSIZE])
        except OSError as e:
            raise kernel_error(e, "recv", t.alg_type, t.name) from None
        count(t, "recv", n)
        if n <= 0:
            raise KernelError(errno.EIO, f"rng {t.name!r}: recv returned {n}")
        done += n


def status() -> Optional[core.AlgUnavailable]:
    """None if the kernel DRBG can be used, else why not (binds it once per process)."""
    try:
        if not _state:
            _open()
    except core.AlgUnavailable as e:
        return e
    return None


def read_into(view: memoryview) -> None:
    """Fill view (a writable byte view) from the kernel DRBG, MAXSIZE bytes per recv."""
    t, op = _state[0] if _state else _open()
    # One op socket may be shared by threads: each recv is one crypto_rng_get_bytes under the socket lock
    # (rng_recvmsg), so concurrent callers get distinct output.
    read_from(t, op, view)


def read(size: int) -> bytes:
    """size bytes from the kernel DRBG (size <= MAXSIZE: one recv, returned as is)."""
    if 0 < size <= MAXSIZE:
        t, op = _state[0] if _state else _open()
        try:
            out = op.recv(size)
        except OSError as e:
            raise kernel_error(e, "recv", t.alg_type, t.name) from None
        count(t, "recv", len(out))
        if len(out) == size:
            return out
        buf = bytearray(size)
        buf[: len(out)] = out
        read_into(memoryview(buf)[len(out) :])
        return bytes(buf)
    buf = bytearray(size)
    if size:
        read_into(memoryview(buf))
    return bytes(buf)


def close() -> None:
    """Close this process's RNG sockets (tests); the next read opens new ones."""
    while _state:
        t, op = _state.pop()
        op.close()
        t.close()


def _after_fork_child() -> None:
    # Closing only drops the child's descriptors: the parent's sockets and DRBG are untouched.
    close()


core.at_fork_in_child(_after_fork_child)
atexit.register(close)  # the op socket is not a Tfm: close it before interpreter teardown warns
