"""`kcapi-hashlib vm` (also `python -m kcapi_hashlib.vm`): the runner's command line."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from .backend import DEFAULT_BACKEND, backends
from .exits import EXIT_SETUP, killed_by, say
from .runner import run


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kcapi_hashlib vm",
        usage="%(prog)s [options] -- CMD [ARGS...]",
        description="Run CMD under a real Linux kernel (user-mode-linux) so that "
        "AF_ALG works even where the host kernel refuses it.",
        epilog="Exit status: the command's; 124 timeout; 125 VM failure; "
        "2 usage/missing prerequisites; 128+N command killed by signal N.",
    )
    backend = backends()[DEFAULT_BACKEND]
    env_kernel = os.environ.get("KCAPI_HASHLIB_KERNEL") or backend.default_kernel
    parser.add_argument(
        "--kernel",
        choices=backend.kernels,
        default=env_kernel,
        help="kernel to boot (default: $KCAPI_HASHLIB_KERNEL or 6.1)",
    )
    parser.add_argument(
        "--refuse",
        action="append",
        default=[],
        metavar="MODULE",
        help="make modprobe refuse MODULE inside the VM (repeatable)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        metavar="SECONDS",
        help="kill the command after this long (0: never; default 1800)",
    )
    parser.add_argument("--force-vm", action="store_true", help="boot the VM even if the host has AF_ALG")
    parser.add_argument("--verbose", action="store_true", help="show the kernel console and timings")
    parser.add_argument("--mem", default="2G", help="VM memory (default 2G)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str]) -> int:
    """CLI entry point: ``main(["--kernel", "6.12", "--", "pytest", "-q"])``."""
    argv = list(argv)
    parser = _parser()
    try:
        args = None
        if "--" in argv:
            # Options, "--", then the command (which may hold "--" itself).
            cut = argv.index("--")
            args = parser.parse_args(argv[:cut])
            if args.command:  # "vm CMD -- ARGS": the "--" belongs to CMD
                args = None
            else:
                args.command = argv[cut + 1 :]
        if args is None:
            args = parser.parse_args(argv)
            if args.command[:1] == ["--"]:  # some argparse versions keep it
                args.command = args.command[1:]
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return exc.code if isinstance(exc.code, int) else EXIT_SETUP
    command = list(args.command)
    if not command:
        parser.print_usage(sys.stderr)
        say("no command given (use: -- CMD ARGS...)")
        return EXIT_SETUP
    kernels = backends()[DEFAULT_BACKEND].kernels
    if args.kernel not in kernels:  # an unchecked default from the environment
        say(f"KCAPI_HASHLIB_KERNEL must be one of {', '.join(kernels)}")
        return EXIT_SETUP
    try:
        return run(
            command,
            kernel=args.kernel,
            refuse=args.refuse,
            timeout=args.timeout,
            force_vm=args.force_vm,
            verbose=args.verbose,
            mem=args.mem,
        )
    except KeyboardInterrupt:
        say("interrupted; VM stopped")
        return killed_by(signal.SIGINT)
