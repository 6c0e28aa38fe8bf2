"""flanlab/eval/stats.py against hand computations and scipy, and what the report, the demo's closing lines and
results.json make of it: intervals on every score, paired comparisons that call a 2-of-20 change not significant."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from flanlab.eval.benchmarks import BENCHMARKS
from flanlab.eval.metrics import (
    item_strata, mode_linears, normalized_average, paired_comparison, summarize_mode, synthetic_average, vote_counts,
    vote_margin, Aggregation,
)
from flanlab.eval.stats import (
    Z95, Linear, analytic_mean, estimate, mcnemar_exact, mean_of, mean_stderr, paired_diff, replicates,
)

# ----------------------------------------------------------------------------------------------------------
# the estimators by hand


def test_mean_stderr_by_hand():
    # [1, 0, 1, 1]: mean 0.75, sample variance (3 * 0.0625 + 0.5625) / 3 = 0.25, SD 0.5, SE 0.5 / 2 = 0.25
    assert mean_stderr([1, 0, 1, 1]) == pytest.approx(0.25)
    assert mean_stderr([0.5, 0.5]) == 0.0
    assert mean_stderr([1]) is None and mean_stderr([]) is None
    e = analytic_mean([1, 0, 1, 1])
    assert (e.value, e.stderr, e.n) == (75.0, pytest.approx(25.0), 4)
    # 0/1 scores: the Wilson interval, 3 of 4: centre (0.75 + z^2/8) / (1 + z^2/4), half-width z sqrt(3/64 + z^2/64) / ...
    z = Z95
    centre, half = (0.75 + z * z / 8) / (1 + z * z / 4), z * math.sqrt(0.75 * 0.25 / 4 + z * z / 64) / (1 + z * z / 4)
    assert (e.ci_low, e.ci_high) == (pytest.approx(100 * (centre - half)), pytest.approx(100 * (centre + half)))
    assert e.text() == "75.0 ± 25.0" and e.method.startswith("analytic") and "Wilson" in e.method
    graded = analytic_mean([1, 0.5, 1, 1])  # not 0/1: normal interval, clipped to 0..100
    assert graded.ci_low == pytest.approx(87.5 - Z95 * 12.5) and graded.ci_high == 100.0
    none_right = analytic_mean([0] * 20)
    assert none_right.stderr == 0.0 and none_right.ci_low == 0.0 and none_right.ci_high > 10  # not [0, 0]
    single = analytic_mean([1])
    assert single.value == 100.0 and single.stderr is None and single.to_json()["ci95"] is None
    assert single.text() == "100.0 ± n/a"


def test_one_stratum_is_analytic_and_affine():
    # a normalized score with chance 25: 100 * (100 * m - 25) / 75, SE scaled by 100 / 75
    lin = Linear.of({"s": 100.0}).scaled(100 / 75, -100 * 25 / 75)
    e = estimate(lin, {"s": np.array([1, 0, 1, 1.0])})
    assert e.value == pytest.approx(100 * (75 - 25) / 75) and e.stderr == pytest.approx(25.0 * 100 / 75)


def test_bootstrap_is_seeded_and_matches_the_stratified_formula():
    rng = np.random.default_rng(1)
    strata = {"a": rng.random(40), "b": (rng.random(60) < 0.3).astype(float), "c": rng.random(25)}
    sizes = {k: v.size for k, v in strata.items()}
    micro = mode_linears(Aggregation(average="items"), sizes, {k: 0.0 for k in sizes})["score"]
    first, second = estimate(micro, strata, seed=3), estimate(micro, strata, seed=3)
    assert first == second  # reproducible
    assert estimate(micro, strata, seed=4).stderr != first.stderr  # and the seed matters
    assert first.value == pytest.approx(100 * np.concatenate(list(strata.values())).mean())
    # the bootstrap resamples with ddof=0 variances: SE^2 = sum w^2 var_s (1 - 1/n) / n
    w = dict(micro.terms)
    expected = math.sqrt(sum(w[k] ** 2 * np.var(v) / v.size for k, v in strata.items()))
    boot = estimate(micro, strata, n_boot=20000, seed=0)
    assert boot.stderr == pytest.approx(expected, rel=0.05)
    assert boot.ci_low < boot.value < boot.ci_high and "stratified" in boot.method


def test_bootstrap_interval_covers_about_95_percent():
    rng = np.random.default_rng(0)
    truth = 100 * (0.3 + 0.6) / 2
    hits = 0
    trials = 200
    for t in range(trials):
        strata = {"x": (rng.random(40) < 0.3).astype(float), "y": (rng.random(40) < 0.6).astype(float)}
        macro = Linear.of({"x": 50.0, "y": 50.0})
        e = estimate(macro, strata, n_boot=400, seed=t)
        hits += e.ci_low <= truth <= e.ci_high
    assert 0.88 <= hits / trials <= 0.99, hits


def test_a_single_item_subtask_falls_back_to_pooled_resampling():
    strata = {"a": np.array([1.0]), "b": np.array([0.0]), "c": np.array([1.0])}
    reps, method = replicates(Linear.of({"a": 100 / 3, "b": 100 / 3, "c": 100 / 3}), strata, n_boot=4000)
    assert "not stratified" in method
    # the macro mean of 1-item subtasks is the mean of 3 items: SE ~ 100 * sqrt(2/9 / 3) (ddof=0)
    assert np.std(reps) == pytest.approx(100 * math.sqrt((2 / 9) / 3), rel=0.08)


# ----------------------------------------------------------------------------------------------------------
# paired comparisons


def test_identical_runs_differ_by_nothing():
    strata = {"s1": np.array([1, 0, 1, 1, 0.0]), "s2": np.array([0, 1, 1.0])}
    lin = Linear.of({"s1": 50.0, "s2": 50.0})
    d = paired_diff(lin, lin, strata, strata)
    assert d.diff == 0.0 and d.ci_low == 0.0 and d.ci_high == 0.0 and d.p_value == 1.0
    assert not d.significant and d.verdict() == "no significant change" and d.mcnemar_p == 1.0
    assert d.n_paired == 8


def test_mcnemar_matches_hand_and_scipy():
    # 2 discordant pairs, both one way: p = 2 * (1/2)^2 = 0.5
    assert mcnemar_exact([1, 1, 0, 0], [0, 0, 0, 0]) == pytest.approx(0.5)
    assert mcnemar_exact([1, 0], [1, 0]) == 1.0
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(5)
    for only_a, only_b, same in [(0, 7, 3), (2, 9, 10), (5, 5, 0), (1, 0, 4), (12, 30, 8)]:
        a = np.array([1] * only_a + [0] * only_b + [1] * same)
        b = np.array([0] * only_a + [1] * only_b + [1] * same)
        order = rng.permutation(a.size)
        expected = stats.binomtest(only_a, only_a + only_b, 0.5).pvalue
        assert mcnemar_exact(a[order], b[order]) == pytest.approx(expected, rel=1e-12)


def test_paired_difference_by_hand_and_significance():
    a = np.array([1.0] * 20)
    b = np.array([0.0] * 20)
    lin = Linear.of({"s": 100.0})
    d = paired_diff(lin, lin, {"s": a}, {"s": b})
    assert d.diff == 100.0 and d.significant and d.verdict() == "gain" and d.p_value < 0.01
    assert d.mcnemar_p == pytest.approx(2 * 0.5 ** 20)
    loss = paired_diff(lin, lin, {"s": b}, {"s": a})
    assert loss.verdict() == "loss" and loss.diff == -100.0
    # noisy differences: the paired SE is about SD(d) / sqrt(n) (ddof=0 in the bootstrap)
    rng = np.random.default_rng(2)
    x, y = rng.random(200), rng.random(200)
    d = paired_diff(lin, lin, {"s": x}, {"s": y}, n_boot=20000)
    assert d.stderr == pytest.approx(100 * np.std(x - y) / math.sqrt(200), rel=0.05)
    assert d.diff == pytest.approx(100 * (x - y).mean()) and d.mcnemar_p is None  # not 0/1 scores


def test_two_of_twenty_is_not_significant():
    before = np.array([1.0] * 10 + [0.0] * 10)
    after = before.copy()
    after[10:12] = 1.0  # two more items right: +10 points
    lin = Linear.of({"s": 100.0})
    d = paired_diff(lin, lin, {"s": after}, {"s": before})
    assert d.diff == pytest.approx(10.0) and not d.significant and d.ci_low <= 0 <= d.ci_high
    assert d.mcnemar_p == pytest.approx(0.5) and "no significant change" in d.text()


# ----------------------------------------------------------------------------------------------------------
# results.json: every number with its interval; averages from the samples; paired runs from their samples

SYN = BENCHMARKS["synthetic"]


def _run(correct: dict[str, list[int]], chance: float = 50.0, item_ids: dict[str, list[str]] | None = None):
    """A synthetic/direct section and its samples.jsonl rows from per-item correctness per subtask."""
    metric = SYN.metric
    per_item = {s: [{metric: float(c)} for c in cs] for s, cs in correct.items()}
    section = summarize_mode(SYN, "direct", "rank", per_item, {s: chance for s in correct})
    samples = [{"benchmark": "synthetic", "mode": "direct", "subtask": s, "item_id": (item_ids or {}).get(s, [str(i) for i in range(len(cs))])[i],
                "metrics": {metric: float(c)}, "correct": bool(c)} for s, cs in correct.items() for i, c in enumerate(cs)]
    return {"synthetic": {"direct": section}}, samples


def test_every_number_of_a_section_has_an_interval():
    benchmarks, samples = _run({"f1": [1, 0, 1, 1], "f2": [0, 0, 1, 0, 1]})
    sec = benchmarks["synthetic"]["direct"]
    for name in ("score", "normalized", "micro", "macro"):
        u = sec["uncertainty"][name]
        assert u["stderr"] > 0 and u["ci95"][0] < sec[name] < u["ci95"][1] and "bootstrap" in u["method"]
    sub = sec["subtasks"]["f1"]["uncertainty"]
    assert sub["score"]["stderr"] == pytest.approx(25.0) and sub["normalized"]["stderr"] == pytest.approx(50.0)
    assert set(sub["metrics"]) == set(sec["subtasks"]["f1"]["metrics"])
    avg = synthetic_average(benchmarks, samples)
    assert avg["value"] == pytest.approx(sec["normalized"])
    # the same estimator over the same items (other resampling draws: within bootstrap noise)
    assert avg["uncertainty"]["value"]["stderr"] == pytest.approx(sec["uncertainty"]["normalized"]["stderr"], rel=0.1)
    assert synthetic_average(benchmarks)["uncertainty"]["value"]["stderr"] is None  # no samples: no interval
    wrong = samples[:-1]  # a row lost: the samples no longer match the section
    assert "do not match" in synthetic_average(benchmarks, wrong)["uncertainty"]["value"]["method"]
    json.dumps(sec)
    assert normalized_average(benchmarks, samples)["uncertainty"] is None  # components missing: no value


def test_paired_comparison_pairs_only_shared_items():
    before, s_before = _run({"f1": [1, 0, 1, 0], "f2": [0, 0, 1]})
    after, s_after = _run({"f1": [1, 1, 1, 0, 1], "f2": [0, 1, 1]},
                          item_ids={"f1": ["0", "1", "2", "3", "extra"], "f2": ["0", "1", "2"]})
    d = paired_comparison(after, item_strata(s_after), before, item_strata(s_before), ["synthetic/direct"], "score")
    assert d.n_paired == 7 and d.n_only_a == 1 and d.n_only_b == 0
    # over the shared items: f1 75 vs 50, f2 66.7 vs 33.3: macro difference (25 + 33.3) / 2
    assert d.diff == pytest.approx((25 + 100 / 3) / 2)
    same = paired_comparison(before, item_strata(s_before), before, item_strata(s_before), ["synthetic/direct"])
    assert same.diff == 0 and same.p_value == 1.0 and not same.significant


def test_vote_margins():
    from flanlab.eval.runner import score_item
    from flanlab.eval.spec import EvalOptions

    item = SYN.items(None, SYN.subtasks(None)[0], "cot", EvalOptions(limit=1))[0]
    outs = [f"So the answer is {item.target}."] * 2 + ["So the answer is zzz."]
    row = score_item(SYN, item, "generate", {"outputs": outs})
    assert row["votes"] == {item.target: 2, "zzz": 1} and row["vote_margin"] == pytest.approx(1 / 3) and row["correct"]
    assert vote_counts(["4", " 4", "5", ""]) == [("4", 2), ("5", 1)]
    assert vote_margin(["4", "4", "5", ""]) == pytest.approx(0.25)
    assert vote_margin(["7", "7", "7"]) == 1.0 and vote_margin(["1", "2"]) == 0.0 and vote_margin(["", ""]) == 0.0


# ----------------------------------------------------------------------------------------------------------
# what the demo and the report say


def _write_run(folder, label, num_tasks, correct):
    from flanlab.eval.results import SCHEMA

    benchmarks, samples = _run(correct, chance=25.0)
    folder.mkdir(parents=True)
    results = {"schema": SCHEMA, "model": {"name": "m", "kind": "causal", "parameters": 1000, "untrained": False},
               "settings": {"limit": 20}, "benchmarks": benchmarks,
               "normalized_average": normalized_average(benchmarks, samples),
               "synthetic_average": synthetic_average(benchmarks, samples), "timings": {"total_s": 1.0}}
    (folder / "results.json").write_text(json.dumps(results))
    (folder / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    (folder / "run_info.json").write_text(json.dumps({"label": label, "model": "m", "num_tasks": num_tasks,
                                                      "stage": "after" if num_tasks else "before"}))


def test_demo_and_report_do_not_call_two_of_twenty_significant(tmp_path):
    from flanlab.demo import summary_text
    from flanlab.report import write_report

    before = [1] * 10 + [0] * 10
    after = [1] * 12 + [0] * 8  # 2 of 20 more: +10 points
    _write_run(tmp_path / "before", "m · before fine-tuning", 0, {"fam": before})
    _write_run(tmp_path / "after", "m · after fine-tuning", 5, {"fam": after})
    text = summary_text(tmp_path)
    assert "50.0 ± 11.5" in text and "60.0 ± 11.2" in text  # 100 * sqrt(.25 * 20/19 / 20) = 11.47
    assert "synthetic/direct accuracy: +10.0" in text and "no significant change" in text
    assert "significant changes after fine-tuning: none" in text
    page = write_report([tmp_path / "before", tmp_path / "after"], tmp_path / "report").read_text()
    assert 'class="pos"' not in page and "no significant change" in page and "(+10.0)" in page
    assert "Paired comparisons" in page and "20 paired" not in page  # the count is its own column
    md = (tmp_path / "report" / "report.md").read_text()
    assert "no significant change" in md and "**(+10.0)**" not in md


def test_report_colours_a_significant_gain(tmp_path):
    from flanlab.demo import summary_text
    from flanlab.report import write_report

    _write_run(tmp_path / "before", "m · before fine-tuning", 0, {"a": [0] * 20, "b": [0] * 20})
    _write_run(tmp_path / "after", "m · after fine-tuning", 5, {"a": [1] * 20, "b": [1] * 18 + [0] * 2})
    text = summary_text(tmp_path)
    assert "significant changes after fine-tuning: synthetic suite average (gain)" in text
    page = write_report([tmp_path / "before", tmp_path / "after"], tmp_path / "report").read_text()
    assert 'class="pos"' in page and "gain" in page


# ----------------------------------------------------------------------------------------------------------
# results.json's typed form


def test_results_schema_round_trip_and_refusals(tmp_path):
    from flanlab.eval.results import read_results, write_run
    from flanlab.eval.schema import SCHEMA, Results

    benchmarks, samples = _run({"f1": [1, 0, 1, 1], "f2": [0, 1]})
    results = {"schema": SCHEMA, "model": {"name": "m"}, "settings": {}, "benchmarks": benchmarks,
               "normalized_average": normalized_average(benchmarks, samples),
               "synthetic_average": synthetic_average(benchmarks, samples), "timings": {"total_s": 1.0}}
    results = json.loads(json.dumps(results))
    typed = Results.from_json(results, "r.json")
    assert typed.to_json() == results and typed.has_intervals
    assert typed.interval("synthetic", "direct").stderr == results["benchmarks"]["synthetic"]["direct"]["uncertainty"]["score"]["stderr"]
    assert typed.benchmarks["synthetic"]["direct"].subtasks["f1"].uncertainty["score"].stderr == pytest.approx(25.0)
    write_run(tmp_path / "run", results, samples)
    assert read_results(tmp_path / "run") == results
    old = {**results, "schema": "flanlab.results/1"}
    assert not Results.from_json(old, "old.json").has_intervals  # read, without intervals
    with pytest.raises(ValueError, match=r"future\.json: schema is 'flanlab\.results/9'"):
        Results.from_json({**results, "schema": "flanlab.results/9"}, "future.json")
    broken = json.loads(json.dumps(results))
    del broken["benchmarks"]["synthetic"]["direct"]["subtasks"]["f2"]["uncertainty"]
    with pytest.raises(ValueError, match=r"b\.json: benchmarks\.synthetic\.direct\.subtasks\.f2: missing field 'uncertainty'"):
        Results.from_json(broken, "b.json")
    with pytest.raises(ValueError, match="missing field 'uncertainty'"):
        write_run(tmp_path / "broken", broken, samples)  # never written
    assert not (tmp_path / "broken" / "results.json").exists()


def test_bootstrap_agrees_with_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(7)
    x, y = rng.random(30), (rng.random(50) < 0.4).astype(float)
    ours = estimate(Linear.of({"x": 50.0, "y": 50.0}), {"x": x, "y": y}, n_boot=20000)
    # scipy's bootstrap of the same macro mean, resampling each sample independently (= within each stratum)
    theirs = stats.bootstrap((x, y), lambda a, b, axis=-1: 50 * a.mean(axis=axis) + 50 * b.mean(axis=axis),
                             n_resamples=20000, method="percentile", random_state=np.random.default_rng(1))
    assert ours.stderr == pytest.approx(theirs.standard_error, rel=0.05)
    assert ours.ci_low == pytest.approx(theirs.confidence_interval.low, abs=1.0)
    assert ours.ci_high == pytest.approx(theirs.confidence_interval.high, abs=1.0)


def test_modes_over_the_same_items_resample_together():
    """Direct and CoT over the same items draw the same resamples, so the average keeps their correlation: two
    identical modes average to one mode's SE exactly (independent draws would give about 1/sqrt(2) of it)."""
    from flanlab.eval.metrics import average_estimate

    benchmarks, samples = _run({"f1": [1, 0, 1, 1, 0, 0], "f2": [0, 0, 1, 0, 1]})
    cot = json.loads(json.dumps(benchmarks["synthetic"]["direct"]))
    benchmarks["synthetic"]["cot"] = cot
    samples = samples + [{**row, "mode": "cot"} for row in samples]
    strata = item_strata(samples)
    one = average_estimate(benchmarks, ["synthetic/direct"], strata)
    both = average_estimate(benchmarks, ["synthetic/direct", "synthetic/cot"], strata)
    assert both.value == pytest.approx(one.value) and both.stderr == pytest.approx(one.stderr, rel=1e-12)


