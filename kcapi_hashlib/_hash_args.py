"""What the running Python's hashlib is, for kcapi_hashlib's constructors to mirror it: its own constructors
(captured at import, for the fallback and for their errors), how they take their arguments (data, string=,
usedforsecurity, BLAKE2's keywords) and their signatures, probed on the running hashlib rather than read from
the version. No kernel here: _hashes builds the kernel's objects and calls these to parse and check.
"""

from __future__ import annotations

import hashlib as _stdlib_hashlib
import inspect
import sys
import warnings
from typing import Any, Callable, Optional, Union

from ._algorithms import ROWS

Buffer = Union[bytes, bytearray, memoryview]

# The named constructors hashlib has on every build (kcapi_hashlib.algorithms_guaranteed); the rest are reached
# through new().
GUARANTEED: tuple[str, ...] = tuple(row.name for row in ROWS if row.guaranteed)

# The stdlib's own constructors, captured at import: install() later puts ours into the hashlib module, and the
# fallback must never call back into itself.
STDLIB: dict[str, Callable[..., Any]] = {name: getattr(_stdlib_hashlib, name) for name in GUARANTEED}
STDLIB_NEW: Callable[..., Any] = _stdlib_hashlib.new


def stdlib(name: str) -> Callable[..., Any]:
    ctor = STDLIB.get(name)
    return ctor if ctor is not None else (lambda *a, **k: STDLIB_NEW(name, *a, **k))


def takes(constructor: Callable[..., Any], **kwargs: Any) -> bool:
    try:
        constructor(**kwargs)
    except TypeError:
        return False
    return True


# 3.14 renamed the constructors' data parameter to `data` and kept `string` as a keyword-only alias, and
# hashlib.new became new(name, *args, **kwargs); blake2b/blake2s take `data` by keyword too (before:
# positional-only). Debian's 3.13.5 has that surface as well (backported), so it is probed on the running
# hashlib's own constructors, not read from the version. 3.15 warns about `string`.
STRING_ALIAS = takes(STDLIB["sha256"], data=b"")
DATA = "data" if STRING_ALIAS else "string"
STRING_DEPRECATED = sys.version_info >= (3, 15)
STRING_DEPRECATION = (
    "the 'string' keyword parameter is deprecated since Python 3.15 and slated for removal in Python 3.19; "
    "use the 'data' keyword parameter or pass the data to hash as a positional argument instead"
)
# hashlib's ValueError for a name it has no hash for (3.15: hashlib.h's HASHLIB_UNSUPPORTED_ALGORITHM).
UNSUPPORTED = "unsupported hash algorithm " if sys.version_info >= (3, 15) else "unsupported hash type "
UNSET: Any = object()


def arguments(
    original: Callable[..., Any],
    first: Optional[str],
    keywords: frozenset[str],
    args: Any,
    kwargs: dict[str, Any],
    stacklevel: int = 3,
) -> tuple[Any, dict[str, Any]]:
    """(data, the other keyword arguments) of a constructor call, taken as the running Python's constructor
    takes them: data positionally or by the name `first` (None: positional-only), on 3.14+ also as `string=`
    (3.15: with its DeprecationWarning), plus the keyword-only `keywords`.

    Any call the original refuses (too many positional arguments, an argument given by name and position, an
    unknown keyword, both data= and string=) is handed to `original` itself with b"" in place of the data, so
    the TypeError, its text and which of several faults it names are the original's (Argument Clinic's)."""
    data = args[0] if args else UNSET
    string = UNSET
    rest: dict[str, Any] = {}
    ok = len(args) <= 1
    for key, value in kwargs.items():
        if key == first:
            ok = ok and not args
            data = value
        elif key == "string" and STRING_ALIAS:
            string = value
        elif key in keywords:
            rest[key] = value
        else:
            ok = False
    if string is not UNSET:
        ok = ok and data is UNSET
        if ok:
            if STRING_DEPRECATED:  # attributed to the caller of the constructor (or of new())
                warnings.warn(STRING_DEPRECATION, DeprecationWarning, stacklevel=stacklevel)
            data = string
    if not ok:
        original(*(b"" for _ in args), **{k: b"" if k in (first, "string") else v for k, v in kwargs.items()})
        raise TypeError(f"{getattr(original, '__name__', 'new')}() got an invalid combination of arguments")
    return (b"" if data is UNSET else data), rest


def signature(original: Optional[Callable[..., Any]], fallback: inspect.Signature) -> inspect.Signature:
    """The original's signature (its Argument Clinic text signature), else `fallback`."""
    try:
        if original is not None:
            return inspect.signature(original)
    except (TypeError, ValueError):  # pragma: no cover - a build without text signatures
        pass
    return fallback


TREE_DEFAULTS: dict[str, Any] = {
    "fanout": 1,
    "depth": 1,
    "leaf_size": 0,
    "node_offset": 0,
    "node_depth": 0,
    "inner_size": 0,
    "last_node": False,
}


def blake2_reference(
    data: Buffer = b"",
    /,
    *,
    digest_size: int = 64,
    key: Buffer = b"",
    salt: Buffer = b"",
    person: Buffer = b"",
    fanout: int = 1,
    depth: int = 1,
    leaf_size: int = 0,
    node_offset: int = 0,
    node_depth: int = 0,
    inner_size: int = 0,
    last_node: bool = False,
    usedforsecurity: bool = True,
) -> None: ...


# blake2b/blake2s keyword arguments besides the data (defaults: BLAKE2_DEFAULTS, TREE_DEFAULTS, digest_size per
# function). Up to 3.13 `data` is positional-only; from 3.14 it may be given by name (or as string=).
BLAKE2_KEYWORDS = frozenset(inspect.signature(blake2_reference).parameters) - {"data"}
BLAKE2_DATA = "data" if takes(STDLIB["blake2b"], data=b"") else None  # see STRING_ALIAS
BLAKE2_DEFAULTS: dict[str, Any] = {"key": b"", "salt": b"", "person": b"", "usedforsecurity": True}


def blake2_signature(name: str, digest_size: int) -> inspect.Signature:
    ref = inspect.signature(blake2_reference)
    params = [p.replace(default=digest_size) if p.name == "digest_size" else p for p in ref.parameters.values()]
    return signature(STDLIB[name], ref.replace(parameters=params))
