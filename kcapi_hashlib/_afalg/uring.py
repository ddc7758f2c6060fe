"""io_uring for one chain of MACs on one op socket: PBKDF2's U_j = PRF(P, U_(j-1)) without a syscall per call.

Why: with send/recv every PRF call costs a round trip (sendmsg + recvmsg), and U_j depends on U_(j-1), so
PBKDF2 at c iterations costs 2c syscalls (Django's 1,000,000-iteration hasher: 2 million per password
check). io_uring runs a chain of linked requests in the kernel: for a batch of n iterations

    send(slot 0) -> recv(slot 1) -> send(slot 1) -> recv(slot 2) -> ... -> recv(slot n)

each SQE with IOSQE_IO_LINK (the next starts only when the previous one completed), submitted and waited for
with ONE io_uring_enter. A send reads its buffer when it is issued (io_uring/net.c io_send: the user range is
imported at issue; sock_sendmsg copies it), i.e. after the recv before it wrote that slot. Each U lands in its
own slot, and Python XORs them afterwards. IORING_OP_SEND/RECV go through sock_sendmsg/sock_recvmsg, i.e.
algif_hash's hash_sendmsg/hash_recvmsg, exactly as send(2)/recv(2) do: a send without MSG_MORE computes
the MAC, the recv returns it and finalizes the request, and the next send starts afresh (crypto_ahash_init
when !ctx->more). hash_sendmsg/hash_recvmsg wait for the crypto request themselves and never answer EAGAIN,
so each request completes inline (no io-wq worker, no poll arming).

Layouts (include/uapi/linux/io_uring.h): struct io_uring_params (120 bytes: sq_entries, cq_entries, flags,
sq_thread_cpu, sq_thread_idle, features, wq_fd, resv[3], then struct io_sqring_offsets {head, tail,
ring_mask, ring_entries, flags, dropped, array, resv1; u64 user_addr} and struct io_cqring_offsets {head,
tail, ring_mask, ring_entries, overflow, cqes, flags, resv1; u64 user_addr}); struct io_uring_sqe (64
bytes: u8 opcode, u8 flags, u16 ioprio, s32 fd, u64 off, u64 addr, u32 len, u32 msg_flags, u64 user_data,
u16 buf_index, u16 personality, s32 splice_fd_in, u64 addr3, u64 pad); struct io_uring_cqe (16 bytes:
u64 user_data, s32 res, u32 flags). The rings are mmap()ed from the ring fd at IORING_OFF_SQ_RING (one
mapping for both rings with IORING_FEAT_SINGLE_MMAP, 5.4+) and IORING_OFF_SQES.

Memory ordering: this process never polls the rings while the kernel works; it writes SQEs and the SQ tail,
then enters the kernel (a full barrier), and reads CQEs after io_uring_enter returned. No SQPOLL: it needs
CAP_SYS_NICE before 5.11, and its kernel thread spins for sq_thread_idle, which costs more than the one
syscall per batch it would save.

Availability is probed once per process (`unavailable()`): io_uring_setup answers ENOSYS (no
CONFIG_IO_URING, or a seccomp filter: Docker's default profile blocks io_uring since 25.0), EPERM
(/proc/sys/kernel/io_uring_disabled = 2, or 1 without the io_uring group / CAP_SYS_ADMIN; seccomp) or
ENOMEM (RLIMIT_MEMLOCK before 5.12). The first chain is the probe of IORING_OP_SEND/RECV on AF_ALG (EINVAL
before 5.6). Any failure turns the io_uring path off for the process; the caller then redoes the chain with
send/recv from its starting value on a fresh op socket: never a wrong answer.

Rings are per thread (IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN where the kernel has them, 6.1+: only the
creating task may submit, and linked requests run in its io_uring_enter) and per process: the ring mappings
are MADV_DONTFORK (a forked child has no copy of the parent's MAP_SHARED ring memory), and the child closes
its inherited ring fd and makes its own ring on first use (not under user-mode-linux: see _ring()).

An exception raised by a signal handler while a batch is in flight: the batch is drained (every request
completes within the kernel's next io_uring_enter) before the exception goes on; if the drain itself is
interrupted, the ring stays this thread's ring with the batch outstanding, and its next run() drains it first.
The op socket of an interrupted batch is held by the ring until its requests are done, then closed (its state
is unknown, as MacSession does): io_uring looks a linked request's fd up when it issues it (io_uring/io_uring.c
io_assign_file), so a number closed under a queued request could name another socket by then. Only a failed
io_uring_enter (not EINTR) retires a ring: its fd is closed, its ring mappings unmapped (the kernel writes the
SQ/CQ through its own mapping of those pages), and its U slots and op socket are kept for the process's life (a
queued request may still write into the slots, or name the socket); that also turns io_uring off for the
process, so retired rings are bounded by the threads that were in a chain at that moment.

Descriptor ownership (as for sockets, core.py "descriptor ownership"): the ring fd is owned by one io.FileIO from
the io_uring_setup call that made it (wrapped inside one C call, no bytecode in between) to its one close;
FileIO.close() takes the number out of the object before close(2) and is idempotent, so no exception raised by
a signal handler can leave a closed number in a Ring, and no second object ever closes it.

Structures are packed in native byte order with standard sizes ("=": the kernel ABI is the machine's own).
Machines not tested here (io_uring_setup/io_uring_enter numbers, structure layouts) are refused, never guessed.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import io
import os
import platform
import struct
import threading
from itertools import starmap
from typing import Any, Optional

from . import core, procfs
from .core import KernelError, OpSocket, Tfm

# Syscall numbers: 425 and 426 in the unified table since 5.1 (arch/x86/entry/syscalls/syscall_64.tbl;
# include/uapi/asm-generic/unistd.h). Only machines whose io_uring path has run under a real kernel here are
# used; any other is refused with its name (the numbers and layouts are believed right there, but untested).
_NR_SETUP, _NR_ENTER = 425, 426
TESTED_MACHINES = frozenset({"x86_64", "aarch64", "s390x"})

_IORING_OP_SEND = 26
_IORING_OP_RECV = 27
_IOSQE_IO_LINK = 1 << 2
_IORING_SETUP_SUBMIT_ALL = 1 << 7  # 5.18: keep submitting past a failed SQE (each still gets its CQE)
_IORING_SETUP_COOP_TASKRUN = 1 << 8  # 5.19
_IORING_SETUP_SINGLE_ISSUER = 1 << 12  # 6.0
_IORING_SETUP_DEFER_TASKRUN = 1 << 13  # 6.1: task work runs only inside io_uring_enter(GETEVENTS)
_IORING_FEAT_SINGLE_MMAP = 1 << 0
_IORING_ENTER_GETEVENTS = 1 << 0
_IORING_OFF_SQ_RING = 0
_IORING_OFF_CQ_RING = 0x8000000
_IORING_OFF_SQES = 0x10000000

# Flag sets tried in order: a kernel answers EINVAL for a flag it does not know.
_SETUP_FLAGS = (
    _IORING_SETUP_SUBMIT_ALL | _IORING_SETUP_SINGLE_ISSUER | _IORING_SETUP_DEFER_TASKRUN,
    _IORING_SETUP_SUBMIT_ALL | _IORING_SETUP_COOP_TASKRUN,
    0,
)

ENTRIES = 1024  # SQ entries; a batch is at most ENTRIES // 2 iterations (two SQEs each)
BATCH = ENTRIES // 2
_SLOT = 64  # bytes per U slot: the largest HMAC digest (sha512)

# Native byte order, standard sizes, no padding: the layouts below are the kernel's own (all fields naturally
# aligned), in the byte order of the machine the kernel runs on.
_PARAMS = struct.Struct("=7I12x" + "8IQ" + "8IQ")  # struct io_uring_params, 120 bytes
_SQE = struct.Struct("=BBHiQQIIQHHiQQ")  # struct io_uring_sqe, 64 bytes
_CQE = struct.Struct("=QiI")  # struct io_uring_cqe, 16 bytes (read in place as int32 columns)
_U32 = struct.Struct("=I")
_PROT_READ, _PROT_WRITE, _MAP_SHARED, _MAP_POPULATE, _MADV_DONTFORK = 1, 2, 1, 0x8000, 10

_libc: Any = None
_why_not: Optional[str] = None  # set once io_uring is known not to work here (the reason, for benchmarks)
_generation = 0  # bumped in a forked child: rings of an older generation belong to the parent
_local = threading.local()
# Retired rings (a failed io_uring_enter): their U slots and op socket are kept for the process's life. Appended
# only (list.append: one call, atomic under the GIL or the list's own lock without it); bounded, as retiring a
# ring turns io_uring off for the process.
_abandoned: list[Ring] = []
# io.FileIO(fd) owns a descriptor from the call that made it: closed exactly once, by close() or its finalizer.
_own_fd = functools.partial(io.FileIO, mode="r", closefd=True)


def _load_libc() -> Any:
    global _libc
    if _libc is None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                              ctypes.c_long)  # fmt: skip
        libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
        libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        _libc = libc
    return _libc


class _RingError(Exception):
    """A chain that did not complete as submitted: its op socket's state is unknown."""


