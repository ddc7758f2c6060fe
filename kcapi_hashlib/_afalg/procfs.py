"""The one reader of /proc/crypto: the kernel's table of algorithm implementations ("drivers").

crypto/proc.c c_show() prints one block per registered crypto_alg, blank-line separated `key : value` lines:
name (cra_name), driver (cra_driver_name), module, priority, refcnt, selftest ("passed" once CRYPTO_ALG_TESTED),
internal (CRYPTO_ALG_INTERNAL), `fips` only while fips_enabled ("no" for CRYPTO_ALG_FIPS_INTERNAL), then the
type's own lines (type, async for ahash/skcipher/aead, blocksize, digestsize, ...). Larval (still loading)
entries say "type : larval" and are skipped here. Only reading happens here; no socket.
"""

from __future__ import annotations

import errno
import os
from typing import NamedTuple, Optional

from .files import read as _read

PROC_CRYPTO = "/proc/crypto"
FIPS_ENABLED = "/proc/sys/crypto/fips_enabled"

# /proc/crypto "type" values each AF_ALG type binds (crypto/algif_hash.c allocates an ahash, which wraps an
# shash; algif_skcipher a skcipher, which wraps an lskcipher from 6.8; algif_aead an aead; algif_rng an rng).
PROC_TYPES: dict[str, tuple[str, ...]] = {
    "hash": ("shash", "ahash"),
    "skcipher": ("skcipher", "lskcipher"),
    "aead": ("aead",),
    "rng": ("rng",),
}


class Implementation(NamedTuple):
    """One /proc/crypto block: one implementation (driver) of an algorithm."""

    name: str  # cra_name: what callers bind by default ("sha256")
    driver: str  # cra_driver_name: this implementation ("sha256-generic", "sha256-avx2")
    module: str  # "kernel" when built in
    priority: int  # the highest-priority tested implementation wins a bind by cra_name
    selftest: str  # "passed" or "unknown"
    internal: bool  # CRYPTO_ALG_INTERNAL: never reachable from AF_ALG (only as a part of another algorithm)
    type: str  # "shash", "ahash", "skcipher", "aead", "rng", "cipher", ...
    asynchronous: Optional[bool]  # the block's "async" line; None where the type prints none (shash is sync)
    fips_allowed: Optional[bool]  # the "fips" line, printed only while the kernel is in FIPS mode; else None


def read() -> str:
    """/proc/crypto's text ("" where it cannot be read)."""
    return _read(PROC_CRYPTO, 1 << 24) or ""


def blocks(text: Optional[str] = None) -> list[dict[str, str]]:
    """The blocks of /proc/crypto (or of `text`), one dict per block."""
    if text is None:
        text = read()
    found: list[dict[str, str]] = []
    block: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if block:
                found.append(block)
                block = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            block[key.strip()] = value.strip()
    if block:
        found.append(block)
    return found


def block_priority(block: dict[str, str]) -> int:
    try:
        return int(block.get("priority", "0"))
    except ValueError:
        return 0


def _flag(value: Optional[str]) -> Optional[bool]:
    return None if value is None else value == "yes"


def parse(text: Optional[str] = None) -> list[Implementation]:
    """Every implementation /proc/crypto lists (larval entries left out), in the kernel's order."""
    return [
        Implementation(
            name=b.get("name", ""),
            driver=b.get("driver", ""),
            module=b.get("module", ""),
            priority=block_priority(b),
            selftest=b.get("selftest", "unknown"),
            internal=b.get("internal", "no") == "yes",
            type=b.get("type", ""),
            asynchronous=_flag(b.get("async")),
            fips_allowed=_flag(b.get("fips")),
        )
        for b in blocks(text)
        if b.get("type") != "larval" and "name" in b
    ]


def names(text: Optional[str] = None) -> set[str]:
    """Every cra_name /proc/crypto lists."""
    return {b["name"] for b in blocks(text) if "name" in b}


