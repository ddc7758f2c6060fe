"""Sum the JUnit reports tox left under .tox/*/junit-*.xml and print one closing line:
`ci: N passed, N failed, N skipped`. Exits 1 when a report is missing or nothing ran.

Each report carries where it ran (conftest.py records kernel, Python, af_alg_restrict level, the process's
uid and capabilities, and the suite as testsuite properties). `--matrix FILE` writes the tested matrix built
from them as a Markdown table; `--readme README.md` puts that table between the README's
`<!-- tested-matrix -->` markers. The README's matrix is generated this way from a real run, never by hand.
"""

from __future__ import annotations

import argparse
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

COLUMNS = ("kernel", "python", "process", "af_alg_restrict", "suite")
BEGIN, END = "<!-- tested-matrix:begin -->", "<!-- tested-matrix:end -->"


def _report(path: Path) -> tuple[dict[str, int], dict[str, str]]:
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    where: dict[str, str] = {}
    for suite in ET.parse(path).getroot().iter("testsuite"):
        for key in counts:
            counts[key] += int(suite.get(key, 0))
        for prop in suite.iter("property"):
            where[prop.get("name", "")] = prop.get("value", "")
    return counts, where


def matrix(rows: list[tuple[str, dict[str, int], dict[str, str]]]) -> str:
    lines = [
        "| tox env | kernel | Python | process | af_alg_restrict | suite | passed | failed | skipped |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for env, counts, where in rows:
        failed = counts["failures"] + counts["errors"]
        passed = counts["tests"] - failed - counts["skipped"]
        cells = [env, *(where.get(c, "?") for c in COLUMNS), str(passed), str(failed), str(counts["skipped"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def put_in_readme(readme: Path, table: str) -> None:
    text = readme.read_text()
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{readme}: no {BEGIN} ... {END} markers")
    readme.write_text(pattern.sub(lambda _: f"{BEGIN}\n{table}{END}", text))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("envs", nargs="+", help="tox envs whose reports must exist")
    parser.add_argument("--matrix", type=Path, help="write the tested matrix (Markdown) here")
    parser.add_argument("--readme", type=Path, help="put the tested matrix into this README")
    args = parser.parse_args(argv)
    root = Path(".tox")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    rows: list[tuple[str, dict[str, int], dict[str, str]]] = []
    missing = []
    for env in args.envs:
        reports = sorted((root / env).glob("junit-*.xml"))
        if not reports:
            print(f"ci: no JUnit report from tox env {env}", file=sys.stderr)
            missing.append(env)
            rows.append((env, dict.fromkeys(totals, 0), {"suite": "no report: the env failed before pytest ran"}))
            continue
        for report in reports:
            counts, where = _report(report)
            rows.append((env, counts, where))
            for key in totals:
                totals[key] += counts[key]
            print(f"ci: {env}/{report.name}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    table = matrix(rows)
    print(table, end="")
    if args.matrix:
        args.matrix.write_text(table)
    if args.readme:
        put_in_readme(args.readme, table)
    failed = totals["failures"] + totals["errors"]
    passed = totals["tests"] - failed - totals["skipped"]
    print(f"ci: {passed} passed, {failed} failed, {totals['skipped']} skipped")
    return 0 if passed and not failed and not missing else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
