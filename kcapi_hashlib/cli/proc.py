"""Reading /proc: bounded file reads and /proc/crypto, the kernel's table of algorithms and drivers."""

from __future__ import annotations

from typing import Optional

from .._afalg import files, procfs


def read(path: str, limit: int = 1 << 20) -> Optional[str]:
    """Up to `limit` bytes of a file as text, or None if it cannot be read: the library's own reader
    (_afalg.files; the library never imports cli), with a larger default."""
    return files.read(path, limit)


# /proc/crypto "type" values that each AF_ALG type binds (crypto/algif_*.c look up these frontends).
_PROC_TYPES = {
    "hash": ("shash", "ahash"),
    "skcipher": ("skcipher", "lskcipher"),
    "aead": ("aead",),
    "rng": ("rng",),
}


def proc_crypto(text: Optional[str] = None) -> list[dict[str, str]]:
    """The blocks of /proc/crypto (or of `text`), one dict per block: the library's one parser
    (_afalg.procfs)."""
    return procfs.blocks(text)


def crypto_entry(blocks: list[dict[str, str]], alg_type: str, name: str) -> Optional[dict[str, str]]:
    """The /proc/crypto block the kernel would pick for (alg_type, name): the highest-priority, non-internal
    implementation of that name (crypto_alg_lookup prefers tested, higher-priority algorithms)."""
    candidates = [b for b in blocks if b.get("name") == name and b.get("internal", "no") != "yes"]
    typed = [b for b in candidates if b.get("type") in _PROC_TYPES.get(alg_type, ())]
    pool = typed or candidates
    if not pool:
        return None
    return max(pool, key=lambda b: (b.get("selftest", "passed") == "passed", procfs.block_priority(b)))
