"""Bad input, every kind of buffer: a generated matrix of (entry point x value) against the originals.

Every hash, HMAC and KDF entry point (hashlib's constructors, new(), blake2 parameters, pbkdf2_hmac,
file_digest, the hash objects' methods, hmac, Crypto.Hash.*, Crypto.Protocol.KDF) is called with the same
arguments on kcapi_hashlib and on the original (the running interpreter's hashlib / hmac, PyCryptodome), under
the fallback policy (so deliberate strict refusals are out of the picture). The outcomes must agree:

- both raise: the same exception type (ours may be a subclass), and the same message (addresses masked);
- both return: the same result (digests, derived keys, hash object attributes);
- one raises and the other returns: a mismatch ("accepted" / "refused").

Values: str, None, int, huge int, bool, float, list, object, bytes, bytearray, array objects, memoryviews of
every format, 2-D and 0-D casts, offsets, non-C-contiguous views, wrong lengths. Buffers are always measured in
bytes. `python -m tests.parity.test_hash_bad_input` prints the mismatch counts by kind.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import re
import sys
import tempfile
import warnings
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable, Optional

try:
    import pytest
except ImportError:  # pragma: no cover - `python -m tests.parity.test_hash_bad_input` on a Python without pytest
    pytest = None  # type: ignore[assignment]

import kcapi_hashlib
import kcapi_hashlib.hmac as khmac
from kcapi_hashlib import Hash as KHash
from kcapi_hashlib import _afalg
from kcapi_hashlib.Cipher import AES as KAES
from kcapi_hashlib.Hash import CMAC as KCMAC
from kcapi_hashlib.Hash import HMAC as KHMAC
from kcapi_hashlib.Hash import MD5 as KMD5
from kcapi_hashlib.Hash import RIPEMD160 as KRIPEMD160
from kcapi_hashlib.Hash import SHA1 as KSHA1
from kcapi_hashlib.Hash import SHA3_256 as KSHA3_256
from kcapi_hashlib.Hash import SHA224 as KSHA224
from kcapi_hashlib.Hash import SHA256 as KSHA256
from kcapi_hashlib.Hash import SHA384 as KSHA384
from kcapi_hashlib.Hash import SHA512 as KSHA512
from kcapi_hashlib.Hash import BLAKE2b as KBLAKE2b
from kcapi_hashlib.Protocol import KDF as KKDF

try:  # PyCryptodome, a test requirement, is the reference of the Crypto.* groups (the others need only stdlib)
    from Crypto import Hash as CHash
    from Crypto.Cipher import AES as CAES
    from Crypto.Hash import CMAC as CCMAC
    from Crypto.Hash import HMAC as CHMAC
    from Crypto.Hash import MD5 as CMD5
    from Crypto.Hash import RIPEMD160 as CRIPEMD160
    from Crypto.Hash import SHA1 as CSHA1
    from Crypto.Hash import SHA3_256 as CSHA3_256
    from Crypto.Hash import SHA224 as CSHA224
    from Crypto.Hash import SHA256 as CSHA256
    from Crypto.Hash import SHA384 as CSHA384
    from Crypto.Hash import SHA512 as CSHA512
    from Crypto.Hash import BLAKE2b as CBLAKE2b
    from Crypto.Protocol import KDF as CKDF

    HAVE_PYCRYPTODOME = True
except ImportError:  # pragma: no cover - reported as a skip of those groups, with this reason
    CHash = CAES = CBLAKE2b = CCMAC = CHMAC = CMD5 = CRIPEMD160 = CSHA1 = CSHA3_256 = CSHA224 = None  # type: ignore[assignment]
    CSHA256 = CSHA384 = CSHA512 = CKDF = None  # type: ignore[assignment]
    HAVE_PYCRYPTODOME = False

OURS = SimpleNamespace(
    hashlib=kcapi_hashlib, hmac=khmac, Hash=KHash, HMAC=KHMAC, CMAC=KCMAC, BLAKE2b=KBLAKE2b, KDF=KKDF, AES=KAES,
    SHA1=KSHA1, SHA224=KSHA224, SHA256=KSHA256, SHA384=KSHA384, SHA512=KSHA512, SHA3_256=KSHA3_256, MD5=KMD5,
    RIPEMD160=KRIPEMD160,
)  # fmt: skip
REF = SimpleNamespace(
    hashlib=hashlib, hmac=hmac, Hash=CHash, HMAC=CHMAC, CMAC=CCMAC, BLAKE2b=CBLAKE2b, KDF=CKDF, AES=CAES,
    SHA1=CSHA1, SHA224=CSHA224, SHA256=CSHA256, SHA384=CSHA384, SHA512=CSHA512, SHA3_256=CSHA3_256, MD5=CMD5,
    RIPEMD160=CRIPEMD160,
)  # fmt: skip
PYCRYPTO_HASHES = ["SHA1", "SHA224", "SHA256", "SHA384", "SHA512", "SHA3_256", "MD5", "RIPEMD160"]


# --- values ---------------------------------------------------------------------------------------------

_B16 = bytes(range(16))


def _noncontig() -> memoryview:
    return memoryview(b"abcdefghijkl")[::2]


# name -> factory (fresh object per call: no case can disturb another)
BUFFERS: dict[str, Callable[[], Any]] = {
    "bytes": lambda: b"abc",
    "empty": lambda: b"",
    "bytearray": lambda: bytearray(b"abcdefgh"),
    "memoryview": lambda: memoryview(b"abcdef"),
    "mv_offset": lambda: memoryview(b"xxabcdefghijklmnopq")[2:],
    "mv_bytearray": lambda: memoryview(bytearray(_B16)),
    "array_B": lambda: array("B", _B16),
    "array_I": lambda: array("I", [1, 2, 0xDEADBEEF, 4]),
    "array_d": lambda: array("d", [1.5, -2.25]),
    "mv_array_I": lambda: memoryview(array("I", [7, 8, 9, 0xFFFFFFFF])),
    "mv_array_h": lambda: memoryview(array("h", [-1, 2, 3])),
    "mv_cast_I": lambda: memoryview(bytearray(_B16)).cast("I"),
    "mv_cast_2d": lambda: memoryview(_B16).cast("B", (2, 8)),
    "mv_cast_2d_I": lambda: memoryview(_B16 * 2).cast("I", (2, 4)),
    "mv_0d": lambda: memoryview(b"z").cast("B", ()),
    "mv_c_char": lambda: memoryview(b"hello").cast("c"),
    "noncontig": _noncontig,
    "long_bytes": lambda: bytes(range(256)) * 2,  # longer than every block size and key limit
}
NON_BUFFERS: dict[str, Callable[[], Any]] = {
    "str": lambda: "abc",
    "str_empty": lambda: "",
    "None": lambda: None,
    "int": lambda: 5,
    "int0": lambda: 0,
    "huge": lambda: 2**64,
    "bool": lambda: True,
    "float": lambda: 1.5,
    "list": lambda: [1, 2, 3],
    "list16": lambda: list(range(16)),
    "tuple": lambda: (),
    "object": lambda: object(),
}
# The reference's result is that of the same BYTES: with _AS_BYTES set, every C-contiguous buffer value is
# passed as bytes(memoryview(v).cast("B")) (PyCryptodome's CMAC counts memoryview items, not bytes).
_AS_BYTES = [False]


def _value(factory: Callable[[], Any]) -> Callable[[], Any]:
    def make() -> Any:
        v = factory()
        if _AS_BYTES[0] and isinstance(v, (bytearray, memoryview, array)):
            view = memoryview(v)
            if view.c_contiguous:
                return view.tobytes()
        return v

    return make


BUFFERS = {k: _value(f) for k, f in BUFFERS.items()}
VALUES = {**BUFFERS, **NON_BUFFERS}
# Integer parameters (sizes, counts): valid, edges, overflow, wrong types.
INTS: dict[str, Callable[[], Any]] = {
    "i0": lambda: 0,
    "i1": lambda: 1,
    "i-1": lambda: -1,
    "i16": lambda: 16,
    "i20": lambda: 20,
    "i32": lambda: 32,
    "i65": lambda: 65,
    "i255": lambda: 255,
    "i256": lambda: 256,
    "2**31": lambda: 2**31,
    "2**32": lambda: 2**32,
    "2**63": lambda: 2**63,
    "2**64": lambda: 2**64,
    "-2**64": lambda: -(2**64),
    "True": lambda: True,
    "float": lambda: 16.0,
    "str": lambda: "16",
    "None": lambda: None,
    "bytes": lambda: b"\x10",
}


# --- running a case -------------------------------------------------------------------------------------


@dataclass
class Case:
    group: str
    id: str
    fn: Callable[..., Any]  # fn(impl): called with OURS or REF
    compare_message: bool = True
    # Where set, the one deliberate difference: ours raises the original's type with this fixed text instead of
    # the original's (whose text is OpenSSL's and depends on its build; see the pbkdf2_hmac group).
    our_message: Optional[str] = None


def _norm(x: Any) -> Any:
    """A comparable value for a result: digests for hash/MAC objects, lists element-wise."""
    if isinstance(x, (bytes, str, int, float, type(None))):
        return x
    if isinstance(x, (list, tuple)):
        return type(x)(_norm(e) for e in x)
    if hasattr(x, "digest"):
        try:
            d = x.digest()
        except TypeError:  # shake: digest(length)
            d = x.digest(32)
        attrs = tuple(getattr(x, a, None) for a in ("digest_size", "name"))
        return ("digest", d, attrs)
    return ("object", type(x).__name__)


_ADDR = re.compile(r"0x[0-9a-fA-F]+")


def outcome(fn: Callable[..., Any], impl: SimpleNamespace, as_bytes: bool = False) -> tuple[Any, ...]:
    _AS_BYTES[0] = as_bytes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = fn(impl)
            return ("ok", _norm(result))
        except Exception as e:
            return ("raise", type(e), _ADDR.sub("0x?", str(e)))
        finally:
            _AS_BYTES[0] = False


def mismatch(case: Case) -> tuple[str, str] | None:
    """(kind, description) where ours and the reference disagree, else None."""
    ours, ref = outcome(case.fn, OURS), outcome(case.fn, REF)
    if ours[0] == "ok" and ref[0] == "ok":
        same_bytes = outcome(case.fn, REF, as_bytes=True)
        expected = same_bytes[1] if same_bytes[0] == "ok" else ref[1]
        return None if ours[1] == expected else ("result", f"ours {ours[1]!r} != ref {expected!r}")
    if ours[0] == "ok":
        return ("accepted", f"ours returns {ours[1]!r}; ref raises {ref[1].__name__}({ref[2]!r})")
    if ref[0] == "ok":
        return ("refused", f"ours raises {ours[1].__name__}({ours[2]!r}); ref returns {ref[1]!r}")
    if not issubclass(ours[1], ref[1]):
        return ("type", f"ours {ours[1].__name__}({ours[2]!r}); ref {ref[1].__name__}({ref[2]!r})")
    if case.our_message is not None and issubclass(ref[1], ValueError):
        return None if ours[2] == case.our_message else ("message", f"ours {ours[2]!r}; expected {case.our_message!r}")
    if case.compare_message and ours[2] != ref[2]:
        return ("message", f"{ref[1].__name__}: ours {ours[2]!r}; ref {ref[2]!r}")
    return None


# --- the matrix -----------------------------------------------------------------------------------------

# Calls with the wrong number of arguments, or a keyword where the original takes none: the exception type is
# compared, not its text, which the interpreter's argument parser writes with the implementation's function
# name (openssl_sha256(), __hash_new(), SHA256Hash.update()...) and which differs between builds of the original
# itself (OpenSSL's _hashlib or the builtin _sha2 module) and between Python versions.
ARITY = False

HASH_NAMES = ["md5", "sha1", "sha256", "sha512", "sha3_256", "blake2b", "blake2s", "shake_128"]


def _hashlib_cases() -> Iterator[Case]:
    g = "hashlib"
    for name in HASH_NAMES:
        for vid, v in VALUES.items():
            yield Case(g, f"{name}({vid})", lambda m, n=name, v=v: getattr(m.hashlib, n)(v()))
            yield Case(g, f"new({name!r}, {vid})", lambda m, n=name, v=v: m.hashlib.new(n, v()))
            if name not in ("blake2b", "blake2s"):
                yield Case(g, f"{name}(string={vid})", lambda m, n=name, v=v: getattr(m.hashlib, n)(string=v()))
            yield Case(g, f"new({name!r}, data={vid})", lambda m, n=name, v=v: m.hashlib.new(n, data=v()))
            yield Case(g, f"{name}().update({vid})", lambda m, n=name, v=v: getattr(m.hashlib, n)().update(v()))
            yield Case(
                g, f"{name}(b'x').update({vid}) digest", lambda m, n=name, v=v: _updated(m.hashlib.new(n, b"x"), v())
            )
        for uid, u in {**INTS, "str": lambda: "yes", "list": lambda: []}.items():
            yield Case(
                g, f"{name}(usedforsecurity={uid})", lambda m, n=name, u=u: m.hashlib.new(n, usedforsecurity=u())
            )
        yield Case(g, f"{name}(b'', b'')", lambda m, n=name: getattr(m.hashlib, n)(b"", b""), compare_message=ARITY)
        yield Case(g, f"{name}(bogus=1)", lambda m, n=name: getattr(m.hashlib, n)(bogus=1), compare_message=False)
        yield Case(g, f"{name}().update()", lambda m, n=name: getattr(m.hashlib, n)().update(), compare_message=ARITY)
        yield Case(
            g,
            f"{name}().update(b'', b'')",
            lambda m, n=name: getattr(m.hashlib, n)().update(b"", b""),
            compare_message=ARITY,
        )
        yield Case(g, f"{name}().digest(1)", lambda m, n=name: getattr(m.hashlib, n)().digest(1), compare_message=ARITY)
        yield Case(
            g, f"{name}().hexdigest(1)", lambda m, n=name: getattr(m.hashlib, n)().hexdigest(1), compare_message=ARITY
        )
        yield Case(g, f"{name}().copy(1)", lambda m, n=name: getattr(m.hashlib, n)().copy(1), compare_message=ARITY)
        yield Case(g, f"{name}(b'ab').copy()", lambda m, n=name: getattr(m.hashlib, n)(b"ab").copy())
    for vid, v in VALUES.items():
        yield Case(g, f"new({vid})", lambda m, v=v: m.hashlib.new(v()))
    for spelling in ["SHA256", "sha-256", "Sha3-256", "ripemd160", "RIPEMD-160", "", "sha256 ", "unknown", "sha2"]:
        yield Case(g, f"new({spelling!r})", lambda m, s=spelling: m.hashlib.new(s, b"abc"))
    yield Case(g, "new()", lambda m: m.hashlib.new(), compare_message=ARITY)
    yield Case(g, "new('sha256', b'', b'')", lambda m: m.hashlib.new("sha256", b"", b""), compare_message=ARITY)
    yield Case(g, "new('sha256', string=b'x')", lambda m: m.hashlib.new("sha256", string=b"x"))
    yield Case(g, "new(name='sha256')", lambda m: m.hashlib.new(name="sha256"))


def _updated(h: Any, v: Any) -> Any:
    h.update(v)
    return h


def _blake2_cases() -> Iterator[Case]:
    g = "blake2"
    for name in ("blake2b", "blake2s"):
        for vid, v in VALUES.items():
            for kw in ("key", "salt", "person"):
                yield Case(
                    g, f"{name}({kw}={vid})", lambda m, n=name, k=kw, v=v: getattr(m.hashlib, n)(b"m", **{k: v()})
                )
            yield Case(g, f"{name}(last_node={vid})", lambda m, n=name, v=v: getattr(m.hashlib, n)(last_node=v()))
            yield Case(
                g, f"{name}(data={vid})", lambda m, n=name, v=v: getattr(m.hashlib, n)(data=v()), compare_message=ARITY
            )
        for iid, i in INTS.items():
            for kw in ("digest_size", "fanout", "depth", "leaf_size", "node_offset", "node_depth", "inner_size"):
                yield Case(
                    g, f"{name}({kw}={iid})", lambda m, n=name, k=kw, i=i: getattr(m.hashlib, n)(b"m", **{k: i()})
                )
            yield Case(
                g, f"{name}(digest_size={iid}, key=b'k')",
                lambda m, n=name, i=i: getattr(m.hashlib, n)(b"m", digest_size=i(), key=b"k"),
            )  # fmt: skip
        for size in (1, 16, 20, 28, 32, 48, 64, 65):
            for klen in (0, 1, 32, 64, 65, 128):
                yield Case(
                    g, f"{name}(digest_size={size}, key={klen}B)",
                    lambda m, n=name, s=size, k=klen: getattr(m.hashlib, n)(b"m", digest_size=s, key=b"k" * k),
                )  # fmt: skip
        yield Case(g, f"{name}(bogus=1)", lambda m, n=name: getattr(m.hashlib, n)(bogus=1), compare_message=False)
        yield Case(g, f"{name}(b'', b'')", lambda m, n=name: getattr(m.hashlib, n)(b"", b""), compare_message=ARITY)


def _unsupported(name: Any) -> Optional[str]:
    """pbkdf2_hmac's text for a name the original cannot use: hashlib's wording, where the original's is
    OpenSSL's and depends on its build ("[digital envelope routines] unsupported", "no reason supplied" for an
    XOF). The exception type is still the original's."""
    name = name() if callable(name) else name
    wording = "unsupported hash algorithm" if sys.version_info >= (3, 15) else "unsupported hash type"  # 3.15's
    return f"{wording} {name}" if isinstance(name, str) else None


