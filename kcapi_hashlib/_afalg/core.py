"""The one package that talks to the kernel: every AF_ALG syscall and errno translation lives in it.

Public modules never touch sockets; they call the small API below. The shape of an AF_ALG user:

    tfm = socket(AF_ALG, SOCK_SEQPACKET); tfm.bind((type, name))   # a transform ("tfm") socket
    tfm.setsockopt(SOL_ALG, ALG_SET_KEY, key)                       # keyed algorithms, before accept
    op, _ = tfm.accept()                                            # an operation socket
    op.sendmsg(...); op.recv(...)                                   # the work

This package splits that work the way the kernel does: core (crypto/af_alg.c: sockets, keys, errors,
fork), hash (crypto/algif_hash.c), skcipher, aead and rng (crypto/algif_*.c). Kernel behaviour relied on is
cited by the kernel function that has it; docs/kernel-notes.md collects these facts by kernel file.
"""

from __future__ import annotations

import _socket
import atexit
import collections
import errno
import functools
import operator
import os
import socket
import struct
import weakref
from itertools import starmap
from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

from . import accounting, keyring, procfs, restrict
from .keyring import KeyringError, Serial

Buffer = Union[bytes, bytearray, memoryview]

AF_ALG = 38
SOL_ALG = 279
ALG_SET_KEY = 1
ALG_SET_IV = 2
ALG_SET_OP = 3
ALG_SET_AEAD_ASSOCLEN = 4
ALG_SET_AEAD_AUTHSIZE = 5
ALG_SET_KEY_BY_KEY_SERIAL = 7  # Linux >= 6.2 (crypto/af_alg.c: alg_setkey_by_key_serial)
ALG_OP_DECRYPT = 0
ALG_OP_ENCRYPT = 1
MSG_MORE = socket.MSG_MORE
SPLICE_F_MORE = 4
F_SETPIPE_SZ = 1031

# One sendmsg() is clamped by the VFS to MAX_RW_COUNT (INT_MAX & PAGE_MASK); a short count from algif_hash
# is fatal (6.5+: a failing later chunk returns a short count with the state discarded), so we never let the
# clamp produce one: larger inputs go in chunks of this size.
_MAX_SEND = 1 << 30

# Idle, finalized op sockets kept per tfm. A finalized hash op socket starts a fresh hash on its next send
# (hash_sendmsg: crypto_ahash_init when !ctx->more), so reusing one saves accept() + close() per object.
_POOL_MAX = 16

# af_alg_sndbuf/af_alg_rcvbuf round socket buffers down to whole pages: 4 KiB on x86, 64 KiB on some arm64/ppc64.
PAGE = os.sysconf("SC_PAGESIZE")

# Every kernel operation made (bind, accept, send, recv, splice); tests read it to prove they reached AF_ALG.
# Protected by accounting.LOCK, as every per-algorithm counter is (see count()).
_stats = {"bind": 0, "accept": 0, "send": 0, "recv": 0, "splice": 0}


def stats() -> dict[str, int]:
    """How many AF_ALG operations this process made, by kind (a copy)."""
    return dict(_stats)


def kernel_operations() -> int:
    return sum(_stats.values())


def count(alg: Tfm, kind: str, nbytes: int = 0, ops: int = 1) -> None:
    """`ops` AF_ALG operations of `kind` on `alg` (one, but for io_uring's batches), of nbytes of input in all: the
    process-wide stats(), and accounting per algorithm (the tfm's own counter: no lookup, no syscall; see
    accounting.py). The one place that counts: each increment is a read-modify-write, exact only under
    accounting.LOCK (without the GIL, threads counting at once lost 13-60% of their counts)."""
    c = alg._acct
    with accounting.LOCK:
        _stats[kind] += ops
        c[0] += ops
        c[1] += nbytes


def count_exchange(alg: Tfm, nbytes: int) -> None:
    """count(alg, "send", nbytes) and count(alg, "recv") in one hold of the lock: a one-shot digest or MAC."""
    c = alg._acct
    with accounting.LOCK:
        _stats["send"] += 1
        _stats["recv"] += 1
        c[0] += 2
        c[1] += nbytes


# --- errors ---------------------------------------------------------------------------------------------


class Explanation(NamedTuple):
    """What an errno from AF_ALG means for one step and algorithm, in the parts its readers use. One place says
    it per errno (_explanation); the CLI only formats these (doctor's findings and verdict, list's cause column).

    - cause: a short name to group refusals by (list --json's "cause"): "no AF_ALG", "blocked (seccomp)", "not in
      kernel", restrict.RESTRICTED, ...
    - summary: what happened, one clause (doctor's verdict: "NOT USABLE: {summary} ({ERRNO}): ...")
    - sentence: str() of the error: what failed, with which errno, the likely causes, and what to do
    - remedy: what would change the answer ("" where nothing but trying again would)
    """

    cause: str
    summary: str
    sentence: str
    remedy: str


# Where socket(AF_ALG) fails with EAFNOSUPPORT: every way to a kernel that has AF_ALG (alg_create is af_alg.ko's).
_NO_AF_ALG = (
    "the host needs a kernel built with CONFIG_CRYPTO_USER_API_HASH (and _SKCIPHER, _AEAD, _RNG for the others) "
    "with those modules loaded (as root: modprobe af_alg algif_hash); in a container, AF_ALG is the host "
    "kernel's, and its seccomp profile must allow socket(AF_ALG)"
)


