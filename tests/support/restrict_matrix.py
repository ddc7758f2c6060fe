"""Measure which algorithms Linux 7.3's af_alg_restrict lets each kind of process bind, and write the README table.

    python -m tests.support.restrict_matrix run [--kernel 7.3-amd64] [--out tests/support/data/restrict-7.3-amd64.json]
    python -m tests.support.restrict_matrix table tests/support/data/restrict-7.3-amd64.json     # markdown on stdout

`run` boots the kernel once per (level, identity): af_alg_restrict 0, 1, 2 x root, uid 4242, and uid 4242 holding
only CAP_NET_ADMIN (the VM runner's --sysctl/--user/--cap), and records `kcapi-hashlib list --json` there: every
algorithm kcapi_hashlib knows (hashes, hmac, cmac, skcipher modes, aead, rng, the GHASH/Poly1305 parts), bound by
the kernel or not, with the errno and the cause list gives. Nothing is assumed about the allowlist: the table is
what the kernel answered. The JSON carries the kernel release and the date: it is a measurement.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

LEVELS = (0, 1, 2)
IDENTITIES: dict[str, list[str]] = {
    "root": [],
    "uid 4242 + CAP_NET_ADMIN": ["--user", "4242", "--cap", "net_admin"],
    "uid 4242": ["--user", "4242"],
}
DEFAULT_OUT = Path(__file__).parent / "data" / "restrict-7.3-amd64.json"


def measure(kernel: str, level: int, identity: str, timeout: int) -> dict[str, Any]:
    argv = [sys.executable, "-m", "kcapi_hashlib", "vm", "--kernel", kernel, "--timeout", str(timeout),
            "--sysctl", f"crypto.af_alg_restrict={level}", *IDENTITIES[identity], "--",
            sys.executable, "-m", "kcapi_hashlib", "list", "--json"]  # fmt: skip
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 300)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)}: exit {result.returncode}\n{result.stderr[-4000:]}")
    listing = json.loads(result.stdout)
    return {
        "level": level,
        "identity": identity,
        "seconds": round(time.monotonic() - started, 1),
        "process": listing["process"],
        "algorithms": [
            {k: row[k] for k in ("kind", "name", "alg_type", "kernel", "driver", "available", "errno", "cause")}
            for row in listing["algorithms"]
        ],
    }


def run(args: argparse.Namespace) -> int:
    runs = []
    for level in LEVELS:
        for identity in IDENTITIES:
            r = measure(args.kernel, level, identity, args.timeout)
            served = sum(a["available"] for a in r["algorithms"])
            print(f"af_alg_restrict={level} {identity}: {served} of {len(r['algorithms'])} ({r['seconds']} s)",
                  file=sys.stderr)  # fmt: skip
            runs.append(r)
    data = {
        "what": "which algorithms kcapi_hashlib knows the kernel binds, per af_alg_restrict level and process",
        "kernel": runs[0]["process"]["kernel"],
        "vm_kernel": args.kernel,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": f"python -m tests.support.restrict_matrix run --kernel {args.kernel}",
        "runs": runs,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump(data))
    print(f"wrote {out}", file=sys.stderr)
    return 0


def dump(data: dict[str, Any]) -> str:
    """JSON with one line per algorithm row (a measurement is read by people too)."""
    runs = data["runs"]
    head = json.dumps({k: v for k, v in data.items() if k != "runs"}, indent=1)[:-2]
    parts = []
    for r in runs:
        rows = ",\n".join("   " + json.dumps(a) for a in r["algorithms"])
        meta = json.dumps({k: v for k, v in r.items() if k != "algorithms"})[:-1]
        parts.append(f'  {meta}, "algorithms": [\n{rows}\n  ]}}')
    return head + ',\n "runs": [\n' + ",\n".join(parts) + "\n ]\n}\n"


def table(data: dict[str, Any]) -> str:
    """The README table: one row per kernel algorithm, one column per level, in each root / CAP_NET_ADMIN /
    unprivileged as measured (yes = bind() succeeded)."""
    runs = {(r["level"], r["identity"]): r for r in data["runs"]}
    idents = list(IDENTITIES)
    rows: dict[tuple[str, str], dict[tuple[int, str], dict[str, Any]]] = {}
    kinds: dict[tuple[str, str], str] = {}
    for (level, identity), r in runs.items():
        for a in r["algorithms"]:
            if a["kernel"] is None:
                continue
            key = (a["alg_type"], a["kernel"])
            rows.setdefault(key, {})[(level, identity)] = a
            kinds.setdefault(key, a["kind"])
    short = {"root": "root", "uid 4242 + CAP_NET_ADMIN": "NET_ADMIN", "uid 4242": "unpriv"}
    head = ["AF_ALG type", "algorithm"] + [f"{level}: {' / '.join(short[i] for i in idents)}" for level in LEVELS]
    lines = [
        f"Measured on Linux {data['kernel']} ({data['vm_kernel']}, qemu), {data['date'][:10]}: "
        "`af_alg_restrict` level, then root / uid 4242 with only CAP_NET_ADMIN / uid 4242 without capabilities. "
        "yes: bind() succeeded; no: refused (ENOENT at level 1, socket() EAFNOSUPPORT at 2); absent: the kernel "
        "did not bind it even at level 0 as root. Generated by `python -m tests.support.restrict_matrix table`.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
    ]
    for key in sorted(rows, key=lambda k: (k[0], k[1])):
        cells = rows[key]
        base = cells.get((0, "root"))
        if base is not None and not base["available"]:
            lines.append(f"| {key[0]} | `{key[1]}` | " + " | ".join("absent" for _ in LEVELS) + " |")
            continue
        marks = []
        for level in LEVELS:
            marks.append(" / ".join(
                "?" if (level, i) not in cells else ("yes" if cells[(level, i)]["available"] else "no") for i in idents
            ))  # fmt: skip
        lines.append(f"| {key[0]} | `{key[1]}` | " + " | ".join(marks) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.restrict_matrix", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="boot the kernel per (level, identity) and record list --json")
    p.add_argument("--kernel", default="7.3-amd64")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--timeout", type=int, default=600, help="per VM run, seconds")
    p = sub.add_parser("table", help="the README's markdown table from a measurement")
    p.add_argument("json", nargs="?", default=str(DEFAULT_OUT))
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args)
    sys.stdout.write(table(json.loads(Path(args.json).read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
