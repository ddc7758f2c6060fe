"""Published HMAC vectors (RFC 2202: HMAC-MD5/SHA-1; RFC 4231: HMAC-SHA-224/256/384/512), each through every
constructor: kcapi_hashlib.hmac (new with a name, with kcapi_hashlib's constructor, with the stdlib's
constructor, HMAC class, digest(), the uncached private-tfm path), kcapi_hashlib.Hash.HMAC (with our hash
module, with PyCryptodome's module and with a hash object), and the references (stdlib hmac, PyCryptodome)."""

from __future__ import annotations

import hashlib
import hmac as std_hmac
import importlib
from typing import Any, Callable

import pytest
from Crypto.Hash import HMAC as PyHMAC

import kcapi_hashlib
from kcapi_hashlib import _afalg, _hashes
from kcapi_hashlib import hmac as khmac
from kcapi_hashlib.Hash import HMAC as KHMAC
from tests.support import requires
from tests.support.vectors import ids, load

pytestmark = requires.hmacs("v", "hash")

VECTORS = [dict(v, file="rfc2202") for v in load("rfc2202.json")] + [
    dict(v, file="rfc4231") for v in load("rfc4231.json")
]
_MODULES = {
    "md5": "MD5",
    "sha1": "SHA1",
    "sha224": "SHA224",
    "sha256": "SHA256",
    "sha384": "SHA384",
    "sha512": "SHA512",
}


def _ours(name: str) -> Any:
    return importlib.import_module(f"kcapi_hashlib.Hash.{_MODULES[name]}")


def _pycryptodome(name: str) -> Any:
    return importlib.import_module(f"Crypto.Hash.{_MODULES[name]}")


def _uncached(key: bytes, data: bytes, name: str) -> bytes:
    tfm = khmac.kernel_tfm(name, key, cached=False)
    assert tfm is not None
    try:
        return _afalg.hash_oneshot(tfm, (data,), _hashes.ALGORITHMS[name].digest_size)
    finally:
        tfm.close()


CONSTRUCTORS: dict[str, Callable[[bytes, bytes, str], bytes]] = {
    "hmac.new(name)": lambda k, d, n: khmac.new(k, d, n).digest(),
    "hmac.new(NAME)": lambda k, d, n: khmac.new(k, d, digestmod=n.upper()).digest(),
    "hmac.new(kcapi ctor)": lambda k, d, n: khmac.new(k, d, getattr(kcapi_hashlib, n)).digest(),
    "hmac.new(stdlib ctor)": lambda k, d, n: khmac.new(k, d, getattr(hashlib, n)).digest(),
    "hmac.HMAC+update": lambda k, d, n: _updated(khmac.HMAC(bytearray(k), digestmod=n), d),
    "hmac.digest": lambda k, d, n: khmac.digest(k, d, n),
    "hmac.digest(memoryview)": lambda k, d, n: khmac.digest(memoryview(k), memoryview(d), n),
    "uncached tfm": _uncached,
    "Hash.HMAC(our module)": lambda k, d, n: KHMAC.new(k, d, _ours(n)).digest(),
    "Hash.HMAC(PyCryptodome module)": lambda k, d, n: KHMAC.new(k, d, digestmod=_pycryptodome(n)).digest(),
    "Hash.HMAC(hash object)": lambda k, d, n: KHMAC.new(k, d, _ours(n).new()).digest(),
    "reference: stdlib hmac": lambda k, d, n: std_hmac.new(k, d, n).digest(),
    "reference: PyCryptodome": lambda k, d, n: PyHMAC.new(k, d, _pycryptodome(n)).digest(),
}


def _updated(h: Any, data: bytes) -> bytes:
    for i in range(0, len(data), 7):
        h.update(data[i : i + 7])
    return h.digest()  # type: ignore[no-any-return]


@pytest.mark.parametrize("how", list(CONSTRUCTORS))
@pytest.mark.parametrize("v", VECTORS, ids=[f"{v['file']}-{i}" for v, i in zip(VECTORS, ids(VECTORS))])
def test_vector(v: dict[str, Any], how: str) -> None:
    mac = CONSTRUCTORS[how](v["key"], v["data"], v["hash"])
    want = v["digest"]
    if v.get("truncated_to"):
        assert len(mac) > len(want)
        mac = mac[: v["truncated_to"]]
    assert mac == want
    if "digest_96" in v:
        assert mac[:12] == v["digest_96"]


@pytest.mark.parametrize("v", VECTORS, ids=[f"{v['file']}-{i}" for v, i in zip(VECTORS, ids(VECTORS))])
def test_vector_hexdigest_name_and_sizes(v: dict[str, Any]) -> None:
    h = khmac.new(v["key"], v["data"], v["hash"])
    assert h._hmac is not None  # the kernel's hmac(...), not the RFC 2104 construction
    assert h.name == f"hmac-{v['hash']}"
    assert (h.digest_size, h.block_size) == (
        _hashes.ALGORITHMS[v["hash"]].digest_size,
        hashlib.new(v["hash"]).block_size,
    )
    assert h.hexdigest()[: 2 * len(v["digest"])] == v["digest"].hex()
    p = KHMAC.new(v["key"], v["data"], _ours(v["hash"]))
    p.verify(p.digest())
    p.hexverify(p.hexdigest())