def test_paired_comparison_over_modes_on_the_same_items_keeps_their_correlation():
    """A paired comparison over two modes that score the same items (direct and CoT) draws the same resamples for
    both: two identical modes give one mode's SE exactly (independent draws: about 1/sqrt(2) of it, an interval
    too narrow). McNemar assumes independent pairs: it is left out when the items repeat across modes."""
    before, s_before = _run({"f1": [1, 0, 1, 0, 0, 1], "f2": [0, 0, 1, 0, 1]})
    after, s_after = _run({"f1": [1, 1, 1, 0, 1, 1], "f2": [0, 1, 1, 1, 1]})
    for benchmarks, samples in ((before, s_before), (after, s_after)):
        benchmarks["synthetic"]["cot"] = json.loads(json.dumps(benchmarks["synthetic"]["direct"]))
        samples += [{**row, "mode": "cot"} for row in list(samples)]
    one = paired_comparison(after, item_strata(s_after), before, item_strata(s_before), ["synthetic/direct"], "score")
    both = paired_comparison(after, item_strata(s_after), before, item_strata(s_before),
                             ["synthetic/direct", "synthetic/cot"], "score")
    assert both.diff == pytest.approx(one.diff) and both.stderr == pytest.approx(one.stderr, rel=1e-12)
    assert (both.ci_low, both.ci_high) == pytest.approx((one.ci_low, one.ci_high))
    assert one.mcnemar_p is not None and both.mcnemar_p is None


