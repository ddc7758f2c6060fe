"""Sum the JUnit reports tox left under .tox/*/junit-*.xml and print one closing line:
`ci: N passed, N failed, N skipped`. Exits 1 when a report is missing or nothing ran."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main(expected: list[str]) -> int:
    root = Path(".tox")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for env in expected:
        reports = sorted((root / env).glob("junit-*.xml"))
        if not reports:
            print(f"ci: no JUnit report from tox env {env}", file=sys.stderr)
            return 1
        for report in reports:
            counts = dict.fromkeys(totals, 0)
            for suite in ET.parse(report).getroot().iter("testsuite"):
                for key in counts:
                    counts[key] += int(suite.get(key, 0))
            for key in totals:
                totals[key] += counts[key]
            print(f"ci: {env}/{report.name}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    failed = totals["failures"] + totals["errors"]
    passed = totals["tests"] - failed - totals["skipped"]
    print(f"ci: {passed} passed, {failed} failed, {totals['skipped']} skipped")
    return 0 if passed and not failed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
