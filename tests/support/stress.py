"""Adversarial stress workloads and the harness that runs them in a child interpreter.

Every workload runs in its own child process (`python -m tests.support.stress WORKLOAD ...`) under a watchdog:
faulthandler dumps every thread's stack shortly before the deadline (then the child exits), and the parent
kills whatever is left at the deadline. So a deadlock is a named failure ("hang") with a traceback, never a
hung test suite. The child prints one line `@@STRESS-RESULT@@ {json}`; the test asserts on those figures.

Each workload runs against a target: "kcapi" (kcapi_hashlib) or "reference" (hashlib, hmac and PyCryptodome
driven through the very same harness). The reference run calibrates the harness: it must show zero wrong
results and no descriptor growth, so any finding on the kcapi run is the library's.

Only public APIs are used, plus kcapi_hashlib._afalg.stats()/kernel_operations() and the cache-clearing
functions (looked up by name, so the tests survive a rewrite of the private modules).

Environment:
    KCAPI_STRESS_SECONDS   storm duration per run (default 8); the fork test scales its time budget with it
    KCAPI_STRESS_TRIALS    fork trials per run (default 20)
    KCAPI_STRESS_TIMER_US  "LO,HI": SIGALRM interval range in microseconds (default 100,300; below ~80 us
                           user-mode-linux spends all its time delivering signals and no work is done)
    KCAPI_STRESS_SEED      random seed (default: drawn and printed, so a failure can be replayed)
"""

from __future__ import annotations

import errno
import gc
import importlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parents[2]
MARK = "@@STRESS-RESULT@@ "
PARTIAL = "@@STRESS-PARTIAL@@ "


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


# What makes a storm strong enough to prove anything (test_signal_storm fails a weaker one).
MIN_INTERRUPTED = 20  # calls interrupted by an exception from the signal handler
MIN_CHECKS = 50  # results checked against the reference
MIN_BYSTANDER_CHECKS = 20  # checks of objects no exception touched


def storm_seconds() -> float:
    return env_float("KCAPI_STRESS_SECONDS", 8.0)


def seed() -> int:
    value = os.environ.get("KCAPI_STRESS_SEED")
    return int(value) if value else random.SystemRandom().randrange(1 << 32)


# --- the parent side ------------------------------------------------------------------------------------


@dataclass
class ChildRun:
    args: list[str]
    returncode: Optional[int]
    killed: bool  # still running at the deadline: killed by the parent
    result: Optional[dict[str, Any]]
    partial: Optional[dict[str, Any]]  # the last partial result (figures before the stage that hung)
    stdout: str
    stderr: str
    wall: float

    @property
    def hung(self) -> bool:
        """Killed at the deadline, or the faulthandler watchdog fired first ("Timeout (h:mm:ss)!")."""
        return self.killed or (self.result is None and "Timeout (" in self.stderr)

    def describe(self) -> str:
        head = f"child {' '.join(self.args)}: rc={self.returncode} killed={self.killed} wall={self.wall:.1f}s"
        return f"{head}\n--- stdout (tail)\n{self.stdout[-3000:]}\n--- stderr (tail)\n{self.stderr[-6000:]}"


def run_child(args: list[str], timeout: float, extra_env: Optional[dict[str, str]] = None) -> ChildRun:
    """Run `python -m tests.support.stress ARGS --watchdog T` with a hard deadline of `timeout` seconds."""
    watchdog = max(1.0, timeout - max(3.0, timeout * 0.1))
    cmd = [sys.executable, "-X", "faulthandler", "-m", "tests.support.stress", *args, "--watchdog", f"{watchdog:.1f}"]
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("KCAPI_HASHLIB_POLICY", None)
    if extra_env:
        env.update(extra_env)
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    killed = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        killed = True
        proc.kill()
        out, err = proc.communicate(timeout=30)
    wall = time.monotonic() - start
    result = partial = None
    for line in out.splitlines():
        if line.startswith(MARK):
            result = json.loads(line[len(MARK) :])
        elif line.startswith(PARTIAL):
            partial = json.loads(line[len(PARTIAL) :])
    return ChildRun(args, proc.returncode, killed, result, partial, out, err, wall)


# --- shared child-side helpers --------------------------------------------------------------------------