def _pbkdf2_cases() -> Iterator[Case]:
    g = "pbkdf2_hmac"

    def call(*a: Any, **k: Any) -> Callable[[SimpleNamespace], Any]:
        return lambda m: m.hashlib.pbkdf2_hmac(*[x() if callable(x) else x for x in a], **k)

    for vid, v in VALUES.items():
        yield Case(g, f"password={vid}", call("sha256", v, b"salt", 2))
        yield Case(g, f"salt={vid}", call("sha256", b"pw", v, 2))
        yield Case(g, f"hash_name={vid}", call(v, b"pw", b"salt", 2), our_message=_unsupported(v))
        yield Case(g, f"password={vid} sha1", call("sha1", v, b"salt", 1, 40))
    for iid, i in INTS.items():
        yield Case(g, f"iterations={iid}", call("sha256", b"pw", b"salt", i, 8))
        yield Case(g, f"dklen={iid}", call("sha256", b"pw", b"salt", 1, i))
        yield Case(
            g, f"iterations={iid}, bad name", call("nope", b"pw", b"salt", i, 8), our_message=_unsupported("nope")
        )
    for name in ["sha256", "SHA256", "sha-256", "md5", "sha3_256", "blake2b", "blake2s", "shake_128", "sha512_256",
                 "ripemd160", "unknown", ""]:  # fmt: skip
        yield Case(g, f"hash_name={name!r}", call(name, b"pw", b"salt", 2, 20), our_message=_unsupported(name))
    yield Case(g, "no args", lambda m: m.hashlib.pbkdf2_hmac(), compare_message=ARITY)
    yield Case(g, "keywords", lambda m: m.hashlib.pbkdf2_hmac(hash_name="sha1", password=b"p", salt=b"s", iterations=1))
    yield Case(g, "dklen=None", lambda m: m.hashlib.pbkdf2_hmac("sha1", b"p", b"s", 1, None))
    yield Case(g, "too many", lambda m: m.hashlib.pbkdf2_hmac("sha1", b"p", b"s", 1, 20, 1), compare_message=ARITY)


