"""The one private package that makes AF_ALG syscalls; see core's docstring."""

from .core import (
    AF_ALG,
    AlgUnavailable,
    Buffer,
    KernelError,
    Tfm,
    af_alg_status,
    at_fork_in_child,
    close_all,
    explain,
    kernel_operations,
    keyed_tfm,
    probe,
    stats,
    tfm,
)
from .hash import HashStream, hash_oneshot

__all__ = [
    "AF_ALG", "AlgUnavailable", "Buffer", "HashStream", "KernelError", "Tfm", "af_alg_status",
    "at_fork_in_child", "close_all", "explain", "hash_oneshot", "kernel_operations",
    "keyed_tfm", "probe", "stats", "tfm",
]  # fmt: skip
