"""The `kcapi-hashlib` command (also `python -m kcapi_hashlib`).

    kcapi-hashlib --version                     the package's version (kcapi_hashlib.__version__)
    kcapi-hashlib list [--json] [--kind KIND]   algorithms: kernel name, driver, priority, self-test, availability
    kcapi-hashlib doctor [--json]               is AF_ALG usable here, and if not exactly why and what to do
    kcapi-hashlib sum [-a ALGO] [-c] FILE...    sha256sum-compatible digests and check mode, by the kernel
    kcapi-hashlib vm [options] -- CMD...        run CMD under a real Linux kernel (the development runner,
                                                kcapi_vm: dev/vm in the source repository)
    kcapi-hashlib demo [FILE]                   doctor, list, and a kernel-served digest next to hashlib's
    kcapi-hashlib run [options] -- PROG...      run a Python program (script or -m module) on the kernel
    kcapi-hashlib sha256hmac [-c] FILE...       libkcapi's kcapi-hasher (also sha*hmac, fipshmac, fipscheck,
                                                sha*sum, md5sum, sm3sum), byte for byte, by the kernel

One module per program (listing, doctor, checksum, hasher for kcapi-hasher's names, demo; the VM runner is a
development tool outside the package, dev/vm/kcapi_vm: `vm` only hands over to it), the grammar in args, /proc
reading in proc and host. Nothing here makes a socket call: the kernel is asked through kcapi_hashlib._afalg
(af_alg_status, probe), which also says what its refusals mean. The library modules never import this package.
"""

from __future__ import annotations

import os
import sys
from typing import Callable

__all__ = ["main", "main_entry"]


def _vm(argv: list[str]) -> int:
    """Hand `vm ARGS` to the kernel VM runner (kcapi_vm), a development tool that is not in this package's wheel.
    From a source checkout the checkout's runner is used, installed or not: the checkout this package was
    imported from, else the working directory when it is one (Python 3.15's kcapi_hashlib.start imports the
    installed package at start-up, before `python -m kcapi_hashlib` would find the checkout's); otherwise an
    installed one (pip install ./dev/vm); otherwise the message says where it is."""
    import importlib
    from pathlib import Path

    for root in (Path(__file__).resolve().parent.parent.parent, Path.cwd()):
        checkout = root / "dev" / "vm"
        if (checkout / "kcapi_vm" / "__init__.py").is_file() and (root / "kcapi_hashlib" / "__init__.py").is_file():
            if str(checkout) not in sys.path:
                sys.path.insert(0, str(checkout))
            break
    try:
        runner = importlib.import_module("kcapi_vm")
    except ModuleNotFoundError as e:
        if e.name != "kcapi_vm":
            raise
        from .output import err

        err(
            "vm: the kernel VM runner is a development tool of the source repository (dev/vm), not part of the "
            "installed package: run it from a checkout (python -m kcapi_hashlib vm -- CMD there), or install it "
            "from one (pip install ./dev/vm)"
        )
        return 2
    status: int = runner.main(argv)
    return status


def main(argv: list[str]) -> int:
    """Run the command line `argv` (without the program name); returns the exit status."""
    argv = list(argv)
    if argv[:1] == ["vm"]:
        return _vm(argv[1:])
    if argv[:1] and argv[0] in _hasher_names():
        from .hasher import run as hasher_run  # kcapi-hasher's own grammar (glibc getopt_long's)

        return _guard_pipe(lambda: hasher_run(argv))
    if argv[:1] == ["run"]:
        from .run import main as run_main  # its own grammar: everything after the program is the program's

        return run_main(argv[1:])
    from .args import build_parser

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) and usage errors
        return e.code if isinstance(e.code, int) else 2
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    return _guard_pipe(lambda: int(args.func(args)))


def _hasher_names() -> tuple[str, ...]:
    from .hasher import NAMES

    return tuple(NAMES)


def _guard_pipe(command: Callable[[], int]) -> int:
    try:
        status = command()
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`kcapi-hashlib sum ... | head -1`): stop quietly, as coreutils dies of SIGPIPE.
        # Point stdout at /dev/null so the interpreter's final flush doesn't complain again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1
    return status


def main_entry() -> None:
    """The `kcapi-hashlib` console script; called through a link named like one of kcapi-hasher's
    (sha256hmac, fipscheck, ...: kcapi_hashlib.cli.hasher.lookup), it is that program, as kcapi-hasher is."""
    from . import hasher

    try:
        if hasher.lookup(os.path.basename(sys.argv[0])) is not None:
            argv = list(sys.argv)  # argv[0] as invoked: kcapi-hasher's messages show it
            status = _guard_pipe(lambda: hasher.run(argv))
        else:
            status = main(sys.argv[1:])
    except KeyboardInterrupt:
        status = 130
    sys.exit(status)
