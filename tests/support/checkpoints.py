"""An exception at every point where CPython can run a signal handler inside the package, one run per point.

CPython runs Python signal handlers (and so raises their exceptions) only at its periodic checks: at the start
of a Python function (RESUME), on a backward jump, and at the end of a call of a C function (the CALL family's
check after the callee returns). sys.monitoring (3.12+) reports an event at each of those places: PY_START and
PY_RESUME, JUMP (backward ones), and C_RETURN/C_RAISE. Raising from the event's callback raises at the same
instruction, so the exception table that catches it is the one a real handler's exception would meet; in
particular an exception after a C `__enter__` lands where CPython 3.14's `with` statement has no handler yet
(python/cpython#148874).

`every_point(op)` runs `op` once per point it passes inside the package's code, raising Interrupt at the k-th
point on run k, until a run passes no more points; it yields what each run did. Only the thread that runs `op`
is interrupted, and only inside kcapi_hashlib's own functions. (C_RETURN also fires after calls where CPython
3.15 no longer checks: a superset of the real points, never fewer.)
"""

from __future__ import annotations

import sys
import threading
import types
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import kcapi_hashlib

AVAILABLE = sys.version_info >= (3, 12)
# Backward jumps are points too, but before 3.14 an exception raised from a JUMP event's callback leaves the frame
# without running its except/finally blocks (a while loop inside try/finally, on 3.13.5 and 3.13t: the finally
# never ran), which no signal handler's exception does: there they are not interrupted.
JUMPS = sys.version_info >= (3, 14)
WHY_NOT = "sys.monitoring (the event at each periodic check) is new in Python 3.12"


class Interrupt(BaseException):
    """What the injected 'signal handler' raises: a BaseException, as KeyboardInterrupt is."""


@dataclass
class Run:
    point: int  # k: interrupted at the k-th point (1-based)
    where: Optional[str]  # the point that raised, or None: the run passed fewer than k points
    result: Any = None
    error: Optional[BaseException] = None  # what op raised (Interrupt, or an error it turned into)
    in_finalizer: bool = False  # the exception was raised in a finalizer or weakref callback (unraisable)


def package_codes() -> list[types.CodeType]:
    """Every code object of the imported kcapi_hashlib modules (functions, methods, nested code)."""
    root = str(Path(kcapi_hashlib.__file__).parent)
    seen: dict[int, types.CodeType] = {}

    def walk(code: types.CodeType) -> None:
        if id(code) in seen or not code.co_filename.startswith(root):
            return
        seen[id(code)] = code
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                walk(const)

    def visit(obj: Any, depth: int) -> None:
        code = getattr(obj, "__code__", None)
        if isinstance(code, types.CodeType):
            walk(code)
        for inner in ("__wrapped__", "func"):  # @contextmanager (and other wrappers), functools.cached_property
            wrapped = getattr(obj, inner, None) if not isinstance(obj, type) else None
            if wrapped is not None and wrapped is not obj and depth < 3:
                visit(wrapped, depth + 1)
        if isinstance(obj, (staticmethod, classmethod)):
            visit(obj.__func__, depth)
        elif isinstance(obj, property):
            for f in (obj.fget, obj.fset, obj.fdel):
                if f is not None:
                    visit(f, depth)
        elif isinstance(obj, type) and depth < 3 and obj.__module__.startswith("kcapi_hashlib"):
            for v in list(vars(obj).values()):
                visit(v, depth + 1)

    for name, mod in list(sys.modules.items()):
        if mod is None or not (name == "kcapi_hashlib" or name.startswith("kcapi_hashlib.")):
            continue
        for v in list(vars(mod).values()):
            visit(v, 0)
    return list(seen.values())


class _Injector:
    def __init__(self, tool: int, exc: type[BaseException]) -> None:
        self.tool = tool
        self.exc = exc
        self.target = 0  # the thread to interrupt
        self.armed = 0  # raise at this point (0: count only)
        self.seen = 0
        self.where: Optional[str] = None

    def _point(self, what: str, code: types.CodeType, offset: int) -> None:
        if threading.get_ident() != self.target or self.where is not None or code.co_name == "__del__":
            return  # (an exception in a finalizer never reaches the operation: CPython reports it as unraisable)
        self.seen += 1
        if self.seen == self.armed:
            self.where = f"{what} in {code.co_qualname} ({Path(code.co_filename).name}+{offset})"
            raise self.exc(self.where)

    def call(self, *args: Any) -> None:
        return None  # CALL must be monitored for C_RETURN/C_RAISE to be reported

    def c_return(self, code: types.CodeType, offset: int, callable: object, arg0: object) -> None:
        self._point(f"after C call {getattr(callable, '__qualname__', callable)!s}", code, offset)

    def start(self, code: types.CodeType, offset: int) -> None:
        self._point("at the start", code, offset)

    def jump(self, code: types.CodeType, offset: int, destination: int) -> None:
        if destination < offset:
            self._point("at a backward jump", code, offset)


