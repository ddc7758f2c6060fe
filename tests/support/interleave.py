"""Systematic interleavings: one operation paused at every line it runs inside kcapi_hashlib, another one run to
completion at each pause.

    report = explore(Schedule(...))      # one victim against one competitor, every pause point
    assert report.ok, report.message()

The victim runs in thread T1 with a sys.settrace function installed in that thread only (inside the thread's
function; no other thread is traced and no library code knows about it). The trace function counts the 'line'
events of frames whose code lies inside the kcapi_hashlib package directory: those are the pause points. T1 and
T2 are two worker threads kept for the whole exploration. The victim runs alone twice, each time from setup() and
followed by check(): untraced (first uses), then counting its pause points (N) and recording where each one is.
Then for every i in range(N): setup(), T1 runs the victim and parks at its i-th pause point (the trace function
waits on an event: T1 runs no bytecode meanwhile), T2 runs the competitor. If T2 finishes, T1 is resumed and
finishes: the schedule is "T1 up to point i, all of T2, rest of T1". If T2 stops making progress while T1 is
parked (it waits for a lock T1 holds), that is a legal schedule too: T1 is resumed and both are joined. A join
that times out is a deadlock, reported as such (and the exploration of that pair stops there: its threads still
hold whatever they hold). Each schedule ends with check(victim outcome, competitor outcome), which compares both
with the userspace reference and returns the problems found.

Progress of T2 is judged from its innermost Python frame (sys._current_frames: test-only introspection): the
same frame at the same instruction for `stall_s` seconds means it waits for T1 (a lock). Two long calls are
progress however long they take: fork() and the wait for the child in fork_and_check (a fork under user-mode
Linux takes most of a second). Misjudging a slow T2 as blocked is harmless: resuming T1 then is a legal
schedule too, only not the one intended.
"""

from __future__ import annotations

import functools
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Callable, Optional

import kcapi_hashlib

PACKAGE_DIR = os.path.dirname(os.path.abspath(kcapi_hashlib.__file__)) + os.sep
_ROOT = os.path.dirname(PACKAGE_DIR.rstrip(os.sep)) + os.sep

TraceFunc = Callable[[FrameType, str, Any], Any]


@dataclass(frozen=True)
class Point:
    """One pause point: the index-th 'line' event of the victim inside the package."""

    index: int
    file: str  # relative to the directory holding the package: kcapi_hashlib/_afalg/keyed.py
    line: int
    function: str

    def __str__(self) -> str:
        return f"#{self.index} {self.file}:{self.line} ({self.function})"


@dataclass
class Outcome:
    """What one thread's operation gave: its value, or the exception it raised, or neither (it never finished).
    Written only by the thread running the operation; read by the main thread after that job's done event is set
    (Event.set/wait orders the two), or to describe a job that never finished."""

    value: Any = None
    error: Optional[BaseException] = None
    finished: bool = False

    def describe(self) -> str:
        if not self.finished:
            return "did not finish"
        if self.error is not None:
            return f"raised {type(self.error).__name__}: {self.error}"
        return f"returned {_short(self.value)}"


def _short(value: Any) -> str:
    text = value.hex() if isinstance(value, (bytes, bytearray)) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def expect(outcome: Outcome, expected: Any, what: str, known: Optional[dict[Any, str]] = None) -> list[str]:
    """[] if `outcome` returned `expected`, else one sentence saying what it did instead (naming the value where
    `known` maps it to a description, e.g. "hmac-sha1 under K2": whose result the wrong one is)."""
    if outcome.finished and outcome.error is None and outcome.value == expected:
        return []
    extra = ""
    value = outcome.value
    if outcome.finished and outcome.error is None:
        if isinstance(value, (bytes, bytearray)) and isinstance(expected, bytes):
            extra = f" ({len(value)} bytes, expected {len(expected)})"
        try:
            label = known.get(value) if known is not None else None
        except TypeError:  # unhashable
            label = None
        if label is not None:
            extra += f" = {label}"
    return [f"{what} {outcome.describe()}{extra}, expected {_short(expected)}"]