def test_mcnemar_with_thousands_of_discordant_pairs():
    """Full MMLU has 14,042 items: the exact test must not overflow (2.0 ** n did past 1,023 discordant pairs)."""
    a = np.array([1] * 1400 + [0] * 1600)
    b = 1 - a
    p = mcnemar_exact(a, b)
    assert 0 < p < 1e-3
    stats = pytest.importorskip("scipy.stats")
    assert p == pytest.approx(stats.binomtest(1400, 3000, 0.5).pvalue, rel=1e-9)
    assert mcnemar_exact(np.ones(20000), np.zeros(20000)) == 0.0


def test_the_shown_change_is_the_paired_one_when_item_sets_differ():
    """With different item sets the unpaired difference and the paired one differ: the change shown beside the
    interval and colour (HTML and Markdown) is the paired one, and says it is over the shared items."""
    from flanlab.report.html import _delta
    from flanlab.report.markdown import _change

    before, s_before = _run({"f1": [1, 0, 1, 0], "f2": [0, 0, 1]})
    after, s_after = _run({"f1": [1, 1, 1, 0, 0], "f2": [0, 1, 1]},
                          item_ids={"f1": ["0", "1", "2", "3", "extra"], "f2": ["0", "1", "2"]})
    d = paired_comparison(after, item_strata(s_after), before, item_strata(s_before), ["synthetic/direct"], "score")
    unpaired = after["synthetic"]["direct"]["score"] - before["synthetic"]["direct"]["score"]
    assert abs(unpaired - d.diff) > 1
    for text in (_change(unpaired, d), _delta(unpaired, d)):
        assert f"({d.diff:+.1f}, over the 7 shared items)" in text and f"{unpaired:+.1f}" not in text