def emit(result: dict[str, Any], partial: bool = False) -> None:
    """The result line the parent reads; partial ones (figures so far) let a later hang still report them."""
    sys.stdout.write((PARTIAL if partial else MARK) + json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()


def count_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def fd_kinds() -> dict[str, int]:
    """Open descriptors by kind (socket, pipe, file...), for failure messages."""
    kinds: dict[str, int] = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        kind = target.split(":", 1)[0] if ":" in target else "file"
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


# Cache-clearing functions of kcapi_hashlib, by module and name. Missing ones are skipped (a rewrite may move
# them); close_all() comes last and closes every transform the library still holds.
_CLEARERS = [
    ("kcapi_hashlib.hmac", "clear_key_cache"),
    ("kcapi_hashlib._afalg.aead", "clear"),
    ("kcapi_hashlib._afalg.skcipher", "forget_keys"),
    ("kcapi_hashlib._afalg.skcipher", "clear"),
    ("kcapi_hashlib._afalg.rng", "close"),
    ("kcapi_hashlib._afalg", "close_all"),
]


def clear_kcapi_caches(errors: Optional[list[str]] = None) -> list[str]:
    """Empty every kcapi_hashlib cache that has a clearing function; returns the ones called. An exception
    from one (EBADF: a descriptor closed twice) goes into `errors` when given, else propagates."""
    called = []
    for modname, fname in _CLEARERS:
        try:
            fn = getattr(importlib.import_module(modname), fname)
        except (ImportError, AttributeError):
            continue
        try:
            fn()
        except Exception as exc:
            if errors is None:
                raise
            errors.append(f"{modname}.{fname}() raised {type(exc).__name__}: {exc}")
        called.append(f"{modname}.{fname}")
    return called


def import_all_kcapi() -> None:
    """Import every kcapi_hashlib module now, so that a lazy import cannot be what fails under exhaustion."""
    import pkgutil

    import kcapi_hashlib

    for info in pkgutil.walk_packages(kcapi_hashlib.__path__, "kcapi_hashlib."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)


def kernel_ops() -> int:
    from kcapi_hashlib import _afalg

    n: int = _afalg.kernel_operations()
    return n


def errno_chain(exc: BaseException) -> list[int]:
    """Every errno found on exc, its .reason, __cause__ and __context__ (in that order, no repeats)."""
    seen: list[int] = []
    todo: list[BaseException] = [exc]
    visited: set[int] = set()
    while todo:
        e = todo.pop(0)
        if id(e) in visited:
            continue
        visited.add(id(e))
        err = getattr(e, "errno", None)
        if isinstance(err, int) and err not in seen:
            seen.append(err)
        for nxt in (getattr(e, "reason", None), e.__cause__, e.__context__):
            if isinstance(nxt, BaseException):
                todo.append(nxt)
    return seen


def exc_brief(exc: BaseException) -> dict[str, Any]:
    return {
        "type": type(exc).__name__,
        "mro": [c.__name__ for c in type(exc).__mro__],
        "errno": getattr(exc, "errno", None) if isinstance(getattr(exc, "errno", None), int) else None,
        "errnos": [errno.errorcode.get(e, str(e)) for e in errno_chain(exc)],
        "message": str(exc)[:300],
    }


class _SplitUpdate:
    """A hash object whose update() is not atomic (see _Backend's "broken" target)."""

    def __init__(self, h: Any) -> None:
        self._h = h

    def update(self, data: bytes) -> None:
        half = len(data) // 2
        self._h.update(data[:half])
        # The gap a Storm must land in. The kernel library's calls take tens of microseconds in the VM (every
        # syscall is one ptrace round trip); without a gap of that order, a loaded CI machine raised only ~30
        # Storms in 4 s and none fell between the halves, so the self-test proved nothing either way.
        end = time.perf_counter() + 50e-6
        while time.perf_counter() < end:
            pass
        self._h.update(data[half:])

    def copy(self) -> _SplitUpdate:
        return _SplitUpdate(self._h.copy())

    def digest(self) -> bytes:
        out: bytes = self._h.digest()
        return out

    def hexdigest(self) -> str:
        out: str = self._h.hexdigest()
        return out


class _Backend:
    """The constructors a workload drives: kcapi_hashlib's or the reference libraries'."""

    def __init__(self, target: str) -> None:
        self.target = target
        if target == "kcapi":
            import kcapi_hashlib
            import kcapi_hashlib.hmac
            from kcapi_hashlib.Cipher import AES as KAES
            from kcapi_hashlib.Cipher import ChaCha20_Poly1305 as KChaCha

            self.hashlib: Any = kcapi_hashlib
            self.hmac: Any = kcapi_hashlib.hmac
            self.AES: Any = KAES
            self.ChaCha20_Poly1305: Any = KChaCha
        elif target == "reference":
            import hashlib
            import hmac

            from Crypto.Cipher import AES, ChaCha20_Poly1305

            self.hashlib = hashlib
            self.hmac = hmac
            self.AES = AES
            self.ChaCha20_Poly1305 = ChaCha20_Poly1305
        elif target == "broken":
            # The reference with a planted bug: update() feeds its data in two halves, so an exception between
            # them leaves half an update behind. The harness must report wrong results for it (self-test).
            import hashlib
            import hmac
            import types

            from Crypto.Cipher import AES, ChaCha20_Poly1305

            def cons(name: str) -> Callable[..., _SplitUpdate]:
                return lambda data=b"": _SplitUpdate(hashlib.new(name, data))

            self.hashlib = types.SimpleNamespace(**{n: cons(n) for n in _HASHES})
            self.hmac = hmac
            self.AES = AES
            self.ChaCha20_Poly1305 = ChaCha20_Poly1305
        else:
            raise SystemExit(f"unknown target {target!r}")

    def clear_caches(self, errors: Optional[list[str]] = None) -> list[str]:
        return clear_kcapi_caches(errors) if self.target == "kcapi" else []


# --- 1. signal storm ------------------------------------------------------------------------------------


class Storm(Exception):
    """Raised by the SIGALRM handler at an arbitrary bytecode boundary inside a library call."""


_HASHES = ("sha256", "sha1", "sha512", "blake2b")
_HMAC_DIGESTS = ("sha256", "sha1", "sha512")
_STREAM = 64 * 1024  # the library buffers less than this in userspace; more streams to the kernel


@dataclass
class Tracked:
    """A target object and every reference state it may legitimately be in (several after an exception)."""

    kind: str
    obj: Any
    cands: list[Any]
    hit: bool = False  # an exception (Storm) interrupted a call on it
    bystander: bool = False


@dataclass
class CtrTracked:
    key: bytes
    nonce: bytes
    obj: Any
    positions: set[int]
    hit: bool = False
    bystander: bool = False
    calls: int = 0


@dataclass
class StormStats:
    iterations: int = 0
    calls: int = 0
    returned: int = 0
    storms: int = 0
    checks: int = 0
    wrong: int = 0
    wrong_examples: list[str] = field(default_factory=list)
    bystander_checks: int = 0
    bystander_failures: int = 0
    bystander_examples: list[str] = field(default_factory=list)
    ebadf: int = 0
    unexpected_errors: dict[str, int] = field(default_factory=dict)
    unexpected_examples: list[str] = field(default_factory=list)
    errors_after_hit: dict[str, int] = field(default_factory=dict)
    uncertain_dropped: int = 0

    def wrong_result(self, what: str) -> None:
        self.wrong += 1
        if len(self.wrong_examples) < 12:
            self.wrong_examples.append(what)

    def bystander_failure(self, what: str) -> None:
        self.bystander_failures += 1
        if len(self.bystander_examples) < 12:
            self.bystander_examples.append(what)

    def error(self, exc: BaseException, hit: bool, where: str) -> None:
        if isinstance(exc, OSError) and exc.errno == errno.EBADF:
            self.ebadf += 1
        name = f"{type(exc).__name__}({errno.errorcode.get(getattr(exc, 'errno', None) or 0, '')})"
        bucket = self.errors_after_hit if hit else self.unexpected_errors
        bucket[name] = bucket.get(name, 0) + 1
        if not hit and len(self.unexpected_examples) < 12:
            self.unexpected_examples.append(f"{where}: {type(exc).__name__}: {str(exc)[:200]}")


class _Storm:
    """The timer, the handler and the armed window (only target calls may be interrupted)."""

    def __init__(self, rng: random.Random, lo_us: float, hi_us: float) -> None:
        self.rng = rng
        self.lo = lo_us * 1e-6
        self.hi = hi_us * 1e-6
        self.armed = False
        self.fraction = 0.2
        self.signals = 0
        self.raised = 0
        self.rearms = 0

    def start(self) -> None:
        signal.signal(signal.SIGALRM, self._handler)
        self._rearm()

    def stop(self) -> None:
        self.armed = False
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, signal.SIG_IGN)

    def _rearm(self) -> None:
        t = self.rng.uniform(self.lo, self.hi)
        self.fraction = self.rng.uniform(0.02, 0.25)
        self.rearms += 1
        signal.setitimer(signal.ITIMER_REAL, t, t)

    def _handler(self, signum: int, frame: Optional[FrameType]) -> None:
        self.signals += 1
        if not self.armed:
            return
        # Never raise in the harness's own frame (call()'s try/finally that disarms): only inside the call.
        # Nor inside PyCryptodome: its SmartPointer hand-offs are not async-exception safe (a Storm between
        # creating one owner and releasing the other double-frees: glibc aborts the process, seen here in
        # the reference run). Its objects are the kcapi run's references and may be collected at any time.
        # (Nor in anything PyCryptodome called: the Storm would unwind through it just the same.)
        if frame is None or frame.f_code is _CALL_CODE:
            return
        f: Optional[FrameType] = frame
        while f is not None and f.f_code is not _CALL_CODE:
            if f.f_code.co_filename.startswith(_CRYPTO_DIR):
                return
            f = f.f_back
        if f is None:
            # No call() on the stack: the harness's own code, whatever `armed` says. (Seen on 3.9 in CI: a Storm
            # at the workload loop's `while`, outside every call(), which killed the child.)
            return
        if self.rng.random() < 0.01:
            self._rearm()
        if self.rng.random() < self.fraction:
            self.raised += 1
            raise Storm

    def call(self, fn: Callable[[], Any]) -> Any:
        self.armed = True
        try:
            return fn()
        finally:
            self.armed = False