def _said(cause: str, summary: str, body: str, remedy: str = "") -> Explanation:
    """An Explanation whose sentence is `body` (it starts with the summary) and then the remedy."""
    return Explanation(cause, summary, f"{body}; {remedy}" if remedy else body, remedy)


def _seccomp_mode() -> Optional[str]:
    """/proc/self/status's Seccomp field ("0" none, "1" strict, "2" filter), or None where it cannot be read."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Seccomp:"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def explanation(
    err: int, step: str, alg_type: str, alg_name: str, has: Optional[Callable[[str], Optional[str]]] = None
) -> Explanation:
    """Why the kernel refused `step` for (alg_type, alg_name), and what to do, in parts (see Explanation). `has`:
    where the kernel shows it has a name (restrict.kernel_has, the default; it reads /proc/crypto and the module
    index), which tells a refused module from a missing algorithm for ENOENT; it changes only cause and remedy."""
    refusal = restrict.classify(err, step, alg_type, alg_name)
    return _explanation(err, step, alg_type, alg_name, refusal, restrict.kernel_has if has is None else has)


def explain(err: int, step: str, alg_type: str, alg_name: str) -> str:
    """A sentence saying why the kernel refused `step` for (alg_type, alg_name), and what to do."""
    refusal = restrict.classify(err, step, alg_type, alg_name)
    return _explanation(err, step, alg_type, alg_name, refusal, None).sentence


def _explanation(
    err: int,
    step: str,
    alg_type: str,
    alg_name: str,
    refusal: Optional[restrict.Refusal],
    has: Optional[Callable[[str], Optional[str]]],
) -> Explanation:
    """explanation() for a known af_alg_restrict reading; has=None: do not look (the sentence is the same)."""
    what = f"{alg_type} algorithm {alg_name!r}"
    name = errno.errorcode.get(err, str(err))
    if refusal is not None:  # af_alg_restrict >= 1 refused it, or may have (7.3+: see restrict.py)
        summary = {
            restrict.DISABLED: f"AF_ALG is disabled by af_alg_restrict={refusal.level} for every process",
            restrict.RESTRICTED: f"af_alg_restrict={refusal.level} refuses {what} to this process",
            restrict.MAYBE_RESTRICTED: f"the kernel cannot bind {what} (af_alg_restrict={refusal.level}, or not built)",
        }.get(refusal.cause, refusal.sentence)
        return Explanation(refusal.cause, summary, refusal.sentence, refusal.remedy)
    if step.startswith("setsockopt(ALG_SET_KEY_BY_KEY_SERIAL"):
        by_serial = _explain_serial(err, step, what)
        if by_serial is not None:
            return Explanation(name, by_serial, by_serial, "")
    level = restrict.level()
    restricted = f" (/proc/sys/crypto/af_alg_restrict is {level})" if level else ""
    if err == errno.EAFNOSUPPORT:
        summary = "this kernel has no AF_ALG sockets"
        return _said(
            "no AF_ALG",
            summary,
            f"{summary}: socket(AF_ALG) failed with EAFNOSUPPORT (kernel built without CONFIG_CRYPTO_USER_API, the "
            f"af_alg module is missing or refused, or af_alg_restrict=2){restricted}",
            _NO_AF_ALG,
        )
    if err in (errno.EPERM, errno.EACCES):
        return _explain_blocked(step, name, _seccomp_mode(), restricted)
    if err == errno.ENOENT and step == "bind" and procfs.fips_enabled():
        # FIPS mode (fips=1): the kernel lists every algorithm but finds only the FIPS-allowed ones
        # (procfs.fips_refused cites where). Said whether or not /proc/crypto shows which part is refused.
        return _explain_fips(what, alg_name, procfs.fips_refused(alg_name))
    if err == errno.ENOENT:
        # crypto_alloc_* found no such algorithm (crypto/api.c: crypto_alg_mod_lookup after request_module
        # "crypto-<name>"): not built, or its module missing or refused. Which, only the kernel's lists can say.
        evidence = has(alg_name) if has is not None and step == "bind" else None
        return _explain_enoent(what, alg_type, alg_name, restricted, has is not None, evidence)
    if err == errno.ENOKEY:
        return _said(name, f"{what} needs a key and none was set", f"{what} needs a key and none was set: ENOKEY")
    summary = f"{what}: {step}() failed with {name}"
    if err == errno.EBUSY:
        return _said(name, summary, f"{summary} (the tfm already has operation sockets)")
    if err in (errno.ENOMEM, errno.ENOBUFS):
        return _said(
            name,
            summary,
            f"{summary} (the kernel's socket option memory, net.core.optmem_max, or memory is exhausted; "
            "transient: the next call tries again)",
        )
    if err in (errno.EMFILE, errno.ENFILE):
        table = "this process's descriptor table (RLIMIT_NOFILE)" if err == errno.EMFILE else "the system's file table"
        return _said(
            name, summary, f"{summary}: {table} is full (transient: nothing is remembered, the next call tries again)"
        )
    return _said(name, summary, f"{summary}: {os.strerror(err)}")


def _explain_blocked(step: str, name: str, seccomp: Optional[str], restricted: str) -> Explanation:
    """EPERM/EACCES from socket() or bind(). crypto/af_alg.c gives neither (alg_create answers only
    ESOCKTNOSUPPORT, EPROTONOSUPPORT or ENOMEM; af_alg_restrict answers ENOENT, see restrict.py): a seccomp filter
    does, at the syscall, or an LSM through security_socket_create/security_socket_bind. /proc/self/status's
    Seccomp field tells which of the two it can be."""
    failed = f"{step}() failed with {name}"
    if seccomp == "2":
        summary = "AF_ALG is blocked for this process by a seccomp filter"
        return _said(
            "blocked (seccomp)",
            summary,
            f"{summary}: {failed} (this process runs under a seccomp filter, as container runtimes' default "
            f"profiles install: Docker 29+, containerd){restricted}",
            "allow socket() with address family 38 (AF_ALG) in the seccomp profile: docker/podman run "
            "--security-opt seccomp=PROFILE.json (seccomp=unconfined to confirm), Kubernetes: "
            "securityContext.seccompProfile",
        )
    if seccomp == "0":
        summary = "AF_ALG is blocked for this process by a security module"
        return _said(
            "blocked (LSM)",
            summary,
            f"{summary}: {failed} (no seccomp filter is installed here: an LSM policy such as SELinux or AppArmor "
            f"denies it){restricted}",
            "allow AF_ALG sockets in that policy; its denials are in the audit log (ausearch -m avc, "
            "dmesg | grep -i denied)",
        )
    summary = "AF_ALG is blocked for this process"
    return _said(
        "blocked (LSM or seccomp)",
        summary,
        f"{summary}: {failed} (a seccomp profile such as Docker's or containerd's default, or an LSM policy)"
        f"{restricted}",
        "allow socket() with address family 38 (AF_ALG) in the seccomp profile or security policy that refuses it",
    )


def _explain_fips(what: str, alg_name: str, refused: Optional[str]) -> Explanation:
    """ENOENT from bind() while the kernel is in FIPS mode; `refused`: the part /proc/crypto marks "fips: no"."""
    summary = f"the kernel is in FIPS mode and does not allow {what}"
    if refused is not None:
        shown = "it" if refused == alg_name else repr(refused)
        body = f"{summary}: ENOENT (fips_enabled=1, and /proc/crypto marks every implementation of {shown} 'fips: no')"
    else:
        body = (
            f"{summary}: ENOENT (fips_enabled=1: only FIPS-allowed algorithms bind; it is not built, refused, or "
            "not allowed)"
        )
    remedy = (
        "use a FIPS-approved algorithm ('kcapi-hashlib doctor --fips -a NAME' shows which are), or a kernel not "
        "booted with fips=1; the fallback policy would compute it outside the kernel's FIPS boundary"
    )
    return _said("not FIPS-allowed", summary, body, remedy)


def _explain_enoent(
    what: str, alg_type: str, alg_name: str, restricted: str, looked: bool, evidence: Optional[str]
) -> Explanation:
    """ENOENT outside af_alg_restrict. The sentence is the same whatever the evidence (AlgUnavailable's str() does
    not look); `looked` and `evidence` (restrict.kernel_has's answer) choose the cause and remedy list shows."""
    summary = f"the kernel cannot bind {what}"
    body = (
        f"{summary}: ENOENT (not built into this kernel, or its module is missing or refused/blacklisted){restricted}"
    )
    remedy = (
        "use a kernel built with it, or load its module as root (modprobe crypto-NAME; 'kcapi-hashlib doctor' "
        "shows the modprobe rules that refuse one)"
    )
    if not looked:
        return Explanation("not in kernel or refused", summary, f"{body}; {remedy}", remedy)
    sentence = f"{body}; {remedy}"
    if evidence is None:
        return Explanation("not in kernel", summary, sentence, "use a kernel built with it")
    if evidence == "/proc/crypto lists it":  # registered, yet no implementation of it binds as this type
        return Explanation(
            "not bindable",
            summary,
            sentence,
            f"{evidence}, but no implementation AF_ALG binds as {alg_type} (internal ones only, or another type): "
            "'kcapi-hashlib list' shows its implementations",
        )
    return Explanation(  # the remedy names no algorithm: doctor's "served here" groups refusals by it
        "module refused",
        summary,
        sentence,
        f"{evidence}, but it did not load: as root, modprobe crypto-NAME (each name in a template such as "
        "hmac(NAME)) says why (a blacklist or install rule in modprobe.d, module loading off)",
    )


def _explain_serial(err: int, step: str, what: str) -> Optional[str]:
    """ALG_SET_KEY_BY_KEY_SERIAL's own errnos (crypto/af_alg.c: alg_setkey_by_key_serial, Linux >= 6.2).

    Its lookup is lookup_key -> lookup_user_key(serial, 0, KEY_NEED_SEARCH): EINVAL for a serial below 1 that is
    no KEY_SPEC_* value, ENOKEY for an unknown or dead one (key_lookup); wait_for_key_construction -> key_validate:
    ENOKEY once invalidated, EKEYREVOKED, EKEYEXPIRED (EIO while not instantiated); key_task_permission: EACCES
    without search permission (read is never needed: a "logon" key works). ENOPROTOOPT is three things: a kernel
    before 6.2 has no case for option 7 in alg_setsockopt's switch and returns the ENOPROTOOPT it set before it; a
    kernel without CONFIG_KEYS has the stub that returns ENOPROTOOPT; and 6.2+ answers it for a key type it takes
    no payload from (anything but user, logon, encrypted, trusted). EINVAL is also an optlen other than 4, or the
    algorithm's setkey refusing the payload's size; ENOMEM a payload above net.core.optmem_max (sock_kmalloc)."""
    key = step[len("setsockopt(ALG_SET_KEY_BY_KEY_SERIAL") : -1].removeprefix(", ")
    key = key or "the keyring key"
    if err == errno.ENOPROTOOPT:
        release = os.uname().release
        if not keyring.serial_keys_known():
            return (
                f"{what}: this kernel ({release}) is too old for keyring keys: setsockopt(ALG_SET_KEY_BY_KEY_SERIAL) "
                "failed with ENOPROTOOPT; ALG_SET_KEY_BY_KEY_SERIAL arrived in Linux 6.2 (give the key as bytes, "
                "or run a newer kernel)"
            )
        return (
            f"{what}: setsockopt(ALG_SET_KEY_BY_KEY_SERIAL) of {key} failed with ENOPROTOOPT: AF_ALG takes only "
            "'logon', 'user', 'encrypted' and 'trusted' keys (the last two where the kernel has that key type), "
            "or this kernel was built without CONFIG_KEYS"
        )
    if err == errno.ENOKEY:
        return f"{what}: {key} is not reachable: ENOKEY (no such key in this process's keyrings, or it was invalidated)"
    if err == errno.EKEYREVOKED:
        return f"{what}: {key} was revoked: EKEYREVOKED (a revoked key can never be used again; add a new one)"
    if err == errno.EKEYEXPIRED:
        return f"{what}: {key} has expired: EKEYEXPIRED (its timeout passed; add a new one)"
    if err == errno.EACCES:
        return (
            f"{what}: this process may not use {key}: EACCES (AF_ALG needs the key's search permission: "
            "keyctl setperm, or possess it through a keyring this process holds)"
        )
    if err == errno.EIO:
        return f"{what}: {key} is not instantiated yet: EIO (its construction has not finished)"
    if err == errno.EINVAL:
        return (
            f"{what}: the kernel refused the payload of {key} as a key: EINVAL (a key size this algorithm does not "
            "take)"
        )
    return None


# errnos that say "not now" rather than "not this algorithm": a descriptor table or memory that is full now,
# an interrupted or would-block call. Never cached as the kernel's answer about an algorithm.
TRANSIENT = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS, errno.EINTR, errno.EAGAIN})


