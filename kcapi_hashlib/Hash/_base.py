"""The shared body of kcapi_hashlib.Hash's PyCryptodome-style hash modules (SHA256, SHA3_256, ...).

Each object wraps a kcapi_hashlib hash object: the kernel's (or, under the fallback policy, hashlib's), so
these modules follow the same policy as kcapi_hashlib itself. Data types are checked as PyCryptodome's C
glue checks them (bytes, bytearray and memoryview only; same TypeError text).
"""

from __future__ import annotations

from binascii import unhexlify
from typing import Any, Callable, Optional, Protocol, TypeVar, Union

from .. import _hashes
from .._algorithms import BY_NAME
from .._callable import make_builtin

Buffer = Union[bytes, bytearray, memoryview]

_H = TypeVar("_H", bound="HashBase")
_P = TypeVar("_P", bound="PlainHash")
_S = TypeVar("_S", bound="SHA3Base")
_P_co = TypeVar("_P_co", bound="PlainHash", covariant=True)
_S_co = TypeVar("_S_co", bound="SHA3Base", covariant=True)


def check_data(data: Any) -> None:
    """PyCryptodome's c_uint8_ptr: bytes, bytearray and memoryview only."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"Object type {type(data)} cannot be passed to C code")


def unhexlify_tag(hex_mac_tag: Any) -> bytes:
    """unhexlify(tobytes(tag)) with PyCryptodome's errors (tobytes' TypeError, binascii.Error)."""
    if isinstance(hex_mac_tag, str):
        hex_mac_tag = hex_mac_tag.encode("latin-1")
    elif isinstance(hex_mac_tag, (bytearray, memoryview)):
        hex_mac_tag = bytes(hex_mac_tag)
    elif not isinstance(hex_mac_tag, bytes):
        raise TypeError(f"Expected a string or a bytes-like object, not {type(hex_mac_tag).__name__}")
    return unhexlify(hex_mac_tag)


def make(name: str) -> Any:
    """A new kcapi_hashlib hash object for hashlib name `name` (raises / falls back as the policy says)."""
    return _hashes.CONSTRUCTORS[name]()


def oneshot(name: str, data: Any) -> bytes:
    check_data(data)
    h = make(name)
    h.update(data)
    return h.digest()  # type: ignore[no-any-return]


class HashBase:
    """A PyCryptodome-style hash object (update, digest, hexdigest, copy) computed by the kernel.

    A subclass declared with ``alg="sha256"`` (a hashlib name) takes its class attributes digest_size, block_size
    and oid from kcapi_hashlib._algorithms."""

    digest_size: int
    block_size: int
    oid: str
    _name: str  # hashlib's name of the algorithm

    _h: Any

    def __init_subclass__(cls, alg: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if alg:
            row = BY_NAME[alg]
            cls._name = row.name
            cls.digest_size = row.digest_size
            cls.block_size = row.block_size
            cls.oid = cls.__dict__.get("oid") or row.oid  # the class body's own (MD4's) over the table's

    def _start(self, name: str, data: Optional[Buffer]) -> None:
        self._h = make(name)
        if data:
            self.update(data)

    def update(self, data: Buffer) -> Any:
        """Continue hashing of a message by consuming the next chunk of data.

        Args:
            data (byte string/byte array/memoryview): The next chunk of the message being hashed.
        """
        check_data(data)
        self._h.update(data)
        return None

    def digest(self) -> bytes:
        """Return the **binary** (non-printable) digest of the message that has been hashed so far.

        :return: The hash digest, computed over the data processed so far.
                 Binary form.
        :rtype: byte string
        """
        return self._h.digest()  # type: ignore[no-any-return]

    def hexdigest(self) -> str:
        """Return the **printable** digest of the message that has been hashed so far.

        :return: The hash digest, computed over the data processed so far.
                 Hexadecimal encoded.
        :rtype: string
        """
        return self.digest().hex()

    def _clone(self: _H) -> _H:
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._h = self._h.copy()
        return clone

    def copy(self: _H) -> _H:
        """Return a copy ("clone") of the hash object.

        The copy will have the same internal state as the original hash
        object.
        This can be used to efficiently compute the digests of strings that
        share a common initial substring.

        :return: A hash object of the same type
        """
        return self._clone()

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__qualname__} object at {hex(id(self))}>"


class PlainHash(HashBase):
    """MD5, SHA-1, SHA-2, RIPEMD-160 objects: made as ``Cls(data=None)``; update() returns None."""

    def __init__(self, data: Optional[Buffer] = None) -> None:
        self._start(self._name, data)

    def new(self: _P, data: Optional[Buffer] = None) -> _P:
        """Create a fresh hash object of the same algorithm."""

        return type(self)(data)


class SHA3Base(HashBase):
    """SHA-3 objects: update() returns self, and refuses data after digest() unless update_after_digest."""

    _update_after_digest: bool
    _digest_done: bool

    def __init__(self, data: Optional[Buffer], update_after_digest: bool) -> None:
        self._update_after_digest = update_after_digest
        self._digest_done = False
        self._padding = 0x06
        self._start(self._name, data)

    def update(self: _S, data: Buffer) -> _S:
        """Continue hashing of a message by consuming the next chunk of data.

        Args:
            data (byte string/byte array/memoryview): The next chunk of the message being hashed.
        """
        if self._digest_done and not self._update_after_digest:
            raise TypeError("You can only call 'digest' or 'hexdigest' on this object")
        check_data(data)
        self._h.update(data)
        return self

    def new(self: _S, data: Optional[Buffer] = None) -> _S:
        """Create a fresh hash object of the same algorithm."""

        return type(self)(data, self._update_after_digest)

    def digest(self) -> bytes:
        self._digest_done = True
        value: bytes = self._h.digest()
        self._digest_value = value
        return value

    def copy(self: _H) -> _H:
        clone = self._clone()
        clone._digest_done = False  # type: ignore[attr-defined]  # as PyCryptodome: the clone is made by new()
        return clone


# --- the module-level API of a hash module (new, digest, digest_size, block_size), made from its class -----------


class NewFunction(Protocol[_P_co]):
    def __call__(self, data: Optional[Buffer] = None) -> _P_co: ...


class SHA3NewFunction(Protocol[_S_co]):
    def __call__(self, data: Optional[Buffer] = None, *, update_after_digest: bool = False) -> _S_co: ...


class DigestFunction(Protocol):
    def __call__(self, data: Buffer) -> bytes: ...


def _public(fn: Callable[..., Any], cls: type[HashBase], doc: str) -> None:
    """Name fn as a function of cls's module (as PyCryptodome's module-level new/digest are); the caller makes
    it a builtin-like callable (kcapi_hashlib._callable: it does not bind as a method when stored on a class)."""
    fn.__module__ = cls.__module__
    fn.__doc__ = doc
    fn.__qualname__ = fn.__name__
    if fn.__name__ == "new":
        fn.__annotations__["return"] = cls.__name__  # not the TypeVar, for help() and inspect


def module_api(cls: type[_P]) -> tuple[NewFunction[_P], int, int]:
    """(new, digest_size, block_size) of the module that defines cls."""

    def new(data: Optional[Buffer] = None) -> _P:
        return cls(data)

    _public(new, cls, f"Create a new {cls.__name__} object; data (optional) is the message's first chunk.")
    return make_builtin(new), cls.digest_size, cls.block_size


def sha3_module_api(cls: type[_S]) -> tuple[SHA3NewFunction[_S], int, int]:
    """(new, digest_size, block_size) of the SHA-3 module that defines cls."""

    def new(data: Optional[Buffer] = None, *, update_after_digest: bool = False) -> _S:
        return cls(data, update_after_digest)

    doc = f"Create a new {cls.__name__} object; update_after_digest: whether update() may follow digest()."
    _public(new, cls, doc)
    return make_builtin(new), cls.digest_size, cls.block_size


def digest_function(cls: type[HashBase]) -> DigestFunction:
    """The module-level digest(data) of cls's module (PyCryptodome 4.1+): ``new(data).digest()`` in one go."""
    name = cls._name

    def digest(data: Buffer) -> bytes:
        return oneshot(name, data)

    _public(digest, cls, f"Compute the {cls.__name__} digest of a complete message, in one go.")
    return make_builtin(digest)
