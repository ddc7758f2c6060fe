"""`kcapi-hashlib list`: every algorithm this package offers, bound once, described from /proc/crypto."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from typing import Any, Callable, NamedTuple, Optional

from .output import errname, out
from .proc import crypto_entry, priority, proc_crypto


class Row(NamedTuple):
    """One algorithm this package offers, as `list` shows it."""

    kind: str  # "hash", "hmac", "cmac", "cipher", ...
    name: str  # the name callers use (hashlib.new's, Crypto's)
    alg_type: str  # the AF_ALG type bound for it: "hash", "skcipher", "aead", "rng"
    kernel: Optional[str]  # the kernel's algorithm name; None where the kernel has none
    note: str = ""  # why there is no kernel algorithm (when kernel is None)


def _hash_rows() -> list[Row]:
    from .._hashes import ALGORITHMS

    return [
        Row("hash", name, "hash", alg.kernel, "" if alg.kernel else f"the kernel has no AF_ALG hash for {name}")
        for name, alg in ALGORITHMS.items()
    ]


# kind -> its rows. Modules adding algorithms (HMAC, CMAC, ciphers, ...) add their kind here.
ROW_SOURCES: dict[str, Callable[[], list[Row]]] = {
    "hash": _hash_rows,
}


def algorithm_report(kinds: Optional[Iterable[str]] = None) -> list[dict[str, Any]]:
    """One dict per algorithm: bound first (binding makes the kernel load its module, so it shows up in
    /proc/crypto), then described from /proc/crypto."""
    from .. import _afalg, _policy

    rows = [row for kind, source in ROW_SOURCES.items() if kinds is None or kind in kinds for row in source()]
    failures: dict[tuple[str, str], Optional[_afalg.AlgUnavailable]] = {}
    for row in rows:
        if row.kernel is not None:
            failures[(row.alg_type, row.kernel)] = _afalg.probe(row.alg_type, row.kernel)
    blocks = proc_crypto()
    policy = _policy.get_policy()
    report = []
    for row in rows:
        entry = crypto_entry(blocks, row.alg_type, row.kernel) if row.kernel else None
        why: Optional[BaseException] = failures.get((row.alg_type, row.kernel)) if row.kernel else None
        available = row.kernel is not None and why is None
        reason = "" if available else (str(why) if why is not None else row.note)
        report.append(
            {
                "kind": row.kind,
                "name": row.name,
                "alg_type": row.alg_type,
                "kernel": row.kernel,
                "driver": entry.get("driver") if entry else None,
                "module": entry.get("module") if entry else None,
                "priority": priority(entry) if entry else None,
                "selftest": entry.get("selftest") if entry else None,
                "available": available,
                "errno": errname(why.errno) if isinstance(why, OSError) else None,
                "reason": reason,
                "served_by": "kernel" if available else ("stdlib" if policy == "fallback" else None),
            }
        )
    return report


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for r in [header, *rows]:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    return lines


def _availability(r: dict[str, Any]) -> str:
    if r["available"]:
        return "yes"
    if r["kernel"] is None:
        return "no (none in kernel)"
    return f"no ({r['errno']})"


def cmd_list(args: argparse.Namespace) -> int:
    from .. import _policy

    report = algorithm_report(args.kind or None)
    if args.json:
        out(json.dumps(report, indent=2))
        return 0
    kinds = {r["kind"] for r in report}
    header = (["KIND"] if len(kinds) > 1 else []) + ["NAME", "KERNEL", "DRIVER", "PRIORITY", "SELFTEST", "AVAILABLE"]
    rows = []
    for r in report:
        rows.append(
            ([r["kind"]] if len(kinds) > 1 else [])
            + [
                r["name"],
                r["kernel"] or "-",
                r["driver"] or "-",
                "-" if r["priority"] is None else str(r["priority"]),
                r["selftest"] or "-",
                _availability(r),
            ]
        )
    for line in _table(header, rows):
        out(line)
    missing = [r for r in report if not r["available"]]
    if missing:
        policy = _policy.get_policy()
        consequence = "served by the standard library (counted, warned)" if policy == "fallback" else "raise"
        out()
        out(f"Unavailable (policy {policy}: these {consequence}):")
        for r in missing:
            out(f"  {r['name']}: {r['reason']}")
    return 0