class AlgUnavailable(OSError):
    """The kernel cannot serve an algorithm. errno is the kernel's; str() says exactly why and what to do, and
    cause, summary and remedy are its parts (Explanation) as list and doctor show them."""

    def __init__(self, err: int, step: str, alg_type: str, alg_name: str) -> None:
        refusal = restrict.classify(err, step, alg_type, alg_name)
        super().__init__(err, _explanation(err, step, alg_type, alg_name, refusal, None).sentence)
        self._err = err
        self.step = step
        self.alg_type = alg_type
        self.alg_name = alg_name
        #: af_alg_restrict's part in this refusal (cause, level, the process's facts, remedy), or None
        self.restriction: Optional[restrict.Refusal] = refusal

    @functools.cached_property
    def explanation(self) -> Explanation:
        """str()'s parts; for ENOENT, cause and remedy from what the kernel shows it has (restrict.kernel_has:
        /proc/crypto and the module index, read on first use, not when the refusal is made)."""
        return _explanation(self._err, self.step, self.alg_type, self.alg_name, self.restriction, restrict.kernel_has)

    @property
    def cause(self) -> str:
        return self.explanation.cause

    @property
    def summary(self) -> str:
        return self.explanation.summary

    @property
    def remedy(self) -> str:
        return self.explanation.remedy

    @property
    def transient(self) -> bool:
        """True for a refusal about resources, not the algorithm (EMFILE, ENOMEM, ...): never remembered."""
        return self.errno in TRANSIENT

    def __str__(self) -> str:
        return str(self.strerror)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.errno, self.step, self.alg_type, self.alg_name))