_CALL_CODE = _Storm.call.__code__
try:
    import Crypto as _Crypto

    _CRYPTO_DIR = os.path.dirname(_Crypto.__file__) + os.sep
except ImportError:  # pragma: no cover - pycryptodome is a test requirement
    _CRYPTO_DIR = "\0"


def _ref_hash(kind: str, data: bytes, key: bytes = b"") -> Any:
    import hashlib
    import hmac

    family, name = kind.split(":")
    if family == "hash":
        return hashlib.new(name, data)
    return hmac.new(key, data, name)


def _ctr_ref(key: bytes, nonce: bytes, pos: int, data: bytes) -> bytes:
    from Crypto.Cipher import AES

    out: bytes = AES.new(key, AES.MODE_CTR, nonce=nonce).encrypt(bytes(pos) + data)[pos:]
    return out


def storm_workload(target: str, seconds: float, seed_value: int, lo_us: float, hi_us: float) -> dict[str, Any]:
    from Crypto.Cipher import AES as RefAES
    from Crypto.Cipher import ChaCha20_Poly1305 as RefChaCha

    be = _Backend(target)
    rng = random.Random(seed_value)
    st = StormStats()
    unraisable: list[str] = []

    def hook(u: Any) -> None:
        obj = getattr(u, "object", None)
        where = getattr(obj, "__qualname__", None) or type(obj).__name__
        unraisable.append(f"{type(u.exc_value).__name__} in {where}: {str(u.exc_value)[:120]}")

    sys.unraisablehook = hook
    hmac_keys = [rng.randbytes(rng.choice((16, 32, 64, 100))) for _ in range(80)]  # > 64: the key cache turns
    aead_keys = [rng.randbytes(rng.choice((16, 32))) for _ in range(40)]  # > 32 per algorithm
    chacha_keys = [rng.randbytes(32) for _ in range(40)]
    ctr_keys = [rng.randbytes(rng.choice((16, 24, 32))) for _ in range(40)]

    def size() -> int:
        r = rng.random()
        if r < 0.45:
            return rng.randrange(0, 200)
        if r < 0.75:
            return rng.randrange(200, 20_000)
        return rng.randrange(_STREAM + 1, _STREAM + 140_000)

    def data(n: Optional[int] = None) -> bytes:
        return rng.randbytes(size() if n is None else n)

    def new_tracked(kind: str, payload: bytes, key: bytes = b"") -> Callable[[], Any]:
        family, name = kind.split(":")
        if family == "hash":
            return lambda: getattr(be.hashlib, name)(payload)
        return lambda: be.hmac.new(key, payload, name)

    # --- warm-up with no timer: every code path once, then the descriptor baseline -------------------------
    storm = _Storm(rng, lo_us, hi_us)
    for name in _HASHES:
        h = getattr(be.hashlib, name)(data(_STREAM + 10))
        h.copy().digest()
        h.hexdigest()
    be.hmac.new(hmac_keys[0], b"w" * (_STREAM + 1), "sha256").copy().digest()
    be.AES.new(aead_keys[0], be.AES.MODE_GCM, nonce=bytes(12)).encrypt_and_digest(b"w")
    be.ChaCha20_Poly1305.new(key=chacha_keys[0], nonce=bytes(12)).encrypt_and_digest(b"w")
    be.AES.new(ctr_keys[0], be.AES.MODE_CTR, nonce=bytes(8)).encrypt(b"w" * 40)
    del h
    gc.collect()
    be.clear_caches()
    gc.collect()
    fds_before = count_fds()
    kinds_before = fd_kinds()
    ops_before = kernel_ops() if target == "kcapi" else 0

    # --- bystanders: made with the timer off, only ever used with the handler disarmed ---------------------
    bystanders: list[Tracked] = []
    for name in _HASHES:
        for _ in range(2):
            payload = data(_STREAM + rng.randrange(1, 50_000))
            bystanders.append(
                Tracked(f"hash:{name}", getattr(be.hashlib, name)(payload), [_ref_hash(f"hash:{name}", payload)])
            )
    for i in range(3):
        key, payload = hmac_keys[i], data(_STREAM + 5)
        bystanders.append(
            Tracked("hmac:sha256", be.hmac.new(key, payload, "sha256"), [_ref_hash("hmac:sha256", payload, key)])
        )
    for t in bystanders:
        t.bystander = True
    ctr_bystanders = []
    for i in range(3):
        key, nonce = ctr_keys[i], rng.randbytes(8)
        ctr_bystanders.append(
            CtrTracked(key, nonce, be.AES.new(key, be.AES.MODE_CTR, nonce=nonce), {0}, bystander=True)
        )

    objects: list[Tracked] = []
    ctrs: list[CtrTracked] = []

    def check_digest(t: Tracked, got: Any, hexd: bool) -> bool:
        """Narrow t's candidates to the one `got` equals; False (and counted) if it equals none."""
        st.checks += 1
        for c in t.cands:
            if (c.hexdigest() if hexd else c.digest()) == got:
                t.cands = [c]
                return True
        what = (
            f"{t.kind} {'hexdigest' if hexd else 'digest'} matches none of {len(t.cands)} possible states "
            f"(hit={t.hit}, bystander={t.bystander})"
        )
        if t.bystander:
            st.bystander_failure(what)
        else:
            st.wrong_result(what)
        return False

    def drop(t: Any) -> None:
        if t in objects:
            objects.remove(t)
        if t in ctrs:
            ctrs.remove(t)

    def attempt(fn: Callable[[], Any], t: Any, where: str) -> tuple[bool, Any]:
        """(True, value) if the call returned; (False, None) if Storm (t marked hit) or an error (t dropped)."""
        st.calls += 1
        try:
            value = storm.call(fn)
        except Storm:
            st.storms += 1
            if t is not None:
                t.hit = True
            return False, None
        except Exception as exc:
            hit = bool(t is not None and t.hit)
            st.error(exc, hit, where)
            if t is not None:
                if t.bystander:
                    st.bystander_failure(f"{where}: {type(exc).__name__}: {exc}")
                drop(t)
            return False, None
        st.returned += 1
        return True, value

    def op_new() -> None:
        family = rng.choice(("hash", "hash", "hmac"))
        kind = f"{family}:{rng.choice(_HASHES if family == 'hash' else _HMAC_DIGESTS)}"
        key = rng.choice(hmac_keys)
        payload = data()
        ok, obj = attempt(new_tracked(kind, payload, key), None, f"new {kind}")
        if ok:
            objects.append(Tracked(kind, obj, [_ref_hash(kind, payload, key)]))

    def op_update(t: Tracked) -> None:
        payload = data()
        ok, _ = attempt(lambda: t.obj.update(payload), t, f"{t.kind} update")
        if ok:
            for c in t.cands:
                c.update(payload)
        elif t in objects and t.hit:
            with_update = [c.copy() for c in t.cands]
            for c in with_update:
                c.update(payload)
            t.cands = t.cands + with_update
            if len(t.cands) > 8:
                st.uncertain_dropped += 1
                drop(t)

    def op_copy(t: Tracked) -> None:
        ok, obj = attempt(lambda: t.obj.copy(), t, f"{t.kind} copy")
        if ok:
            objects.append(Tracked(t.kind, obj, [c.copy() for c in t.cands], hit=t.hit))

    def op_digest(t: Tracked) -> None:
        hexd = rng.random() < 0.3
        ok, got = attempt(lambda: t.obj.hexdigest() if hexd else t.obj.digest(), t, f"{t.kind} digest")
        if ok and not check_digest(t, got, hexd):
            drop(t)

    def op_hmac_oneshot() -> None:
        import hmac as ref_hmac

        key, name, msg = rng.choice(hmac_keys), rng.choice(_HMAC_DIGESTS), data()
        if rng.random() < 0.5:
            ok, got = attempt(lambda: be.hmac.new(key, msg, name).digest(), None, f"hmac.new({name}).digest")
        else:
            ok, got = attempt(lambda: be.hmac.digest(key, msg, name), None, f"hmac.digest({name})")
        if ok:
            st.checks += 1
            if got != ref_hmac.new(key, msg, name).digest():
                st.wrong_result(f"one-shot HMAC-{name} ({len(msg)} bytes) wrong")

    def op_aead(chacha: bool) -> None:
        key = rng.choice(chacha_keys if chacha else aead_keys)
        nonce, aad, pt = rng.randbytes(12), rng.randbytes(rng.randrange(0, 64)), rng.randbytes(rng.randrange(0, 9000))
        ref = RefChaCha.new(key=key, nonce=nonce) if chacha else RefAES.new(key, RefAES.MODE_GCM, nonce=nonce)
        ref.update(aad)
        ref_ct, ref_tag = ref.encrypt_and_digest(pt)
        label = "ChaCha20-Poly1305" if chacha else f"AES-{len(key) * 8}-GCM"

        def new() -> Any:
            c = (
                be.ChaCha20_Poly1305.new(key=key, nonce=nonce)
                if chacha
                else be.AES.new(key, be.AES.MODE_GCM, nonce=nonce)
            )
            c.update(aad)
            return c

        if rng.random() < 0.6:
            ok, got = attempt(lambda: new().encrypt_and_digest(pt), None, f"{label} encrypt")
            if ok:
                st.checks += 1
                if tuple(got) != (ref_ct, ref_tag):
                    st.wrong_result(f"{label} encrypt_and_digest ({len(pt)} bytes) wrong")
        else:
            ok, got = attempt(lambda: new().decrypt_and_verify(ref_ct, ref_tag), None, f"{label} decrypt")
            if ok:
                st.checks += 1
                if got != pt:
                    st.wrong_result(f"{label} decrypt_and_verify ({len(pt)} bytes) wrong")

    def op_ctr_new() -> None:
        key, nonce = rng.choice(ctr_keys), rng.randbytes(8)
        ok, obj = attempt(lambda: be.AES.new(key, be.AES.MODE_CTR, nonce=nonce), None, "AES-CTR new")
        if ok:
            ctrs.append(CtrTracked(key, nonce, obj, {0}))

    def ctr_encrypt(t: CtrTracked, armed: bool) -> None:
        chunk = rng.randbytes(rng.choice((rng.randrange(1, 40), rng.randrange(40, 5000), rng.randrange(5000, 40_000))))
        t.calls += 1
        if armed:
            ok, got = attempt(lambda: t.obj.encrypt(chunk), t, "AES-CTR encrypt")
        else:
            try:
                ok, got = True, t.obj.encrypt(chunk)
            except Exception as exc:
                st.error(exc, False, "bystander AES-CTR encrypt")
                st.bystander_failure(f"AES-CTR encrypt: {type(exc).__name__}: {exc}")
                drop(t)
                ctr_bystanders.remove(t)
                return
        if ok:
            st.checks += 1
            for p in sorted(t.positions):
                if got == _ctr_ref(t.key, t.nonce, p, chunk):
                    t.positions = {p + len(chunk)}
                    break
            else:
                what = (
                    f"AES-{len(t.key) * 8}-CTR encrypt of {len(chunk)} bytes matches no keystream position in "
                    f"{sorted(t.positions)} (hit={t.hit}, bystander={t.bystander})"
                )
                if t.bystander:
                    st.bystander_failure(what)
                    ctr_bystanders.remove(t)
                else:
                    st.wrong_result(what)
                drop(t)
        elif t.hit and t in ctrs:
            t.positions = t.positions | {p + len(chunk) for p in t.positions}
        if t in ctrs and (t.calls > 6 or len(t.positions) > 4):
            drop(t)

    def check_bystanders() -> None:
        for t in list(bystanders):
            st.bystander_checks += 1
            try:
                got = t.obj.digest()
                ok = got == t.cands[0].digest()
                if ok:
                    payload = data(rng.choice((10, 3000, _STREAM + 1)))
                    t.obj.update(payload)
                    t.cands[0].update(payload)
            except Exception as exc:
                st.error(exc, False, f"bystander {t.kind}")
                st.bystander_failure(f"{t.kind}: {type(exc).__name__}: {exc}")
                bystanders.remove(t)
                continue
            if not ok:
                st.bystander_failure(f"bystander {t.kind} digest wrong (never touched during an exception)")
                bystanders.remove(t)
        for c in list(ctr_bystanders):
            st.bystander_checks += 1
            c.calls = 0
            ctr_encrypt(c, armed=False)

    # --- the storm ----------------------------------------------------------------------------------------
    storm_wall = -1.0

    def figures(stage: str) -> dict[str, Any]:
        return {
            "workload": "storm", "target": target, "stage": stage, "seed": seed_value, "timer_us": [lo_us, hi_us],
            "storm_seconds": round(storm_wall if storm_wall >= 0 else time.monotonic() - start, 2),
            "signals": storm.signals, "storms_raised": storm.raised,
            "rearms": storm.rearms, "iterations": st.iterations, "calls": st.calls, "returned": st.returned,
            "interrupted": st.storms, "checks": st.checks, "wrong": st.wrong, "wrong_examples": st.wrong_examples,
            "bystander_checks": st.bystander_checks, "bystander_failures": st.bystander_failures,
            "bystander_examples": st.bystander_examples, "ebadf": st.ebadf,
            "unexpected_errors": st.unexpected_errors, "unexpected_examples": st.unexpected_examples,
            "errors_after_hit": st.errors_after_hit, "uncertain_dropped": st.uncertain_dropped,
            "unraisable": len(unraisable), "unraisable_kinds": sorted(set(unraisable))[:10],
            "fds_before": fds_before, "fd_kinds_before": kinds_before,
            "kernel_ops": (kernel_ops() - ops_before) if target == "kcapi" else 0,
        }  # fmt: skip

    storm.start()
    start = time.monotonic()
    deadline = start + seconds
    # On a loaded host the planned seconds may hold too few interruptions for the test to mean anything (it fails
    # "storm too weak"): the storm then runs on until it has them, for at most twice the planned time (the parent's
    # deadline is three times it, plus start-up).
    last_resort = start + 2 * seconds
    last_check = start

    def storm_goes_on() -> bool:
        now = time.monotonic()
        if now < deadline:
            return True
        strong = st.storms >= MIN_INTERRUPTED and st.checks >= MIN_CHECKS
        strong = strong and st.bystander_checks >= MIN_BYSTANDER_CHECKS
        return not strong and now < last_resort

    while storm_goes_on():
        st.iterations += 1
        r = rng.random()
        if len(objects) < 4 or r < 0.15:
            op_new()
        elif r < 0.40:
            op_update(rng.choice(objects))
        elif r < 0.50:
            op_copy(rng.choice(objects))
        elif r < 0.65:
            op_digest(rng.choice(objects))
        elif r < 0.75:
            op_hmac_oneshot()
        elif r < 0.82:
            op_aead(chacha=False)
        elif r < 0.88:
            op_aead(chacha=True)
        elif r < 0.92 or not ctrs:
            op_ctr_new()
        else:
            ctr_encrypt(rng.choice(ctrs), armed=True)
        while len(objects) > 24:
            objects.pop(0)
        if time.monotonic() - last_check > 0.25:
            storm.armed = False
            emit(figures("storm running; next: bystander checks (handler disarmed)"), partial=True)
            check_bystanders()
            last_check = time.monotonic()
    storm.stop()
    storm_wall = time.monotonic() - start

    # --- after: timer off (a hang from here on still reports the storm's figures: emit them first) --------
    emit(figures("storm finished; next: bystander checks with the timer off"), partial=True)
    check_bystanders()
    emit(figures("bystanders checked; next: final digest of every surviving object"), partial=True)
    survivors = len(objects) + len(bystanders)
    for t in list(objects):  # every surviving object still answers one of its possible states (or raises)
        try:
            got = t.obj.digest()
        except Exception as exc:
            st.error(exc, t.hit, f"final {t.kind} digest")
            continue
        check_digest(t, got, False)
    emit(figures("survivors checked; next: dropping objects, clearing caches, counting descriptors"), partial=True)
    objects.clear()
    bystanders.clear()
    ctrs.clear()
    ctr_bystanders.clear()
    gc.collect()
    clear_errors: list[str] = []
    cleared = be.clear_caches(clear_errors)
    gc.collect()
    fds_after = count_fds()
    kinds_after = fd_kinds()
    emit(figures("descriptors counted; next: fresh objects still work"), partial=True)

    # The library still works: fresh streaming hash, HMAC under a new key, AEAD, equal to the reference.
    import hashlib
    import hmac

    sanity: list[str] = list(clear_errors)
    st.ebadf += sum("Errno 9]" in e for e in clear_errors)
    try:
        big = b"s" * (_STREAM + 777)
        h2 = be.hashlib.sha256(big)
        h2.update(b"tail")
        if h2.digest() != hashlib.sha256(big + b"tail").digest():
            sanity.append("sha256 wrong")
        if be.hmac.new(b"fresh key", big, "sha256").digest() != hmac.new(b"fresh key", big, "sha256").digest():
            sanity.append("HMAC-SHA256 wrong")
        got = be.AES.new(b"k" * 16, be.AES.MODE_GCM, nonce=b"n" * 12).encrypt_and_digest(b"pt" * 100)
        if tuple(got) != RefAES.new(b"k" * 16, RefAES.MODE_GCM, nonce=b"n" * 12).encrypt_and_digest(b"pt" * 100):
            sanity.append("AES-GCM wrong")
    except Exception as exc:
        sanity.append(f"{type(exc).__name__}: {exc}")
    result = figures("done")
    result.update(
        survivors_checked=survivors, fds_after=fds_after, fd_kinds_after=kinds_after, caches_cleared=cleared,
        sanity=sanity,
    )  # fmt: skip
    return result