class _NoReadinto:
    def read(self, n: int = -1) -> bytes:
        return b""


def _file_digest_cases() -> Iterator[Case]:
    g = "file_digest"
    tmp = tempfile.NamedTemporaryFile(delete=False)
    tmp.write(b"file content " * 100)
    tmp.close()
    textpath = tmp.name

    def opened(mode: str) -> Callable[[], Any]:
        return lambda: open(textpath, mode)

    files: dict[str, Callable[[], Any]] = {
        "BytesIO": lambda: io.BytesIO(b"abc" * 10),
        "rb": opened("rb"),
        "rb_unbuffered": lambda: open(textpath, "rb", buffering=0),
        "r_text": opened("r"),
        "StringIO": lambda: io.StringIO("abc"),
        "None": lambda: None,
        "bytes": lambda: b"abc",
        "no_readinto": _NoReadinto,
        "wb": lambda: open(os.devnull, "wb"),
    }
    digests: dict[str, Callable[[SimpleNamespace], Any]] = {
        "'sha256'": lambda m: "sha256",
        "'SHA256'": lambda m: "SHA256",
        "'unknown'": lambda m: "unknown",
        "ctor": lambda m: m.hashlib.sha256,
        "blake2b": lambda m: m.hashlib.blake2b,
        "lambda": lambda m: lambda: m.hashlib.md5(),
        "None": lambda m: None,
        "int": lambda m: 5,
        "bytes": lambda m: b"sha256",
        "returns_int": lambda m: lambda: 5,
    }
    for fid, f in files.items():
        for did, d in digests.items():
            yield Case(g, f"file_digest({fid}, {did})", lambda m, f=f, d=d: m.hashlib.file_digest(f(), d(m)))
    yield Case(g, "file_digest(BytesIO)", lambda m: m.hashlib.file_digest(io.BytesIO(b"")))
    yield Case(g, "file_digest(digest=)", lambda m: m.hashlib.file_digest(io.BytesIO(b""), digest="sha1"))