class KernelError(OSError):
    """A kernel operation failed after the algorithm was bound (ENOKEY, EBADMSG, EINVAL, short send, ...)."""


class KeyUnusable(KernelError, KeyringError):
    """setsockopt(ALG_SET_KEY_BY_KEY_SERIAL) refused the keyring key itself (ENOKEY, EKEYREVOKED, EKEYEXPIRED,
    EKEYREJECTED, EACCES, EIO: the lookup in alg_setkey_by_key_serial): both a KernelError and a KeyringError."""


# lookup_user_key's answers about the key (see _explain_serial), not about the algorithm or the kernel
_KEY_STATE = frozenset(
    {errno.ENOKEY, errno.EKEYREVOKED, errno.EKEYEXPIRED, errno.EKEYREJECTED, errno.EACCES, errno.EIO}
)


def kernel_error(e: OSError, step: str, alg_type: str, alg_name: str) -> KernelError:
    err = e.errno if e.errno is not None else errno.EIO
    return KernelError(err, explain(err, step, alg_type, alg_name))


# --- descriptor ownership -------------------------------------------------------------------------------
#
# Every AF_ALG descriptor is owned by exactly one C socket object (CPython's _socket.socket type, or OpSocket, its
# subclass with no Python __init__ or __del__) from the syscall that made it to its one close(2). The object's C
# finalizer closes the descriptor when the object is collected, and close() is idempotent (sock_close clears the
# number before closing it). That is what makes ownership hold under exceptions raised by signal handlers, which
# CPython runs at bytecode boundaries (after any call returns, at function entry):
#
# - A new descriptor becomes a socket object inside one C call: accept_from() runs accept4 and the socket
#   constructor as map()/starmap() over C callables inside next(), so no bytecode runs between "the kernel gave
#   us fd N" and "N is owned". (`fd, _ = sock._accept()` then `socket(fileno=fd)` would leak N if a handler
#   raised in between.) Wherever the object is dropped after that, on any path, its finalizer closes N.
# - No second Python object ever holds the same number: a socket.socket(fileno=N) wrapper of a descriptor owned
#   elsewhere closes N when it is collected while the owner still uses N, and the next socket()/accept() of
#   anyone gets N back, so one object's writes land in another's kernel state. Bare numbers are only read from
#   the owner for the duration of one os.read/os.write/splice call.
# - No Python-level __del__ is relied on: a handler can raise at a __del__'s first line, before it closes.
#
# The price: the socket constructor validates the number with getsockname(2), one syscall per accept(). Op
# sockets are pooled per tfm, so steady-state one-shot operations never pay it.
#
# Sockets are made with the C type, not socket.socket: libraries that patch socket.socket (eventlet, gevent,
# pytest-socket) must not see or block kernel crypto sockets.

