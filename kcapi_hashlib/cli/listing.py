"""`kcapi-hashlib list`: every algorithm this package offers, bound once, described from /proc/crypto."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterable
from typing import Any, Callable, NamedTuple, Optional

from .._afalg import drivers, procfs
from .output import errname, out


class Row(NamedTuple):
    """One algorithm this package offers, as `list` shows it."""

    kind: str  # "hash", "hmac", "cmac", "cipher", ...
    name: str  # the name callers use (hashlib.new's, Crypto's)
    alg_type: str  # the AF_ALG type bound for it: "hash", "skcipher", "aead", "rng"
    kernel: Optional[str]  # the kernel's algorithm name; None where the kernel has none
    note: str = ""  # why there is no kernel algorithm (when kernel is None)


def _hash_rows() -> list[Row]:
    from .._hashes import ALGORITHMS, no_kernel_hash

    return [
        Row("hash", name, "hash", alg.kernel, "" if alg.kernel else no_kernel_hash(name))
        for name, alg in ALGORITHMS.items()
    ]


def _hmac_rows() -> list[Row]:
    from .._hashes import ALGORITHMS, no_kernel_hash

    return [
        Row("hmac", f"hmac-{name}", "hash", f"hmac({alg.kernel})" if alg.kernel else None,
            "" if alg.kernel else no_kernel_hash(name))
        for name, alg in ALGORITHMS.items()
        if alg.digest_size  # no HMAC over an XOF
    ]  # fmt: skip


# The kernel names kcapi_hashlib's Crypto.* modules bind (Hash/CMAC.py, Cipher/*.py, Random): name -> kernel.
_CMAC = {"cmac-AES": "cmac(aes)", "cmac-DES3": "cmac(des3_ede)", "cmac-DES": "cmac(des)",
         "cmac-Blowfish": "cmac(blowfish)", "cmac-CAST": "cmac(cast5)"}  # fmt: skip
_CIPHERS = {
    "AES-ECB": "ecb(aes)", "AES-CBC": "cbc(aes)", "AES-CTR": "ctr(aes)", "AES-XTS": "xts(aes)",
    "DES3-ECB": "ecb(des3_ede)", "DES3-CBC": "cbc(des3_ede)", "DES3-CTR": "ctr(des3_ede)",
    "ChaCha20": "chacha20", "XChaCha20": "xchacha20",
}  # fmt: skip
_AEADS = {"AES-GCM": "gcm(aes)", "AES-CCM": "ccm(aes)", "ChaCha20-Poly1305": "rfc7539(chacha20,poly1305)"}
# Hashes the AEAD modes compose with where the kernel lacks the one-shot AEAD (GCM's GHASH, Poly1305).
_PARTS = {"ghash": "ghash", "poly1305": "poly1305"}


def _table_rows(kind: str, alg_type: str, table: dict[str, str]) -> Callable[[], list[Row]]:
    def rows() -> list[Row]:
        return [Row(kind, name, alg_type, kernel) for name, kernel in table.items()]

    return rows


# kind -> its rows. Modules adding algorithms add their kind here.
ROW_SOURCES: dict[str, Callable[[], list[Row]]] = {
    "hash": _hash_rows,
    "hmac": _hmac_rows,
    "cmac": _table_rows("cmac", "hash", _CMAC),
    "cipher": _table_rows("cipher", "skcipher", _CIPHERS),
    "aead": _table_rows("aead", "aead", _AEADS),
    "part": _table_rows("part", "hash", _PARTS),
    "rng": _table_rows("rng", "rng", {"stdrng": "stdrng"}),
}


def process_facts() -> dict[str, Any]:
    """The facts about THIS process that decide what the kernel serves it (list --json's "process")."""
    from .. import _afalg, _policy
    from .._afalg import restrict
    from . import host

    proc = restrict.process()
    status = host.proc_status()
    socket_error = _afalg.af_alg_status()
    return {
        "kernel": os.uname().release,
        "uid": proc.uid,
        "euid": proc.euid,
        "cap_eff": status.get("CapEff"),
        "capabilities": host.capabilities(status.get("CapEff", "")),
        "cap_net_admin": proc.net_admin,
        "cap_sys_admin": proc.sys_admin,
        "init_user_namespace": proc.init_userns,
        "privileged_for_af_alg": proc.privileged,
        "af_alg_restrict": restrict.level(),
        "seccomp": status.get("Seccomp"),
        "socket": "ok" if socket_error is None else errname(socket_error.errno),
        "policy": _policy.get_policy(),
    }


def _implementation(
    impl: procfs.Implementation, failure: Optional[OSError], default: Optional[procfs.Implementation]
) -> dict[str, Any]:
    """One implementation (driver) of an algorithm, as list --json carries it."""
    return {
        "driver": impl.driver,
        "module": impl.module,
        "priority": impl.priority,
        "selftest": impl.selftest,
        "type": impl.type,
        "internal": impl.internal,
        "async": impl.asynchronous,
        "fips_allowed": impl.fips_allowed,
        "default": default is not None and impl.driver == default.driver,
        "reachable": failure is None,  # AF_ALG binds it by its driver name in this process
        "reason": None if failure is None else procfs.unreachable(impl, failure),
    }


def algorithm_report(kinds: Optional[Iterable[str]] = None) -> list[dict[str, Any]]:
    """One dict per algorithm: bound first (binding makes the kernel load its module, so it shows up in
    /proc/crypto), then described from /proc/crypto. "cause"/"remedy" say why the kernel does not serve it to
    this process and what would change that (None where it does)."""
    from .. import _afalg, _policy

    wanted = None if kinds is None else set(kinds)
    rows = [row for kind, source in ROW_SOURCES.items() if wanted is None or kind in wanted for row in source()]
    failures: dict[tuple[str, str], Optional[_afalg.AlgUnavailable]] = {}
    for row in rows:
        if row.kernel is not None and (row.alg_type, row.kernel) not in failures:
            failures[(row.alg_type, row.kernel)] = _afalg.probe(row.alg_type, row.kernel)
    # Every implementation of each kernel algorithm, each bound by its driver name (drivers.survey); after the
    # binds above, so the modules they loaded are listed.
    surveys = {key: drivers.survey(*key) for key, failure in failures.items()}
    policy = _policy.get_policy()
    report = []
    for row in rows:
        key = (row.alg_type, row.kernel) if row.kernel else None
        entry = procfs.chosen(row.alg_type, row.kernel) if row.kernel else None
        why = failures.get(key) if key else None
        available = row.kernel is not None and why is None
        reason = "" if available else (str(why) if why is not None else row.note)
        if available:
            cause, remedy = None, None
        elif why is None:
            cause, remedy = "no kernel algorithm", ""
        else:  # the AF_ALG layer's reading of the refusal (core.Explanation, af_alg_restrict's included)
            cause, remedy = why.cause, why.remedy
        report.append(
            {
                "kind": row.kind,
                "name": row.name,
                "alg_type": row.alg_type,
                "kernel": row.kernel,
                "driver": entry.driver if entry else None,
                "module": entry.module if entry else None,
                "priority": entry.priority if entry else None,
                "selftest": entry.selftest if entry else None,
                "fips_allowed": entry.fips_allowed if entry else None,
                "available": available,
                "errno": errname(why.errno) if why is not None else None,
                "cause": cause,
                "remedy": remedy,
                "reason": reason,
                "served_by": "kernel" if available else ("stdlib" if policy == "fallback" else None),
                "implementations": [
                    _implementation(impl, failure, entry) for impl, failure in (surveys.get(key, []) if key else [])
                ],
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
    return f"no ({r['cause'] or r['errno']})"


def _yes_no(value: Optional[bool]) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _driver_cells(d: dict[str, Any]) -> list[str]:
    """MODULE, FIPS, ASYNC, AF_ALG of one implementation (AF_ALG: whether a bind by its driver name works)."""
    reach = "yes" if d["reachable"] else ("internal" if d["internal"] else "no")
    return [d["module"] or "-", _yes_no(d["fips_allowed"]), _yes_no(d["async"]), reach]


def describe_process(facts: dict[str, Any]) -> str:
    """One line: who this process is to the kernel's af_alg_restrict."""
    level = facts["af_alg_restrict"]
    caps = [c for c, held in (("CAP_NET_ADMIN", facts["cap_net_admin"]), ("CAP_SYS_ADMIN", facts["cap_sys_admin"]))
            if held]  # fmt: skip
    held = f"with {', '.join(caps)}" if caps else "without CAP_NET_ADMIN or CAP_SYS_ADMIN"
    if caps and facts["init_user_namespace"] is False:
        held += " (inside a user namespace: the kernel checks the initial one)"
    restriction = "not present (unrestricted)" if level is None else str(level)
    return f"uid {facts['euid']} {held}; af_alg_restrict: {restriction}; socket(AF_ALG): {facts['socket']}"


def cmd_list(args: argparse.Namespace) -> int:
    from .. import _policy

    report = algorithm_report(args.kind or None)
    facts = process_facts()
    if args.json:
        out(json.dumps({"process": facts, "algorithms": report}, indent=2))
        return 0
    header = ["NAME", "KERNEL", "DRIVER", "PRIORITY", "SELFTEST", "AVAILABLE", "MODULE", "FIPS", "ASYNC", "AF_ALG"]
    kinds = list(dict.fromkeys(r["kind"] for r in report))
    for i, kind in enumerate(kinds):
        rows = []
        for r in report:
            if r["kind"] != kind:
                continue
            impls = r["implementations"]
            first = next((d for d in impls if d["default"]), None)
            rows.append(
                [
                    r["name"],
                    r["kernel"] or "-",
                    r["driver"] or "-",
                    "-" if r["priority"] is None else str(r["priority"]),
                    r["selftest"] or "-",
                    _availability(r),
                    *(_driver_cells(first) if first else ["-", "-", "-", "-"]),
                ]
            )
            for d in impls:  # the other implementations, one line each, under the one a bind by name gets
                if d is not first:
                    rows.append(["  +", r["kernel"], d["driver"], str(d["priority"]), d["selftest"], "",
                                 *_driver_cells(d)])  # fmt: skip
        if i:
            out()
            out(f"{kind}:")
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
    out()
    out(f"This process: {describe_process(facts)}")
    return 0
