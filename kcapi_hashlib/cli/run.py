"""`kcapi-hashlib run`: run an unmodified Python program with kcapi_hashlib installed before its first import.

    kcapi-hashlib run [--policy strict|fallback] [--report PATH|-] [--json] [--] script.py [args...]
    kcapi-hashlib run [options] -m module [args...]
    python -m kcapi_hashlib run ...

The program runs in this interpreter as `python script.py` / `python -m module` would run it: sys.argv,
sys.path[0] (the script's real directory; the working directory for -m), a fresh `__main__`, the exit status
(SystemExit as the interpreter handles it; 1 after an uncaught exception, whose traceback starts at the
program's own frames; death by SIGINT after an uncaught KeyboardInterrupt), and the default signal handling.

Its Python subprocesses are kernel-backed too: the launcher sets KCAPI_HASHLIB_INSTALL=1 (and the policy) in
the environment, which the `kcapi_hashlib.pth` start-up hook acts on (kcapi_hashlib._autoinstall), including
multiprocessing's spawn, fork and forkserver children. Each of them writes its accounting into a directory
the launcher made (KCAPI_HASHLIB_REPORT_DIR); at exit the launcher merges them with its own and prints the
report: to stderr, or --report PATH (- for stdout), as a table or --json. A child killed by a signal (a
multiprocessing Pool's terminate(), say) cannot report its counts: the report names it ("pid N: killed by
SIGTERM, no report"; JSON "unreported").
"""

from __future__ import annotations

import atexit
import errno
import json
import os
import shutil
import signal
import stat
import sys
import tempfile
import types
from typing import Any, NoReturn, Optional

from .output import PROG

USAGE = f"""usage: {PROG} run [--policy strict|fallback] [--report PATH|-] [--json] [--] script.py [args...]
       {PROG} run [options] -m module [args...]

Run a Python program with kcapi_hashlib installed (hashlib, hmac, Crypto.* and Cryptodome.* on the kernel),
its Python subprocesses too, and report at exit what the kernel did and what was computed in userspace.

options:
  --policy P       strict (default: what the kernel cannot serve raises) or fallback (computed, counted)
  --report PATH    write the report to PATH (- for stdout; default: stderr)
  --json           the report as JSON
"""


class _Options:
    policy: Optional[str] = None
    report: Optional[str] = None
    as_json = False
    module: Optional[str] = None
    target: str = ""
    args: list[str]


def _parse(argv: list[str]) -> _Options:
    opts = _Options()
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            i += 1
            break
        if a in ("-h", "--help"):
            sys.stdout.write(USAGE)
            raise SystemExit(0)
        if a == "--json":
            opts.as_json = True
        elif a in ("--policy", "--report") or a.startswith(("--policy=", "--report=")):
            name, _, value = a.partition("=")
            if not _:
                i += 1
                if i >= len(argv):
                    _usage(f"{name} needs a value")
                value = argv[i]
            if name == "--policy":
                if value not in ("strict", "fallback"):
                    _usage(f"--policy must be strict or fallback, not {value!r}")
                opts.policy = value
            else:
                opts.report = value
        elif a == "-m" or (a.startswith("-") and a != "-"):
            break
        else:
            break
        i += 1
    rest = argv[i:]
    if rest[:1] == ["-m"]:
        if len(rest) < 2:
            _usage("-m needs a module name")
        opts.module, opts.args = rest[1], rest[2:]
    elif rest and rest[0].startswith("-") and rest[0] != "-":
        _usage(f"unknown option {rest[0]!r}")
    elif rest:
        opts.target, opts.args = rest[0], rest[1:]
    else:
        _usage("no program given")
    return opts


def _usage(message: str) -> NoReturn:
    sys.stderr.write(USAGE.split("\n\n")[0] + f"\n{PROG} run: error: {message}\n")
    raise SystemExit(2)


_state: dict[str, Any] = {}


def _final_report() -> None:
    """atexit, registered before the program runs: so it runs after the program's own exit handlers."""
    if os.getpid() != _state.get("pid"):
        return  # a forked child: it reports through the directory (kcapi_hashlib._autoinstall)
    from .._report import collect, format_table, merge, unreported

    directory: str = _state["dir"]
    try:
        from .._report import accounting

        report = merge([accounting(), *collect(directory)])
        report["unreported"] = unreported(directory)
        text = json.dumps(report, indent=1, sort_keys=True) + "\n" if _state["json"] else format_table(report)
        target = _state["report"]
        if target == "-":
            sys.stdout.write(text)
            sys.stdout.flush()
        elif target:
            try:
                write_report_file(target, text)
            except OSError as e:
                sys.stderr.write(f"{PROG} run: cannot write the report to {target}: {e}; here it is:\n{text}")
                sys.stderr.flush()
        else:
            sys.stderr.write(text)
            sys.stderr.flush()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        if _state.get("sigint"):
            # As the interpreter does after an uncaught KeyboardInterrupt (Modules/main.c: exit_sigint): die of
            # SIGINT, so that the parent sees the signal and not an exit status.
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)