_SOCK = _socket.socket
_NO_ARGS = ((),)
_first_item = operator.itemgetter(0)


def _consume(it: Any) -> None:
    collections.deque(it, 0)


def _blocking(sock: Any) -> Any:
    # socket.setdefaulttimeout() applies to every new C socket too (init_sockobject): AF_ALG operations are
    # synchronous, so keep them plain blocking calls (no poll() before each).
    if sock.gettimeout() is not None:
        sock.settimeout(None)
    return sock


def new_socket() -> Any:
    """socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC): a C socket object owning the new descriptor."""
    return _blocking(_SOCK(AF_ALG, socket.SOCK_SEQPACKET, 0))


class OpSocket(_SOCK):
    """An operation socket: a C socket object (see "descriptor ownership") with the calls AF_ALG needs.

    Plain sends and receives of the hot paths are write(2)/writev(2) and read(2)/readv(2) on its descriptor,
    which on a socket are sendmsg/recvmsg without flags (net/socket.c: sock_write_iter, sock_read_iter; the
    MSG_EOR they add for SEQPACKET is ignored by hash_sendmsg and af_alg_sendmsg).

    An OpSocket is used by one owner at a time (a pool, a hash stream under its lock, one call); it is not itself
    a lock. Every path that leaves its kernel state unknown closes it or drops it (then it closes itself).
    """

    __slots__ = ()

    @classmethod
    def accept_from(cls, parent: Any) -> OpSocket:
        """accept4() on `parent`, the new descriptor owned by the returned object before any bytecode runs."""
        op: OpSocket = next(map(_wrap_op, map(_first_item, starmap(parent._accept, _NO_ARGS))))
        return _blocking(op)  # type: ignore[no-any-return]

    @property
    def closed(self) -> bool:
        return bool(self.fileno() < 0)

    def send(self, data: Buffer, flags: int = 0) -> int:  # type: ignore[override]
        return os.write(self.fileno(), data) if not flags else int(_SOCK.send(self, data, flags))

    def sendmsg(  # type: ignore[override]
        self, buffers: Sequence[Buffer], ancdata: Sequence[tuple[int, int, Buffer]] = (), flags: int = 0
    ) -> int:
        if not ancdata and not flags:
            return os.writev(self.fileno(), buffers)
        return int(_SOCK.sendmsg(self, buffers, ancdata, flags))

    def recv(self, size: int, flags: int = 0) -> bytes:
        return os.read(self.fileno(), size) if not flags else bytes(_SOCK.recv(self, size, flags))

    def recv_into(self, buffer: Buffer, nbytes: int = 0, flags: int = 0) -> int:  # type: ignore[override]
        if flags:
            return int(_SOCK.recv_into(self, buffer, nbytes, flags))
        view = memoryview(buffer).cast("B")
        return os.readv(self.fileno(), [view[:nbytes] if nbytes else view])

    def accept(self) -> OpSocket:
        """accept() on an op socket (a hash clone)."""
        return OpSocket.accept_from(self)


_wrap_op = functools.partial(OpSocket, AF_ALG, socket.SOCK_SEQPACKET, 0)  # OpSocket(..., fileno=fd): owns fd


