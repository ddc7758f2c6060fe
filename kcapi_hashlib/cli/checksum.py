"""`kcapi-hashlib sum`: sha256sum (coreutils md5sum.c / digest.c) byte for byte, with the kernel computing the
digests: the same output lines, --tag/-z/-b/-t, check mode (-c) with its messages, warnings and exit status,
and gnulib's quoting of file names in error messages."""

from __future__ import annotations

import argparse
import errno
import os
import re
import sys
from collections.abc import Iterator
from typing import IO, Any, Callable, Optional

from .output import PROG, err, write_bytes

_HEX = frozenset(b"0123456789abcdefABCDEF")
# Characters gnulib's shell quoting leaves alone (quotef: shell-escape style, ':' quoted too).
_SHELL_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789%+,-./@_]")
_C_ESCAPES = {"\a": "a", "\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t", "\v": "v"}


def quotef(name: bytes) -> str:
    """A file name as coreutils' error messages show it (gnulib quotef: shell-escape quoting)."""
    text = name.decode("utf-8", "surrogateescape")
    if not text:
        return "''"

    def plain(i: int, ch: str) -> bool:
        if ch in _SHELL_SAFE:
            return True
        if ch in "#~":
            return i > 0
        if ch in "{}":
            return len(text) > 1
        return ord(ch) >= 0x80 and ch.isprintable() and not 0xDC80 <= ord(ch) <= 0xDCFF

    if all(plain(i, ch) for i, ch in enumerate(text)):
        return text
    printable = all(ch.isprintable() and not 0xDC80 <= ord(ch) <= 0xDCFF for ch in text)
    if printable:
        if "'" not in text:
            return f"'{text}'"
        if not any(c in text for c in '"$`\\!'):
            return f'"{text}"'
        return "'" + text.replace("'", "'\\''") + "'"
    parts: list[str] = []
    literal = ""
    for ch in text:
        if ch.isprintable() and not 0xDC80 <= ord(ch) <= 0xDCFF:
            literal += "'\\''" if ch == "'" else ch
            continue
        if literal:
            parts.append(f"'{literal}'")
            literal = ""
        code = ord(ch) - 0xDC00 if 0xDC80 <= ord(ch) <= 0xDCFF else ord(ch)
        parts.append("$'\\" + (_C_ESCAPES.get(ch) or f"{code:03o}") + "'")
    if literal:
        parts.append(f"'{literal}'")
    return "".join(parts)


def _escape_name(name: bytes) -> bytes:
    return name.replace(b"\\", b"\\\\").replace(b"\n", b"\\n")


def _unescape_name(name: bytes) -> Optional[bytes]:
    """coreutils' filename_unescape: only \\\\ and \\n are valid escapes; a NUL is invalid."""
    out = bytearray()
    i = 0
    while i < len(name):
        c = name[i]
        if c == 0x5C:  # backslash
            if i == len(name) - 1:
                return None
            i += 1
            nxt = name[i]
            if nxt == ord("n"):
                out.append(0x0A)
            elif nxt == 0x5C:
                out.append(0x5C)
            else:
                return None
        elif c == 0:
            return None
        else:
            out.append(c)
        i += 1
    return bytes(out)


class _UsageError(Exception):
    pass