def _hmac_cases() -> Iterator[Case]:
    g = "hmac"
    mods: dict[str, Callable[[SimpleNamespace], Any]] = {
        "'sha256'": lambda m: "sha256",
        "'SHA256'": lambda m: "SHA256",
        "'blake2b'": lambda m: "blake2b",
        "'shake_128'": lambda m: "shake_128",
        "'unknown'": lambda m: "unknown",
        "hashlib.sha1": lambda m: m.hashlib.sha1,
        "hashlib.md5": lambda m: m.hashlib.md5,
        "lambda": lambda m: lambda d=b"": m.hashlib.sha256(d),
        "None": lambda m: None,
        "''": lambda m: "",
        "int": lambda m: 5,
        "bytes": lambda m: b"sha256",
        "module": lambda m: m.hashlib,
    }
    for vid, v in VALUES.items():
        yield Case(g, f"new(key={vid})", lambda m, v=v: m.hmac.new(v(), b"msg", "sha256"))
        yield Case(g, f"new(msg={vid})", lambda m, v=v: m.hmac.new(b"key", v(), "sha256"))
        yield Case(g, f"HMAC(key={vid}, md5)", lambda m, v=v: m.hmac.HMAC(v(), b"msg", m.hashlib.md5))
        yield Case(g, f"new(msg={vid}, ctor)", lambda m, v=v: m.hmac.new(b"key", v(), m.hashlib.sha1))
        yield Case(g, f"new().update({vid})", lambda m, v=v: _updated(m.hmac.new(b"k", None, "sha1"), v()))
        yield Case(g, f"new(ctor).update({vid})", lambda m, v=v: _updated(m.hmac.new(b"k", None, m.hashlib.sha1), v()))
        yield Case(g, f"digest(key={vid})", lambda m, v=v: m.hmac.digest(v(), b"msg", "sha256"))
        yield Case(g, f"digest(msg={vid})", lambda m, v=v: m.hmac.digest(b"key", v(), "sha256"))
        yield Case(g, f"digest(key={vid}, ctor)", lambda m, v=v: m.hmac.digest(v(), b"msg", m.hashlib.sha1))
        yield Case(g, f"digest(msg={vid}, ctor)", lambda m, v=v: m.hmac.digest(b"key", v(), m.hashlib.sha1))
        yield Case(g, f"digest(key={vid}, unknown)", lambda m, v=v: m.hmac.digest(v(), b"msg", "unknown"))
        yield Case(g, f"compare_digest({vid}, b'abc')", lambda m, v=v: m.hmac.compare_digest(v(), b"abc"))
        yield Case(g, f"compare_digest({vid}, {vid})", lambda m, v=v: m.hmac.compare_digest(v(), v()))
    for did, d in mods.items():
        yield Case(g, f"new(digestmod={did})", lambda m, d=d: m.hmac.new(b"key", b"msg", d(m)))
        yield Case(g, f"digest(digest={did})", lambda m, d=d: m.hmac.digest(b"key", b"msg", d(m)))
        yield Case(g, f"new(mv key, digestmod={did})", lambda m, d=d: m.hmac.new(memoryview(b"key"), b"m", d(m)))
        yield Case(
            g, f"digest(mv_array_I, digest={did})", lambda m, d=d: m.hmac.digest(BUFFERS["mv_array_I"](), b"m", d(m))
        )
    yield Case(g, "new(key)", lambda m: m.hmac.new(b"key"), compare_message=ARITY)
    yield Case(g, "new()", lambda m: m.hmac.new(), compare_message=ARITY)
    yield Case(g, "HMAC copy", lambda m: m.hmac.new(b"k", b"m", "sha256").copy())
    yield Case(g, "HMAC copy ctor", lambda m: m.hmac.new(b"k", b"m", m.hashlib.sha256).copy())
    yield Case(g, "HMAC update()", lambda m: m.hmac.new(b"k", b"m", "sha256").update(), compare_message=ARITY)
    yield Case(g, "HMAC digest(1)", lambda m: m.hmac.new(b"k", b"m", "sha256").digest(1), compare_message=ARITY)
    yield Case(g, "HMAC attrs", lambda m: _attrs(m.hmac.new(b"k", b"m", "sha256"), "digest_size", "block_size", "name"))
    yield Case(
        g,
        "HMAC attrs md5",
        lambda m: _attrs(m.hmac.new(b"k", b"m", m.hashlib.md5), "digest_size", "block_size", "name"),
    )
    yield Case(g, "compare_digest('a', 'a')", lambda m: m.hmac.compare_digest("a", "a"))
    yield Case(g, "compare_digest('\\xe9', '\\xe9')", lambda m: m.hmac.compare_digest("\xe9", "\xe9"))
    yield Case(g, "compare_digest('a', b'a')", lambda m: m.hmac.compare_digest("a", b"a"))


