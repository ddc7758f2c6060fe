"""Crypto.Util.Counter: the description of a CTR-mode counter block, as PyCryptodome's.

The value is a plain dict (PyCryptodome's CounterParams), so objects made by this module and by
Crypto.Util.Counter.new are interchangeable: either can be passed as `counter=` to kcapi_hashlib's or
PyCryptodome's AES.new(key, AES.MODE_CTR, counter=...).
"""

from __future__ import annotations

from typing import TypedDict


class CounterParams(TypedDict):
    """The description of a CTR mode counter, as returned by new()."""

    counter_len: int
    prefix: bytes
    suffix: bytes
    initial_value: int
    little_endian: bool


def new(
    nbits: int,
    prefix: bytes = b"",
    suffix: bytes = b"",
    initial_value: int = 1,
    little_endian: bool = False,
    allow_wraparound: bool = False,
) -> CounterParams:
    """A counter block prefix || counter value (nbits bits) || suffix, as Crypto.Util.Counter.new.

    nbits must be a multiple of 8 and initial_value must fit in it; len(prefix) + nbits // 8 + len(suffix)
    must be the cipher's block size. allow_wraparound is ignored (the cipher raises when the counter wraps).
    """
    if (nbits % 8) != 0:
        raise ValueError("'nbits' must be a multiple of 8")

    iv_bl = initial_value.bit_length()
    if iv_bl > nbits:
        raise ValueError(f"Initial value takes {iv_bl} bits but it is longer than the counter ({nbits} bits)")

    return {
        "counter_len": nbits // 8,
        "prefix": prefix,
        "suffix": suffix,
        "initial_value": initial_value,
        "little_endian": little_endian,
    }


__all__ = ["CounterParams", "new"]