def test_runs_of_different_benchmark_versions_are_not_paired(tmp_path):
    """Item ids are positions: runs that scored a benchmark in different versions (other items or rules) are not
    paired; a merged scale cell keeps the versions of every part."""
    from flanlab.report.load import Run
    from flanlab.report.tables import compare
    from flanlab.scale import merge_results

    before, s_before = _run({"f1": [1, 0, 1, 0], "f2": [0, 0, 1]})
    after, s_after = _run({"f1": [1, 1, 1, 0], "f2": [0, 1, 1]})

    def run(benchmarks, samples, version):
        results = {"benchmarks": benchmarks, "settings": {"benchmark_versions": {"synthetic": version}}}
        return Run(path=tmp_path, results=results, label=version, model="m", num_tasks=0, untrained=False,
                   parameters=None, items=item_strata(samples))

    assert compare(run(after, s_after, "3"), run(before, s_before, "3"), ["synthetic/direct"], "score") is not None
    assert compare(run(after, s_after, "3"), run(before, s_before, "2"), ["synthetic/direct"], "score") is None
    parts = [{"benchmarks": {"synthetic": {}}, "settings": {"benchmark_versions": {"synthetic": "3"}}},
             {"benchmarks": {"bbh": {}}, "settings": {"benchmark_versions": {"bbh": "2"}}}]
    assert merge_results(parts)["settings"]["benchmark_versions"] == {"synthetic": "3", "bbh": "2"}