class Tfm:
    """A bound (and possibly keyed) transform socket, and a pool of its idle op sockets.

    Op sockets keep the tfm alive in the kernel (af_alg_accept takes a reference), so closing the tfm
    socket while op sockets live is safe.

    Its algorithm and key are set in the constructor, before the object is returned, and never change after:
    a Tfm is shared between threads (caches hand it out) only as an immutable thing. The idle pool is a list
    used only through pop() and append(), each one call on a built-in list (atomic: the GIL, or the list's own
    lock in free-threaded builds): an op socket is in the pool or in one caller's hands, never both.
    """

    __slots__ = ("alg_type", "name", "_sock", "_idle", "_acct", "_open", "__weakref__")

    def __init__(
        self,
        alg_type: str,
        name: str,
        key: Union[Buffer, Serial, None] = None,
        authsize: Optional[int] = None,
    ) -> None:
        self.alg_type = alg_type
        self.name = name
        # False from close() and forget() on, before the socket goes: the hot paths' "closed" (release(), the
        # caches) without a fileno() call. Set only by the owner's close/forget calls (a plain store).
        self._open = False
        self._idle: list[OpSocket] = []
        self._acct = accounting.counter(alg_type, name)
        try:
            sock = self._sock = new_socket()
        except OSError as e:
            raise AlgUnavailable(e.errno or errno.EIO, "socket", alg_type, name) from None
        try:
            try:
                sock.bind((alg_type, name))
            except OSError as e:
                raise AlgUnavailable(e.errno or errno.EIO, "bind", alg_type, name) from None
            count(self, "bind")
            # Key and authsize go on the tfm before any accept: the op socket has no setsockopt
            # (EOPNOTSUPP) and alg_setsockopt answers EBUSY once a keyed op socket exists.
            if key is not None:
                self._setkey(key)
            if authsize is not None:
                self._setauthsize(authsize)
        except BaseException:
            sock.close()
            raise
        self._open = True
        _live_tfms[id(self)] = weakref.ref(self, _forget_tfm(id(self)))

    def _live(self) -> Any:
        sock = self._sock
        if sock.fileno() < 0:
            raise ValueError(f"{self.alg_type} transform {self.name!r} is closed")
        return sock

    @property
    def closed(self) -> bool:
        return not self._open or bool(self._sock.fileno() < 0)

    def _setkey(self, key: Union[Buffer, Serial]) -> None:
        """ALG_SET_KEY (alg_setkey), or ALG_SET_KEY_BY_KEY_SERIAL for a keyring key; EBUSY while op sockets of
        this tfm exist. Only from the constructor: a tfm's key never changes once others can see it."""
        if isinstance(key, Serial):
            # alg_setkey_by_key_serial: optlen must be sizeof(key_serial_t) (a native int32, else EINVAL); the
            # kernel copies the payload under key->sem into sock_kmalloc'ed memory, sets it, and frees it zeroed.
            # The bytes never enter this process.
            try:
                self._live().setsockopt(SOL_ALG, ALG_SET_KEY_BY_KEY_SERIAL, struct.pack("=i", key.serial))
            except OSError as e:
                step = f"setsockopt(ALG_SET_KEY_BY_KEY_SERIAL, key {key.serial})"
                err = e.errno if e.errno is not None else errno.EIO
                if err in _KEY_STATE:
                    raise KeyUnusable(err, explain(err, step, self.alg_type, self.name)) from None
                raise kernel_error(e, step, self.alg_type, self.name) from None
            return
        try:
            self._live().setsockopt(SOL_ALG, ALG_SET_KEY, bytes(key))
        except OSError as e:
            raise kernel_error(e, "setsockopt(ALG_SET_KEY)", self.alg_type, self.name) from None

    def _setauthsize(self, authsize: int) -> None:
        """ALG_SET_AEAD_AUTHSIZE: optval NULL, optlen = the tag size (alg_setsockopt -> crypto_aead_setauthsize)."""
        try:
            self._live().setsockopt(SOL_ALG, ALG_SET_AEAD_AUTHSIZE, None, authsize)
        except OSError as e:
            raise kernel_error(e, "setsockopt(ALG_SET_AEAD_AUTHSIZE)", self.alg_type, self.name) from None

    def getsockopt(self, level: int, option: int) -> int:
        return int(self._live().getsockopt(level, option))

    def accept(self) -> OpSocket:
        """A new op socket (never from the pool)."""
        sock = self._live()
        try:
            op = OpSocket.accept_from(sock)
        except OSError as e:
            raise kernel_error(e, "accept", self.alg_type, self.name) from None
        count(self, "accept")
        return op

    def op(self) -> OpSocket:
        """An op socket with no pending state: an idle pooled one, else a fresh accept()."""
        try:
            return self._idle.pop()
        except IndexError:
            return self.accept()

    def release(self, op: OpSocket) -> None:
        """Give back an op socket whose operation has been finalized (recv done): pooled, or closed."""
        idle = self._idle
        if self._open and len(idle) < _POOL_MAX and op.fileno() >= 0:  # neither closed
            idle.append(op)
            if not self._open:  # close() ran meanwhile: it may have emptied the pool before our append
                self.drop_idle()
        else:
            op.close()

    def drop_idle(self) -> None:
        idle = self._idle
        while idle:
            try:
                op = idle.pop()
            except IndexError:
                break
            op.close()

    def close(self) -> None:
        self._open = False  # first: a release() racing with this drops what it pooled (see release)
        self.drop_idle()
        self._sock.close()

    def __del__(self) -> None:
        # The quiet path: close() before the C finalizers of the sockets would (they close too, with a
        # ResourceWarning). Correctness never depends on this running to the end (see "descriptor ownership").
        idle = getattr(self, "_idle", None)
        while idle:
            idle.pop().close()
        sock = getattr(self, "_sock", None)
        if sock is not None:
            sock.close()

    def forget(self) -> None:
        """Let go of every descriptor without closing it (interpreter exit: the kernel closes them)."""
        self._open = False
        idle = self._idle
        while idle:
            idle.pop().detach()
        self._sock.detach()