def _attrs(obj: Any, *names: str) -> tuple[Any, ...]:
    return tuple(getattr(obj, n) for n in names)


def _pycryptodome_hash_cases() -> Iterator[Case]:
    g = "Crypto.Hash"
    for mod in PYCRYPTO_HASHES:
        for vid, v in VALUES.items():
            yield Case(g, f"{mod}.new({vid})", lambda m, n=mod, v=v: getattr(m, n).new(v()))
            yield Case(g, f"{mod}.new(data={vid})", lambda m, n=mod, v=v: getattr(m, n).new(data=v()))
            yield Case(g, f"{mod}.new().update({vid})", lambda m, n=mod, v=v: _updated(getattr(m, n).new(), v()))
            yield Case(g, f"{mod}.new().new({vid})", lambda m, n=mod, v=v: getattr(m, n).new().new(v()))
        yield Case(g, f"{mod}.new().copy()", lambda m, n=mod: getattr(m, n).new(b"ab").copy())
        yield Case(g, f"{mod}.new(b'').update()", lambda m, n=mod: getattr(m, n).new().update(), compare_message=ARITY)
        yield Case(g, f"{mod} attrs", lambda m, n=mod: _attrs(getattr(m, n).new(), "digest_size", "block_size", "oid"))
    for vid, v in VALUES.items():
        yield Case(g, f"SHA512.new(truncate={vid})", lambda m, v=v: m.SHA512.new(b"x", truncate=v()))
        yield Case(g, f"Hash.new({vid})", lambda m, v=v: m.Hash.new(v()))
    for mod in PYCRYPTO_HASHES:
        if hasattr(getattr(REF, mod), "digest"):  # module-level one-shot digest(data) where PyCryptodome has it
            for vid, v in VALUES.items():
                yield Case(g, f"{mod}.digest({vid})", lambda m, n=mod, v=v: getattr(m, n).digest(v()))
    for vid, v in VALUES.items():
        yield Case(g, f"SHA512.digest(truncate={vid})", lambda m, v=v: m.SHA512.digest(b"x", truncate=v()))
        yield Case(
            g, f"SHA3_256 update_after_digest={vid}", lambda m, v=v: _after(m.SHA3_256.new(update_after_digest=v()))
        )
        yield Case(g, f"SHA3_256.hexdigest after {vid}", lambda m, v=v: _updated(m.SHA3_256.new(), v()).hexdigest())
    for t in ("224", "256", "512", 224, 256, b"256"):
        yield Case(g, f"SHA512.new(truncate={t!r})", lambda m, t=t: m.SHA512.new(b"x", truncate=t))
    for name in ("SHA256", "sha256", "SHA-256", "2.16.840.1.101.3.4.2.1", "SHA3-256", "SHA512-224", "MD5", "nope"):
        yield Case(g, f"Hash.new({name!r})", lambda m, n=name: m.Hash.new(n))
    # BLAKE2b
    for vid, v in VALUES.items():
        yield Case(g, f"BLAKE2b.new(data={vid})", lambda m, v=v: m.BLAKE2b.new(data=v()))
        yield Case(g, f"BLAKE2b.new(key={vid})", lambda m, v=v: m.BLAKE2b.new(key=v()))
        yield Case(g, f"BLAKE2b.new(key={vid}, 32)", lambda m, v=v: m.BLAKE2b.new(key=v(), digest_bytes=32))
        yield Case(g, f"BLAKE2b.update({vid})", lambda m, v=v: _updated(m.BLAKE2b.new(digest_bits=256), v()))
        yield Case(g, f"BLAKE2b.verify({vid})", lambda m, v=v: m.BLAKE2b.new(key=b"k").verify(v()))
        yield Case(g, f"BLAKE2b.hexverify({vid})", lambda m, v=v: m.BLAKE2b.new(key=b"k").hexverify(v()))
        yield Case(
            g, f"BLAKE2b.update_after_digest={vid}", lambda m, v=v: _after(m.BLAKE2b.new(update_after_digest=v()))
        )
    for iid, i in INTS.items():
        yield Case(g, f"BLAKE2b.new(digest_bytes={iid})", lambda m, i=i: m.BLAKE2b.new(digest_bytes=i()))
        yield Case(g, f"BLAKE2b.new(digest_bits={iid})", lambda m, i=i: m.BLAKE2b.new(digest_bits=i()))
    for bits in (8, 160, 256, 384, 512, 520, 12):
        yield Case(g, f"BLAKE2b.new(digest_bits={bits}, key)", lambda m, b=bits: m.BLAKE2b.new(digest_bits=b, key=b"k"))
    yield Case(g, "BLAKE2b both sizes", lambda m: m.BLAKE2b.new(digest_bits=256, digest_bytes=32))
    good = "6d8e4d6b6a2ffd52c6a3d3a3a9a1f3c1"
    yield Case(g, "BLAKE2b.hexverify(odd)", lambda m: m.BLAKE2b.new(key=b"k").hexverify(good[:-1]))
    yield Case(g, "BLAKE2b.hexverify(nonhex)", lambda m: m.BLAKE2b.new(key=b"k").hexverify("zz"))