class HandlerRuntimeError(RuntimeError):
    """A handler's exception that is a RuntimeError (as InterruptedCipherError, RecursionError and a refused
    re-entry are): the package must not take it for one of its own (e.g. release()'s 'un-acquired')."""


@contextmanager
def injector(exc: type[BaseException] = Interrupt) -> Iterator[Callable[[Callable[[], Any], int], Run]]:
    """A function run(op, k): op() with `exc` raised at its k-th point, as a Run. Monitoring is on inside."""
    mon = sys.monitoring  # type: ignore[attr-defined,unused-ignore]
    ev = mon.events
    tool = next(i for i in range(6) if i != mon.DEBUGGER_ID and mon.get_tool(i) is None)
    mon.use_tool_id(tool, "kcapi-checkpoints")
    inj = _Injector(tool, exc)
    try:
        mon.register_callback(tool, ev.CALL, inj.call)
        mon.register_callback(tool, ev.C_RETURN, inj.c_return)
        mon.register_callback(tool, ev.C_RAISE, inj.c_return)
        mon.register_callback(tool, ev.PY_START, inj.start)
        mon.register_callback(tool, ev.PY_RESUME, inj.start)
        events = ev.CALL | ev.C_RETURN | ev.C_RAISE | ev.PY_START | ev.PY_RESUME
        if JUMPS:
            mon.register_callback(tool, ev.JUMP, inj.jump)
            events |= ev.JUMP
        for code in package_codes():
            mon.set_local_events(tool, code, events)

        def run(op: Callable[[], Any], k: int) -> Run:
            unraisable: list[BaseException] = []
            hook = sys.unraisablehook
            sys.unraisablehook = lambda u: unraisable.append(u.exc_value) if u.exc_value is not None else None
            inj.target = threading.get_ident()
            inj.armed, inj.seen, inj.where = k, 0, None
            result = Run(k, None)
            try:
                result.result = op()
            except BaseException as e:  # what the run raised (the exception, or what it became) is its result
                result.error = e
            finally:
                inj.target = 0
                sys.unraisablehook = hook
            result.where = inj.where
            # The point was in a finalizer or a weakref callback (run by the garbage collector inside op): CPython
            # reports such an exception as unraisable, and it never reaches op, signal handler's or not.
            result.in_finalizer = any(isinstance(e, inj.exc) for e in unraisable)
            return result

        yield run
    finally:
        for code in package_codes():
            mon.set_local_events(tool, code, 0)
        mon.free_tool_id(tool)


def every_point(op: Callable[[], Any], exc: type[BaseException] = Interrupt, limit: int = 20_000) -> Iterator[Run]:
    """Run op() with `exc` raised at point 1, then at point 2, ... until a run ends before its point."""
    with injector(exc) as run:
        for k in range(1, limit + 1):
            result = run(op, k)
            yield result
            if result.where is None:
                return
        raise AssertionError(f"op passed more than {limit} points")


def free_in_another_thread(locks: list[Any], timeout: float = 10.0) -> list[Any]:
    """The locks that another thread cannot take (at once): held by someone, here after an interrupted run."""
    held: list[Any] = []

    def probe() -> None:
        for lock in locks:
            if lock.acquire(blocking=False):
                lock.release()
            else:
                held.append(lock)

    t = threading.Thread(target=probe)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "the probe thread hung"
    return held


RLOCK = type(threading.RLock())
_LOCK_TYPES = (type(threading.Lock()), RLOCK)


def module_locks() -> dict[str, Any]:
    """Every lock held in a module-level name of kcapi_hashlib (or in a one-item list there: the idiom that
    lets a fork hook replace it)."""
    found: dict[str, Any] = {}
    for name, mod in list(sys.modules.items()):
        if mod is None or not (name == "kcapi_hashlib" or name.startswith("kcapi_hashlib.")):
            continue
        for attr, v in list(vars(mod).items()):
            if isinstance(v, list) and len(v) == 1:
                v = v[0]
            if isinstance(v, _LOCK_TYPES):
                found[f"{name}.{attr}"] = v
    return found


def object_locks(obj: Any, depth: int = 3) -> dict[str, Any]:
    """The locks an object holds in its attributes (slots included), a few levels down."""
    found: dict[str, Any] = {}

    def walk(o: Any, path: str, d: int) -> None:
        if isinstance(o, _LOCK_TYPES):
            found[path] = o
            return
        if d == 0 or not type(o).__module__.startswith("kcapi_hashlib"):
            return
        names = list(getattr(o, "__dict__", {}))
        for cls in type(o).__mro__:
            names += [s for s in getattr(cls, "__slots__", ()) if s not in ("__weakref__", "__dict__")]
        for n in names:
            try:
                v = getattr(o, n)
            except AttributeError:
                continue
            walk(v, f"{path}.{n}", d - 1)

    walk(obj, type(obj).__name__, depth)
    return found
