"""`kcapi-hashlib vm` (also `python -m kcapi_vm`): the runner's command line."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from .backend import DEFAULT_BACKEND, all_kernels, backends
from .exits import EXIT_SETUP, killed_by, say
from .runner import run


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kcapi_hashlib vm",
        usage="%(prog)s [options] -- CMD [ARGS...]",
        description="Run CMD under a real Linux kernel so that AF_ALG works even where the host kernel "
        "refuses it: Debian's user-mode-linux kernels (6.1, 6.12, 7.2), or Debian's own amd64 kernels "
        "under qemu with software emulation (6.1-amd64, 6.12-amd64, 7.3-amd64; slower to boot, but the "
        "distribution's configuration and x86 crypto drivers), or Debian's arm64 and big-endian s390x "
        "kernels under qemu (6.12-arm64, 6.12-s390x). The host's / is the VM's root: CMD runs "
        "with the caller's working directory, environment and interpreter (under qemu $TMPDIR is a "
        "tmpfs inside the VM: 9p cannot truncate a file once it is unlinked). An arm64 or s390x guest runs "
        "a root of that architecture's Debian packages instead (python3, pytest, hypothesis, pycryptodome), "
        "with the working directory mounted at its path and Debian's PATH.",
        epilog="Exit status: the command's; 124 timeout; 125 VM failure; "
        "2 usage/missing prerequisites; 128+N command killed by signal N. "
        "Missing host packages (user-mode-linux, kmod, qemu-system-x86, ...) are named, and installed with "
        "apt-get only where $KCAPI_HASHLIB_VM_INSTALL=1 (as root). "
        "UML 6.1/6.12 on hosts with a larger XSAVE area (AMX) run with a ptrace shim built with gcc, where a "
        "first boot shows the need ($KCAPI_HASHLIB_XSTATE_SHIM: auto, off, force, refuse; --verbose says so).",
    )
    backend = backends()[DEFAULT_BACKEND]
    env_kernel = os.environ.get("KCAPI_HASHLIB_KERNEL") or backend.default_kernel
    parser.add_argument(
        "--kernel",
        choices=all_kernels(),
        default=env_kernel,
        help=f"kernel to boot (default: $KCAPI_HASHLIB_KERNEL or {backend.default_kernel})",
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
    parser.add_argument(
        "--sysctl",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="write this sysctl inside the VM before CMD runs (repeatable; e.g. crypto.af_alg_restrict=1, "
        "for which af_alg is loaded first); a KEY the kernel lacks, or a value it refuses, fails the run "
        "with status 2",
    )
    parser.add_argument(
        "--user",
        type=int,
        metavar="UID",
        help="run CMD as this uid (and gid), with no supplementary groups and no capabilities but those of "
        "--cap. It gets a fresh world-writable $TMPDIR (removed afterwards); directories it could not "
        "traverse on the host (e.g. /root, holding pyenv's Pythons) are opened for it inside the VM only; "
        "what else it must write, give it with --writable",
    )
    parser.add_argument(
        "--cap",
        action="append",
        metavar="CAP",
        help="the capabilities CMD holds (repeatable; e.g. net_admin; 'none' for none): ambient "
        "capabilities with --user, else root's bounding set (root as a container limits it)",
    )
    parser.add_argument(
        "--writable",
        action="append",
        default=[],
        metavar="PATH",
        help="with --user: let the user write PATH for the run (e.g. a --junitxml report): made if missing "
        "(a directory if PATH ends in /, else an empty file) and owned by the user until the VM is "
        "gone, then given back (a PATH made here to the caller; files made inside stay the user's)",
    )
    parser.add_argument(
        "--fips",
        action="store_true",
        help="boot the kernel in FIPS mode (fips=1 on its command line: only FIPS-allowed algorithms, each "
        "self-tested at registration); the run fails with status 2 if the kernel has no FIPS mode",
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
    kernels = all_kernels()
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
            sysctls=args.sysctl,
            user=args.user,
            caps=args.cap,
            writable=args.writable,
            fips=args.fips,
        )
    except KeyboardInterrupt:
        say("interrupted; VM stopped")
        return killed_by(signal.SIGINT)
