"""The accounting report: this process's counts (kcapi_hashlib.accounting()), children's reports merged, and
the table `kcapi-hashlib run` prints at exit.

A process started under the launcher (or with KCAPI_HASHLIB_REPORT_DIR set) writes its own report into that
directory when it exits, one JSON file per process; the launcher merges them with its own.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Optional

from ._afalg import accounting as _accounting

REPORT_DIR = "KCAPI_HASHLIB_REPORT_DIR"
#: what the table's columns count (printed under it)
UNITS = (
    "  (operations: AF_ALG calls for that algorithm, one per bind, accept, send, recv or splice, e.g. 4 for "
    "sha256(b'a').digest();\n   bytes: input handed to the kernel; socket(), setsockopt() and close() are not "
    "counted, so syscalls >= operations)"
)


def accounting() -> dict[str, Any]:
    """What the kernel did in this process, and what it did not, since start (or reset_accounting()):

    {"pid": ..., "kernel": [{"type", "algorithm", "operations", "bytes"}, ...],
     "fallbacks": [{"kind", "algorithm", "count", "reasons": {text: count}}, ...],   # computed in userspace
     "refused": [... the same shape ...]}                                         # strict: raised

    Kernel operations are AF_ALG calls (bind, accept, send, recv, splice: one each; io_uring counts each send and
    recv it carries) per kernel algorithm name ("hmac(sha256)", "gcm(aes)"): sha256(b"a").digest() is 4 (bind,
    accept, send, recv); socket(), setsockopt() and close() are not counted. Bytes are the input given to the
    kernel. Only what the program used is there: install() binds nothing. No syscall is made to count; the counts
    are exact under threads (one lock, kcapi_hashlib._afalg.accounting.LOCK)."""
    return _accounting.snapshot()


def reset_accounting() -> None:
    """Zero this process's counters."""
    _accounting.reset()


def merge(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One report for several processes: rows of the same algorithm added up; "processes" lists the pids."""
    kernel: dict[tuple[str, str], list[int]] = {}
    sides: dict[str, dict[tuple[str, str], dict[str, int]]] = {"fallbacks": {}, "refused": {}}
    pids: list[int] = []
    for rep in reports:
        pids.extend(rep.get("processes") or [rep["pid"]])
        for row in rep["kernel"]:
            c = kernel.setdefault((row["type"], row["algorithm"]), [0, 0])
            c[0] += row["operations"]
            c[1] += row["bytes"]
        for side, rows in sides.items():
            for row in rep[side]:
                reasons = rows.setdefault((row["kind"], row["algorithm"]), {})
                for text, n in row["reasons"].items():
                    reasons[text] = reasons.get(text, 0) + n
    return {
        "processes": pids,
        "kernel": [
            {"type": t, "algorithm": a, "operations": c[0], "bytes": c[1]} for (t, a), c in sorted(kernel.items())
        ],
        **{
            side: [
                {"kind": k, "algorithm": a, "count": sum(r.values()), "reasons": r}
                for (k, a), r in sorted(rows.items())
            ]
            for side, rows in sides.items()
        },
    }


def format_table(report: dict[str, Any]) -> str:
    """The human report: kernel operations per algorithm, then every userspace computation and refusal."""
    procs = report.get("processes") or [report.get("pid")]
    lines = [f"kcapi_hashlib accounting ({len(procs)} process{'es' if len(procs) != 1 else ''}):"]
    if report["kernel"]:
        lines.append(f"  {'kernel algorithm':<28} {'type':<9} {'operations':>11} {'bytes':>14}")
        for row in report["kernel"]:
            lines.append(f"  {row['algorithm']:<28} {row['type']:<9} {row['operations']:>11} {row['bytes']:>14}")
    else:
        lines.append("  no kernel operations")
    for side, title in (("fallbacks", "computed in userspace (fallback)"), ("refused", "refused (strict)")):
        if report[side]:
            lines.append(f"  {title}:")
            for row in report[side]:
                lines.append(f"    {row['kind']} {row['algorithm']}: {row['count']}")
                for text, n in row["reasons"].items():
                    lines.append(f"      {n} x {text}")
    if not report["fallbacks"]:
        lines.append("  nothing computed in userspace")
    if report["kernel"]:
        lines.append(UNITS)
    for row in report.get("unreported", ()):
        if row["signal"]:
            lines.append(f"  pid {row['pid']}: killed by {row['signal']}, no report")
        else:
            lines.append(f"  pid {row['pid']}: ended without a report (killed by a signal, or os._exit)")
    return "\n".join(lines) + "\n"


def write_own(directory: str) -> Optional[str]:
    """Write this process's report into directory (atomically: readers never see half a file)."""
    import json
    import tempfile

    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.getpid()}-", suffix=".tmp", dir=directory)
    except OSError:
        return None  # the launcher is gone and took its directory: nothing to report to
    with os.fdopen(fd, "w") as f:
        json.dump(accounting(), f)
    final = os.path.join(directory, f"{os.getpid()}-{os.path.basename(tmp)[1:-4]}.json")
    os.replace(tmp, final)
    return final


def unreported(directory: str) -> list[dict[str, Any]]:
    """The children that started reporting (a "<pid>.started" marker, kcapi_hashlib._autoinstall) and left no
    report: [{"pid": N, "signal": "SIGKILL" or None}], the signal where a kernel-backed parent reaped it (a
    "<pid>.signal" marker), None where nobody saw how it ended (killed and reaped elsewhere, or os._exit)."""
    import signal

    try:
        names = os.listdir(directory)
    except OSError:
        return []
    reported = {n.split("-", 1)[0] for n in names if n.endswith(".json") and not n.startswith(".")}
    out = []
    for name in sorted(names, key=lambda n: (len(n), n)):
        pid, _, suffix = name.partition(".")
        if suffix != "started" or not pid.isdigit() or pid in reported:
            continue
        signame: Optional[str] = None
        try:
            with open(os.path.join(directory, f"{pid}.signal")) as f:
                number = int(f.read())
            try:
                signame = signal.Signals(number).name
            except ValueError:
                signame = f"signal {number}"
        except (OSError, ValueError):
            pass
        out.append({"pid": int(pid), "signal": signame})
    return out


def collect(directory: str) -> list[dict[str, Any]]:
    """The reports the children wrote into directory."""
    import json

    out = []
    for name in sorted(os.listdir(directory)):
        if name.endswith(".json") and not name.startswith("."):
            try:
                with open(os.path.join(directory, name)) as f:
                    out.append(json.load(f))
            except (OSError, ValueError) as e:  # a child killed while writing leaves only a .tmp; this is odder
                print(f"kcapi-hashlib: unreadable child report {name}: {e}", file=sys.stderr)
    return out


__all__ = [
    "REPORT_DIR", "accounting", "collect", "format_table", "merge", "reset_accounting", "unreported", "write_own",
]  # fmt: skip