def _recorded_run(folder, label, num_tasks, correct, settings=None, provenance=None):
    """_write_run with results.json's settings and provenance replaced (None: left out)."""
    _write_run(folder, label, num_tasks, correct)
    results = json.loads((folder / "results.json").read_text())
    results["settings"] = {"limit": 20, **(settings or {})}
    if provenance is not None:
        results["provenance"] = provenance
    (folder / "results.json").write_text(json.dumps(results))


def _page_and_text(tmp_path):
    from flanlab.demo import summary_text
    from flanlab.report import write_report

    page = write_report([tmp_path / "before", tmp_path / "after"], tmp_path / "report").read_text()
    return page, (tmp_path / "report" / "report.md").read_text(), summary_text(tmp_path)


BEFORE, AFTER = {"a": [0] * 20, "b": [0] * 20}, {"a": [1] * 20, "b": [1] * 18 + [0] * 2}
SYNTHETIC_DATA = {"data_dir": None, "data_files": {}}  # provenance as results.json wrote it before benchmark_data


def test_other_benchmark_versions_are_refused_on_the_page_naming_runs_and_benchmark(tmp_path):
    _recorded_run(tmp_path / "before", "m · before", 0, BEFORE, {"benchmark_versions": {"synthetic": "2"}},
                  SYNTHETIC_DATA)
    _recorded_run(tmp_path / "after", "m · after", 5, AFTER, {"benchmark_versions": {"synthetic": "3"}},
                  SYNTHETIC_DATA)
    page, md, text = _page_and_text(tmp_path)
    line = "synthetic version 3 in m · after, 2 in m · before: other prompts, items or scoring"
    assert f"not paired: {line}" in text and f"warning: not paired: {line}" in text
    assert 'class="pos"' not in page and "gain" not in text  # nothing paired, nothing called significant
    assert f'<div class="warn"><b>Pairing:</b><ul><li>not paired: {line}</li>' in page.replace("&#x27;", "'")
    assert "not paired: synthetic version 3 in m · after, 2 in m · before" in md


