"""AES.new's mode and CTR's initial_value given as objects other than plain ints: the same cipher (or the same
error) as PyCryptodome's, which compares the mode with == in order and converts initial_value with
operator.index. kcapi_hashlib looks a plain int up in a table and takes initial_value 0 without a conversion;
anything else must not be decided by a hash or by its own __eq__ there."""

from __future__ import annotations

import decimal
import fractions
from typing import Any

import pytest
from Crypto.Cipher import AES as CAES

from kcapi_hashlib.Cipher import AES as KAES
from tests.support import requires

pytestmark = [*requires.cipher_code("AES.MODE_ECB AES.MODE_CTR")]

KEY = bytes(range(16))
BLOCK = bytes(16)


class EqOnly:  # __eq__ and no __hash__: unhashable, equal to 6 (CTR)
    def __eq__(self, other: object) -> bool:
        return other == 6


class EqOwnHash:  # equal to 6, with a hash of its own
    def __eq__(self, other: object) -> bool:
        return other == 6

    def __hash__(self) -> int:
        return 12345


class IntOwnHash(int):
    def __hash__(self) -> int:
        return 999


class HashRaises:
    def __hash__(self) -> int:
        raise ZeroDivisionError("hash called")


class HashTypeError:  # equal to 1 (ECB), its hash raises TypeError
    def __eq__(self, other: object) -> bool:
        return other == 1

    def __hash__(self) -> int:
        raise TypeError("no hash")


class AlwaysEqual(int):  # an int (5 by operator.index) that says it equals everything
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = int.__hash__


MODES: list[Any] = [
    1, True, 6.0, fractions.Fraction(6), decimal.Decimal(6), float("nan"), [6], None, "6",
    EqOnly(), EqOwnHash(), IntOwnHash(6), HashRaises(), HashTypeError(),
]  # fmt: skip


def _outcome(module: Any, mode: Any, **kwargs: Any) -> str:
    try:
        cipher = module.new(KEY, mode, **kwargs)
        return f"{type(cipher).__name__} {cipher.encrypt(BLOCK).hex()}"
    except Exception as e:
        return type(e).__name__


@pytest.mark.parametrize("mode", MODES, ids=[f"{type(m).__name__}-{i}" for i, m in enumerate(MODES)])
def test_mode_objects_dispatch_as_pycryptodome(mode: Any) -> None:
    try:
        kwargs = {"nonce": bytes(8)} if mode == 6 else {}
    except Exception:
        kwargs = {}
    assert _outcome(KAES, mode, **kwargs) == _outcome(CAES, mode, **kwargs)


@pytest.mark.parametrize("value", [0, False, AlwaysEqual(5), IntOwnHash(0), 2**63])
def test_ctr_initial_value_objects_give_pycryptodome_s_counter(value: Any) -> None:
    ours = _outcome(KAES, KAES.MODE_CTR, nonce=bytes(8), initial_value=value)
    assert ours == _outcome(CAES, CAES.MODE_CTR, nonce=bytes(8), initial_value=value)
