"""An exception from a signal handler at EVERY point where CPython can raise one inside an operation: no lock
of the package stays held, another thread can go on using the object (a right answer, or the documented
'state lost' error), and a run that was not interrupted gives the right answer.

Deterministic (tests/support/checkpoints.py): run k of an operation raises at the k-th periodic check it passes
inside the package, for k = 1, 2, ... until it passes no more. After each run a second thread checks that it
can take every module-level lock of the package and every lock the object holds, then uses the object, and
the result is compared with hashlib/hmac/PyCryptodome. Before the locks were taken by try/acquire/finally,
CPython 3.14 left the object's lock (or the policy's, the installer's, the hash registry's) held after an
exception right after `with lock:`'s __enter__ (python/cpython#148874): every later call from another
thread blocked for good.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac as std_hmac
import os
import threading
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Optional

import pytest

import kcapi_hashlib
from kcapi_hashlib import _afalg, _policy
from kcapi_hashlib import hmac as k_hmac
from kcapi_hashlib.Cipher import AES, ChaCha20, ChaCha20_Poly1305, InterruptedCipherError
from tests.support import checkpoints, requires

needs_monitoring = pytest.mark.skipif(not checkpoints.AVAILABLE, reason=checkpoints.WHY_NOT)
# What the 'signal handler' raises: a BaseException (as KeyboardInterrupt), and a RuntimeError, which the package
# must not take for its own (a lock's 'un-acquired' release()) and swallow.
EXCEPTIONS = pytest.mark.parametrize(
    "exc", [checkpoints.Interrupt, checkpoints.HandlerRuntimeError], ids=["BaseException", "RuntimeError"]
)
pytestmark = [
    requires.hash_names("sha256"),
    *requires.cipher_code(
        "AES.MODE_GCM AES.MODE_CTR AES.MODE_CBC ChaCha20 ChaCha20_Poly1305", only="test_cipher_interrupted_*"
    ),
]

KEY = bytes(range(32))
NONCE = bytes(range(12))
A = b"a" * 100
B = b"b" * 64
BIG = b"c" * 70_000  # more than the userspace buffer (hash.FLUSH): the update streams to the kernel


def _ok_after(lost: tuple[type[BaseException], ...]) -> Callable[[Any, set[Any]], Optional[str]]:
    def check(value: Any, allowed: set[Any]) -> Optional[str]:
        if isinstance(value, lost):
            return None
        if isinstance(value, BaseException):
            return f"raised {type(value).__name__}: {value}"
        return None if value in allowed else f"returned {value!r}, not one of the allowed results"

    return check


@dataclass
class Case:
    name: str
    make: Callable[[], Any]  # the object (not interrupted)
    op: Callable[[Any], Any]  # the interrupted operation
    expect: Any  # op's result when not interrupted
    then: Callable[[Any], Any]  # a later call on the object, from another thread
    allowed: Callable[[Any], set[Any]]  # its right results for the object (the interrupted op landed or not)
    lost: tuple[type[BaseException], ...] = (ValueError,)  # the documented 'state lost' errors


def _digest_of(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


_PENDING_MAX = _afalg.hash.PENDING_MAX


def _streaming(updates: int) -> Any:
    """sha256(A) updated with A `updates` times: its stream made by the first, the others pending (the lock-free
    path of HashStream.add_bytes), so that the next small update is the one that absorbs when updates is
    _PENDING_MAX."""
    h = kcapi_hashlib.sha256(A)
    for _ in range(updates):
        h.update(A)
    return h


def _mac_of(*parts: bytes) -> bytes:
    return std_hmac.new(KEY, b"".join(parts), "sha256").digest()


def _fresh_keys() -> Callable[[], bytes]:
    n = iter(range(1 << 30))
    return lambda: next(n).to_bytes(4, "big") * 8


_NEW_KEY = _fresh_keys()  # a key the keyed-transform cache has not seen: the call inserts (and evicts)
HASH_CASES = [
    Case("update, buffered", lambda: kcapi_hashlib.sha256(A), lambda h: h.update(B), None,
         lambda h: h.digest(), lambda _: {_digest_of(A), _digest_of(A, B)}),
    Case("update, pending", lambda: _streaming(1), lambda h: h.update(B), None,
         lambda h: h.digest(), lambda _: {_digest_of(A * 2), _digest_of(A * 2, B)}),
    Case("update that absorbs", lambda: _streaming(_PENDING_MAX), lambda h: h.update(B), None,
         lambda h: h.digest(), lambda _: {_digest_of(A * (_PENDING_MAX + 1)), _digest_of(A * (_PENDING_MAX + 1), B)}),
    Case("update, to the kernel", lambda: kcapi_hashlib.sha256(A), lambda h: h.update(BIG), None,
         lambda h: h.digest(), lambda _: {_digest_of(A), _digest_of(A, BIG)}),
    Case("digest, buffered", lambda: kcapi_hashlib.sha256(A), lambda h: h.digest(), _digest_of(A),
         lambda h: h.digest(), lambda _: {_digest_of(A)}),
    Case("digest, in the kernel", lambda: kcapi_hashlib.sha256(BIG), lambda h: h.digest(), _digest_of(BIG),
         lambda h: h.digest(), lambda _: {_digest_of(BIG)}),
    Case("copy", lambda: kcapi_hashlib.sha256(BIG), lambda h: h.copy().digest(), _digest_of(BIG),
         lambda h: h.digest(), lambda _: {_digest_of(BIG)}),
    Case("one-shot", lambda: None, lambda _: kcapi_hashlib.sha256(B).digest(), _digest_of(B),
         lambda _: kcapi_hashlib.sha256(A).digest(), lambda _: {_digest_of(A)}),
    Case("hmac update", lambda: k_hmac.new(KEY, A, "sha256"), lambda m: m.update(BIG), None,
         lambda m: m.digest(), lambda _: {_mac_of(A), _mac_of(A, BIG)}),
    Case("hmac digest", lambda: k_hmac.new(KEY, BIG, "sha256"), lambda m: m.digest(), _mac_of(BIG),
         lambda m: m.digest(), lambda _: {_mac_of(BIG)}),
    Case("hmac.digest one-shot", lambda: None, lambda _: k_hmac.digest(KEY, B, "sha256"), _mac_of(B),
         lambda _: k_hmac.digest(KEY, A, "sha256"), lambda _: {_mac_of(A)}),
    Case("hmac.digest, a new key", _NEW_KEY, lambda k: k_hmac.digest(k, B, "sha256"), None,
         lambda k: k_hmac.digest(k, A, "sha256"), lambda k: {std_hmac.new(k, A, "sha256").digest()}),
]  # fmt: skip


def _in_another_thread(call: Callable[[Any], Any], obj: Any) -> list[Any]:
    """[what call(obj) returned or raised], or [] if it did not finish in 60 s."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(call(obj))
        except Exception as e:
            out.append(e)

    t = threading.Thread(target=run)
    t.start()
    t.join(60)
    return out


