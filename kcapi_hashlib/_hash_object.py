"""hashlib's hash object over the kernel (HASH), and the byte views its methods take.

A HASH is hashlib's surface over _afalg.HashStream, which holds the state once the object is updated; until
then it is its initial bytes (see the class). No socket is touched here (see _afalg).
"""

from __future__ import annotations

from typing import Any, Optional, Union

from . import _afalg

Buffer = Union[bytes, bytearray, memoryview]


def view(obj: object) -> memoryview:
    """A flat byte view of obj, with hashlib's errors for str and non-buffers."""
    if type(obj) is bytes:  # the common case: a view of bytes is always flat and of format "B"
        return memoryview(obj)
    if isinstance(obj, str):
        raise TypeError("Strings must be encoded before hashing")
    try:
        view = memoryview(obj)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError("object supporting the buffer API required") from None
    if not view.c_contiguous:
        raise BufferError("memoryview: underlying buffer is not C-contiguous")
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def tp_name(obj: object) -> str:
    """The C-level type name CPython's own messages show (Py_TYPE(obj)->tp_name: 'array.array', 'int', 'Foo'),
    read from one of those messages so that it is exact for C, spec-made and Python-defined types alike."""
    try:
        "".join([obj])  # type: ignore[list-item]
    except TypeError as e:  # "sequence item 0: expected str instance, <tp_name> found"
        text = str(e)
        head, tail = "expected str instance, ", " found"
        if head in text and text.endswith(tail):
            return text[text.index(head) + len(head) : -len(tail)]
    return type(obj).__name__


def byte_view(obj: object) -> memoryview:
    """A flat byte view of obj as a C function's Py_buffer argument ("y*") takes it, with its errors:
    TypeError for non-buffers (str too), BufferError for non-C-contiguous ones. Always measured in bytes."""
    try:
        view = memoryview(obj)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"a bytes-like object is required, not '{tp_name(obj)}'") from None
    if not view.c_contiguous:
        raise BufferError("memoryview: underlying buffer is not C-contiguous")
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


_FLUSH = _afalg.FLUSH
_new = object.__new__


class _ImmutableType(type):
    """Like hashlib's C types: attributes of the class cannot be set or deleted."""

    def __setattr__(cls, name: str, value: Any) -> None:
        raise TypeError(f"cannot set {name!r} attribute of immutable type {cls.__name__!r}")

    def __delattr__(cls, name: str) -> None:
        raise TypeError(f"cannot delete {name!r} attribute of immutable type {cls.__name__!r}")


class HASH(metaclass=_ImmutableType):
    """A hash object computed by the kernel; behaves as hashlib's (never finalized by digest()).

    Made only by the constructors (new(), sha256(), ...): like hashlib's types it cannot be instantiated.
    Until it is first updated (or fed a file), an object is its initial bytes: `_data`, immutable, fewer than
    FLUSH (64 KiB), with `_tfm` and the cached `_digest`; digest() hashes them in one write and one read, and
    copy() shares them. Nothing about such an object can change, so those calls need no lock. The first update
    makes `_state`, the HashStream that from then on holds all state (buffered bytes, the kernel's partial hash,
    the cached digest) and its lock, and small bytes updates append to its `pending` list without the lock
    (HashStream.add_bytes); once made it is never replaced (see _stream) nor goes back to None. A call
    that read `_state` as None just before another thread's first update made it answers for the object as it
    was before that update (which had not returned yet).
    """

    __slots__ = ("name", "digest_size", "block_size", "_state", "_tfm", "_data", "_digest", "_pending")

    name: str
    digest_size: int
    block_size: int
    _state: Optional[_afalg.HashStream]
    _tfm: _afalg.Tfm
    _data: bytes
    _digest: Optional[bytes]
    _pending: list[_afalg.HashStream]  # the streams made for _state: the first one is it (see _stream)

    def __new__(cls, *args: Any, **kwargs: Any) -> HASH:
        raise TypeError(f"cannot create '{cls.__module__}.{cls.__qualname__}' instances")

    @classmethod
    def _create(
        cls,
        name: str,
        digest_size: int,
        block_size: int,
        tfm: _afalg.Tfm,
        data: object = b"",
        state: Optional[_afalg.HashStream] = None,
    ) -> HASH:
        """A new object over `state`; else holding `data` (any object update() takes, with its errors) so far: as
        its initial bytes when they are fewer than FLUSH, else in a new stream of `tfm` (the kernel takes them now)."""
        self: HASH = _new(cls)
        self.name = name
        self.digest_size = digest_size
        self.block_size = block_size
        self._tfm = tfm
        self._digest = None
        self._pending = []
        if state is None:
            if type(data) is bytes and len(data) < _FLUSH:  # the common case: bytes are immutable, held as given
                self._data = data
            else:
                v = view(data)
                if v.nbytes < _FLUSH:
                    self._data = bytes(v)  # a copy: the caller may change its buffer afterwards
                else:
                    self._data = b""
                    state = _afalg.HashStream(tfm, buffered=True, data=v)
        self._state = state
        return self

    def _stream(self) -> _afalg.HashStream:
        """The object's HashStream, made from its initial bytes on first need. Every caller that finds _state
        None (threads, or a signal handler that updates the object while its thread is in here) makes one and
        appends it to _pending: list.append is one C call, so whatever the interleaving, all of them take the
        first one appended and store that same one; the others are dropped unused (they hold no kernel state)."""
        pending = self._pending
        pending.append(_afalg.HashStream(self._tfm, buffered=True, data=memoryview(self._data)))
        state = pending[0]
        self._state = state
        return state

    def update(self, obj: Buffer, /) -> None:
        state = self._state
        if state is None:
            data = view(obj)  # hashlib's TypeError before anything is made
            state = self._stream()
            state.update_view(data)
        elif type(obj) is bytes:
            state.add_bytes(obj)  # the common case: a small one is appended without the lock (see there)
        else:
            state.update_view(view(obj))

    def digest(self) -> bytes:
        state = self._state
        if state is not None:
            return state.digest(self.digest_size)
        out = self._digest
        if out is None:
            out = self._digest = _afalg.exchange(self._tfm, self._data, self.digest_size)
        return out

    def hexdigest(self) -> str:
        return self.digest().hex()

    def copy(self) -> HASH:
        state = self._state
        if state is not None:
            return HASH._create(self.name, self.digest_size, self.block_size, self._tfm, state=state.copy())
        new = HASH._create(self.name, self.digest_size, self.block_size, self._tfm)
        new._data = self._data
        new._digest = self._digest
        return new

    def _splice_file(self, fd: int, offset: int, count: int) -> int:
        """Hash count bytes of fd from offset without copying them through Python; returns bytes taken."""
        state = self._state
        if state is None:
            state = self._stream()
        return state.splice_file(fd, offset, count)

    def __repr__(self) -> str:
        return f"<{self.name} kcapi_hashlib.HASH object @ {hex(id(self))}>"

    def __reduce__(self) -> Any:
        raise TypeError(f"cannot pickle {type(self).__name__!r} object")
