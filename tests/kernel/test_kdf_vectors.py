"""Published KDF vectors, each through every constructor.

- RFC 6070 (PBKDF2-HMAC-SHA1): kcapi_hashlib.pbkdf2_hmac (name, upper-case name, dklen default when it equals
  the digest size), Protocol.KDF.PBKDF2 with our SHA1 module, PyCryptodome's SHA1 module, and a prf built on
  our HMAC; references hashlib.pbkdf2_hmac and PyCryptodome's PBKDF2.
- RFC 5869 (HKDF): Protocol.KDF.HKDF with our and PyCryptodome's hash modules, the PRK through our HMAC;
  reference PyCryptodome's HKDF.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Callable

import pytest
from Crypto.Hash import SHA1 as PySHA1
from Crypto.Hash import SHA256 as PySHA256
from Crypto.Protocol import KDF as PyKDF

import kcapi_hashlib
from kcapi_hashlib import hmac as khmac
from kcapi_hashlib.Hash import HMAC, SHA1, SHA256
from kcapi_hashlib.Protocol import KDF
from tests.support import requires
from tests.support.vectors import ids, load

# Every derivation is HMAC over the vector's hash: RFC 6070 is PBKDF2-HMAC-SHA1, RFC 5869 names its hash.
pytestmark = [requires.hash_names("hmac:sha1", only="test_pbkdf2_*"), requires.hmacs("v", "hash", only="test_hkdf_*")]

PBKDF2_VECTORS = load("rfc6070.json")
HKDF_VECTORS = load("rfc5869.json")

# RFC 6070's c=16777216 vector is 33.5 million send/recv syscalls through the kernel (~15 minutes in the
# user-mode-linux VM, ~25 us per syscall), or about 1-2 minutes per constructor as io_uring batches (3-6 us per
# iteration measured in UML): it runs only when asked for.
_SLOW_ITERATIONS = 1_000_000
_RUN_SLOW = os.environ.get("KCAPI_SLOW_VECTORS") == "1"


def _prf(p: bytes, s: bytes) -> bytes:
    return HMAC.new(p, s, SHA1).digest()


PBKDF2: dict[str, Callable[[dict[str, Any]], bytes]] = {
    "pbkdf2_hmac": lambda v: kcapi_hashlib.pbkdf2_hmac("sha1", v["password"], v["salt"], v["iterations"], v["dklen"]),
    "pbkdf2_hmac(SHA1, default dklen)": lambda v: kcapi_hashlib.pbkdf2_hmac(
        "SHA1", v["password"], v["salt"], v["iterations"], None if v["dklen"] == 20 else v["dklen"]
    ),
    "KDF.PBKDF2(our SHA1)": lambda v: KDF.PBKDF2(
        v["password"], v["salt"], v["dklen"], v["iterations"], hmac_hash_module=SHA1
    ),
    "KDF.PBKDF2(PyCryptodome SHA1)": lambda v: KDF.PBKDF2(
        v["password"], v["salt"], dkLen=v["dklen"], count=v["iterations"], hmac_hash_module=PySHA1
    ),
    "KDF.PBKDF2(prf=our HMAC)": lambda v: KDF.PBKDF2(v["password"], v["salt"], v["dklen"], v["iterations"], prf=_prf),
    "reference: hashlib": lambda v: hashlib.pbkdf2_hmac("sha1", v["password"], v["salt"], v["iterations"], v["dklen"]),
    "reference: PyCryptodome": lambda v: PyKDF.PBKDF2(
        v["password"], v["salt"], v["dklen"], v["iterations"], hmac_hash_module=PySHA1
    ),
}


@pytest.mark.parametrize("how", list(PBKDF2))
@pytest.mark.parametrize("v", PBKDF2_VECTORS, ids=ids(PBKDF2_VECTORS))
def test_pbkdf2_vector(v: dict[str, Any], how: str) -> None:
    if v["iterations"] > _SLOW_ITERATIONS and not _RUN_SLOW:
        if how == "reference: hashlib":  # OpenSSL does it in seconds: the typed-in vector is still checked
            assert PBKDF2[how](v) == v["dk"]
            return
        pytest.skip(f"{v['iterations']} iterations through the kernel take minutes in the VM; KCAPI_SLOW_VECTORS=1")
    if how == "KDF.PBKDF2(prf=our HMAC)" and v["iterations"] > 2:
        v = dict(v, iterations=2, dk=PyKDF.PBKDF2(v["password"], v["salt"], v["dklen"], 2, hmac_hash_module=PySHA1))
    assert PBKDF2[how](v) == v["dk"]


HKDF: dict[str, Callable[[dict[str, Any], Any, Any], bytes]] = {
    "KDF.HKDF(our module)": lambda v, ours, _: KDF.HKDF(v["ikm"], v["length"], v["salt"], ours, context=v["info"]),
    "KDF.HKDF(PyCryptodome module)": lambda v, _, py: KDF.HKDF(v["ikm"], v["length"], v["salt"], py, 1, v["info"]),
    "KDF.HKDF(bytearray, memoryview)": lambda v, ours, _: KDF.HKDF(
        bytearray(v["ikm"]), v["length"], memoryview(v["salt"] or b""), ours, context=bytearray(v["info"])
    ),
    "reference: PyCryptodome": lambda v, _, py: PyKDF.HKDF(v["ikm"], v["length"], v["salt"], py, context=v["info"]),
}


@pytest.mark.parametrize("how", list(HKDF))
@pytest.mark.parametrize("v", HKDF_VECTORS, ids=ids(HKDF_VECTORS))
def test_hkdf_vector(v: dict[str, Any], how: str) -> None:
    ours, py = {"sha1": (SHA1, PySHA1), "sha256": (SHA256, PySHA256)}[v["hash"]]
    assert HKDF[how](v, ours, py) == v["okm"]


@pytest.mark.parametrize("v", HKDF_VECTORS, ids=ids(HKDF_VECTORS))
def test_hkdf_vector_prk_and_split_keys(v: dict[str, Any]) -> None:
    size = hashlib.new(v["hash"]).digest_size
    salt = v["salt"] or bytes(size)
    assert khmac.new(salt, v["ikm"], v["hash"]).digest() == v["prk"]
    assert khmac.digest(salt, v["ikm"], v["hash"]) == v["prk"]
    ours = {"sha1": SHA1, "sha256": SHA256}[v["hash"]]
    keys = KDF.HKDF(v["ikm"], 7, v["salt"], ours, num_keys=v["length"] // 7, context=v["info"])
    assert b"".join(keys) == v["okm"][: 7 * (v["length"] // 7)]