def write_report_file(path: str, text: str) -> None:
    """Write `text` to `path` (absolute: resolved when --report was given, before the program could chdir) without
    following a symlink (O_NOFOLLOW), blocking on a FIFO (O_NONBLOCK: ENXIO with no reader) or truncating what is
    not ours to truncate: opened without O_TRUNC, then refused unless fstat says it is a regular file with one link
    (a hard link elsewhere would be truncated too), and only then truncated. OSError saying why otherwise."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        if st.st_nlink > 1:
            raise OSError(errno.EMLINK, f"it has {st.st_nlink} hard links: truncating it would change the others", path)
        os.ftruncate(fd, 0)
        data = memoryview(text.encode())
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)


def _program_frames(tb: Optional[types.TracebackType]) -> Optional[types.TracebackType]:
    """The traceback from the program's first frame on (this module's and runpy's frames dropped)."""
    skip = {__file__, getattr(sys.modules.get("runpy"), "__file__", None)}
    while tb is not None and tb.tb_frame.f_code.co_filename in skip:
        tb = tb.tb_next
    return tb


def main(argv: list[str]) -> int:
    opts = _parse(argv)
    if opts.report not in (None, "-"):
        opts.report = os.path.abspath(opts.report)  # now: the program may chdir before the report is written
    try:
        from .. import _policy  # its import reads KCAPI_HASHLIB_POLICY: ValueError naming a bad value
    except ValueError as e:
        _usage(str(e))
    from .. import _report

    directory = tempfile.mkdtemp(prefix="kcapi-hashlib-run-")
    env = os.environ
    env["KCAPI_HASHLIB_INSTALL"] = "1"
    env[_report.REPORT_DIR] = directory
    env["KCAPI_HASHLIB_LAUNCHER_PID"] = str(os.getpid())
    if opts.policy:
        env["KCAPI_HASHLIB_POLICY"] = opts.policy
        _policy.set_policy(opts.policy)
    _state.update(pid=os.getpid(), dir=directory, json=opts.as_json, report=opts.report)
    atexit.register(_final_report)
    from .. import _autoinstall

    _autoinstall.activate()  # install() before the program's first import
    try:
        if opts.module is not None:
            _run_module(opts.module, opts.args)
        else:
            _run_script(opts.target, opts.args)
    except SystemExit:
        raise
    except BaseException as e:
        tb = _program_frames(e.__traceback__)
        sys.excepthook(type(e), e.with_traceback(tb), tb)  # the default hook prints value.__traceback__
        if isinstance(e, KeyboardInterrupt):
            _state["sigint"] = True
        raise SystemExit(1) from None
    return 0


def _fresh_main() -> types.ModuleType:
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = __builtins__
    sys.modules["__main__"] = main
    return main


def _run_script(path: str, args: list[str]) -> None:
    sys.argv[:] = [path, *args]
    sys.path[0] = os.path.dirname(os.path.realpath(path))
    try:
        with open(path, "rb") as f:
            source = f.read()
    except OSError as e:
        sys.stderr.write(f"{sys.executable}: can't open file {path!r}: [Errno {e.errno}] {e.strerror}\n")
        raise SystemExit(2) from None
    main = _fresh_main()
    from importlib.machinery import SourceFileLoader

    # The interpreter makes the script's path absolute for __file__ and its code, not for sys.argv[0].
    filename = os.path.abspath(path)
    loader = SourceFileLoader("__main__", filename)
    main.__dict__.update(__file__=filename, __cached__=None, __spec__=None, __loader__=loader)
    code = compile(source, filename, "exec")
    exec(code, main.__dict__)


def _run_module(name: str, args: list[str]) -> None:
    import runpy

    sys.argv[:] = [name, *args]  # runpy replaces argv[0] with the module's file, as `python -m` does
    sys.path[0] = os.getcwd()
    _fresh_main()
    runpy._run_module_as_main(name, alter_argv=True)  # type: ignore[attr-defined]