class _Summer:
    """coreutils' md5sum.c (digest.c in 9.x) behaviour with the kernel computing the digests."""

    def __init__(self, algorithm: str, bits: Optional[int]) -> None:
        import kcapi_hashlib

        from .._hashes import ALGORITHMS, canonical_name

        name = canonical_name(algorithm)
        if name is None or ALGORITHMS[name].digest_size == 0:
            raise _UsageError(f"unsupported algorithm {algorithm!r} (choose from {', '.join(sum_algorithms())})")
        self.name = name
        alg = ALGORITHMS[name]
        # The BSD tag (--tag, and what -c accepts): coreutils' own where it has the algorithm (the table's).
        self.tag = alg.bsd_tag or name.upper()
        self.max_size = alg.digest_size
        self.sized = alg.sized  # BLAKE2: the digest size is a parameter (--length, "BLAKE2b-256" tags)
        if bits is not None:
            if not self.sized:
                sized = " and ".join(n for n, a in ALGORITHMS.items() if a.sized)
                raise _UsageError(f"--length is only supported with {sized}")
            if bits % 8 or not 0 < bits <= self.max_size * 8:
                raise _UsageError(f"invalid length: {bits}; it must be a multiple of 8, at most {self.max_size * 8}")
        self.size = (bits // 8) if bits else self.max_size
        self._module = kcapi_hashlib
        self.bsd_reversed = -1  # split_3's static: -1 unknown, 0 standard lines seen, 1 "hex name" lines

    def constructor(self, size: Optional[int] = None) -> Callable[[], Any]:
        size = size or self.size
        if self.sized:
            ctor = getattr(self._module, self.name)
            return lambda: ctor(digest_size=size)
        name = self.name
        return lambda: self._module.new(name)

    def check_available(self) -> None:
        """Raise the policy's error (UnsupportedAlgorithm) now if the kernel cannot serve the algorithm."""
        self.constructor()()

    def digest(self, path: bytes, size: Optional[int] = None) -> bytes:
        """The digest of a file ('-' = stdin); raises OSError like open()/read()."""
        ctor = self.constructor(size)
        if path == b"-":
            stdin = sys.stdin
            if stdin is None:
                raise OSError(errno.EBADF, os.strerror(errno.EBADF))
            f: IO[bytes] = stdin.buffer
            return bytes(self._module.file_digest(f, ctor).digest())
        with open(path, "rb") as f:
            return bytes(self._module.file_digest(f, ctor).digest())

    def tag_prefix(self, size: int) -> str:
        return f"{self.tag}-{size * 8}" if self.sized and size != self.max_size else self.tag

    # -- generating --

    def output_line(self, name: bytes, digest: bytes, binary: bool, tagged: bool, zero: bool) -> bytes:
        # md5sum.c output_file: a leading backslash marks a name with '\\' or '\n' escaped (not with -z).
        needs_escape = not zero and (b"\\" in name or b"\n" in name)
        shown = _escape_name(name) if needs_escape else name
        out = b"\\" if needs_escape else b""
        if tagged:
            out += self.tag_prefix(len(digest)).encode() + b" (" + shown + b") = " + digest.hex().encode()
        else:
            out += digest.hex().encode() + (b" *" if binary else b"  ") + shown
        return out + (b"\0" if zero else b"\n")

    # -- checking --

    def _is_hex(self, s: bytes, hexlen: int) -> bool:
        return len(s) == hexlen and all(c in _HEX for c in s)

    def split_3(self, s: bytes) -> Optional[tuple[bytes, bytes, int]]:
        """coreutils' split_3: (hex digest, file name, digest size) of a check line, None if malformed."""
        n = len(s)
        i = 0
        while i < n and s[i] in b" \t":
            i += 1
        escaped = False
        if s[i : i + 1] == b"\\":
            i += 1
            escaped = True
        size = self.size
        tag = self.tag.encode()
        if s.startswith(tag, i):
            i += len(tag)
            if self.sized and s[i : i + 1] == b"-":
                m = re.match(rb"-(\d+)", s[i:])
                if m is None:
                    return None
                bits = int(m.group(1))
                if bits % 8 or not 0 < bits <= self.max_size * 8:
                    return None
                size = bits // 8
                i += m.end()
            if s[i : i + 1] == b" ":
                i += 1
            if s[i : i + 1] != b"(":
                return None
            return self._bsd_split_3(s[i + 1 :], escaped, size)
        hexlen = size * 2
        if n - i < hexlen + 2 + (s[i : i + 1] == b"\\"):
            return None
        digest = s[i : i + hexlen]
        i += hexlen
        if s[i : i + 1] not in (b" ", b"\t"):
            return None
        i += 1
        if not self._is_hex(digest, hexlen):
            return None
        if n - i == 1 or s[i : i + 1] not in (b" ", b"*"):
            # "hex name" (BSD reversed); never mixed with the standard form in one run.
            if self.bsd_reversed == 0:
                return None
            self.bsd_reversed = 1
        elif self.bsd_reversed != 1:
            self.bsd_reversed = 0
            i += 1  # the ' ' (text) or '*' (binary) marker
        name = _unescape_name(s[i:]) if escaped else s[i:]
        if name is None:
            return None
        return digest, name, size

    def _bsd_split_3(self, s: bytes, escaped: bool, size: int) -> Optional[tuple[bytes, bytes, int]]:
        if not s:
            return None
        j = len(s) - 1
        while j and s[j] != 0x29:  # ')'
            j -= 1
        if s[j] != 0x29:
            return None
        name = _unescape_name(s[:j]) if escaped else s[:j]
        if name is None:
            return None
        i = j + 1
        while s[i : i + 1] in (b" ", b"\t"):
            i += 1
        if s[i : i + 1] != b"=":
            return None
        i += 1
        while s[i : i + 1] in (b" ", b"\t"):
            i += 1
        digest = s[i:]
        if not self._is_hex(digest, size * 2):
            return None
        return digest, name, size


def _lines(f: IO[bytes]) -> Iterator[bytes]:
    while True:
        line = f.readline()
        if not line:
            return
        yield line


def _check_file(summer: _Summer, listing: bytes, opts: argparse.Namespace) -> bool:
    """coreutils' digest_check for one checksum list; True if every listed file matched."""
    status_only = opts.check_output == "status"
    quiet = opts.check_output == "quiet"
    warn = opts.check_output == "warn"
    is_stdin = listing == b"-"
    shown = "'standard input'" if is_stdin else quotef(listing)
    try:
        if is_stdin:
            if sys.stdin is None:
                raise OSError(errno.EBADF, os.strerror(errno.EBADF))
            stream: IO[bytes] = sys.stdin.buffer
            lines = list(_lines(stream))
        else:
            with open(listing, "rb") as f:
                lines = list(_lines(f))
    except IsADirectoryError:
        # fopen() of a directory succeeds in C and the first read fails: coreutils says "read error".
        err(f"{shown}: read error")
        return False
    except OSError as e:
        err(f"{shown}: {os.strerror(e.errno or errno.EIO)}")
        return False

    misformatted = read_failures = mismatched = 0
    properly_formatted = matched = False
    for number, raw in enumerate(lines, 1):
        if raw.startswith(b"#"):
            continue
        line = raw[:-1] if raw.endswith(b"\n") else raw
        line = line[:-1] if line.endswith(b"\r") else line
        if not line:
            continue
        parsed = summer.split_3(line)
        if parsed is None or (is_stdin and parsed[1] == b"-"):
            misformatted += 1
            if warn:
                err(f"{shown}: {number}: improperly formatted {summer.tag} checksum line")
            continue
        expected, name, size = parsed
        properly_formatted = True
        needs_escape = not status_only and b"\n" in name
        label = (b"\\" + _escape_name(name)) if needs_escape else name
        try:
            actual = summer.digest(name, size)
        except OSError as e:
            if opts.ignore_missing and e.errno == errno.ENOENT:
                continue
            err(f"{quotef(name)}: {os.strerror(e.errno or errno.EIO)}")
            read_failures += 1
            if not status_only:
                sys.stdout.flush()
                write_bytes(label + b": FAILED open or read\n")
            continue
        ok = actual.hex().encode() == expected.lower()
        if ok:
            matched = True
        else:
            mismatched += 1
        if not status_only and (not ok or not quiet):
            write_bytes(label + (b": OK\n" if ok else b": FAILED\n"))

    if not properly_formatted:
        err(f"{shown}: no properly formatted checksum lines found")
    elif not status_only:

        def plural(n: int, one: str, many: str) -> str:
            return (one if n == 1 else many).replace("%d", str(n))

        if misformatted:
            err(
                plural(
                    misformatted,
                    "WARNING: %d line is improperly formatted",
                    "WARNING: %d lines are improperly formatted",
                )
            )
        if read_failures:
            err(
                plural(
                    read_failures,
                    "WARNING: %d listed file could not be read",
                    "WARNING: %d listed files could not be read",
                )
            )
        if mismatched:
            err(
                plural(
                    mismatched,
                    "WARNING: %d computed checksum did NOT match",
                    "WARNING: %d computed checksums did NOT match",
                )
            )
        if opts.ignore_missing and not matched:
            err(f"{shown}: no file was verified")
    return (
        properly_formatted and matched and mismatched == 0 and read_failures == 0 and not (opts.strict and misformatted)
    )


def sum_algorithms() -> list[str]:
    from .._hashes import ALGORITHMS

    return [name for name, alg in ALGORITHMS.items() if alg.digest_size]


def cmd_sum(args: argparse.Namespace) -> int:
    from .._policy import UnsupportedAlgorithm

    files = [os.fsencode(f) for f in args.files] or [b"-"]
    try:
        if args.check:
            if args.tag:
                raise _UsageError("the --tag option is meaningless when verifying checksums")
            if args.mode is not None:
                raise _UsageError("the --binary and --text options are meaningless when verifying checksums")
            if args.zero:
                raise _UsageError("the --zero option is not supported when verifying checksums")
        else:
            if args.tag and args.mode == "text":
                raise _UsageError("--tag does not support --text mode")
            if args.ignore_missing:
                raise _UsageError("the --ignore-missing option is meaningful only when verifying checksums")
            if args.check_output is not None:
                raise _UsageError(f"the --{args.check_output} option is meaningful only when verifying checksums")
            if args.strict:
                raise _UsageError("the --strict option is meaningful only when verifying checksums")
        summer = _Summer(args.algorithm, args.length)
    except _UsageError as e:
        err(str(e))
        sys.stderr.write(f"Try '{PROG} sum --help' for more information.\n")
        return 1
    try:
        summer.check_available()
    except UnsupportedAlgorithm as e:
        err(f"{e}: {e.reason}")
        return 1
    except ValueError as e:  # fallback policy, and the stdlib lacks it too (e.g. sm3 without OpenSSL's)
        err(str(e))
        return 1

    ok = True
    if args.check:
        for listing in files:
            ok = _check_file(summer, listing, args) and ok
        return 0 if ok else 1
    binary = args.mode == "binary"
    for name in files:
        try:
            digest = summer.digest(name)
        except OSError as e:
            err(f"{quotef(name)}: {os.strerror(e.errno or errno.EIO)}")
            ok = False
            continue
        write_bytes(summer.output_line(name, digest, binary, args.tag, args.zero))
    return 0 if ok else 1