def attempt(operation: Callable[[], Any]) -> Outcome:
    """Run `operation` here and now; its value or exception as an Outcome."""
    out = Outcome()
    _run_plain(operation, out)
    return out


def expect_one_of(outcome: Outcome, allowed: list[Any], what: str) -> list[str]:
    if outcome.finished and outcome.error is None and outcome.value in allowed:
        return []
    return [f"{what} {outcome.describe()}, expected one of {[_short(a) for a in allowed]}"]


@dataclass
class Schedule:
    """A victim against a competitor. setup() makes the state every schedule starts from (the same each time, so
    that the victim passes the same pause points up to the one it parks at); check(victim, competitor) returns
    the problems found (after both threads are done: it may compute more, serially, e.g. whether the cache still
    gives the right MACs)."""

    victim_name: str
    competitor_name: str
    setup: Callable[[], object]
    victim: Callable[[], Any]
    competitor: Callable[[], Any]
    check: Callable[[Outcome, Optional[Outcome]], list[str]]
    stall_s: float = 0.02  # T2 at the same instruction this long while T1 is parked: it waits for T1
    join_timeout_s: float = 60.0  # a join (or a park) longer than this is a deadlock
    stride: int = 1  # pause at every stride-th point only (1: every line)
    max_schedules: int = 0  # if > 0: a larger stride where needed to run at most this many (reported)


@dataclass
class Failure:
    point: Optional[Point]
    problems: list[str]

    def __str__(self) -> str:
        where = str(self.point) if self.point is not None else "(serial run, no pause)"
        return f"{where}: " + "; ".join(self.problems)


@dataclass
class Report:
    victim: str
    competitor: str
    points: int = 0  # pause points of the victim run alone
    tried: int = 0  # schedules run
    stride: int = 1  # every stride-th pause point was tried
    blocked: int = 0  # ... in which T2 waited for the parked T1 (then T1 was resumed first)
    unreached: int = 0  # ... in which the victim finished before its i-th pause point (its path changed)
    diverged: int = 0  # ... in which the i-th pause point was another line than in the counting run
    deadlocked: bool = False
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.deadlocked and self.points > 0

    def summary(self) -> str:
        return (
            f"{self.victim} vs {self.competitor}: {self.tried} schedules over {self.points} pause points"
            + (f" (every {self.stride}th)" if self.stride > 1 else "")
            + ", "
            f"{len(self.failures)} wrong, {self.blocked} with the competitor blocked on the paused victim, "
            f"{self.unreached} unreached, {self.diverged} diverged, {self.seconds:.1f} s"
        )

    def message(self, limit: int = 8) -> str:
        lines = [self.summary()]
        if self.points == 0:
            lines.append("the victim passed no line inside the package: nothing was interleaved")
        lines += [f"  {f}" for f in self.failures[:limit]]
        if len(self.failures) > limit:
            lines.append(f"  ... and {len(self.failures) - limit} more")
        return "\n".join(lines)


class _Tracer:
    """The trace function of T1. Counts the 'line' events of package frames; parks at number `pause_at`; records
    every point when `record`. Its fields are written by T1 only; the main thread reads `reached` after `stopped`
    is set and `points` after the job's done event."""

    def __init__(self, pause_at: Optional[int], record: bool, park_timeout_s: float) -> None:
        self.pause_at = pause_at
        self.record = record
        self.park_timeout_s = park_timeout_s
        self.count = 0
        self.points: list[Point] = []
        self.reached: Optional[Point] = None
        self.done = False  # parked once: trace no more
        self.stopped = threading.Event()  # T1 parked, or finished
        self.resume = threading.Event()

    def global_trace(self, frame: FrameType, event: str, arg: Any) -> Optional[TraceFunc]:
        if self.done or not frame.f_code.co_filename.startswith(PACKAGE_DIR):
            return None  # frames outside the package are not traced (the calls they make still are)
        return self.local_trace

    def local_trace(self, frame: FrameType, event: str, arg: Any) -> Optional[TraceFunc]:
        if self.done:
            return None
        if event != "line":
            return self.local_trace
        index = self.count
        self.count += 1
        if not self.record and index != self.pause_at:
            return self.local_trace
        code = frame.f_code
        point = Point(index, code.co_filename[len(_ROOT) :], frame.f_lineno, code.co_name)
        if self.record:
            self.points.append(point)
        if index == self.pause_at:
            self.reached = point
            self.done = True
            sys.settrace(None)  # nothing more to count in this thread
            self.stopped.set()
            self.resume.wait(self.park_timeout_s)
            return None
        return self.local_trace