def _forget_tfm(ident: int) -> Callable[[Any], None]:
    def gone(_ref: Any) -> None:
        _live_tfms.pop(ident, None)

    return gone


# id -> weak reference of every open Tfm. Used only through single dict calls (setitem, pop, copy): each is atomic
# (the GIL, or the dict's own lock in free-threaded builds), so a copy is a consistent snapshot, safe in fork hooks.
_live_tfms: dict[int, weakref.ref[Tfm]] = {}


def live_tfms() -> list[Tfm]:
    return [t for t in map(_deref, _live_tfms.copy().values()) if t is not None]


def _deref(ref: weakref.ref[Tfm]) -> Optional[Tfm]:
    return ref()


# (type, name) -> the shared unkeyed tfm, or why the kernel will not bind it. Only answers about the algorithm
# are remembered (AlgUnavailable.transient is False): a full descriptor table or memory pressure at first use
# must not make an algorithm "unsupported" for the life of the process.
_tfm_cache: dict[tuple[str, str], Tfm] = {}
_probe_cache: dict[tuple[str, str], AlgUnavailable] = {}


def tfm(alg_type: str, name: str) -> Tfm:
    """The shared unkeyed tfm for (alg_type, name), bound once per process; raises AlgUnavailable.

    No lock: two threads missing at once each bind one, the first stored wins, the other is closed when its
    caller drops it (a bound tfm is stateless, so either serves)."""
    key = (alg_type, name)
    t = _tfm_cache.get(key)
    if t is not None and t._open:
        return t
    failure = _probe_cache.get(key)
    if failure is not None:
        raise failure
    try:
        t = Tfm(alg_type, name)
    except AlgUnavailable as e:
        if not e.transient:
            _probe_cache[key] = e
        raise
    stored = _tfm_cache.setdefault(key, t)
    if stored.closed:  # closed under us (close_all): ours replaces it
        stored = _tfm_cache[key] = t
    return stored


def bind_failure(alg_type: str, name: str) -> Optional[AlgUnavailable]:
    """The remembered refusal to bind (alg_type, name), if any (never a transient one)."""
    return _probe_cache.get((alg_type, name))


def remember_failure(e: AlgUnavailable) -> None:
    if e.step in ("socket", "bind") and not e.transient:
        _probe_cache[(e.alg_type, e.alg_name)] = e


def probe(alg_type: str, name: str) -> Optional[AlgUnavailable]:
    """None if the kernel can bind (alg_type, name), else why not. Binds at most once per process (a transient
    failure is returned but not remembered: the next probe tries again)."""
    try:
        tfm(alg_type, name)
    except AlgUnavailable as e:
        return e
    return None


def af_alg_status() -> Optional[AlgUnavailable]:
    """None if socket(AF_ALG) works in this process, else why not."""
    try:
        new_socket().close()
    except OSError as e:
        return AlgUnavailable(e.errno or errno.EIO, "socket", "any", "*")
    return None


def keyed_tfm(alg_type: str, name: str, key: Union[Buffer, Serial], authsize: Optional[int] = None) -> Tfm:
    """A new private tfm carrying `key` (one tfm per key: the key is fixed once op sockets exist)."""
    failure = _probe_cache.get((alg_type, name))
    if failure is not None:
        raise failure
    try:
        return Tfm(alg_type, name, key, authsize)
    except AlgUnavailable as e:
        remember_failure(e)
        raise


# --- sending and receiving ------------------------------------------------------------------------------


def nbytes(b: Buffer) -> int:
    """The length of a buffer in bytes (len() of a memoryview counts items: array('I') has 4 bytes each)."""
    return b.nbytes if isinstance(b, memoryview) else len(b)


def _short(alg: Tfm, n: int, size: int) -> KernelError:
    return KernelError(errno.EIO, f"{alg.alg_type} {alg.name!r}: short send ({n} of {size} bytes)")


def send(op: OpSocket, data: Buffer, flags: int, alg: Tfm) -> None:
    """One sendmsg of data (< _MAX_SEND bytes); a short count is fatal."""
    size = nbytes(data)
    try:
        n = op.send(data, flags)
    except OSError as e:
        raise kernel_error(e, "send", alg.alg_type, alg.name) from None
    count(alg, "send", size)
    if n != size:
        raise _short(alg, n, size)


def sendv(op: OpSocket, bufs: Sequence[Buffer], flags: int, alg: Tfm) -> None:
    """Send several buffers, gathered into as few sendmsg calls as _MAX_SEND allows."""
    pending = [v for v in (memoryview(b).cast("B") for b in bufs) if len(v)]
    total = sum(len(b) for b in pending)
    if total == 0:
        if not flags & MSG_MORE:
            send(op, b"", flags, alg)
        return
    while pending:
        batch: list[memoryview] = []
        size = 0
        while pending and size < _MAX_SEND:
            b = pending[0]
            take = min(len(b), _MAX_SEND - size)
            batch.append(b[:take])
            size += take
            if take == len(b):
                pending.pop(0)
            else:
                pending[0] = b[take:]
        last = not pending
        f = flags if last else flags | MSG_MORE
        try:
            n = op.sendmsg(batch, (), f) if len(batch) > 1 else op.send(batch[0], f)
        except OSError as e:
            raise kernel_error(e, "sendmsg", alg.alg_type, alg.name) from None
        count(alg, "send", size)
        if n != size:
            raise _short(alg, n, size)