def of(alg_type: str, name: str, text: Optional[str] = None) -> list[Implementation]:
    """The implementations of cra_name `name` that AF_ALG type `alg_type` looks among, highest priority
    first (where no block has one of the type's frontends, every block of that name). `text`: /proc/crypto's
    text as read before (None: read it now)."""
    same = [i for i in parse(text) if i.name == name]
    typed = [i for i in same if i.type in PROC_TYPES.get(alg_type, ())]
    return sorted(typed or same, key=lambda i: -i.priority)


def chosen(alg_type: str, name: str, text: Optional[str] = None) -> Optional[Implementation]:
    """The implementation a bind by cra_name picks: crypto/api.c __crypto_alg_lookup() takes the highest
    cra_priority among the matching, non-moribund algorithms (internal ones are masked out for AF_ALG), and
    crypto_alg_mod_lookup waits for the self-test, so tested ones are preferred here."""
    pool = [i for i in of(alg_type, name, text) if not i.internal]
    if not pool:
        return None
    return max(pool, key=lambda i: (i.selftest == "passed", i.priority))


def by_driver(driver: str, text: Optional[str] = None) -> Optional[Implementation]:
    """The implementation whose cra_driver_name is `driver`, or None (driver names are unique in the kernel:
    crypto_check_alg/__crypto_register_alg refuse a second one with EEXIST)."""
    for impl in parse(text):
        if impl.driver == driver:
            return impl
    return None


def fips_enabled() -> Optional[bool]:
    """/proc/sys/crypto/fips_enabled (fips=1 on the kernel command line, CONFIG_CRYPTO_FIPS); None where the
    file does not exist (a kernel without CONFIG_CRYPTO_FIPS is never in FIPS mode)."""
    text = _read(FIPS_ENABLED)
    if text is None:
        return None
    return text.strip() not in ("", "0")


def fips_refused(name: str, text: Optional[str] = None) -> Optional[str]:
    """In FIPS mode: the first of `name` and the names inside it (a template such as hmac(md5) or cbc(des3_ede))
    that /proc/crypto lists only as "fips: no", the reason a lookup of `name` fails (crypto/testmgr.c: alg_test
    marks an algorithm without fips_allowed CRYPTO_ALG_FIPS_INTERNAL, and crypto/api.c: crypto_alg_lookup masks
    those out of every lookup from outside the crypto API); None where none is, or the kernel is not in FIPS mode."""
    if not fips_enabled():
        return None
    listed = parse(text)
    parts = [name] + [p for p in name.replace(")", "(").replace(",", "(").split("(") if p and p != name]
    for part in parts:
        found = [i for i in listed if i.name == part or i.driver == part]
        if found and all(i.fips_allowed is False for i in found):
            return part
    return None


# --- which implementations AF_ALG reaches (binds: the module's only calls into core) ----------------------


def _kernel_release() -> tuple[int, int]:
    head = os.uname().release.split("-")[0].split(".")
    try:
        return int(head[0]), int(head[1]) if len(head) > 1 else 0
    except ValueError:
        return 0, 0


def unreachable(impl: Implementation, why: Optional[OSError]) -> str:
    """Why AF_ALG cannot bind `impl` by its driver name, as a sentence (why: the bind's refusal)."""
    if impl.internal:
        return f"{impl.driver} is internal (CRYPTO_ALG_INTERNAL): only other algorithms use it, AF_ALG never binds it"
    if why is None:
        return f"{impl.driver} was not tried"
    if why.errno == errno.ENOENT and getattr(why, "restriction", None) is None:
        # Linux 7.2's af_alg masks CRYPTO_ALG_ASYNC | CRYPTO_ALG_ALLOCATES_MEMORY | CRYPTO_ALG_KERN_DRIVER_ONLY out
        # of every algif_* bind (docs/kernel-notes.md#linux-7-2): listed, yet ENOENT.
        masked = _kernel_release() >= (7, 2) or bool(impl.asynchronous)
        return f"/proc/crypto lists {impl.driver} ({impl.name}) but AF_ALG cannot bind it: ENOENT" + (
            " (Linux 7.2+ masks asynchronous, memory-allocating and driver-only implementations out of AF_ALG)"
            if masked
            else ""
        )
    return str(why)