def test_unrecorded_versions_are_paired_with_a_visible_warning(tmp_path):
    """Results without benchmark versions (older files, or a benchmark without one) are paired, and the page says
    so above its changes; results that record versions and data say nothing."""
    _recorded_run(tmp_path / "before", "m · before", 0, BEFORE, {}, SYNTHETIC_DATA)
    _recorded_run(tmp_path / "after", "m · after", 5, AFTER, {"benchmark_versions": {"synthetic": "3"}})
    page, md, text = _page_and_text(tmp_path)
    assert "significant changes after fine-tuning: synthetic suite average (gain)" in text  # still paired
    assert 'class="pos"' in page
    for label, unknown in (("m · after", "data files"), ("m · before", "version")):
        note = f"{label}: synthetic's {unknown} not recorded, so its items are paired by id without knowing"
        assert f"warning: {note}" in text and note in page.replace("&#x27;", "'")
        assert note in md.replace("\\", "").replace("&#x27;", "'")
    _recorded_run(tmp_path / "known" / "before", "m · before", 0, BEFORE, {"benchmark_versions": {"synthetic": "3"}},
                  {"benchmark_data": {"synthetic": "d1"}})
    _recorded_run(tmp_path / "known" / "after", "m · after", 5, AFTER, {"benchmark_versions": {"synthetic": "3"}},
                  {"benchmark_data": {"synthetic": "d1"}})
    page, md, text = _page_and_text(tmp_path / "known")
    assert "Pairing" not in page and "Pairing" not in md and "warning" not in text and 'class="pos"' in page