class Ring:
    """One io_uring instance: its fd (owned by an io.FileIO), its ring mappings, the SQE array and the U slots.

    Used by one thread only (threading.local; SINGLE_ISSUER): nothing in it is shared. `op` is the op socket of
    the batch submitted last, held until that batch is done (see the module docstring)."""

    def __init__(self) -> None:
        libc = _load_libc()
        self.pid_generation = _generation
        self.pid = os.getpid()  # for __del__, which can run in a forked child before _generation moves there
        self.maps: list[tuple[int, int]] = []
        self.retired = False
        self.op: Optional[OpSocket] = None
        self._munmap = libc.munmap  # kept for __del__ at interpreter exit
        params = ctypes.create_string_buffer(_PARAMS.size)
        owner: Optional[io.FileIO] = None
        err = 0
        for flags in _SETUP_FLAGS:
            _U32.pack_into(params, 8, flags)
            try:
                # The fd is owned by the FileIO made inside the same C call (next over map/starmap of C callables).
                owner = next(map(_own_fd, starmap(libc.syscall, ((_NR_SETUP, ctypes.c_long(ENTRIES), params),))))
                break
            except ValueError:  # io.FileIO(-1): io_uring_setup failed; ctypes saved its errno right after the call
                err = ctypes.get_errno()
                if err != errno.EINVAL:
                    break
        if owner is None:
            raise OSError(err, f"io_uring_setup: {os.strerror(err)}")
        self._file: io.FileIO = owner
        try:
            f = _PARAMS.unpack_from(params.raw)
            sq_entries, cq_entries, _flags, _cpu, _idle, features = f[0:6]
            sq_head, sq_tail, sq_mask, _sqn, _sqf, _dropped, sq_array = f[7:14]
            cq_head, cq_tail, cq_mask, _cqn, _ovf, cqes = f[16:22]
            sq_size = sq_array + sq_entries * 4
            cq_size = cqes + cq_entries * 16
            if features & _IORING_FEAT_SINGLE_MMAP:
                sq_base = cq_base = self._mmap(max(sq_size, cq_size), _IORING_OFF_SQ_RING)
            else:
                sq_base = self._mmap(sq_size, _IORING_OFF_SQ_RING)
                cq_base = self._mmap(cq_size, _IORING_OFF_CQ_RING)
            self.sqes_addr = self._mmap(sq_entries * _SQE.size, _IORING_OFF_SQES)
        except BaseException:
            self.retired = True  # nothing was submitted: no request can name its memory
            self.close()
            raise
        self.entries = sq_entries
        # The offsets say where each field lives in the ring memory; the masks are read from there.
        self.sq_mask = ctypes.c_uint32.from_address(sq_base + sq_mask).value
        self.cq_mask = ctypes.c_uint32.from_address(cq_base + cq_mask).value
        self.sq_head = ctypes.c_uint32.from_address(sq_base + sq_head)
        self.sq_tail = ctypes.c_uint32.from_address(sq_base + sq_tail)
        self.cq_head = ctypes.c_uint32.from_address(cq_base + cq_head)
        self.cq_tail = ctypes.c_uint32.from_address(cq_base + cq_tail)
        self.sqes = memoryview((ctypes.c_char * (sq_entries * _SQE.size)).from_address(self.sqes_addr)).cast("B")
        self.cqes = memoryview((ctypes.c_char * (cq_entries * 16)).from_address(cq_base + cqes)).cast("B")
        # The SQ index array maps ring position -> SQE index: the identity, written once.
        array = (ctypes.c_uint32 * sq_entries).from_address(sq_base + sq_array)
        for i in range(sq_entries):
            array[i] = i
        self.slots = ctypes.create_string_buffer((BATCH + 1) * _SLOT)
        self.slots_addr = ctypes.addressof(self.slots)
        self.slots_view = memoryview(self.slots).cast("B")
        self._template: tuple[int, int, int, bytes, bytes] = (-1, 0, 0, b"", b"")

    @property
    def fd(self) -> int:
        """The ring's descriptor, read from its owner for one call (ValueError once closed)."""
        return self._file.fileno()

    def _mmap(self, size: int, offset: int) -> int:
        addr = _libc.mmap(None, size, _PROT_READ | _PROT_WRITE, _MAP_SHARED | _MAP_POPULATE, self.fd, offset)
        if addr is None or addr == ctypes.c_void_p(-1).value:
            err = ctypes.get_errno()
            raise OSError(err, f"mmap of the io_uring ring: {os.strerror(err)}")
        self.maps.append((addr, size))
        # MADV_DONTFORK: a forked child gets no copy of the ring mappings (it makes its own ring; the parent's
        # is not its to touch). Without it, user-mode-linux 7.2.7 reports "Bad page map" for the io_uring
        # mapping at fork and then panics in io_send ("Kernel tried to access user memory"); seen here.
        if _libc.madvise(addr, size, _MADV_DONTFORK) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"madvise(MADV_DONTFORK) of the io_uring ring: {os.strerror(err)}")
        return int(addr)

    def close(self) -> None:
        """Close the ring fd (once: FileIO.close takes the number out first) and unmap the ring mappings, each
        taken out of the list before its munmap. The kernel never writes through these user mappings (it has its
        own mapping of the pages), so they go even with requests queued; the U slots are not among them. In a
        forked child the mappings do not exist (MADV_DONTFORK), and their addresses may hold the child's own
        memory by now: nothing is unmapped there. Callers reading the rings must not call this (see retire)."""
        self._file.close()
        maps = self.maps
        if self.pid_generation != _generation:
            maps.clear()
        while maps:
            addr, size = maps.pop()
            self._munmap(addr, size)

    def __del__(self) -> None:
        # A thread's ring goes with the thread (threading.local); its fd would also be closed by its FileIO's own
        # finalizer. With a batch still queued, its U slots and op socket must outlive it: kept (see _retire).
        if not hasattr(self, "_file") or self.retired:
            return  # no descriptor yet, or closed already
        if getattr(self, "pid", None) != os.getpid():
            # Another thread's ring in a child forked from a thread: CPython deletes the other threads' states
            # (and so their threading.local rings) inside fork() itself, before any at-fork hook has moved
            # _generation. The mappings are not there (MADV_DONTFORK): reading `outstanding` would be SIGSEGV.
            # Close the child's copy of the fd, touch nothing else.
            self.retired = True
            self.op = None
            self.maps.clear()
            self._file.close()
            return
        if hasattr(self, "cq_head") and self.outstanding:
            _retire(self)
        else:
            self.retired = True
            self.close()

    def _sqe_template(self, fd: int, size: int) -> tuple[bytes, bytes]:
        """The 2 * BATCH SQEs of a full batch on op fd (a shorter batch uses its first 2n; cached: the slots never
        move), and the result every request must give (`size` bytes sent, `size` bytes received) as the int32
        column of the CQEs."""
        t = self._template
        if t[0] != fd or t[1] != size:
            sqes = bytearray(2 * BATCH * _SQE.size)
            base = self.slots_addr
            for k in range(BATCH):
                _SQE.pack_into(sqes, 2 * k * 64, _IORING_OP_SEND, _IOSQE_IO_LINK, 0, fd, 0, base + k * _SLOT, size,
                               0, 2 * k, 0, 0, 0, 0, 0)  # fmt: skip
                _SQE.pack_into(sqes, (2 * k + 1) * 64, _IORING_OP_RECV, _IOSQE_IO_LINK, 0, fd, 0,
                               base + (k + 1) * _SLOT, size, 0, 2 * k + 1, 0, 0, 0, 0, 0)  # fmt: skip
            t = self._template = (fd, size, 0, bytes(sqes), struct.pack(f"={2 * BATCH}i", *[size] * (2 * BATCH)))
        return t[3], t[4]

    def _enter(self, to_submit: int, wait: int) -> int:
        while True:
            r = int(_libc.syscall(_NR_ENTER, self.fd, to_submit, wait, _IORING_ENTER_GETEVENTS, None, 0))
            if r >= 0:
                return r
            err = ctypes.get_errno()
            if err != errno.EINTR:
                raise OSError(err, f"io_uring_enter: {os.strerror(err)}")
            # EINTR: a Python signal handler runs at the next bytecode; if it raises, run() drains.

    def _reap(self) -> bytes:
        """The res column of every CQE that has arrived (advances the CQ head), native int32s."""
        head = self.cq_head.value
        tail = self.cq_tail.value
        count = (tail - head) & 0xFFFFFFFF
        out = bytearray()
        ncq = len(self.cqes) // 16
        pos = head & self.cq_mask
        while count:
            take = min(count, ncq - pos)
            out += self.cqes[pos * 16 : (pos + take) * 16].cast("i")[2::4].tobytes()
            count -= take
            pos = 0
        self.cq_head.value = tail
        return bytes(out)

    @property
    def outstanding(self) -> int:
        """Requests made visible to the kernel and not yet reaped, read from the ring itself: both counters start at
        0, only this process moves the SQ tail and the CQ head (each with one store), and every SQE gives exactly
        one CQE. So wherever an exception lands, this says what drain() must wait for. 0 for a retired ring (its
        mappings are gone) and for the parent's ring in a forked child (not mapped there)."""
        if self.retired or self.pid_generation != _generation:
            return 0
        return (self.sq_tail.value - self.cq_head.value) & 0xFFFFFFFF

    def run(self, op: OpSocket, size: int, n: int) -> None:
        """Run n iterations on op from slot 0 (already written) into slots 1..n; raise _RingError unless every
        request moved exactly `size` bytes. From submission until the batch is done the ring holds op: an
        interrupted batch's op socket is closed by the drain that finishes it."""
        if self.outstanding:
            self.drain()  # an earlier batch cut short before its own drain ran; closes that batch's op socket
        stale, self.op = self.op, op
        if stale is not None and stale is not op:
            stale.close()  # a batch that completed but whose caller was interrupted before taking it back
        fd = op.fileno()
        sqes, expected = self._sqe_template(fd, size)
        total = 2 * n
        expected = expected[: 4 * total]
        tail = self.sq_tail.value
        pos = tail & self.sq_mask
        first = min(total, self.entries - pos)
        view = self.sqes
        view[pos * 64 : (pos + first) * 64] = sqes[: first * 64]
        if first < total:
            view[: (total - first) * 64] = sqes[first * 64 : total * 64]
        view[((tail + total - 1) & self.sq_mask) * 64 + 1] = 0  # the chain ends at its last recv: no IO_LINK
        results = b""
        try:
            self.sq_tail.value = (tail + total) & 0xFFFFFFFF  # one store: from here the batch is outstanding
            submitted = self._enter(total, total)
            if submitted != total:
                raise _RingError(f"io_uring_enter submitted {submitted} of {total} requests")
            results = self._reap()
            while len(results) < 4 * total:
                self._enter(0, total - len(results) // 4)
                results += self._reap()
        except BaseException:
            self.drain()
            raise
        self.op = None  # done: op goes back to its caller
        if results != expected:
            res = struct.unpack(f"={len(results) // 4}i", results)
            bad = next(r for r in res if r != size)
            if bad < 0:
                raise _RingError(f"a chained request failed: {os.strerror(-bad)} (errno {-bad})")
            raise _RingError(f"a chained request moved {bad} of {size} bytes")

    def drain(self) -> None:
        """Submit what the kernel has not taken and wait until every request of the batch completed, then close
        the batch's op socket (its state is unknown). Cut short by an exception, the ring keeps the batch and
        its op socket for its next drain; a failed io_uring_enter retires the ring."""
        if self.retired:
            return
        try:
            while self.outstanding > 0:
                unsubmitted = (self.sq_tail.value - self.sq_head.value) & 0xFFFFFFFF
                self._enter(unsubmitted, self.outstanding)
                self._reap()
        except OSError as e:
            disable(f"io_uring_enter failed here: {e}")
            _retire(self)
            raise
        stale, self.op = self.op, None
        if stale is not None:
            stale.close()


def _retire(ring: Ring) -> None:
    """Stop using a ring that may have requests queued: kept in _abandoned with its U slots and op socket (never
    freed or closed: a queued request may still write a slot or name the socket), its fd closed and its ring
    mappings unmapped. Only after a failed io_uring_enter (which turns io_uring off) or a thread ending with a
    batch queued."""
    if getattr(_local, "ring", None) is ring:
        _local.ring = None
    _abandoned.append(ring)
    ring.retired = True  # from here nothing reads the ring mappings (outstanding answers 0)
    ring.close()


def unavailable() -> Optional[str]:
    """Why the io_uring path is off in this process (None: on, or not tried yet)."""
    return _why_not


def disable(why: str) -> None:
    global _why_not
    _why_not = why


def _ring() -> Optional[Ring]:
    """This thread's ring (made on first use), or None where io_uring does not work here."""
    if _why_not is not None:
        return None
    ring: Optional[Ring] = getattr(_local, "ring", None)
    if ring is not None and ring.pid_generation == _generation:
        return ring
    if ring is not None:  # the parent's ring, inherited by fork: close its fd, never touch its memory
        _local.ring = None
        ring.op = None  # the parent's op socket: the child's copy of its descriptor closes with the object
        ring.close()
    if _generation and _user_mode_linux():
        # user-mode-linux 6.1.176 in a forked child: a new ring mmap()ed where the parent's (MADV_DONTFORK)
        # ring had been showed the PARENT's ring memory (its SQ/CQ counters; io_uring_enter then waited for
        # requests that never came): the host mapping of the parent's pages survived in the child. Seen here
        # with tests/kernel/test_pbkdf2_uring.py's fork test; real kernels have no such host mapping.
        disable("a forked child under user-mode-linux (a new ring there can map the parent's ring memory)")
        return None
    if _user_mode_linux() and procfs._kernel_release() < (6, 2):
        # user-mode-linux 6.1.176: once a process has made a ring (mappings MADV_DONTFORK), a child it forks later
        # can crash in plain code that never touches io_uring (SIGSEGV in read() of /proc/crypto, seen with
        # test_pbkdf2_uring then test_drivers' fork test); 6.12 and 7.2 do not. send/recv there.
        disable("user-mode-linux before 6.2: a ring in this process can crash the children it forks later")
        return None
    why = untested_machine()
    if why is not None:
        disable(why)
        return None
    try:
        ring = Ring()
    except OSError as e:
        hint = {
            errno.EPERM: ": /proc/sys/kernel/io_uring_disabled forbids it, or a seccomp filter (containers)",
            errno.ENOSYS: ": no CONFIG_IO_URING, or a seccomp filter (containers)",
            errno.ENOMEM: ": RLIMIT_MEMLOCK too small for the rings (kernels before 5.12)",
        }.get(e.errno or 0, "")
        disable(f"io_uring is not available: {e.strerror} ({errno.errorcode.get(e.errno or 0, e.errno)}){hint}")
        return None
    _local.ring = ring
    return ring


def untested_machine() -> Optional[str]:
    """Why io_uring is refused on this machine (None on a tested one): the reason names it."""
    machine = platform.machine()
    if machine in TESTED_MACHINES:
        return None
    return (
        f"io_uring is not used on {machine or 'this machine'}: kcapi_hashlib has not been tested there (tested: "
        f"{', '.join(sorted(TESTED_MACHINES))}), so its io_uring syscall numbers and structure layouts are not "
        "assumed; PBKDF2 runs on send/recv"
    )


_uml: Optional[bool] = None


def _user_mode_linux() -> bool:
    global _uml
    if _uml is None:
        try:
            with open("/proc/cpuinfo", "rb") as f:
                _uml = b"UML" in f.read(4096)
        except OSError:
            _uml = False
    return _uml


def _after_fork_in_child() -> None:
    global _generation
    _generation += 1


os.register_at_fork(after_in_child=_after_fork_in_child)


def _count(alg: Tfm, n: int, size: int) -> None:
    """Accounting for n PRF calls made through the ring: n sends of `size` bytes and n recvs (the figures of the
    same calls made with send/recv)."""
    core.count(alg, "send", n * size, n)
    core.count(alg, "recv", 0, n)


def mac_chain(session: Any, u: bytes, count: int) -> Optional[tuple[int, bytes]]:
    """Apply the MAC of `session` (a keyed.MacSession) `count` times starting from u: returns (the XOR of the
    count outputs as a big-endian int, the last output), or None if the io_uring path is off (then nothing
    was done: the caller runs the same chain with send/recv).

    The op socket is taken from the session for the call (as MacSession.__call__ does): an exception leaves
    it with nobody, closed. A batch the ring could not complete closes that op socket (its state is unknown),
    gives the session a fresh one, turns the io_uring path off for the process and returns None."""
    ring = _ring()
    if ring is None:
        return None
    alg: Tfm = session._alg
    size: int = session._size
    op: Optional[OpSocket] = session._op
    if op is None:
        raise ValueError(f"{alg.name} MAC session is closed")
    session._op = None
    slots = ring.slots_view
    acc = 0
    done = 0
    slots[:size] = u
    try:
        while done < count:
            n = min(BATCH, count - done)
            ring.run(op, size, n)
            for k in range(1, n + 1):
                acc ^= int.from_bytes(slots[k * _SLOT : k * _SLOT + size], "big")
            u = bytes(slots[n * _SLOT : n * _SLOT + size])
            slots[:size] = u
            done += n
            _count(alg, n, size)
    except (_RingError, OSError) as e:  # OSError: io_uring_enter itself failed (the ring is retired or drained)
        if ring.op is not op:
            op.close()
        session._op = alg.op()
        disable(f"an io_uring chain on AF_ALG failed here: {e}")
        return None
    except BaseException:
        # Its state is unknown: closed now, or (a batch on it still queued) by the drain that finishes the batch.
        if ring.op is not op:
            op.close()
        raise
    session._op = op
    return acc, u


__all__ = ["BATCH", "KernelError", "mac_chain", "unavailable"]
