"""Published CMAC vectors (RFC 4493, AES-128-CMAC), each through every constructor: kcapi_hashlib.Hash.CMAC
with PyCryptodome's AES module and with kcapi_hashlib's own Cipher.AES, one update or many, truncated
mac_len, verify/hexverify, and the reference (PyCryptodome's CMAC)."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from Crypto.Cipher import AES as PyAES
from Crypto.Hash import CMAC as PyCMAC

from kcapi_hashlib.Cipher import AES as KAES
from kcapi_hashlib.Hash import CMAC
from tests.support import requires
from tests.support.vectors import ids, load

pytestmark = requires.kernel_alg("hash", "cmac(aes)")

VECTORS = load("rfc4493.json")


def _chunked(key: bytes, msg: bytes, ciphermod: Any) -> bytes:
    mac = CMAC.new(key, ciphermod=ciphermod)
    for i in range(0, len(msg), 5):
        mac.update(msg[i : i + 5])
    return mac.digest()


CONSTRUCTORS: dict[str, Callable[[bytes, bytes], bytes]] = {
    "CMAC.new(msg, PyCryptodome AES)": lambda k, m: CMAC.new(k, m, PyAES).digest(),
    "CMAC.new(kcapi_hashlib AES)": lambda k, m: CMAC.new(k, msg=m, ciphermod=KAES).digest(),
    "CMAC.new + updates": lambda k, m: _chunked(k, m, PyAES),
    "CMAC.new(bytearray, memoryview)": lambda k, m: CMAC.new(bytearray(k), memoryview(m), PyAES).digest(),
    "reference: PyCryptodome": lambda k, m: PyCMAC.new(k, m, ciphermod=PyAES).digest(),
}


@pytest.mark.parametrize("how", list(CONSTRUCTORS))
@pytest.mark.parametrize("v", VECTORS, ids=ids(VECTORS))
def test_vector(v: dict[str, Any], how: str) -> None:
    assert CONSTRUCTORS[how](v["key"], v["message"]) == v["mac"]


@pytest.mark.parametrize("v", VECTORS, ids=ids(VECTORS))
def test_vector_truncated_and_verified(v: dict[str, Any]) -> None:
    for mac_len in (4, 8, 12, 16):
        mac = CMAC.new(v["key"], v["message"], PyAES, mac_len=mac_len)
        assert mac.digest_size == mac_len
        assert mac.digest() == v["mac"][:mac_len]
        mac.verify(v["mac"][:mac_len])
        mac.hexverify(v["mac"][:mac_len].hex())
        with pytest.raises(ValueError, match="MAC check failed"):
            mac.verify(bytes(mac_len))