def test_other_benchmark_data_files_are_refused(tmp_path):
    """The same version over other data files (item ids are positions in them): refused, from the recorded
    provenance.benchmark_data, and for older results from their provenance's data_dir and data_files."""
    from flanlab.eval.benchmarks import BENCHMARKS
    from flanlab.eval.results import provenance
    from flanlab.report.load import Run
    from flanlab.report.tables import compare, not_paired_reason

    (tmp_path / "d1" / "bbh" / "bbh").mkdir(parents=True)
    (tmp_path / "d1" / "bbh" / "bbh" / "navigate.json").write_text('{"examples": []}')
    (tmp_path / "d2" / "bbh" / "bbh").mkdir(parents=True)
    (tmp_path / "d2" / "bbh" / "bbh" / "navigate.json").write_text('{"examples": [{"input": "x", "target": "y"}]}')
    prov = {d: provenance([BENCHMARKS["bbh"], BENCHMARKS["synthetic"]], tmp_path / d) for d in ("d1", "d2")}
    assert prov["d1"]["benchmark_data"]["bbh"] != prov["d2"]["benchmark_data"]["bbh"]
    assert prov["d1"]["benchmark_data"]["synthetic"] == prov["d2"]["benchmark_data"]["synthetic"]
    before, s_before = _run({"navigate": [1, 0, 1, 0]})
    after, s_after = _run({"navigate": [1, 1, 1, 0]})
    before, after = {"bbh": before["synthetic"]}, {"bbh": after["synthetic"]}
    for row in s_before + s_after:
        row["benchmark"] = "bbh"

    def run(benchmarks, samples, label, p):
        results = {"benchmarks": benchmarks, "settings": {"benchmark_versions": {"bbh": "1"}}, "provenance": p}
        return Run(path=tmp_path, results=results, label=label, model="m", num_tasks=0, untrained=False,
                   parameters=None, items=item_strata(samples))

    for old in (False, True):  # old: results.json from before provenance.benchmark_data
        p1, p2 = ({k: v for k, v in p.items() if k != "benchmark_data" or not old} for p in (prov["d1"], prov["d2"]))
        a, b = run(after, s_after, "after", p1), run(before, s_before, "before", p1)
        assert compare(a, b, ["bbh/direct"], "score") is not None
        b = run(before, s_before, "before", p2)
        assert compare(a, b, ["bbh/direct"], "score") is None
        assert not_paired_reason(a, b, ["bbh/direct"]) == (
            "bbh read other data files in after than in before (provenance.benchmark_data differs): the same item id "
            "may name another item")