def _run_traced(tracer: _Tracer, victim: Callable[[], Any], outcome: Outcome) -> None:
    sys.settrace(tracer.global_trace)  # this thread only
    try:
        outcome.value = victim()
    except BaseException as e:  # reported as the victim's outcome
        outcome.error = e
    finally:
        sys.settrace(None)
        outcome.finished = True
        tracer.stopped.set()


def _run_plain(operation: Callable[[], Any], outcome: Outcome) -> None:
    try:
        outcome.value = operation()
    except BaseException as e:  # reported as the competitor's outcome
        outcome.error = e
    finally:
        outcome.finished = True


class _Worker:
    """A thread that runs the jobs it is given, one at a time (starting a thread per schedule costs ~5 ms under
    user-mode Linux, more than the rest of a schedule). A job that never returns leaves it stuck: explore() then
    stops and abandons it (a daemon thread)."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[Optional[tuple[Callable[[], None], threading.Event]]] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, done = job
            try:
                fn()
            finally:
                done.set()

    def submit(self, fn: Callable[[], None]) -> threading.Event:
        done = threading.Event()
        self._jobs.put((fn, done))
        return done

    def stop(self) -> None:
        self._jobs.put(None)


def _frame_signature(ident: Optional[int]) -> Any:
    """Where thread `ident` is: its innermost frame and instruction; None where it has no Python frame. Inside
    fork_and_check (fork() itself, then waiting for the child) it is moving: a fresh object each time."""
    frame = sys._current_frames().get(ident) if ident is not None else None
    if frame is None:
        return None
    if frame.f_code is _FORK_AND_CHECK:
        return object()
    return (id(frame), id(frame.f_code), frame.f_lasti)


def _wait_or_stall(done: threading.Event, ident: Optional[int], stall_s: float, limit_s: float) -> bool:
    """Wait until `done` is set (True) or the thread `ident` stays at one instruction for `stall_s` (False; also
    after `limit_s`)."""
    if done.wait(min(stall_s, 0.002)):
        return True
    step = min(0.005, stall_s / 3)
    deadline = time.monotonic() + limit_s
    last = None
    still_since = time.monotonic()
    while time.monotonic() < deadline:
        if done.wait(step):
            return True
        sig = _frame_signature(ident)
        now = time.monotonic()
        if sig != last:
            last, still_since = sig, now
        elif now - still_since >= stall_s:
            return False
    return False


def explore(s: Schedule) -> Report:
    """Run s.victim against s.competitor at every pause point (every s.stride-th); see the module's docstring."""
    report = Report(s.victim_name, s.competitor_name)
    start = time.monotonic()
    t1, t2 = _Worker(f"victim:{s.victim_name}"), _Worker(f"competitor:{s.competitor_name}")
    try:
        _explore(s, report, t1, t2)
    finally:
        t1.stop()
        t2.stop()
        report.seconds = time.monotonic() - start
    return report


