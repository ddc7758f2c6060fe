"""MACs and KDFs: kcapi_hashlib next to the stdlib (hmac, hashlib.pbkdf2_hmac) and PyCryptodome.

- hmac sha256, one key for every message (the token-signing pattern: a fresh `hmac.new(key, data,
  'sha256').digest()` per message), at each size: kcapi_hashlib.hmac, the stdlib hmac, PyCryptodome's HMAC
  (with PyCryptodome's SHA256), and kcapi_hashlib.Hash.HMAC.
- hmac sha256 with a key never seen before on every operation (64 B messages): the key-cache miss path.
- hmac.digest sha256 one-shot: kcapi_hashlib.hmac.digest against the stdlib's.
- cmac aes-128: kcapi_hashlib.Hash.CMAC (kernel cmac(aes)) against PyCryptodome's CMAC, at each size.
- pbkdf2 sha256 (1000 iterations, 32-byte key): kcapi_hashlib.pbkdf2_hmac, hashlib.pbkdf2_hmac,
  kcapi_hashlib.Protocol.KDF.PBKDF2 and PyCryptodome's PBKDF2; hkdf sha256 (64-byte output): ours and
  PyCryptodome's. KDF rows give the output size as SIZE.
"""

from __future__ import annotations

import hashlib
import hmac as std_hmac
import itertools
from typing import Any, Callable

from Crypto.Cipher import AES
from Crypto.Hash import CMAC as PyCMAC
from Crypto.Hash import HMAC as PyHMAC
from Crypto.Hash import SHA256 as PySHA256
from Crypto.Protocol import KDF as PyKDF

import kcapi_hashlib
from benchmarks._common import Case
from kcapi_hashlib import hmac as khmac
from kcapi_hashlib.Hash import CMAC, HMAC, SHA256
from kcapi_hashlib.Protocol import KDF

KEY = bytes(range(32))
AES_KEY = bytes(range(16))
PBKDF2_ITERATIONS = (1000,)
NEW_KEY_SIZE = 64


def _data(size: int) -> bytes:
    pattern = bytes(range(256))
    return (pattern * (size // 256 + 1))[:size]


def _fresh_keys() -> Callable[[], bytes]:
    counter = itertools.count()
    return lambda: next(counter).to_bytes(16, "big")


def _fresh(fn: Callable[[bytes], Any]) -> Callable[[], Any]:
    keys = _fresh_keys()  # each implementation gets the same key sequence, so the first results agree
    return lambda: fn(keys())


def cases(sizes: list[int]) -> list[Case]:
    out: list[Case] = []
    for size in sizes:
        data = _data(size)
        out.append(
            Case(
                group="hmac",
                name="sha256 same key",
                size=size,
                impls={
                    "kcapi_hashlib": lambda d=data: khmac.new(KEY, d, "sha256").digest(),
                    "hmac (stdlib)": lambda d=data: std_hmac.new(KEY, d, "sha256").digest(),
                    "kcapi_hashlib.Hash.HMAC": lambda d=data: HMAC.new(KEY, d, SHA256).digest(),
                    "PyCryptodome HMAC": lambda d=data: PyHMAC.new(KEY, d, PySHA256).digest(),
                },
                setup=f"from kcapi_hashlib import hmac\nKEY = bytes(range(32))\ndata = bytes({size})",
                op="hmac.new(KEY, data, 'sha256').digest()",
            )
        )
    out.append(
        Case(
            group="hmac",
            name="sha256 new key each op",
            size=NEW_KEY_SIZE,
            impls={
                "kcapi_hashlib": _fresh(lambda k: khmac.new(k, _data(NEW_KEY_SIZE), "sha256").digest()),
                "hmac (stdlib)": _fresh(lambda k: std_hmac.new(k, _data(NEW_KEY_SIZE), "sha256").digest()),
                "PyCryptodome HMAC": _fresh(lambda k: PyHMAC.new(k, _data(NEW_KEY_SIZE), PySHA256).digest()),
            },
            setup=(
                "import itertools\nfrom kcapi_hashlib import hmac\nfrom kcapi_hashlib._afalg import keyed\n"
                f"data = bytes({NEW_KEY_SIZE})\nkeys = (i.to_bytes(16, 'big') for i in itertools.count())\n"
                "for _ in range(keyed.CACHE_SIZE + 1): hmac.digest(next(keys), data, 'sha256')"
            ),
            op="hmac.new(next(keys), data, 'sha256').digest()",
        )
    )
    for size in sizes[:2]:
        data = _data(size)
        out.append(
            Case(
                group="hmac",
                name="hmac.digest sha256",
                size=size,
                impls={
                    "kcapi_hashlib": lambda d=data: khmac.digest(KEY, d, "sha256"),
                    "hmac (stdlib)": lambda d=data: std_hmac.digest(KEY, d, "sha256"),
                },
                setup=f"from kcapi_hashlib import hmac\nKEY = bytes(range(32))\ndata = bytes({size})",
                op="hmac.digest(KEY, data, 'sha256')",
            )
        )
    for size in sizes:
        data = _data(size)
        out.append(
            Case(
                group="cmac",
                name="aes-128",
                size=size,
                impls={
                    "kcapi_hashlib": lambda d=data: CMAC.new(AES_KEY, d, ciphermod=AES).digest(),
                    "PyCryptodome CMAC": lambda d=data: PyCMAC.new(AES_KEY, d, ciphermod=AES).digest(),
                },
                setup=(
                    "from kcapi_hashlib.Hash import CMAC\nfrom Crypto.Cipher import AES\n"
                    f"KEY = bytes(range(16))\ndata = bytes({size})"
                ),
                op="CMAC.new(KEY, data, ciphermod=AES).digest()",
            )
        )
    for count in PBKDF2_ITERATIONS:
        out.append(
            Case(
                group="kdf",
                name=f"pbkdf2 sha256 c={count}",
                size=32,
                impls={
                    "kcapi_hashlib": lambda c=count: kcapi_hashlib.pbkdf2_hmac("sha256", b"password", b"salt", c),
                    "hashlib.pbkdf2_hmac": lambda c=count: hashlib.pbkdf2_hmac("sha256", b"password", b"salt", c),
                    "kcapi_hashlib...KDF.PBKDF2": lambda c=count: KDF.PBKDF2(
                        b"password", b"salt", 32, c, hmac_hash_module=SHA256
                    ),
                    "PyCryptodome PBKDF2": lambda c=count: PyKDF.PBKDF2(
                        b"password", b"salt", 32, c, hmac_hash_module=PySHA256
                    ),
                },
                setup="import kcapi_hashlib",
                op=f"kcapi_hashlib.pbkdf2_hmac('sha256', b'password', b'salt', {count})",
            )
        )
    out.append(
        Case(
            group="kdf",
            name="hkdf sha256",
            size=64,
            impls={
                "kcapi_hashlib": lambda: KDF.HKDF(b"input key material", 64, b"salt", SHA256),
                "PyCryptodome HKDF": lambda: PyKDF.HKDF(b"input key material", 64, b"salt", PySHA256),
            },
            setup="from kcapi_hashlib.Protocol.KDF import HKDF\nfrom kcapi_hashlib.Hash import SHA256",
            op="HKDF(b'input key material', 64, b'salt', SHA256)",
        )
    )
    return out