def test_item_ids_with_other_targets_are_not_paired(tmp_path):
    """Same recorded version and data, yet an id both runs scored has another target: not the same item (a
    benchmark whose data changed without its version, a hand-made results.json): refused, naming the item."""
    known = ({"benchmark_versions": {"synthetic": "3"}}, {"benchmark_data": {"synthetic": "d1"}})
    for name, correct in (("before", BEFORE), ("after", AFTER)):
        _recorded_run(tmp_path / name, f"m · {name}", 5 if name == "after" else 0, correct, *known)
        rows = [json.loads(line) for line in (tmp_path / name / "samples.jsonl").read_text().splitlines()]
        for row in rows:
            row["target"] = f"t{row['item_id']}"
        (tmp_path / name / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    page, md, text = _page_and_text(tmp_path)
    assert "Pairing" not in page and "(gain)" in text  # the same targets: paired
    rows = [json.loads(line) for line in (tmp_path / "after" / "samples.jsonl").read_text().splitlines()]
    rows[3]["target"] = "something else"  # subtask a, item 3
    (tmp_path / "after" / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    page, md, text = _page_and_text(tmp_path)
    line = ('not paired: synthetic: item synthetic/direct/a/3 has target "something else" vs "t3" in m · after and '
            'm · before: the same ids name other items')
    assert f"warning: {line}" in text and "(gain)" not in text and 'class="pos"' not in page
    assert line.replace('"', "&quot;") in page


def test_verdict_needs_both_tests_on_a_few_dozen_items_and_p_agrees_with_the_interval():
    """27 items, 7 lost and 1 gained: the percentile interval excludes 0 but the exact McNemar p is 0.070, so no
    verdict is given; the bootstrap p is the interval's own (p < 0.05 exactly when the interval excludes 0)."""
    before = np.array([1] * 7 + [0] * 1 + [1] * 2 + [0] * 17, dtype=float)
    after = np.array([0] * 7 + [1] * 1 + [1] * 2 + [0] * 17, dtype=float)
    lin = Linear.of({"s": 100.0})
    d = paired_diff(lin, lin, {"s": after}, {"s": before})
    assert d.ci_high < 0 and d.p_value < 0.05  # the bootstrap alone would call it a loss
    assert d.mcnemar_p == pytest.approx(18 / 256) and not d.significant and d.verdict() == "no significant change"
    rng = np.random.default_rng(3)
    for shift in (0.0, 0.1, 0.25, 0.5):  # continuous scores (F1): no McNemar, p and interval agree
        a, b = rng.random(40) + shift, rng.random(40)
        d = paired_diff(lin, lin, {"s": a}, {"s": b})
        assert d.mcnemar_p is None and (d.p_value < 0.05) == d.significant == (d.ci_low > 0 or d.ci_high < 0)