def _after(h: Any) -> Any:
    h.digest()
    h.update(b"more")
    return h


def _pycryptodome_mac_cases() -> Iterator[Case]:
    g = "Crypto.Hash.HMAC/CMAC"
    for vid, v in VALUES.items():
        for mod in ("SHA256", "SHA3_256", "MD5", "RIPEMD160"):
            yield Case(g, f"HMAC.new(key={vid}, {mod})", lambda m, v=v, d=mod: m.HMAC.new(v(), b"msg", getattr(m, d)))
        yield Case(g, f"HMAC.new(msg={vid})", lambda m, v=v: m.HMAC.new(b"key", v(), m.SHA256))
        yield Case(g, f"HMAC.update({vid})", lambda m, v=v: _updated(m.HMAC.new(b"k", digestmod=m.SHA1), v()))
        yield Case(g, f"HMAC.verify({vid})", lambda m, v=v: m.HMAC.new(b"k", digestmod=m.SHA1).verify(v()))
        yield Case(g, f"HMAC.hexverify({vid})", lambda m, v=v: m.HMAC.new(b"k", digestmod=m.SHA1).hexverify(v()))
        yield Case(g, f"HMAC.new(digestmod={vid})", lambda m, v=v: m.HMAC.new(b"k", b"m", v()))
        yield Case(g, f"CMAC.new(key={vid})", lambda m, v=v: m.CMAC.new(v(), b"msg", m.AES))
        yield Case(g, f"CMAC.new(msg={vid})", lambda m, v=v: m.CMAC.new(_B16, v(), m.AES))
        yield Case(g, f"CMAC.update({vid})", lambda m, v=v: _updated(m.CMAC.new(_B16, ciphermod=m.AES), v()))
        yield Case(g, f"CMAC b'x'.update({vid})", lambda m, v=v: _updated(m.CMAC.new(_B16, b"x", m.AES), v()))
        yield Case(g, f"CMAC.verify({vid})", lambda m, v=v: m.CMAC.new(_B16, ciphermod=m.AES).verify(v()))
        yield Case(g, f"CMAC.hexverify({vid})", lambda m, v=v: m.CMAC.new(_B16, ciphermod=m.AES).hexverify(v()))
        yield Case(g, f"CMAC.new(ciphermod={vid})", lambda m, v=v: m.CMAC.new(_B16, b"m", v()))
        yield Case(g, f"CMAC.new(cipher_params={vid})", lambda m, v=v: m.CMAC.new(_B16, b"m", m.AES, v()))
    for iid, i in INTS.items():
        yield Case(g, f"CMAC.new(mac_len={iid})", lambda m, i=i: m.CMAC.new(_B16, b"m", m.AES, mac_len=i()))
    for klen in (0, 1, 15, 16, 17, 24, 32, 33):
        yield Case(g, f"CMAC.new(key={klen}B)", lambda m, k=klen: m.CMAC.new(b"k" * k, b"m", m.AES))
    tag = "00" * 16
    yield Case(g, "HMAC.hexverify(odd)", lambda m: m.HMAC.new(b"k", digestmod=m.SHA1).hexverify(tag[:-1]))
    yield Case(g, "CMAC.hexverify(nonhex)", lambda m: m.CMAC.new(_B16, ciphermod=m.AES).hexverify("zz"))
    yield Case(g, "HMAC copy", lambda m: m.HMAC.new(b"k", b"m", m.SHA256).copy())
    yield Case(g, "CMAC copy", lambda m: m.CMAC.new(_B16, b"m", m.AES).copy())
    yield Case(g, "HMAC attrs", lambda m: _attrs(m.HMAC.new(b"k", b"m", m.SHA256), "digest_size", "oid"))
    yield Case(g, "CMAC update after digest", lambda m: _after(m.CMAC.new(_B16, b"m", m.AES)))
    yield Case(g, "HMAC sha3 update after digest", lambda m: _after(m.HMAC.new(b"k", b"m", m.SHA3_256)))


