"""A paired comparison checks its pairing once: comparison() returns the Pairing it rests on with its result, and the
comparisons table reads the reason a pair is refused from it instead of checking the pair again
(flanlab.report.tables). Before, compare() and not_paired_reason() each scanned the two runs' item targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from flanlab.eval.metrics import item_strata
from flanlab.report import tables
from flanlab.report.load import Run
from test_stats import _run


def _runs(version_after: str) -> list[Run]:
    runs = []
    for label, correct, num_tasks, version in (("before", [1, 0, 1, 0], 0, "1"),
                                               ("after", [1, 1, 1, 0], 9, version_after)):
        benchmarks, samples = _run({"f1": correct})
        results = {"benchmarks": benchmarks, "settings": {"benchmark_versions": {"synthetic": version}},
                   "synthetic_average": {"value": benchmarks["synthetic"]["direct"]["normalized"]}}
        runs.append(Run(path=Path("."), results=results, label=label, model="m", num_tasks=num_tasks,
                        untrained=False, parameters=None, items=item_strata(samples)))
    return runs


@pytest.mark.parametrize("version_after", ["1", "2"])  # paired; refused (another version): the reason is needed
def test_pairing_runs_once_per_comparison(monkeypatch, version_after):
    runs = _runs(version_after)
    head = tables.headline(runs)
    calls = []
    real = tables.pairing
    monkeypatch.setattr(tables, "pairing", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    rows = tables.comparisons(runs, head)
    assert rows and len(calls) == len(rows)
    refused = version_after != "1"
    assert all((r["diff"] is None) == refused and (r["why"] is not None) == refused for r in rows)
    if refused:
        assert all("synthetic version 2 in after, 1 in before" in r["why"] for r in rows)


def test_comparison_returns_its_pairing_with_the_result():
    before, after = _runs("2")
    c = tables.comparison(after, before, ["synthetic/direct"], "score")
    assert isinstance(c, tables.Comparison) and isinstance(c.pairing, tables.Pairing)
    assert c.diff is None and c.pairing.refused and c.why == "; ".join(c.pairing.refused)
    assert c.why == tables.not_paired_reason(after, before, ["synthetic/direct"])
    before, after = _runs("1")
    c = tables.comparison(after, before, ["synthetic/direct"], "score")
    assert c.diff is not None and c.why is None and not c.pairing.refused
    assert c.diff == tables.compare(after, before, ["synthetic/direct"], "score")
