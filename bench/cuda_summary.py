"""The summary block of bench/cuda_check.sh: one line per check, then the result.

usage: python bench/cuda_summary.py STEPS_TSV JUNIT_XML...
  STEPS_TSV  the script's own steps, one a line: name <TAB> PASS|FAIL|SKIP|INFO <TAB> detail
  JUNIT_XML  pytest's --junitxml reports (absent or unreadable: that pytest run did not finish, a failure)
Prints the block and exits 1 when any check failed, else 0.
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

STATUSES = ("PASS", "FAIL", "SKIP", "INFO")
SETUP_STEPS = ("machine", "install", "imports", "imports (datasets, gguf)")


VERBOSE_RESULT = re.compile(r"^\S+::(\S+) (PASSED|FAILED|ERROR|SKIPPED)\b")
VERBOSE_STATUS = {"PASSED": "PASS", "FAILED": "FAIL", "ERROR": "FAIL", "SKIPPED": "SKIP"}


def _test_lines(junit: Path) -> list[tuple[str, str, str]]:
    """(status, test name, detail) per test case of a pytest JUnit XML report. Without a report (pytest killed by
    its timeout), the tests its verbose log (the same path with .log) shows finished, and a failure saying so."""
    try:
        root = ET.parse(junit).getroot()
    except (OSError, ET.ParseError) as e:
        log = junit.with_suffix(".log")
        done = []
        if log.is_file():
            for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
                if m := VERBOSE_RESULT.match(line):
                    done.append((VERBOSE_STATUS[m.group(2)], m.group(1), "(from the log)"))
        return done + [("FAIL", "pytest", f"no report ({junit.name}: {e.__class__.__name__}): it did not finish "
                                          f"(timeout?); {len(done)} tests had finished, see {log}")]
    rows = []
    for case in root.iter("testcase"):
        name = case.get("name", "?")
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        skipped = case.find("skipped")
        if problem is not None:
            message = (problem.get("message") or "").strip().splitlines()
            rows.append(("FAIL", name, message[0] if message else ""))
        elif skipped is not None:
            rows.append(("SKIP", name, (skipped.get("message") or "").strip()))
        else:
            rows.append(("PASS", name, ""))
    return rows


def _step_lines(steps: Path) -> list[tuple[str, str, str]]:
    rows = []
    if steps.is_file():
        for line in steps.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            name, status, detail = (line.split("\t") + ["", ""])[:3]
            rows.append((status if status in STATUSES else "FAIL", name, detail))
    return rows


def summarize(junits: Path | list[Path], steps: Path) -> tuple[list[str], int]:
    """(the summary lines, the number of failed checks)."""
    step_rows = _step_lines(steps)
    tests = [row for junit in ([junits] if isinstance(junits, Path) else junits) for row in _test_lines(junit)]
    before = [r for r in step_rows if r[1] in SETUP_STEPS]  # the setup first, then the tests, then the rest
    rows = before + tests + [r for r in step_rows if r[1] not in SETUP_STEPS]
    lines = ["==== flanlab CUDA check: summary ===="]
    for status, name, detail in rows:
        lines.append(f"{status}  {name}: {detail}" if detail else f"{status}  {name}")
    count = {s: sum(1 for r in rows if r[0] == s) for s in STATUSES}
    verdict = "FAIL" if count["FAIL"] else "PASS"
    lines.append(f"result: {verdict} ({count['FAIL']} failed, {count['PASS']} passed, {count['SKIP']} skipped, "
                 f"{count['INFO']} info)")
    return lines, count["FAIL"]


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    lines, failed = summarize([Path(a) for a in argv[1:]], Path(argv[0]))
    print("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