def _kdf_cases() -> Iterator[Case]:
    g = "Crypto.Protocol.KDF"

    def prf(m: SimpleNamespace) -> Callable[[bytes, bytes], bytes]:
        return lambda s, x: m.HMAC.new(s, x, m.SHA256).digest()

    for vid, v in VALUES.items():
        yield Case(
            g, f"PBKDF2(password={vid})", lambda m, v=v: m.KDF.PBKDF2(v(), b"salt", 20, 2, hmac_hash_module=m.SHA256)
        )
        yield Case(g, f"PBKDF2(salt={vid})", lambda m, v=v: m.KDF.PBKDF2(b"pw", v(), 20, 2, hmac_hash_module=m.SHA256))
        yield Case(
            g,
            f"PBKDF2(salt={vid}, RIPEMD160)",
            lambda m, v=v: m.KDF.PBKDF2(b"pw", v(), 20, 2, hmac_hash_module=m.RIPEMD160),
        )
        yield Case(g, f"PBKDF2(module={vid})", lambda m, v=v: m.KDF.PBKDF2(b"pw", b"s", 20, 2, hmac_hash_module=v()))
        yield Case(g, f"HKDF(master={vid})", lambda m, v=v: m.KDF.HKDF(v(), 32, b"salt", m.SHA256))
        yield Case(g, f"HKDF(salt={vid})", lambda m, v=v: m.KDF.HKDF(b"master", 32, v(), m.SHA256))
        yield Case(g, f"HKDF(context={vid})", lambda m, v=v: m.KDF.HKDF(b"master", 32, b"s", m.SHA256, context=v()))
        yield Case(g, f"HKDF(hashmod={vid})", lambda m, v=v: m.KDF.HKDF(b"master", 32, b"s", v()))
        yield Case(g, f"SP800(master={vid})", lambda m, v=v: m.KDF.SP800_108_Counter(v(), 32, prf(m)))
        yield Case(g, f"SP800(label={vid})", lambda m, v=v: m.KDF.SP800_108_Counter(b"k", 32, prf(m), label=v()))
        yield Case(g, f"SP800(context={vid})", lambda m, v=v: m.KDF.SP800_108_Counter(b"k", 32, prf(m), context=v()))
    for iid, i in INTS.items():
        if iid.startswith(("2**", "-2**")):
            big = iid  # huge sizes: only where the original refuses them quickly
            yield Case(g, f"HKDF(key_len={big})", lambda m, i=i: m.KDF.HKDF(b"m", i(), b"s", m.SHA256))
            continue
        yield Case(
            g, f"PBKDF2(dkLen={iid})", lambda m, i=i: m.KDF.PBKDF2(b"pw", b"s", i(), 2, hmac_hash_module=m.SHA256)
        )
        yield Case(
            g, f"PBKDF2(count={iid})", lambda m, i=i: m.KDF.PBKDF2(b"pw", b"s", 20, i(), hmac_hash_module=m.SHA1),
            compare_message=iid != "float",  # PyCryptodome's FFI writes it: cffi, or ctypes (per Python version)
        )  # fmt: skip
        yield Case(
            g,
            f"PBKDF2(count={iid}, BLAKE)",
            lambda m, i=i: m.KDF.PBKDF2(b"pw", b"s", 20, i(), hmac_hash_module=m.RIPEMD160),
        )
        yield Case(g, f"HKDF(key_len={iid})", lambda m, i=i: m.KDF.HKDF(b"m", i(), b"s", m.SHA256))
        yield Case(g, f"HKDF(num_keys={iid})", lambda m, i=i: m.KDF.HKDF(b"m", 16, b"s", m.SHA256, i()))
        yield Case(g, f"SP800(key_len={iid})", lambda m, i=i: m.KDF.SP800_108_Counter(b"k", i(), prf(m)))
        yield Case(g, f"SP800(num_keys={iid})", lambda m, i=i: m.KDF.SP800_108_Counter(b"k", 16, prf(m), i()))
    yield Case(g, "PBKDF2 prf and module", lambda m: m.KDF.PBKDF2(b"p", b"s", 16, 1, prf(m), m.SHA256))
    yield Case(g, "PBKDF2 prf", lambda m: m.KDF.PBKDF2(b"p", b"s", 40, 2, prf(m)))
    yield Case(g, "PBKDF2 ours module in ref", lambda m: m.KDF.PBKDF2(b"p", b"s", 40, 2, hmac_hash_module=CSHA256))
    yield Case(g, "HKDF ref module", lambda m: m.KDF.HKDF(b"m", 40, b"s", CSHA256, 2))
    yield Case(g, "HKDF too much", lambda m: m.KDF.HKDF(b"m", 255 * 32 + 1, b"s", m.SHA256))
    yield Case(g, "SP800 null label", lambda m: m.KDF.SP800_108_Counter(b"k", 16, prf(m), label=b"a\x00"))


