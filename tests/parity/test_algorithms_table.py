"""kcapi_hashlib._algorithms, the one table of hash facts, against the originals it describes: hashlib's sizes and
names, PyCryptodome's OIDs, module sizes and Crypto.Hash.new() names, Crypto.Hash.HMAC's OIDs."""

from __future__ import annotations

import hashlib
import importlib

import pytest
from Crypto import Hash as PyHash
from Crypto.Hash import HMAC as PyHMAC

from kcapi_hashlib import Hash, _algorithms, _hashes

ROWS = {row.name: row for row in _algorithms.ROWS}


@pytest.mark.parametrize("name", sorted(ROWS))
def test_row_against_hashlib(name: str) -> None:
    row = ROWS[name]
    if name not in hashlib.algorithms_available:
        assert not row.guaranteed
        pytest.skip(f"this Python's hashlib has no {name} to compare with")  # md4, sm3, streebog: build-dependent
    h = hashlib.new(name)
    assert (row.digest_size, row.block_size) == (h.digest_size, h.block_size)
    assert row.guaranteed == (name in hashlib.algorithms_guaranteed)
    for alias in row.aliases:
        assert hashlib.new(alias).name == h.name, alias


@pytest.mark.parametrize("name", sorted(n for n, row in ROWS.items() if row.module))
def test_row_against_pycryptodome(name: str) -> None:
    row = ROWS[name]
    for module in (row.module, *row.module_aliases):
        theirs = importlib.import_module(f"Crypto.Hash.{module}")
        obj = theirs.new(truncate=row.truncate) if row.truncate else theirs.new()
        assert obj.digest_size == row.digest_size and obj.block_size == row.block_size, module
        assert getattr(obj, "oid", "") == row.oid or (name == "md4" and not row.oid), module  # md4: see the table
        if row.hmac_oid:
            assert PyHMAC.new(b"k", digestmod=obj).oid == row.hmac_oid
    for spelling in (row.oid, *row.crypto_new) if row.crypto_new else ():
        assert PyHash.new(spelling).oid == row.oid, spelling
        assert PyHash.new(spelling.lower()).oid == row.oid, spelling


def test_crypto_hash_new_knows_exactly_the_table_oids() -> None:
    for row in _algorithms.ROWS:
        if row.oid:
            try:
                PyHash.new(row.oid)
            except ValueError:
                known = False
            else:
                known = True
            assert known == bool(row.crypto_new), row.name


@pytest.mark.parametrize("name", sorted(n for n, row in ROWS.items() if row.crypto_new and row.kernel))
def test_our_modules_and_hash_new_compute_the_same(name: str) -> None:
    row = ROWS[name]
    ours = importlib.import_module(f"kcapi_hashlib.Hash.{row.module}")
    theirs = importlib.import_module(f"Crypto.Hash.{row.module}")
    assert (ours.digest_size, ours.block_size) == (theirs.digest_size, theirs.block_size)
    assert ours.new(b"abc").digest() == theirs.new(b"abc").digest() == hashlib.new(name, b"abc").digest()
    assert type(Hash.new(row.oid)) is type(ours.new())
    assert _hashes.kernel_name(name) == row.kernel
