"""Published hash vectors, each through every constructor: the named kernel constructor, new(name), new() with
the upper-case name, and the stdlib / PyCryptodome reference where one exists on this machine."""

from __future__ import annotations

import hashlib
from typing import Any, Callable

import pytest

import kcapi_hashlib
from tests.support import requires
from tests.support.vectors import ids, load

pytestmark = requires.hashes("v", "algorithm")

VECTORS = load("hash.json")


def _message(v: dict[str, Any]) -> bytes:
    return bytes(v["message"]) * int(v["repeat"])


def _kwargs(v: dict[str, Any]) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if "digest_size" in v:
        kw["digest_size"] = v["digest_size"]
    if "key" in v:
        kw["key"] = v["key"]
    return kw


def _reference(name: str) -> Callable[..., Any] | None:
    try:
        hashlib.new(name)
    except ValueError:
        pass
    else:
        return lambda data=b"", **kw: hashlib.new(name, data, **kw)
    if name == "md4":
        from Crypto.Hash import MD4

        return lambda data=b"", **kw: MD4.new(data)
    return None


CONSTRUCTORS: dict[str, Callable[[str], Callable[..., Any] | None]] = {
    "named": lambda name: (
        getattr(kcapi_hashlib, name, None) or (lambda data=b"", **kw: kcapi_hashlib.new(name, data, **kw))
    ),
    "new": lambda name: lambda data=b"", **kw: kcapi_hashlib.new(name, data, **kw),
    "new-upper": lambda name: lambda data=b"", **kw: kcapi_hashlib.new(name.upper(), data, **kw),
    "reference": _reference,
}


@pytest.mark.parametrize("how", list(CONSTRUCTORS))
@pytest.mark.parametrize("v", VECTORS, ids=ids(VECTORS))
def test_vector(v: dict[str, Any], how: str) -> None:
    name = v["algorithm"]
    if name not in kcapi_hashlib.algorithms_available:
        pytest.fail(f"{name} is not available in this kernel: {kcapi_hashlib._afalg.probe('hash', name)}")
    ctor = CONSTRUCTORS[how](name)
    if ctor is None:
        # Only whirlpool and streebog have no userspace implementation on this machine; say so, loudly.
        assert name in {"whirlpool", "streebog256", "streebog512"}, f"no reference for {name}"
        return
    h = ctor(_message(v), **_kwargs(v))
    assert h.digest() == v["digest"]
    assert h.hexdigest() == v["digest"].hex()
    if how != "reference":
        assert isinstance(h, kcapi_hashlib.HASH)


@pytest.mark.parametrize("v", [v for v in VECTORS if v["repeat"] > 1], ids=lambda v: v["name"])
def test_vector_in_chunks(v: dict[str, Any]) -> None:
    """The million-'a' messages fed in uneven pieces cross the buffering threshold and the streaming path."""
    h = kcapi_hashlib.new(v["algorithm"])
    data = _message(v)
    pos, step = 0, 1
    while pos < len(data):
        h.update(data[pos : pos + step])
        pos += step
        step = step * 3 + 1
    assert h.digest() == v["digest"]
