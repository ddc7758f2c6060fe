"""The command line's grammar: one argparse parser with a subcommand per program (`vm` is only named here:
its own parser, in the development runner kcapi_vm (dev/vm), takes everything after it)."""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from .. import __version__
from .checksum import cmd_sum, sum_algorithms
from .demo import cmd_demo
from .doctor import cmd_doctor
from .listing import ROW_SOURCES, cmd_list
from .output import PROG


class _Parser(argparse.ArgumentParser):
    """argparse, with the exit status of a usage error chosen per subcommand (coreutils' sum says 1)."""

    def __init__(self, *args: Any, usage_status: int = 2, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.usage_status = usage_status

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(self.usage_status)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Hashing by the Linux kernel crypto API (AF_ALG), from the shell.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("list", help="algorithms: kernel name, driver, priority, self-test, availability")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--kind", action="append", choices=sorted(ROW_SOURCES), help="only this kind (repeatable)")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("doctor", help="is AF_ALG usable here; if not, why and what to do (exit 1)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--fips",
        action="store_true",
        help="FIPS mode: fips_enabled, which algorithms are FIPS-allowed, what fallback computes instead",
    )
    p.add_argument(
        "-a",
        "--algorithm",
        action="append",
        metavar="NAME",
        help="with --fips: only this algorithm (as list names it, or its kernel name; repeatable)",
    )
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser(
        "sum",
        usage_status=1,
        help="sha256sum-compatible digests and checking, computed by the kernel",
        description="Print or check checksums, as sha256sum does, computed by the kernel. With no FILE, or "
        "when FILE is -, read standard input. HMAC files (libkcapi's kcapi-hasher, hmaccalc, fipscheck): "
        f"{PROG} sha256hmac, sha512hmac, fipshmac, fipscheck ... (sha256hmac --help).",
    )
    p.add_argument("files", nargs="*", metavar="FILE")
    p.add_argument("-a", "--algorithm", default="sha256", metavar="ALGO",
                   help=f"digest algorithm (default sha256): {', '.join(sum_algorithms())}")  # fmt: skip
    p.add_argument("-l", "--length", type=int, metavar="BITS", help="digest length in bits (blake2b/blake2s)")
    p.add_argument("-b", "--binary", dest="mode", action="store_const", const="binary", help="read in binary mode")
    p.add_argument("-t", "--text", dest="mode", action="store_const", const="text", help="read in text mode (default)")
    p.add_argument("-c", "--check", action="store_true", help="read checksums from the FILEs and check them")
    p.add_argument("--tag", action="store_true", help="create a BSD-style checksum")
    p.add_argument("-z", "--zero", action="store_true", help="end each output line with NUL, not newline")
    p.add_argument("--ignore-missing", action="store_true", help="don't fail or report status for missing files")
    p.add_argument("--quiet", dest="check_output", action="store_const", const="quiet",
                   help="don't print OK for each successfully verified file")  # fmt: skip
    p.add_argument("--status", dest="check_output", action="store_const", const="status",
                   help="don't output anything, status code shows success")  # fmt: skip
    p.add_argument("--strict", action="store_true", help="exit non-zero for improperly formatted checksum lines")
    p.add_argument("-w", "--warn", dest="check_output", action="store_const", const="warn",
                   help="warn about improperly formatted checksum lines")  # fmt: skip
    p.set_defaults(func=cmd_sum, mode=None, check_output=None)

    # kcapi-hasher's names are dispatched before this parser (cli.main: its own getopt grammar); one is listed.
    sub.add_parser(
        "sha256hmac",
        add_help=False,
        help="libkcapi's kcapi-hasher byte for byte, by the kernel: also sha1/224/384/512hmac, sm3hmac, fipshmac, "
        "fipscheck and its sha*sum/md5sum/sm3sum; or name a link to kcapi-hashlib after one (sha256hmac --help)",
    )
    sub.add_parser(
        "vm",
        add_help=False,
        help="run a command under a real Linux kernel: vm [options] -- CMD... (the source repository's "
        "development runner, dev/vm)",
    )
    sub.add_parser("run", add_help=False, help="run a Python program on the kernel: run [options] -- script.py ...")

    p = sub.add_parser("demo", help="doctor, list, and a kernel-served digest of a file next to hashlib's")
    p.add_argument("file", nargs="?", metavar="FILE", help="file to hash (default: the Python interpreter)")
    p.add_argument("-a", "--algorithm", default="sha256", choices=sum_algorithms(), metavar="ALGO")
    p.set_defaults(func=cmd_demo)
    return parser
