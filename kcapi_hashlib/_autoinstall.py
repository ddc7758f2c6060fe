"""install() at interpreter start-up, opt-in by environment: called by the start-up hook installed at the top of
site-packages with the package: `kcapi_hashlib.start` (PEP 829 entry point `kcapi_hashlib._autoinstall:start`,
Python 3.15+) and `kcapi_hashlib.pth` (its import line, for the Pythons before; 3.15+ skip that line because the
matching .start exists).

    KCAPI_HASHLIB_INSTALL=1 python app.py            # app.py and its Python subprocesses, kernel-backed
    KCAPI_HASHLIB_POLICY=fallback                    # the policy, as everywhere (kcapi_hashlib._policy)
    KCAPI_HASHLIB_REPORT_DIR=DIR                     # each process writes its accounting into DIR at exit

KCAPI_HASHLIB_INSTALL: 1, true, yes or on (any case) turn the hook on; unset, empty, 0, false, no or off (any
case) leave it off. Any other value (" 1", "00", "enable", ...) is a configuration error, and so is an invalid
KCAPI_HASHLIB_POLICY or an install() that fails while the hook is on: the process writes one line to stderr
("kcapi_hashlib: ...; the program was not run") and exits with status 2 before the program's first line runs,
instead of running it on OpenSSL's hashlib. Under `python -E` (and -I, which implies it) the hook reads no
environment and does nothing: an isolated interpreter is not changed by environment variables (call
kcapi_hashlib.install() in the program, or run it with `python -I -m kcapi_hashlib run`, to have it there).

`kcapi-hashlib run` sets these for the program it runs, so every Python process the program starts (subprocess,
multiprocessing with spawn, fork or forkserver) is kernel-backed and reports back to it.
"""

from __future__ import annotations

import atexit
import os
import sys
from typing import Any, NoReturn

ENV_INSTALL = "KCAPI_HASHLIB_INSTALL"
#: the values of KCAPI_HASHLIB_INSTALL that turn the hook on / leave it off (compared case-insensitively, as given:
#: no whitespace is stripped); any other value stops the program (start)
ON = ("1", "true", "yes", "on")
OFF = ("", "0", "false", "no", "off")
#: the exit status of a process stopped by an invalid configuration of the hook
EXIT_CONFIG = 2
ENV_LAUNCHER = "KCAPI_HASHLIB_LAUNCHER_PID"  # the launcher's pid: it merges instead of writing a child report

_written: set[int] = set()


def _report_dir() -> str:
    from ._report import REPORT_DIR

    return os.environ.get(REPORT_DIR, "")


def write_child_report() -> None:
    """This process's report into the report directory, once per process (atexit, or multiprocessing's exit)."""
    pid = os.getpid()
    directory = _report_dir()
    if not directory or pid in _written or str(pid) == os.environ.get(ENV_LAUNCHER):
        return
    _written.add(pid)
    from ._report import write_own

    write_own(directory)


class _Hook:
    """A strong-referenced object for multiprocessing.util.register_after_fork (a WeakValueDictionary)."""


_HOOK = _Hook()


def _note(suffix: str, text: str, pid: int = 0) -> None:
    """A small marker file in the report directory: "<pid>.started" when a reporting child starts, "<pid>.signal"
    when a kernel-backed process reaps a child that a signal killed (the launcher then names what happened to
    a child that left no report: kcapi_hashlib._report.unreported)."""
    directory = _report_dir()
    if not directory:
        return
    # Created, never opened as it is: O_EXCL refuses whatever is already there under that name (a link someone
    # planted, a FIFO: no blocking), O_NOFOLLOW a symlink in the last component; a marker seen once is enough.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(os.path.join(directory, f"{pid or os.getpid()}.{suffix}"), flags, 0o600)
    except OSError:
        return  # the launcher is gone and took its directory, or the marker exists
    try:
        os.write(fd, text.encode())
    except OSError:
        pass
    finally:
        os.close(fd)


def _started() -> None:
    if str(os.getpid()) != os.environ.get(ENV_LAUNCHER):
        _note("started", "")


_original_waitpid = os.waitpid
_original_wait = os.wait
_original_wait3 = os.wait3
_original_wait4 = os.wait4
_original_waitid = getattr(os, "waitid", None)  # not on every platform


def _observe(got: int, status: int) -> None:
    if got > 0 and os.WIFSIGNALED(status):
        _note("signal", str(os.WTERMSIG(status)), got)


def _observing_waitpid(pid: int, options: int) -> tuple[int, int]:
    """os.waitpid, unchanged, noting a child killed by a signal (subprocess's and multiprocessing's waits call
    os.waitpid): such a child runs no exit handler, so it writes no report of its own."""
    got, status = _original_waitpid(pid, options)
    _observe(got, status)
    return got, status


