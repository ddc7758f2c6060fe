"""`kcapi-hashlib sha256hmac ...`: libkcapi's kcapi-hasher (apps/kcapi-hasher.c, libkcapi 1.4.0) byte for byte,
with the kernel computing the digests through kcapi_hashlib (HMACs through kcapi_hashlib.hmac, never Python's).

kcapi-hasher is one binary that behaves as the program it is called as (argv[0], or -n NAME): sha1hmac ...
sha512hmac and sm3hmac (hmaccalc's tools, key "FIPS-FTW-RHT2009"), fipshmac and fipscheck (fipscheck's, key
"orboDeJITITejsirpADONivirpUkvarP", the HMAC of FILE kept in .FILE.hmac beside it), and sha1sum ... sha512sum,
md5sum, sm3sum (unkeyed). Here each name is a subcommand, and a symlink named like one to the kcapi-hashlib
script works as kcapi-hasher's links do. Everything kcapi-hasher prints, its exit statuses (which are the C
program's `return ret` & 0xff: 251 for -EIO, 234 for -EINVAL, the count of failed lines in check mode) and its
quirks are kept, checked against the real tool built from libkcapi's source (tests/tools/test_kcapi_hasher.py):

- check mode (-c FILE, one list) prints "NAME: OK" / "NAME: Not OK"; a line that is not "HEX  NAME" or
  "HEX *NAME" stops the check with "Invalid checkfile format" (status 1); a line without a blank is skipped;
  trailing bytes that are not printable ASCII are cut off every line (kcapi-hasher never calls setlocale);
- BSD-style lines (--tag output) never verify in 1.4.0: their hex length is counted one too long;
- options are parsed by glibc's getopt_long (ported in cli/gnu_getopt.py) with its permutation and its messages,
  including the -n pre-scan's side effect (`-uq` as the first argument loses its -u).

Not kept: -S/-L (the HMAC of this binary / of libkcapi.so: neither exists here) and the FIPS self-test of
kcapi-hasher's own .hmac file when /proc/sys/crypto/fips_enabled is 1.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from dataclasses import dataclass
from typing import IO, Any, Callable, Optional, Union

from .gnu_getopt import Getopt, LongOpt

FIPSCHECK_KEY = b"orboDeJITITejsirpADONivirpUkvarP"  # libfipscheck's
HMACCALC_KEY = b"FIPS-FTW-RHT2009"  # hmaccalc's

# kcapi-hasher's -h names -> (kernel name, BSD tag) unkeyed; HMAC: hmac(<kernel>), HMAC(<TAG>).
HASHES = {n: n.upper() for n in ("md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sm3")}

# Invocation names in kcapi-hasher's order (it compares prefixes: "sha256hmac-x" is sha256hmac):
# name -> (hash, default key or None for unkeyed, mode)
NAMES: dict[str, tuple[str, Optional[bytes], str]] = {
    "sha256sum": ("sha256", None, "sum"),
    "sha512sum": ("sha512", None, "sum"),
    "sha1sum": ("sha1", None, "sum"),
    "sha224sum": ("sha224", None, "sum"),
    "sha384sum": ("sha384", None, "sum"),
    "md5sum": ("md5", None, "sum"),
    "sm3sum": ("sm3", None, "sum"),
    "fipshmac": ("sha256", FIPSCHECK_KEY, "fipshmac"),
    "fipscheck": ("sha256", FIPSCHECK_KEY, "fipscheck"),
    "sha1hmac": ("sha1", HMACCALC_KEY, "sum"),
    "sha224hmac": ("sha224", HMACCALC_KEY, "sum"),
    "sha256hmac": ("sha256", HMACCALC_KEY, "sum"),
    "sha384hmac": ("sha384", HMACCALC_KEY, "sum"),
    "sha512hmac": ("sha512", HMACCALC_KEY, "sum"),
    "sm3hmac": ("sm3", HMACCALC_KEY, "sum"),
}

MAPPED = 16 << 20  # hasher() maps files in 16 MiB segments; its error message names the size
EIO, EINVAL, EFAULT = errno.EIO, errno.EINVAL, errno.EFAULT
CHK_QUIET, CHK_STATUS = 1, 2
_PRINTABLE = range(0x20, 0x7F)  # isprint() in the C locale
_BLANK = (0x20, 0x09)  # isblank()


def lookup(name: str) -> Optional[str]:
    """The invocation name `name` stands for (kcapi-hasher's prefix test), or None."""
    return next((n for n in NAMES if name.startswith(n)), None)


# --- options: kcapi-hasher's tables for gnu_getopt.Getopt ---------------------------------------------------


_NAME_OPTS = [LongOpt("name", 1, "n")]
_SHORT = "c:uh:t:SLqk:K:vbd:Pz"
_LONG = [
    LongOpt("help", 0, ""),
    LongOpt("tag", 0, ""),
    LongOpt("quiet", 0, ""),
    LongOpt("check", 1, "c"),
    LongOpt("unkeyed", 0, "u"),
    LongOpt("hash", 1, "h"),
    LongOpt("truncate", 1, "t"),
    LongOpt("self-sum", 0, "S"),
    LongOpt("self-sum-lib", 0, "L"),
    LongOpt("status", 0, "q"),
    LongOpt("key-file", 1, "k"),
    LongOpt("key", 1, "K"),
    LongOpt("version", 0, "v"),
]


# --- output -------------------------------------------------------------------------------------------------


def _stderr(text: str) -> None:
    sys.stdout.flush()
    sys.stderr.buffer.write(text.encode("utf-8", "surrogateescape"))
    sys.stderr.flush()


def _stdout(data: bytes) -> None:
    sys.stdout.buffer.write(data)


def _basename(path: str) -> str:
    """POSIX basename() (libgen.h), as kcapi-hasher includes it."""
    stripped = path.rstrip("/")
    return os.path.basename(stripped) if stripped else ("/" if path else ".")


def usage(argv0: str, fipscheck: bool) -> None:
    base = _basename(argv0)
    lines = [
        f"\n{base} - calculation of hash sum (Using Linux Kernel Crypto API)\n",
        "\nUsage:\n",
        f"\t{base} [-n BASENAME] [OPTION]... -S|-L\n",
    ]
    if fipscheck:
        lines.append(f"\t{base} [-n BASENAME] [OPTION]... FILE\n")
    else:
        lines.append(f"\t{base} [-n BASENAME] [OPTION]... -c FILE\n")
        lines.append(f"\t{base} [-n BASENAME] [OPTION]... FILE...\n")
    lines += [
        "\nOptions:\n",
        "\t-n --name\t\tForce given application name (sha512hmac/...)\n",
        "\t-S --self-sum\t\tPrint checksum of this binary and exit\n",
        "\t-L --self-sum-lib\tPrint checksum of the libkcapi library and exit\n",
    ]
    if not fipscheck:
        lines.append("\t-c --check FILE\t\tVerify hash sums from file\n")
    lines += [
        "\t-u --unkeyed\t\tForce unkeyed hash\n",
        "\t-h --hash HASH\t\tUse given hash algorithm\n",
        "\t-t --truncate N\t\tUse hash truncated to N bits\n",
        "\t-q --status\t\tSuppress verification output\n",
        "\t   --quiet\t\tSuppress only success messages\n",
        "\t-k --key-file FILE\tUse HMAC key from given file\n",
        "\t-K --key KEY\t\tUse KEY as the HMAC key\n",
        "\t   --tag\t\tCreate a BSD-style checksum\n",
        "\t-d\t\t\tCheck directory for fipshmac; otherwise ignored\n",
        "\t-b, -P\t\t\tCompatibility hmaccalc options; ignored\n",
        "\t-z\t\t\tNUL line termination\n",
        "\t   --help\t\tPrint this help text\n",
        "\t-v --version\t\tShow version\n",
    ]
    _stderr("".join(lines))


# --- hashing ------------------------------------------------------------------------------------------------


class _Failed(Exception):
    """A C function's negative return: `code` is what kcapi-hasher returns from there (its exit status & 0xff)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class Params:
    hash: str
    key: Optional[bytes]  # None: unkeyed
    keyed: bool  # hmac: True with key None is an HMAC without a key (an empty -k file)
    hashlen: int = 0  # -t bits / 8; 0: the whole digest
    bsd: bool = False
    newline: bytes = b"\n"

    @property
    def kcapiname(self) -> str:
        return f"hmac({self.hash})" if self.keyed else self.hash

    @property
    def bsdname(self) -> str:
        return f"HMAC({HASHES[self.hash]})" if self.keyed else HASHES[self.hash]


def _constructor(params: Params, checking: bool = False) -> Callable[[], Any]:
    """What kcapi_md_init()+setkey() give: a kernel hash or HMAC (kcapi_hashlib.hmac), for each file anew."""
    import kcapi_hashlib
    import kcapi_hashlib.hmac

    from .._policy import UnsupportedAlgorithm

    key = params.key
    if key is not None:
        name = params.hash

        def make() -> Any:
            return kcapi_hashlib.hmac.new(key, digestmod=name)
    else:

        def make() -> Any:
            return kcapi_hashlib.new(params.hash)

    try:
        make()
    except UnsupportedAlgorithm as e:
        # kcapi_md_init -> _kcapi_handle_init: bind() fails; libkcapi logs it, kcapi-hasher names the cipher.
        code = -(e.errno or errno.ENOENT)
        _stderr(f"libkcapi - Error: AF_ALG: bind failed (errno: {code})\n")
        shown = code if checking else f"ret={code}"  # process_checkfile() and hash_files() word it apart
        _stderr(f"Allocation of {params.kcapiname} cipher failed ({shown})\n")
        raise _Failed(-EFAULT) from None
    return make


def _digest_of(make: Callable[[], Any], filename: Optional[bytes]) -> bytes:
    """hasher()'s reading: a named file must be a regular file (check_filetype) and is read up to the size
    fstat gives (mmap: a /proc file, size 0, hashes as empty); None is stdin, read to its end."""
    import kcapi_hashlib

    if filename is None:
        stdin: IO[bytes] = sys.stdin.buffer
        return bytes(kcapi_hashlib.file_digest(stdin, make).digest())
    shown = filename.decode("utf-8", "surrogateescape")
    try:
        fd = os.open(filename, os.O_RDONLY | os.O_CLOEXEC)  # C's open(): a directory opens too
    except OSError as e:
        _stderr(f"Cannot open file {shown}: {os.strerror(e.errno or EIO)}\n")
        code = -EIO
    else:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            code = -EINVAL  # check_filetype() says why only at a verbosity kcapi-hasher never sets
        elif st.st_size == 0:
            os.close(fd)
            return bytes(make().digest())
        else:
            with os.fdopen(fd, "rb") as f:
                return bytes(kcapi_hashlib.file_digest(f, make).digest())
    _stderr(f"Use of mmap failed mapping {MAPPED} bytes at offset 0 of file {shown} ({code})\n")
    raise _Failed(code)


def _bin_char(c: int) -> int:
    """app-internal.c bin_char(): a hex digit's value, 0 for anything else."""
    if 48 <= c <= 57:
        return c - 48
    if 65 <= c <= 70:
        return c - 55
    if 97 <= c <= 102:
        return c - 87
    return 0


def _truncated_digest(
    params: Params, make: Callable[[], Any], filename: Optional[bytes]
) -> Union[int, tuple[bytes, int]]:
    """The digest of `filename` and how many of its bytes to use (-t), or the C return value where that fails:
    the file's error, or the digest's length for a -t larger than the digest (with kcapi-hasher's message)."""
    try:
        md = _digest_of(make, filename)
    except _Failed as e:
        return e.code
    hashlen = params.hashlen
    if hashlen > len(md):
        _stderr(f"Invalid truncated hash size: {hashlen} > {len(md)}\n")
        return len(md)
    return md, hashlen or len(md)


def hasher(params: Params, make: Callable[[], Any], filename: Optional[bytes], comphash: Optional[bytes] = None) -> int:
    """kcapi-hasher's hasher(): print one line (comphash None) or compare against comphash (0 equal, 1 not);
    a negative value is a C error return."""
    got = _truncated_digest(params, make, filename)
    if isinstance(got, int):
        return got
    md, hashlen = got
    if comphash is not None:
        # hex2bin() into a zeroed buffer, then the length and the first hashlen bytes are compared.
        if len(comphash) != hashlen * 2:
            return 1
        comp = bytes(_bin_char(comphash[2 * i]) << 4 | _bin_char(comphash[2 * i + 1]) for i in range(hashlen))
        return 0 if comp == md[:hashlen] else 1
    name = filename if filename is not None else b"-"
    hexa = md[:hashlen].hex().encode()
    if params.bsd:
        _stdout(params.bsdname.encode() + b" (" + name + b") = " + hexa + params.newline)
    else:
        _stdout(hexa + b"  " + name + params.newline)
    return 0


def hmac_file(filename: bytes, checkdir: Optional[bytes]) -> bytes:
    """get_hmac_file(): DIR/.BASE.hmac, DIR the file's own or -d's (CHECK_PREFIX ".", CHECK_SUFFIX "hmac")."""
    cut = filename.rfind(b"/") + 1
    where = checkdir + b"/" if checkdir is not None else filename[:cut]
    return where + b"." + filename[cut:] + b".hmac"


def hash_files(params: Params, files: list[bytes], fipshmac: bool, checkdir: Optional[bytes]) -> int:
    try:
        make = _constructor(params)
    except _Failed as e:
        return e.code
    if params.keyed and params.key is None:
        # An empty -k file: kcapi-hasher sets no key at all, and its first kcapi_md_update() fails (the
        # kernel's hash_accept_nokey: an unkeyed hmac refuses accept() with ENOKEY, send() then goes to fd -1);
        # kcapi-hasher returns -1 from there, printing nothing (observed: status 255).
        return -1
    if not files:
        return hasher(params, make, None)
    ret = 0
    for filename in files:
        if fipshmac:
            target = hmac_file(filename, checkdir)
            try:
                out = open(target, "wb")
            except OSError:
                _stderr(f"Cannot open HMAC file {target.decode('utf-8', 'surrogateescape')}\n")
                continue
            with out:
                ret = _fipshmac_one(params, make, filename, out)
        else:
            ret = hasher(params, make, None if filename == b"-" else filename)
        if ret:
            break
    return ret


def _fipshmac_one(params: Params, make: Callable[[], Any], filename: bytes, out: IO[bytes]) -> int:
    """hasher() writing into the .hmac file: the hex digest alone (after "TAG (name) = " with --tag)."""
    got = _truncated_digest(params, make, filename)
    if isinstance(got, int):
        return got
    md, hashlen = got
    prefix = params.bsdname.encode() + b" (" + filename + b") = " if params.bsd else b""
    out.write(prefix + md[:hashlen].hex().encode() + params.newline)
    return 0


def _lines(f: IO[bytes]) -> list[bytes]:
    """fgets() into kcapi-hasher's 4227-byte buffer: lines of at most 4226 bytes, a longer one in pieces."""
    lines: list[bytes] = []
    while True:
        try:
            line = f.readline(4096 + 128 + 2)
        except OSError:  # fgets() fails: NULL, the loop ends
            return lines
        if not line:
            return lines
        lines.append(line)


def process_checkfile(params: Params, checkfile: bytes, targetfile: Optional[bytes], log: int) -> int:
    """kcapi-hasher's process_checkfile(), line parsing included (see the module's docstring)."""
    try:
        make = _constructor(params, checking=True)
    except _Failed as e:
        return e.code
    if params.keyed and params.key is None:
        return -1
    lines: list[bytes]
    if checkfile == b"-":
        lines = _lines(sys.stdin.buffer)
    else:
        try:
            fd = os.open(checkfile, os.O_RDONLY | os.O_CLOEXEC)  # fopen(, "r"): a directory opens too
        except OSError:
            _stderr(f"Cannot open file {checkfile.decode('utf-8', 'surrogateescape')}\n")
            return 253
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            os.close(fd)
            lines = []  # and the first fgets() fails (EISDIR): no line
        else:
            with os.fdopen(fd, "rb") as f:
                lines = _lines(f)
    ret = 0
    checked_any = False
    for raw in lines:
        buf = raw.split(b"\0", 1)[0]  # strlen()
        if not buf:
            break
        end = len(buf)
        while end > 1 and buf[end - 1] not in _PRINTABLE:
            end -= 1
        buf = buf[:end]
        linelen = len(buf)
        padded = buf + b"\0\0\0"  # the C string's terminator (and what follows it) where indexing runs over
        bsd_style = 0
        for i in range(1, linelen):
            if linelen - i >= 3 and buf[i] in _BLANK and buf[i + 1] == 0x3D and padded[i + 2] in _BLANK:
                bsd_style = i + 3
                break
        filename: Optional[int] = None  # an index into buf
        hexhashlen = 0
        for i in range(linelen):
            if not bsd_style and buf[i] in _BLANK:
                filename = i
                break
            if not bsd_style and filename is None:
                hexhashlen += 1
            if bsd_style and linelen - i >= 2 and buf[i] in _BLANK and buf[i + 1] == 0x28:
                filename = i + 2
                break
        hexstart = bsd_style
        if bsd_style:
            hexhashlen = linelen - bsd_style + 1  # one too many: a BSD-style line never matches
            if buf[bsd_style - 4] == 0x29:  # ')' ends the file name
                padded = padded[: bsd_style - 4] + b"\0" + padded[bsd_style - 3 :]
        if not hexhashlen:
            _stderr("Invalid checkfile format\n")
            return 1
        comphash = padded[hexstart : hexstart + hexhashlen]
        if targetfile is not None:
            return hasher(params, make, targetfile, comphash)
        if filename is None:
            continue
        if not bsd_style:
            if padded[filename + 1] not in _BLANK and padded[filename + 1] != 0x2A:
                _stderr("Invalid checkfile format\n")
                return 1
            filename += 2
        name = padded[filename:].split(b"\0", 1)[0]
        r = hasher(params, make, name, comphash)
        if r == 0:
            if log < CHK_QUIET:
                _stdout(name + b": OK\n")
        else:
            if log < CHK_STATUS:
                _stdout(name + b": Not OK\n")
            if ret >= 0:
                ret += 1
        checked_any = True
    return ret if ret != 0 else int(not checked_any)


def _strtou32(text: str) -> Optional[int]:
    """strtoul(text, &end, 10) with the whole string used and the value at most UINT32_MAX."""
    s = text.lstrip(" \t\n\v\f\r")
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if not text or not s or not s.isascii() or not s.isdigit():
        return None
    value = int(s) if sign > 0 else (-int(s)) % (1 << 64)
    return value if value <= 0xFFFFFFFF else None


def _read_key_file(path: str) -> Optional[bytes]:
    """-k FILE: mmap_file() (a regular file, up to its size), then load_file() if that failed (read() to the
    end); each reports an open() failure, so a missing file is reported twice."""
    raw = os.fsencode(path)
    try:
        fd = os.open(raw, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        _stderr(f"Cannot open file {path}: {os.strerror(e.errno or EIO)}\n")
    else:
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode):
                return _read_all(fd, st.st_size)
        finally:
            os.close(fd)
    try:
        fd = os.open(raw, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        _stderr(f"Cannot open file {path}: {os.strerror(e.errno or EIO)}\n")
        return None
    try:
        return _read_all(fd, None)
    except OSError as e:
        _stderr(f"Error reading file {path}: {os.strerror(e.errno or EIO)}\n")
        return None
    finally:
        os.close(fd)


def _read_all(fd: int, size: Optional[int]) -> bytes:
    chunks = []
    left = size
    while left is None or left > 0:
        chunk = os.read(fd, 1 << 16 if left is None else min(left, 1 << 16))
        if not chunk:
            break
        chunks.append(chunk)
        if left is not None:
            left -= len(chunk)
    return b"".join(chunks)


def run(argv: list[str]) -> int:
    """kcapi-hasher's main(argv): argv[0] is the invocation name (or path); returns the exit status."""
    return _main(argv) & 0xFF


def _main(argv: list[str]) -> int:
    argv = list(argv)
    argv0 = argv[0]
    basen = _basename(argv0)
    g = Getopt(argv, argv0, _stderr, errors=False)
    if g.next("n:", _NAME_OPTS) == "n" and g.optarg is not None:
        basen = g.optarg
    else:
        g.optind = 1
    g.errors = True

    invoked = lookup(basen)
    if invoked is None:
        _stderr(f"Unknown invocation name: {basen}\n")
        usage(argv0, False)
        return 1
    hash_name, key, mode = NAMES[invoked]
    fipscheck = mode == "fipscheck"
    params = Params(hash_name, key, keyed=key is not None)
    checkfile: Optional[bytes] = None
    checkdir: Optional[bytes] = None
    loglevel = 0
    selfcheck = False
    while True:
        c = g.next(_SHORT, _LONG)
        if c is None:
            break
        arg = g.optarg or ""
        if c == "":
            if g.longind == 0:
                usage(argv0, fipscheck)
                return 0
            if g.longind == 1:
                params.bsd = True
            elif g.longind == 2:
                loglevel = CHK_QUIET
        elif c == "c":
            checkfile = os.fsencode(arg)
        elif c == "u":
            params.key, params.keyed = None, False
        elif c == "h":
            if arg not in HASHES or arg == "md5":
                _stderr(f"Invalid hash: {arg}\n")
                return 1
            params.hash = arg
        elif c == "t":
            bits = _strtou32(arg)
            if bits is None:
                _stderr(f"Invalid number: {arg}\n")
                return 1
            if bits % 8:
                _stderr("Truncated hash size must be a multiple of 8 bits!\n")
                return 1
            params.hashlen = bits // 8
        elif c in "SL":
            selfcheck = True
        elif c == "q":
            loglevel = CHK_STATUS
        elif c == "k":
            data = _read_key_file(arg)
            if data is None:
                return 1
            # An empty file maps nothing: kcapi-hasher is left with no key (see hash_files).
            params.key, params.keyed = (data or None), True
        elif c == "K":
            params.key, params.keyed = os.fsencode(arg), True
        elif c == "v":
            from .. import __version__

            _stderr(f"{_basename(argv0)}: kcapi-hashlib {__version__}\n")
            return 0
        elif c == "d":
            checkdir = os.fsencode(arg)
        elif c in "bP":
            pass  # hmaccalc's compatibility options
        elif c == "z":
            params.newline = b"\0"
        else:
            usage(argv0, fipscheck)
            return 1
    operands = [os.fsencode(a) for a in argv[g.optind :]]
    if selfcheck:
        _stderr("-S/-L: kcapi-hashlib has no binary or libkcapi.so of its own to sum\n")
        return 1

    targetfile: Optional[bytes] = None
    if fipscheck:
        if not operands:
            _stderr("No file to check given for fipscheck\n")
            return 1
        if checkfile is not None:
            _stderr("-c is not valid for fipscheck\n")
            return 1
        targetfile = operands.pop(0)
        checkfile = hmac_file(targetfile, None)
    if checkfile is None:
        return hash_files(params, operands, mode == "fipshmac", checkdir)
    if not operands:
        return process_checkfile(params, checkfile, targetfile, loglevel)
    _stderr("-c cannot be used with input files\n")
    return 1