# --- 2. fork while threads update shared objects --------------------------------------------------------


def _fork_updater(
    kind: str, obj: Any, chunk: bytes, s: list[int], r: list[int], i: int, stop: threading.Event, errors: list[str]
) -> None:
    """Update obj with chunk until stopped; s[i] counts updates started, r[i] updates that returned."""
    try:
        while not stop.is_set():
            s[i] += 1
            obj.update(chunk)
            r[i] += 1
    except Exception as exc:  # recorded: the parent's check then fails
        errors.append(f"{kind}: {type(exc).__name__}: {exc}")


def fork_workload(target: str, trials: int, budget: float, child_timeout: float, seed_value: int) -> dict[str, Any]:
    import hashlib
    import hmac
    import tempfile

    be = _Backend(target)
    rng = random.Random(seed_value)
    key = b"fork-stress-key"
    prefix = b"p" * (_STREAM + 4464)  # the shared objects stream to the kernel before the threads start
    traces = tempfile.mkdtemp(prefix="kcapi-fork-")
    out: dict[str, Any] = {
        "workload": "fork", "target": target, "seed": seed_value, "trials": 0, "child_ok": 0,
        "child_raised": 0, "child_wrong": 0, "child_hangs": 0, "child_crashed": 0, "parent_wrong": 0,
        "child_isolation_wrong": 0, "examples": [], "hang_tracebacks": [], "included_in_flight": 0,
        "fresh_wrong": 0,
    }  # fmt: skip

    def note(msg: str) -> None:
        if len(out["examples"]) < 12:
            out["examples"].append(msg)

    def ref_after(kind: str, chunk: bytes, k: int) -> Any:
        """The reference object after prefix and k chunks (fed in batches: k may be large)."""
        r = hashlib.sha256(prefix) if kind == "sha256" else hmac.new(key, prefix, "sha256")
        while k > 0:
            n = min(k, max(1, (1 << 20) // len(chunk)))
            r.update(chunk * n)
            k -= n
        return r

    def which_state(kind: str, chunk: bytes, got: bytes, lo: int, hi: int) -> int:
        """The k in lo..hi whose state digests to got, else -1 (no allowed state)."""
        r = ref_after(kind, chunk, lo)
        for k in range(lo, hi + 1):
            if k > lo:
                r.update(chunk)
            if r.digest() == got:
                return k
        return -1

    start = time.monotonic()
    for trial in range(trials):
        if time.monotonic() - start > budget:
            break
        out["trials"] += 1
        chunks = {
            "sha256": b"h" * rng.choice((100, 3000, 20_000, _STREAM + 100)),
            "hmac": b"m" * rng.choice((100, 3000, 20_000, _STREAM + 100)),
        }
        shared = {"sha256": be.hashlib.sha256(prefix), "hmac": be.hmac.new(key, prefix, "sha256")}
        n_threads = 2
        started = {k: [0] * n_threads for k in shared}
        returned = {k: [0] * n_threads for k in shared}
        stop = threading.Event()
        thread_errors: list[str] = []

        threads = [
            threading.Thread(
                target=_fork_updater,
                args=(k, shared[k], chunks[k], started[k], returned[k], i, stop, thread_errors),
                daemon=True,
            )
            for k in shared
            for i in range(n_threads)
        ]
        for th in threads:
            th.start()
        time.sleep(rng.uniform(0.002, 0.04))
        parent_returned = {k: sum(returned[k]) for k in shared}  # read right before fork()
        rfd, wfd = os.pipe()
        trace_path = os.path.join(traces, f"trial{trial}.txt")
        pid = os.fork()
        if pid == 0:  # child: only this thread exists now
            code = 0
            try:
                os.close(rfd)
                with open(trace_path, "w") as tf:
                    import faulthandler

                    # Not dump_traceback_later: the harness's own watchdog thread (armed in the parent) does not
                    # exist here, and re-arming waits for it forever. faulthandler's C-level SIGALRM handler
                    # dumps the stacks even while this thread is blocked in a lock; the parent then kills us.
                    faulthandler.register(signal.SIGALRM, file=tf, all_threads=True, chain=False)
                    signal.alarm(max(1, int(child_timeout) - 1))
                    res: dict[str, Any] = {}
                    for kind, obj in shared.items():
                        # Updates that had returned when fork() ran, and those that had started (in flight).
                        lo, hi = sum(returned[kind]), sum(started[kind])
                        entry: dict[str, Any] = {"lo": lo, "hi": hi, "parent_read": parent_returned[kind]}
                        try:
                            got = obj.digest()
                        except Exception as exc:
                            entry["raised"] = f"{type(exc).__name__}: {exc}"
                            res[kind] = entry
                            continue
                        entry["k"] = which_state(kind, chunks[kind], got, lo, hi)
                        entry["ok"] = lo <= entry["k"] <= hi
                        if entry["ok"]:  # the child's own update stays in the child
                            try:
                                obj.update(b"child")
                                r = ref_after(kind, chunks[kind], entry["k"])
                                r.update(b"child")
                                entry["isolated_ok"] = obj.digest() == r.digest()
                            except Exception as exc:
                                entry["isolated_ok"] = f"raised {type(exc).__name__}: {exc}"
                        res[kind] = entry
                    res["fresh_ok"] = (
                        be.hashlib.sha256(b"abc" * 30000).digest() == hashlib.sha256(b"abc" * 30000).digest()
                    )
                    signal.alarm(0)
                os.write(wfd, json.dumps(res).encode())
            except BaseException:
                code = 3
            finally:
                os._exit(code)
        stop.set()  # the parent's threads stop now: what matters was in flight at fork()
        os.close(wfd)
        deadline = time.monotonic() + child_timeout
        status = None
        while time.monotonic() < deadline:
            wpid, st = os.waitpid(pid, os.WNOHANG)
            if wpid:
                status = st
                break
            time.sleep(0.01)
        if status is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        chunks_read = []
        while True:
            b = os.read(rfd, 65536)
            if not b:
                break
            chunks_read.append(b)
        os.close(rfd)
        raw = b"".join(chunks_read)
        for th in threads:
            th.join(timeout=20)
        if any(th.is_alive() for th in threads):
            out["parent_thread_hang"] = True
            note(f"trial {trial}: an updating thread in the parent did not finish within 20 s")
            break
        trace = Path(trace_path).read_text() if os.path.exists(trace_path) else ""
        if not raw:
            if status is None:
                out["child_hangs"] += 1
                if trace and len(out["hang_tracebacks"]) < 2:
                    out["hang_tracebacks"].append(trace[-2500:])
            else:
                out["child_crashed"] += 1
                note(f"trial {trial}: child ended with status {status} and no result")
        else:
            res = json.loads(raw)
            bad = False
            for kind in shared:
                e = res[kind]
                if "raised" in e:
                    out["child_raised"] += 1
                    note(f"trial {trial} {kind}: child digest raised {e['raised']}")
                elif not e["ok"]:
                    bad = True
                    out["child_wrong"] += 1
                    note(
                        f"trial {trial} {kind} (chunk {len(chunks[kind])} B): child digest = state after "
                        f"{e['k']} updates (-1: none of the allowed states {e['lo']}..{e['hi']})"
                    )
                else:
                    out["included_in_flight"] += e["k"] > e["lo"]
                    if e.get("isolated_ok") is not True:
                        out["child_isolation_wrong"] += 1
                        note(f"trial {trial} {kind}: child's own update then digest: {e.get('isolated_ok')}")
            if not res.get("fresh_ok"):
                out["fresh_wrong"] += 1
            if not bad:
                out["child_ok"] += 1
        # The parent: every update returned (threads joined); its object holds exactly those, nothing of the child.
        if thread_errors:
            note(f"trial {trial}: parent thread errors: {thread_errors[:3]}")
            out["parent_wrong"] += 1
        for kind, obj in shared.items():
            n = sum(returned[kind])
            try:
                ok = obj.digest() == ref_after(kind, chunks[kind], n).digest()
            except Exception as exc:
                ok = False
                note(f"trial {trial} {kind}: parent digest raised {type(exc).__name__}: {exc}")
            if not ok:
                out["parent_wrong"] += 1
                note(f"trial {trial} {kind}: parent digest is not the state after its {n} updates")
    out["wall"] = round(time.monotonic() - start, 2)
    shutil.rmtree(traces, ignore_errors=True)
    return out


# --- 3. descriptor exhaustion ---------------------------------------------------------------------------


def _exhaust_fds(free: int) -> tuple[list[int], tuple[int, int]]:
    """Lower RLIMIT_NOFILE and fill the table with dup()s until EMFILE; then leave `free` slots open."""
    import resource

    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (count_fds() + 64, old[1]))
    held: list[int] = []
    while True:
        try:
            held.append(os.dup(0))
        except OSError as e:
            if e.errno != errno.EMFILE:
                raise
            break
    for _ in range(free):
        os.close(held.pop())
    return held, old


def _release_fds(held: list[int], old: tuple[int, int]) -> None:
    import resource

    for fd in held:
        os.close(fd)
    resource.setrlimit(resource.RLIMIT_NOFILE, old)


def exhaust_workload(primitive: str, policy: str, free: int) -> dict[str, Any]:
    import hashlib
    import hmac
    import warnings

    import kcapi_hashlib
    import kcapi_hashlib.hmac
    import kcapi_hashlib.Random
    from kcapi_hashlib.Cipher import AES

    warnings.simplefilter("ignore")  # fallback warnings are counted through fallback_counts() instead
    import_all_kcapi()
    kcapi_hashlib.set_policy(policy)
    key, msg, nonce = b"exhaustion key", b"abc" * 11, b"n" * 12
    expected: Optional[Any]
    op: Callable[[], Any]
    if primitive == "hash":
        op, expected = (lambda: kcapi_hashlib.sha256(b"abc").digest()), hashlib.sha256(b"abc").digest()
    elif primitive == "hash-stream":  # a streaming object (an op socket held) and its digest (an accept)
        big = b"x" * (_STREAM + 1)
        op, expected = (lambda: kcapi_hashlib.sha256(big).digest()), hashlib.sha256(big).digest()
    elif primitive == "hmac":
        op, expected = (
            (lambda: kcapi_hashlib.hmac.new(key, msg, "sha256").digest()),
            hmac.new(key, msg, "sha256").digest(),
        )
    elif primitive == "gcm":
        from Crypto.Cipher import AES as RefAES

        op = lambda: tuple(AES.new(b"k" * 16, AES.MODE_GCM, nonce=nonce).encrypt_and_digest(msg))  # noqa: E731
        expected = tuple(RefAES.new(b"k" * 16, RefAES.MODE_GCM, nonce=nonce).encrypt_and_digest(msg))
    elif primitive == "random":
        op, expected = (lambda: kcapi_hashlib.Random.get_random_bytes(48)), None
    else:
        raise SystemExit(f"unknown primitive {primitive!r}")

    def attempt() -> dict[str, Any]:
        fb0, ops0 = kcapi_hashlib.fallback_counts(), kernel_ops()
        try:
            got = op()
        except Exception as exc:
            r: dict[str, Any] = {"outcome": "raised", **exc_brief(exc)}
        else:
            ok = len(got) == 48 if expected is None else got == expected
            r = {"outcome": "returned", "correct": ok}
        fb1 = kcapi_hashlib.fallback_counts()
        r["fallback_delta"] = sum(fb1.values()) - sum(fb0.values())
        r["kernel_ops_delta"] = kernel_ops() - ops0
        return r

    gc.collect()
    fds_start = count_fds()
    held, old = _exhaust_fds(free)
    try:
        during = attempt()
    finally:
        _release_fds(held, old)
    after = attempt()
    again = attempt()
    gc.collect()
    clear_kcapi_caches()
    gc.collect()
    fds_end = count_fds()
    return {
        "workload": "exhaust", "primitive": primitive, "policy": policy, "free": free, "during": during,
        "after": after, "again": again, "fds_start": fds_start, "fds_end": fds_end, "fd_kinds_end": fd_kinds(),
        "held": len(held),
    }  # fmt: skip


# --- entry point ----------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    import argparse
    import faulthandler

    p = argparse.ArgumentParser(prog="python -m tests.support.stress")
    p.add_argument("workload", choices=("storm", "fork", "exhaust"))
    p.add_argument("--target", default="kcapi", choices=("kcapi", "reference", "broken"))
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timer-us", default="100,300")
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--child-timeout", type=float, default=4.0)
    p.add_argument("--primitive", default="hash")
    p.add_argument("--policy", default="strict")
    p.add_argument("--free", type=int, default=0)
    p.add_argument("--watchdog", type=float, default=0.0)
    a = p.parse_args(argv)
    if a.watchdog > 0:
        faulthandler.dump_traceback_later(a.watchdog, exit=True)
    if a.workload == "storm":
        lo, hi = (float(x) for x in a.timer_us.split(","))
        result = storm_workload(a.target, a.seconds, a.seed, lo, hi)
    elif a.workload == "fork":
        result = fork_workload(a.target, a.trials, a.seconds, a.child_timeout, a.seed)
    else:
        result = exhaust_workload(a.primitive, a.policy, a.free)
    faulthandler.cancel_dump_traceback_later()
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