def _observing_wait() -> tuple[int, int]:
    """os.wait, unchanged, noting a child killed by a signal (as _observing_waitpid)."""
    got, status = _original_wait()
    _observe(got, status)
    return got, status


def _observing_wait3(options: int) -> tuple[int, int, Any]:
    """os.wait3, unchanged, noting a child killed by a signal (as _observing_waitpid)."""
    got, status, usage = _original_wait3(options)
    _observe(got, status)
    return got, status, usage


def _observing_wait4(pid: int, options: int) -> tuple[int, int, Any]:
    """os.wait4, unchanged, noting a child killed by a signal (as _observing_waitpid)."""
    got, status, usage = _original_wait4(pid, options)
    _observe(got, status)
    return got, status, usage


def _observing_waitid(idtype: int, ident: int, options: int) -> Any:
    """os.waitid (also the pidfd form, P_PIDFD), unchanged, noting a child killed by a signal: si_code CLD_KILLED
    or CLD_DUMPED, si_status the signal. With WNOWAIT the child is still waitable and is noted again by the wait
    that reaps it; the report keeps one line per pid."""
    assert _original_waitid is not None
    result = _original_waitid(idtype, ident, options)
    if result is not None and result.si_code in (os.CLD_KILLED, os.CLD_DUMPED):
        _note("signal", str(result.si_status), result.si_pid)
    return result


def _observe_waits() -> None:
    """Replace each of os's wait calls (once) with its observing twin; a program that replaced one itself keeps it."""
    for name, original, observing in (
        ("waitpid", _original_waitpid, _observing_waitpid),
        ("wait", _original_wait, _observing_wait),
        ("wait3", _original_wait3, _observing_wait3),
        ("wait4", _original_wait4, _observing_wait4),
        ("waitid", _original_waitid, _observing_waitid),
    ):
        if original is not None and getattr(os, name, None) is original:
            setattr(os, name, observing)


def _after_multiprocessing_fork(_obj: Any) -> None:
    # Run inside Process._bootstrap, after it cleared the parent's finalizers: a fork (or forkserver) child ends
    # with os._exit(), which skips atexit, but _bootstrap runs util._exit_function() and so this finalizer.
    _started()
    util = sys.modules["multiprocessing.util"]
    util.Finalize(None, write_child_report, exitpriority=-1000)


def _in_forked_child() -> None:
    # Any fork child (os.fork, not only multiprocessing's) inherits the atexit report; the marker says it started,
    # so one killed by a signal, or ended by os._exit(), is named in the report instead of silently missing.
    _started()
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util.register_after_fork(_HOOK, _after_multiprocessing_fork)


def activate() -> None:
    """install() now; with a report directory, report this process's accounting at exit."""
    from ._install import install

    install()
    if _report_dir():
        _started()
        atexit.register(write_child_report)
        os.register_at_fork(after_in_child=_in_forked_child)
        _observe_waits()


class ConfigError(Exception):
    """KCAPI_HASHLIB_INSTALL or KCAPI_HASHLIB_POLICY has a value the hook does not take."""


def requested(value: str | None) -> bool:
    """Whether KCAPI_HASHLIB_INSTALL=`value` (None: unset) turns the hook on; ConfigError for a value that is
    neither on (ON) nor off (OFF)."""
    if value is None or value.lower() in OFF:
        return False
    if value.lower() in ON:
        return True
    raise ConfigError(
        f"{ENV_INSTALL}={value!r} is not a value the start-up hook takes: use {', '.join(ON)} to turn it on, or "
        f"leave it unset (or {', '.join(repr(v) for v in OFF)}) for off"
    )


def _stop(message: str) -> NoReturn:
    """One line on stderr and exit status EXIT_CONFIG, now: site.py turns an exception from a start-up hook into a
    traceback and goes on to run the program (SystemExit into a fatal error and a traceback), so neither is
    raised. os._exit: nothing of the program has run, nothing is buffered but what is written here."""
    line = f"kcapi_hashlib: {message}; the program was not run\n"
    try:
        os.write(2, line.encode(errors="backslashreplace"))
    finally:
        os._exit(EXIT_CONFIG)


def start() -> None:
    """The start-up hook's entry point (kcapi_hashlib.start, kcapi_hashlib.pth): activate() when the environment
    asks for it, stop the process on any configuration error (fail closed: never run the program on userspace
    crypto when kernel-backed was asked for); nothing at all under -E / -I (sys.flags.ignore_environment)."""
    if sys.flags.ignore_environment:
        return
    value = os.environ.get(ENV_INSTALL)
    try:
        if not requested(value):
            return
    except ConfigError as e:
        _stop(str(e))
    try:
        from . import _policy  # noqa: F401  (its import reads and checks KCAPI_HASHLIB_POLICY: ValueError naming it)
    except ValueError as e:
        _stop(str(e))
    try:
        activate()
    except Exception as e:
        _stop(f"{ENV_INSTALL}={value!r} but install() failed ({type(e).__name__}: {e})")
