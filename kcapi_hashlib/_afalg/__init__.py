"""The one private package that makes AF_ALG syscalls; see core's docstring.

The rest of kcapi_hashlib comes in through here only: it imports what __all__ lists from this package, never from
one of its submodules (tests/tools/test_import_graph.py checks it). The submodules that callers use as a whole are
listed as module objects: their hot paths call through the module attribute (core.exchange, skcipher's and aead's
functions), one global lookup and one attribute lookup, as before. Importing core already loads accounting, errors,
files, keyring, procfs and restrict, so those are bound here (and lifecycle, which registers the fork and exit
handlers: not for callers); aead, drivers, keyed, rng, skcipher and uring (and the
names taken from them) load on first use (PEP 562 __getattr__ below), as they did when callers imported them
directly: importing this package loads no more than it did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from . import accounting, core, files, hash, keyring, procfs, restrict
from . import lifecycle as lifecycle  # registers the fork and exit handlers (see its docstring)
from .core import (
    AF_ALG,
    AlgUnavailable,
    Buffer,
    KernelError,
    Tfm,
    af_alg_status,
    at_fork_in_child,
    close_all,
    exchange,
    explain,
    kernel_operations,
    keyed_tfm,
    probe,
    stats,
    tfm,
)
from .hash import FLUSH, HashStream, hash_oneshot, mac_stream
from .keyring import KeyringError, Serial

if TYPE_CHECKING:  # what the lazy names are, for type checkers
    from . import aead, drivers, keyed, rng, skcipher, uring
    from .skcipher import Stream, max_message

# lazy name -> the submodule it lives in (None: the name is that submodule)
_LAZY: dict[str, Optional[str]] = {
    "aead": None,
    "drivers": None,
    "keyed": None,
    "rng": None,
    "skcipher": None,
    "uring": None,
    "Stream": "skcipher",
    "max_message": "skcipher",
}


def __getattr__(name: str) -> Any:
    # Called only for names not (yet) in the namespace; importing a submodule binds it here (the import system
    # sets the attribute), a name taken from one is stored, so each is looked up here once.
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    owner = _LAZY[name]
    if owner is None:
        return import_module(f"{__name__}.{name}")
    value = getattr(import_module(f"{__name__}.{owner}"), name)
    globals()[name] = value
    return value


__all__ = [
    # submodules, as module objects
    "accounting", "aead", "core", "drivers", "files", "hash", "keyed", "keyring", "procfs", "restrict", "rng",
    "skcipher", "splice", "uring",
    # names
    "AF_ALG", "AlgUnavailable", "Buffer", "FLUSH", "HashStream", "KernelError", "KeyringError", "Serial", "Stream",
    "Tfm", "af_alg_status", "at_fork_in_child", "close_all", "exchange", "explain", "hash_oneshot",
    "kernel_operations", "keyed_tfm", "mac_stream", "max_message", "probe", "stats", "tfm",
]  # fmt: skip
