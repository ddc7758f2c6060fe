"""What importing costs, measured in one run: `import hashlib` against `import kcapi_hashlib` (and, for what each
process under `kcapi-hashlib run` pays, `kcapi_hashlib.install()` after it), each in a fresh interpreter.

    python benchmarks/import_cost.py [-n N] [--python EXE]

For each statement: the median over N fresh `python -I -S` processes of the time the statement took (measured
inside the process with time.perf_counter_ns around it, so interpreter start-up is not in it), and the modules it
added to sys.modules (stdlib and kcapi_hashlib's separately). hashlib's cost is in both: the kcapi_hashlib lines
import hashlib first and time only what comes after, and "+ hashlib" adds hashlib's median back for the total the
target compares (import kcapi_hashlib <= import hashlib + 10 ms). No kernel is needed: nothing here binds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

STATEMENTS = {
    "import hashlib": ("", "import hashlib"),
    "import kcapi_hashlib": ("import hashlib", "import kcapi_hashlib"),
    "kcapi_hashlib.install()": ("import hashlib, kcapi_hashlib", "kcapi_hashlib.install()"),
}

PROBE = """\
import sys, time
sys.path.insert(0, {root!r})
{setup}
before = set(sys.modules)
t0 = time.perf_counter_ns()
{statement}
t1 = time.perf_counter_ns()
new = sorted(set(sys.modules) - before)
import json
print(json.dumps({{"ns": t1 - t0, "modules": new}}))
"""


def measure(python: str, setup: str, statement: str, n: int) -> tuple[float, list[str]]:
    """(median milliseconds, modules added) of `statement` after `setup`, over n fresh interpreters."""
    times: list[int] = []
    modules: list[str] = []
    code = PROBE.format(root=ROOT, setup=setup, statement=statement)
    for _ in range(n):
        out = subprocess.run([python, "-I", "-S", "-c", code], capture_output=True, text=True, check=True).stdout
        result = json.loads(out)
        times.append(result["ns"])
        modules = result["modules"]
    return statistics.median(times) / 1e6, modules


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=21, help="fresh interpreters per statement (default 21)")
    parser.add_argument("--python", default=sys.executable, help="the interpreter to measure (default: this one)")
    args = parser.parse_args()
    print(f"import cost, median of {args.n} fresh `{args.python} -I -S` processes:")
    base = 0.0
    for label, (setup, statement) in STATEMENTS.items():
        ms, modules = measure(args.python, setup, statement, args.n)
        ours = [m for m in modules if m.split(".")[0] == "kcapi_hashlib"]
        stdlib = [m for m in modules if m.split(".")[0] != "kcapi_hashlib"]
        if label == "import hashlib":
            base = ms
            total = ""
        else:
            total = f"  (+ hashlib: {ms + base:6.2f} ms)" if setup.startswith("import hashlib") else ""
        print(f"  {label:<26} {ms:7.2f} ms{total}  {len(stdlib):3} stdlib modules, {len(ours):3} of kcapi_hashlib")
        if stdlib and label != "import hashlib":
            print(f"    stdlib: {' '.join(stdlib)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