def _check_run(case: Case, run: checkpoints.Run, obj: Any, exc: type[BaseException]) -> Optional[str]:
    label = f"{case.name}, point {run.point} ({run.where or 'not interrupted'})"
    if run.where is None:
        if run.error is not None:
            return f"{label}: raised {run.error!r}"
        if case.expect is not None and run.result != case.expect:
            return f"{label}: returned {run.result!r}, expected {case.expect!r}"
    elif type(run.error) is not exc and not (run.error is None and run.in_finalizer):
        return f"{label}: the handler's {exc.__name__} came out as {run.error!r}"
    locks = {**checkpoints.module_locks(), **checkpoints.object_locks(obj)}
    plain = [name for name, lock in locks.items() if not isinstance(lock, checkpoints.RLOCK)]
    if plain:  # the release in a finally block is safe only for an RLock (see kcapi_hashlib/_afalg/accounting.py)
        return f"{label}: not RLocks: {', '.join(plain)}"
    held = checkpoints.free_in_another_thread(list(locks.values()))
    if held:
        return f"{label}: locks still held: {', '.join(n for n, lock in locks.items() if lock in held)}"
    out = _in_another_thread(case.then, obj)
    if not out:
        return f"{label}: a later call from another thread hung"
    bad = _ok_after(case.lost)(out[0], case.allowed(obj))
    return f"{label}: a later call from another thread {bad}" if bad else None


def _run_case(case: Case, exc: type[BaseException]) -> int:
    """Every point of case.op, each run on a new object; returns how many runs were interrupted."""
    problems: list[str] = []
    interrupted = 0
    state = {"obj": case.make()}  # the coming run's object: made before it, outside the interrupted op
    with contextlib.closing(checkpoints.every_point(lambda: case.op(state["obj"]), exc)) as runs:
        for run in runs:
            interrupted += run.where is not None
            problem = _check_run(case, run, state["obj"], exc)
            if problem:
                problems.append(problem)
                if len(problems) == 5:
                    break
            state["obj"] = case.make()
    assert not problems, "\n".join(problems)
    return interrupted


def _policy_fallback(_: object) -> None:
    previous = kcapi_hashlib.set_policy("fallback")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _policy.unavailable("hash", "interrupt-points-test", "planted by the test")
    finally:
        kcapi_hashlib.set_policy(previous)