def _explore(s: Schedule, report: Report, t1: _Worker, t2: _Worker) -> None:
    # Two runs of the victim alone, each from setup() and followed by check() as every schedule is: the first,
    # untraced, does what only a first use does (probes, lazy registrations) and leaves behind what a schedule
    # leaves (e.g. op sockets pooled by check()'s digests), so that the second, the counting run, and every
    # schedule pass the same lines up to their pause. The victim alone must be right (None: no competitor ran).
    for counting in (False, True):
        s.setup()
        tracer = _Tracer(None, True, s.join_timeout_s)
        alone = Outcome()
        job = (
            functools.partial(_run_traced, tracer, s.victim, alone)
            if counting
            else functools.partial(_run_plain, s.victim, alone)
        )
        if not t1.submit(job).wait(s.join_timeout_s):
            report.deadlocked = True
            report.failures.append(Failure(None, [f"deadlock: the victim alone ran past {s.join_timeout_s} s"]))
            return
        serial = s.check(alone, None)
        if serial:
            report.failures.append(Failure(None, serial))
    points = tracer.points
    report.points = len(points)
    report.stride = max(s.stride, -(-len(points) // s.max_schedules)) if s.max_schedules else s.stride
    for i in range(0, len(points), report.stride):
        failure, ended = _one_schedule(s, i, points, report, t1, t2)
        report.tried += 1
        if failure is not None:
            report.failures.append(failure)
        if not ended:
            report.deadlocked = True
            return


def _one_schedule(
    s: Schedule, i: int, points: list[Point], report: Report, t1: _Worker, t2: _Worker
) -> tuple[Optional[Failure], bool]:
    """One schedule (pause at point i). Returns (failure or None, whether both threads ended)."""
    s.setup()
    tracer = _Tracer(i, False, s.join_timeout_s)
    v_out, c_out = Outcome(), Outcome()
    v_done = t1.submit(lambda: _run_traced(tracer, s.victim, v_out))
    if not tracer.stopped.wait(s.join_timeout_s):
        tracer.resume.set()
        return Failure(points[i], [f"deadlock: the victim neither reached point {i} nor finished"]), False
    point = tracer.reached
    if point is None:
        report.unreached += 1  # finished before its i-th line: the competitor runs after it
    elif (point.file, point.line) != (points[i].file, points[i].line):
        report.diverged += 1
    c_done = t2.submit(lambda: _run_plain(s.competitor, c_out))
    if point is not None and not _wait_or_stall(c_done, t2.thread.ident, s.stall_s, s.join_timeout_s):
        report.blocked += 1
    tracer.resume.set()
    ended = v_done.wait(s.join_timeout_s) and c_done.wait(s.join_timeout_s)
    where = point or points[i]
    if not ended:
        hung = [name for name, e in (("victim", v_done), ("competitor", c_done)) if not e.is_set()]
        state = f"victim {v_out.describe()}, competitor {c_out.describe()}"
        return Failure(
            where, [f"deadlock: {' and '.join(hung)} still running after {s.join_timeout_s} s ({state})"]
        ), False
    problems = s.check(v_out, c_out)
    return (Failure(where, problems) if problems else None), True


def fork_and_check(child: Callable[[], list[str]], timeout_s: float = 30.0) -> list[str]:
    """fork(); the child runs child() (its problems) and exits 0 if it found none, 1 otherwise, 2 if it raised;
    the parent waits (killing a child that runs past timeout_s) and returns the child's problems."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 2
        try:
            os.close(r)
            try:
                problems = child()
                status = 1 if problems else 0
                text = "; ".join(problems)
            except BaseException as e:  # reported through the pipe and the status
                text = f"child raised {type(e).__name__}: {e}"
            os.write(w, text.encode()[:4000])
        finally:
            os._exit(status)
    os.close(w)
    deadline = time.monotonic() + timeout_s
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            os.close(r)
            return [f"forked child hung for {timeout_s} s (killed)"]
        time.sleep(0.002)
    with os.fdopen(r, "rb") as f:
        text = f.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return []
    return [f"forked child exited {code}: {text or '(no message)'}"]


_FORK_AND_CHECK = fork_and_check.__code__