def recv(op: OpSocket, size: int, alg: Tfm) -> bytes:
    """A digest or MAC of exactly `size` bytes. hash_recvmsg copies min(buffer, digest size) bytes, so asking for
    one more shows any other digest size: the op socket is then not what the caller thinks it is (another
    algorithm), and that raises, never returns."""
    try:
        out = op.recv(size + 1)  # one byte more: a longer digest shows itself too (hash_recvmsg copies min(len, ds))
    except OSError as e:
        raise kernel_error(e, "recv", alg.alg_type, alg.name) from None
    count(alg, "recv")
    if len(out) != size:
        raise _wrong_size(alg, len(out), size)
    return out


def _wrong_size(alg: Tfm, got: int, size: int) -> KernelError:
    return KernelError(errno.EIO, f"{alg.alg_type} {alg.name!r}: wrong digest size ({got}, not {size} bytes)")


def exchange(op: OpSocket, data: Buffer, size: int, alg: Tfm) -> bytes:
    """send(op, data, 0, alg) then recv(op, size, alg), done directly: the one-shot digest or MAC of data
    (< _MAX_SEND bytes) on an op socket with no pending state. Counts, errors and the digest-size check are
    send()'s and recv()'s (a recv that fails counts the send that succeeded)."""
    n_in = data.nbytes if isinstance(data, memoryview) else len(data)
    fd = op.fileno()  # -1 once closed: os.write/os.read then raise EBADF, as op.send/op.recv would
    try:
        n = os.write(fd, data)
    except OSError as e:
        raise kernel_error(e, "send", alg.alg_type, alg.name) from None
    if n != n_in:
        count(alg, "send", n_in)
        raise _short(alg, n, n_in)
    try:
        out = os.read(fd, size + 1)  # one byte more: see recv()
    except OSError as e:
        count(alg, "send", n_in)
        raise kernel_error(e, "recv", alg.alg_type, alg.name) from None
    count_exchange(alg, n_in)
    if len(out) != size:
        raise _wrong_size(alg, len(out), size)
    return out


# --- fork -----------------------------------------------------------------------------------------------
# After fork, parent and child share every kernel object (docs/kernel-notes.md#fork). Each op-socket owner (hash
# streams, caches) registers hooks here. A hook may be
# cut short by an exception from a signal handler (os.register_at_fork reports and ignores it): each hook is
# written so that what it did is undone by its after-fork twins whatever point it reached.

_fork_hooks: list[tuple[Callable[[], None], Callable[[], None], Callable[[], None]]] = []
_child_hooks: list[Callable[[], None]] = []


def on_fork(before: Callable[[], None], parent: Callable[[], None], child: Callable[[], None]) -> None:
    """Run before/parent/child around os.fork() (in registration order; parent and child reversed)."""
    _fork_hooks.append((before, parent, child))


def at_fork_in_child(hook: Callable[[], None]) -> None:
    """Run hook in a forked child (used to empty keyed-tfm caches)."""
    _child_hooks.append(hook)


def _before_fork() -> None:
    for before, _, _ in _fork_hooks:
        before()


def _after_fork_parent() -> None:
    for _, parent, _ in reversed(_fork_hooks):
        parent()


def _after_fork_child() -> None:
    for _, _, child in reversed(_fork_hooks):
        child()
    # Idle pooled op sockets are shared with the parent: the child must never use them.
    for t in live_tfms():
        t.drop_idle()
    for hook in _child_hooks:
        hook()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_parent, after_in_child=_after_fork_child)


def close_all() -> None:
    """Close every cached tfm and pooled op socket (atexit, tests)."""
    _tfm_cache.clear()
    for t in live_tfms():
        t.close()


def _forget_at_exit() -> None:
    """At the main interpreter's exit, let go of every cached tfm and pooled op socket without close(); at a
    subinterpreter's exit, close them.

    The kernel releases a process's descriptors when it exits; closing each one first is a syscall per
    tfm spent for nothing (the keyed caches hold dozens), and leaving them to garbage collection during
    teardown would close them one by one too. Detaching drops Python's ownership (no ResourceWarning).
    A subinterpreter's exit (its atexit callbacks run when it is closed) is not the process's: detaching there
    would leave its sockets, keyed transforms' keys included, in the kernel for the life of the process.

    Which interpreter: get_current() against get_main() of _interpreters (3.13+; 3.12: _xxsubinterpreters), the
    C module concurrent.interpreters (PEP 734) wraps with the same two calls. Not the public module itself:
    importing it loads its queue and pickling machinery, 0.56 s at every exit under user-mode-linux. Where
    neither module exists, no subinterpreter can be made from Python: the main one. If the check fails, close:
    always correct, only slower.
    """
    main = True
    try:
        try:
            import _interpreters as interps  # type: ignore[import-not-found]
        except ImportError:
            import _xxsubinterpreters as interps  # type: ignore[import-not-found]
        current, first = interps.get_current(), interps.get_main()
        # 3.13+: (id, whence) tuples; 3.12: InterpreterID objects (int-like)
        main = int(current[0] if isinstance(current, tuple) else current) == int(
            first[0] if isinstance(first, tuple) else first
        )
    except ImportError:
        pass
    except Exception:
        main = False
    for t in live_tfms():
        if main:
            t.forget()
        else:
            t.close()


atexit.register(_forget_at_exit)