def _counted(_: object) -> bool:
    counts = kcapi_hashlib.fallback_counts()
    kcapi_hashlib.reset_fallback_counts()
    return isinstance(counts, dict)


def _uninstalled(_: object) -> bool:
    kcapi_hashlib.uninstall()
    return not kcapi_hashlib.installed()


# (install() is not a case: it walks sys.modules, thousands of points in a pytest process, and every point
# reruns it from the start. test_install_interrupted_between_record_and_set takes its one delicate point.)
PROCESS_CASES = [
    Case("policy fallback", lambda: None, _policy_fallback, None, _counted, lambda _: {True}),
]  # fmt: skip


@needs_monitoring
@EXCEPTIONS
@pytest.mark.parametrize("case", HASH_CASES, ids=[c.name for c in HASH_CASES])
def test_hash_interrupted_at_every_point(case: Case, exc: type[BaseException]) -> None:
    assert kcapi_hashlib.sha256(b"warm").digest()  # this process reaches the kernel; binds and pools warm
    assert _run_case(case, exc) > 0, "no point was interrupted: the harness did not reach the package"


@needs_monitoring
@EXCEPTIONS
@pytest.mark.parametrize("case", PROCESS_CASES, ids=[c.name for c in PROCESS_CASES])
def test_process_state_interrupted_at_every_point(case: Case, exc: type[BaseException]) -> None:
    assert kcapi_hashlib.sha256(b"warm").digest()
    assert _run_case(case, exc) > 0, "no point was interrupted: the harness did not reach the package"


# --- ciphers: the object's lock, its state machine and its broken mark -----------------------------------
# After an interrupted call the object either goes on exactly as if the call had landed whole or not at all, or
# raises InterruptedCipherError (its chaining value or MAC state is unknown) or the state machine's TypeError.

CTR_NONCE = NONCE[:8]
LOST = (InterruptedCipherError, TypeError)


def _cipher_cases() -> list[Case]:
    from Crypto.Cipher import AES as RefAES
    from Crypto.Cipher import ChaCha20 as RefChaCha20
    from Crypto.Cipher import ChaCha20_Poly1305 as RefChaPoly

    def gcm(m: Any) -> Any:
        return m.new(KEY, m.MODE_GCM, nonce=NONCE)

    ct, tag = gcm(RefAES).encrypt_and_digest(B)
    empty_tag = gcm(RefAES).digest()

    def ctr(m: Any) -> Any:
        return m.new(KEY, m.MODE_CTR, nonce=CTR_NONCE)

    def cbc(m: Any) -> Any:
        return m.new(KEY, m.MODE_CBC, iv=NONCE + bytes(4))

    def cha(m: Any) -> Any:
        return m.new(key=KEY, nonce=NONCE)

    chapoly_tag = cha(RefChaPoly).encrypt_and_digest(B)[1]
    return [
        Case("GCM encrypt_and_digest", lambda: gcm(AES), lambda c: c.encrypt_and_digest(B), (ct, tag),
             lambda c: c.digest(), lambda _: {tag, empty_tag}, LOST),
        Case("GCM decrypt_and_verify", lambda: gcm(AES), lambda c: c.decrypt_and_verify(ct, tag), B,
             lambda c: c.verify(tag), lambda _: {None}, (*LOST, ValueError)),
        Case("CTR encrypt", lambda: ctr(AES), lambda c: c.encrypt(B), ctr(RefAES).encrypt(B),
             lambda c: c.encrypt(A), lambda _: {ctr(RefAES).encrypt(A), ctr(RefAES).encrypt(B + A)[len(B):]}, LOST),
        Case("CBC encrypt", lambda: cbc(AES), lambda c: c.encrypt(B), cbc(RefAES).encrypt(B),
             lambda c: c.encrypt(B), lambda _: {cbc(RefAES).encrypt(B), cbc(RefAES).encrypt(B + B)[len(B):]}, LOST),
        Case("ChaCha20 encrypt", lambda: cha(ChaCha20), lambda c: c.encrypt(B), cha(RefChaCha20).encrypt(B),
             lambda c: c.encrypt(A),
             lambda _: {cha(RefChaCha20).encrypt(A), cha(RefChaCha20).encrypt(B + A)[len(B):]}, LOST),
        Case("ChaCha20_Poly1305 encrypt_and_digest", lambda: cha(ChaCha20_Poly1305),
             lambda c: c.encrypt_and_digest(B), cha(RefChaPoly).encrypt_and_digest(B),
             lambda c: c.digest(), lambda _: {chapoly_tag, cha(RefChaPoly).digest()}, LOST),
    ]  # fmt: skip