GROUPS: dict[str, Callable[[], Iterator[Case]]] = {
    "hashlib": _hashlib_cases,
    "blake2": _blake2_cases,
    "pbkdf2_hmac": _pbkdf2_cases,
    "file_digest": _file_digest_cases,
    "hmac": _hmac_cases,
    "Crypto.Hash": _pycryptodome_hash_cases,
    "Crypto.Hash.HMAC/CMAC": _pycryptodome_mac_cases,
    "Crypto.Protocol.KDF": _kdf_cases,
}

# Differences that are deliberate, asserted as such (group, case id) -> the kind of difference.
EXPECTED: dict[tuple[str, str], str] = {}


def run_group(group: str) -> tuple[int, list[tuple[str, str, str]]]:
    cases = list(GROUPS[group]())
    found = []
    for case in cases:
        diff = mismatch(case)
        expected = EXPECTED.get((group, case.id))
        kind = diff[0] if diff else None
        if kind != expected:
            found.append((kind or "none", case.id, diff[1] if diff else f"expected a {expected} difference"))
    return len(cases), found


NEEDS_PYCRYPTODOME = {"Crypto.Hash", "Crypto.Hash.HMAC/CMAC", "Crypto.Protocol.KDF"}

if pytest is not None:

    @pytest.fixture
    def fallback() -> Iterator[None]:
        kcapi_hashlib.set_policy("fallback")  # conftest's autouse fixture restores strict
        yield

    @pytest.mark.parametrize("group", list(GROUPS))
    def test_bad_input_matrix(group: str, fallback: None) -> None:
        if group in NEEDS_PYCRYPTODOME and not HAVE_PYCRYPTODOME:
            pytest.skip("PyCryptodome (the reference for Crypto.*) is not installed for this Python")
        if group == "file_digest" and not hasattr(hashlib, "file_digest"):
            pytest.skip("hashlib.file_digest is 3.11+: no original to compare with (test_hashlib_api covers ours)")
        total, found = run_group(group)
        assert total > 0
        report = "\n".join(f"  [{kind}] {cid}: {what}" for kind, cid, what in found)
        assert not found, f"{len(found)} of {total} cases differ from the original:\n{report}"


def main() -> None:  # pragma: no cover - a before/after report: run the file as a script
    kcapi_hashlib.set_policy("fallback")
    counts: Counter[str] = Counter()
    total = 0
    verbose = "-v" in sys.argv
    for group in GROUPS:
        if group in NEEDS_PYCRYPTODOME and not HAVE_PYCRYPTODOME:
            print(f"{group}: skipped (no PyCryptodome for this Python)")
            continue
        n, found = run_group(group)
        total += n
        for kind, cid, what in found:
            counts[kind] += 1
            counts[f"{group}:{kind}"] += 1
            if verbose:
                print(f"[{group}] [{kind}] {cid}: {what}")
    print(f"{total} cases; mismatches by kind:", dict(sorted(counts.items())))
    print(f"AF_ALG operations: {_afalg.kernel_operations()}; fallbacks: {kcapi_hashlib.fallback_counts()}")


if __name__ == "__main__":
    main()