CIPHER_CASE_NAMES = [
    "GCM encrypt_and_digest", "GCM decrypt_and_verify", "CTR encrypt", "CBC encrypt", "ChaCha20 encrypt",
    "ChaCha20_Poly1305 encrypt_and_digest",
]  # fmt: skip


@needs_monitoring
@EXCEPTIONS
@pytest.mark.parametrize("name", CIPHER_CASE_NAMES)
def test_cipher_interrupted_at_every_point(name: str, exc: type[BaseException]) -> None:
    assert kcapi_hashlib.sha256(b"warm").digest()
    (case,) = [c for c in _cipher_cases() if c.name == name]
    assert _run_case(case, exc) > 0, "no point was interrupted: the harness did not reach the package"


def test_no_lock_is_taken_by_with() -> None:
    """The rule the tests above check at run time, read from the source: no `with` statement in the package
    takes a lock (its context expression names a lock, the hash registry's _gate or a _locked() method)."""
    import ast
    from pathlib import Path

    root = Path(kcapi_hashlib.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    text = ast.unparse(item.context_expr)
                    if "lock" in text.lower() or "_gate" in text:
                        found.append(f"{path.relative_to(root)}:{node.lineno}: with {text}")
    assert not found, "locks taken by `with` (take them by try/acquire/finally, see accounting.py):\n" + "\n".join(
        found
    )


def _adopt_once(h: Any, k: int) -> int:
    """In a forked child: the first call on `h` (which adopts the stream: HashStream._adopt_in_child), with a
    handler's exception at its k-th point. 0: fine, 10: fine and k was past the last point, else what failed."""
    with checkpoints.injector() as run:
        result = run(lambda: h.update(B), k)
    locks = {**checkpoints.module_locks(), **checkpoints.object_locks(h)}
    if checkpoints.free_in_another_thread(list(locks.values())):
        return 1
    out = _in_another_thread(lambda o: o.digest(), h)
    if not out or not (isinstance(out[0], ValueError) or out[0] in {_digest_of(A, B), _digest_of(A, B, B)}):
        return 2
    return 10 if result.where is None else 0


@needs_monitoring
def test_fork_adoption_interrupted_at_every_point() -> None:
    """A stream that holds only buffered bytes at fork() is not seen by the fork hooks: the child's first call
    on it adopts it (takes its lock if free, else marks it lost under a new one). An exception at every point
    of that call, one forked child per point: every lock free afterwards, and the object right or lost.
    (Before, a handler raising right after the adoption's acquire(blocking=False) left the lock held.)"""
    h = kcapi_hashlib.sha256(A)
    h.update(B)  # a HashStream now, its bytes in its buffer: no kernel state, not registered
    failures = []
    for k in range(1, 2000):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 3
            try:
                code = _adopt_once(h, k)
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code == 10:
            break
        if code:
            failures.append(
                f"point {k}: " + {1: "a lock stayed held", 2: "a later digest was wrong"}.get(code, str(code))
            )
    else:
        pytest.fail("the adopting call passed more than 2000 points")
    assert k > 5, "the adopting call passed almost no point: the test did not reach the adoption"
    assert not failures, "\n".join(failures[:10])
    assert h.digest() == _digest_of(A, B)  # the parent's object is untouched


@needs_monitoring
def test_install_interrupted_between_record_and_set() -> None:
    """install() records each attribute it replaces (_install._saved) and then sets it; an exception between
    the two (after the record's list.append) must still leave nothing installed: the rollback skips the
    attribute that was never set. (Before, the rollback's delattr of hashlib.__getattr__, recorded but not
    yet set, raised AttributeError and stopped it half-way, leaving the rest installed.)"""
    import hashlib as std_hashlib

    original = std_hashlib.sha256
    kcapi_hashlib.install()  # warm: the modules install() imports are imported now, not inside the runs
    kcapi_hashlib.uninstall()
    with checkpoints.injector() as run:
        for k in range(1, 5000):
            result = run(kcapi_hashlib.install, k)
            try:
                if result.where is None:
                    pytest.fail("install() passed no list.append in _set")
                if "_set" in result.where and "list.append" in result.where:
                    break
            finally:
                kcapi_hashlib.uninstall()
    assert type(result.error) is checkpoints.Interrupt, f"at {result.where}: {result.error!r}"
    assert not kcapi_hashlib.installed()
    assert std_hashlib.sha256 is original and not hasattr(std_hashlib, "__getattr__")
    assert kcapi_hashlib.sha256(b"abc").digest() == _digest_of(b"abc")
