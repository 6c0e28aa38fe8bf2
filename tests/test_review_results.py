"""Silent wrong results found in review: each test failed on the code before its fix."""

from __future__ import annotations

import pytest

from flanlab.eval.benchmarks import bbh, synthetic
from flanlab.eval.spec import EvalItem


@pytest.mark.parametrize("output, answer", [
    ('So the answer is "valid".', "valid"),  # the period after the closing quote
    ("So the answer is '(A)'.", "(A)"),
    ("So the answer is “Yes”.", "Yes"),
    ('So the answer is "valid."', "valid"),  # the period inside (already read so)
    ("So the answer is valid.", "valid"),
])
def test_bbh_quoted_answer_followed_by_a_period_is_unquoted(output, answer):
    # clean() promises to remove surrounding quotes and one trailing period; with the period after the closing
    # quote the quote stayed ('valid"'), so a right answer scored 0 under the strict rule
    assert bbh.extract_answer(output, "cot") == answer
    item = EvalItem(benchmark="bbh", subtask="formal_fallacies", mode="cot", item_id="0", prefix="",
                    query="Q: Is the argument valid?\nOptions:\n- valid\n- invalid\nA: Let's think step by step.",
                    target=answer)
    assert bbh.score(bbh.extract(output, item), item)["accuracy"] == 1.0


def test_bbh_clean_still_strips_only_one_period():
    assert bbh.clean('"a..".') == "a.."  # the quoted text keeps its own periods
    assert bbh.clean("a..") == "a."


def test_synthetic_quoted_option_followed_by_a_period_is_the_option():
    item = EvalItem(benchmark="synthetic", subtask="x", mode="cot", item_id="0", prefix="",
                    query="Q: Which?\nOptions:\n- True\n- False\nA: Let's think step by step.", target="True")
    extracted = synthetic.extract('So the answer is "True".', item)
    assert extracted == "True"
    assert synthetic.score(extracted, item)["accuracy"] == 1.0


# --- the report pairs a run only with a baseline evaluated the same way -----------------------------------


def _two_runs(tmp_path, before_settings: dict, after_settings: dict, before_section=None, after_section=None):
    """A before (0 tasks) and after (5 tasks) run whose after is clearly better, with settings and section keys."""
    import json

    from tests.test_stats import AFTER, BEFORE, _recorded_run

    known = {"benchmark_versions": {"synthetic": "4"}}
    _recorded_run(tmp_path / "before", "m · before", 0, BEFORE, {**known, **before_settings},
                  {"benchmark_data": {"synthetic": "d"}})
    _recorded_run(tmp_path / "after", "m · after", 5, AFTER, {**known, **after_settings},
                  {"benchmark_data": {"synthetic": "d"}})
    for name, extra in (("before", before_section), ("after", after_section)):
        if extra:
            path = tmp_path / name / "results.json"
            results = json.loads(path.read_text())
            results["benchmarks"]["synthetic"]["direct"].update(extra)
            path.write_text(json.dumps(results))


def _page_and_text(tmp_path):
    from flanlab.demo import summary_text
    from flanlab.report import write_report

    page = write_report([tmp_path / "before", tmp_path / "after"], tmp_path / "report").read_text()
    return page.replace("&#x27;", "'"), summary_text(tmp_path)


def test_same_settings_are_paired(tmp_path):
    _two_runs(tmp_path, {"apply_chat_template": False}, {"apply_chat_template": False},
              {"shots": 3, "shots_max": 3}, {"shots": 3, "shots_max": 3})
    page, text = _page_and_text(tmp_path)
    assert "synthetic/direct accuracy: +" in text and "gain" in text and "not paired" not in text
    assert 'class="pos"' in page


@pytest.mark.parametrize("before, after, before_section, after_section, what", [
    ({}, {}, {"shots": 0, "shots_max": 0}, {"shots": 3, "shots_max": 3}, "shots 3 vs 0"),
    ({"apply_chat_template": False}, {"apply_chat_template": True}, None, None, "apply_chat_template True vs False"),
    ({}, {}, {"scoring": "generate"}, {"scoring": "rank"}, "scoring rank vs generate"),
    # a merged scale cell records a setting its parts differed in per "bench/mode"
    ({"system_instruction": {"synthetic/direct": None, "mmlu/direct": "x"}}, {"system_instruction": "Answer."},
     None, None, "system_instruction Answer. vs None"),
])
def test_runs_evaluated_differently_are_not_paired(tmp_path, before, after, before_section, after_section, what):
    # a fine-tuned run evaluated 3-shot against its base evaluated 0-shot (or through the chat template against
    # plain prompts, or generated against ranked) was paired and its difference called a gain of fine-tuning
    _two_runs(tmp_path, before, after, before_section, after_section)
    page, text = _page_and_text(tmp_path)
    assert "gain" not in text and 'class="pos"' not in page
    assert f"synthetic/direct evaluated with other settings in m · after than in m · before ({what})" in text
    assert "not paired: synthetic/direct evaluated with other settings" in page


def test_sampling_settings_matter_only_where_sampled(tmp_path):
    """self-consistency applies to the CoT modes only: a direct mode is paired whatever it says; a CoT mode's
    samples differ with the temperature or the seed."""
    from flanlab.report.load import load_runs
    from flanlab.report.tables import eval_setting_differences

    _two_runs(tmp_path, {"self_consistency": 1}, {"self_consistency": 5, "temperature": 0.7})
    before, after = sorted(load_runs([tmp_path]), key=lambda r: r.label)[1], sorted(load_runs([tmp_path]),
                                                                                    key=lambda r: r.label)[0]
    assert after.label == "m · after"
    assert eval_setting_differences(after, before, "synthetic/direct") == []
    for run in (after, before):
        run.results["benchmarks"]["synthetic"]["cot"] = run.results["benchmarks"]["synthetic"]["direct"]
    assert eval_setting_differences(after, before, "synthetic/cot") == ["self_consistency 5 vs 1"]
    before.results["settings"].update(self_consistency=5, temperature=0.7, seed=0)
    after.results["settings"].update(seed=1)
    assert eval_setting_differences(after, before, "synthetic/cot") == ["seed 1 vs 0"]


# --- scale's table shows every cell --------------------------------------------------------------------------


def test_scale_table_keeps_two_mixtures_of_the_same_task_count():
    """Cells were keyed by (model, number of tasks): a second mixture with as many tasks replaced the first in the
    table, its score shown under a column that did not say which mixture it was."""
    from flanlab.scale import format_table

    vs = {"diff": 5.0, "ci95": [1.0, 9.0], "p_value": 0.01, "significant": True, "n_paired": 40}
    grid = {"headline": "synthetic suite average", "cells": [
        {"model": "a", "mixture": None, "num_tasks": 0, "score": 1.0, "untrained": False},
        {"model": "a", "mixture": "cot", "num_tasks": 3, "score": 2.5, "untrained": False, "vs_base": vs},
        {"model": "a", "mixture": "plain", "num_tasks": 3, "score": 7.5, "untrained": False,
         "vs_base": {**vs, "diff": 6.5}},
        {"model": "a", "mixture": "big", "num_tasks": 9, "score": 4.0, "untrained": False},
    ]}
    lines = format_table(grid).splitlines()
    assert lines[1].split() == ["model", "no", "FT", "3", "tasks", "(cot)", "3", "tasks", "(plain)", "9", "tasks"]
    assert lines[3].split() == ["a", "1.0", "2.5", "7.5", "4.0"]
    assert any(line.strip().startswith("a · 3 tasks (cot): +5.0") for line in lines)
    assert any(line.strip().startswith("a · 3 tasks (plain): +6.5") for line in lines)


def test_scale_table_shows_a_cell_of_unknown_task_count():
    from flanlab.scale import format_table

    grid = {"headline": "synthetic suite average", "cells": [
        {"model": "a", "mixture": None, "num_tasks": 0, "score": 1.0, "untrained": False},
        {"model": "a", "mixture": "m", "num_tasks": None, "score": 2.0, "untrained": False},
    ]}
    lines = format_table(grid).splitlines()
    assert lines[1].split() == ["model", "no", "FT", "?", "tasks", "(m)"]
    assert lines[3].split() == ["a", "1.0", "2.0"]


# --- training's own evaluation records its scores with their standard errors -------------------------------


def test_training_eval_suite_records_the_suite_average_with_its_standard_error(tmp_path):
    """eval_suite=synthetic (configs/train/flan-t5-paper.yaml) logged only the paper's normalized average, which a
    synthetic suite never has: log.jsonl, summary.json's final_eval and the trackers got null for the score, and no
    standard error for any score."""
    import json

    from tests.test_train import read_log, tiny_config

    from flanlab.train import train

    run = train(tiny_config(tmp_path, steps=2, eval_suite="synthetic", eval_limit=2), progress=False)
    bench = [e["eval"] for e in read_log(run) if "eval" in e][-1]["benchmark"]
    results = json.loads((run / "evals" / "step-000002" / "results.json").read_text())
    synthetic = results["synthetic_average"]
    assert bench["synthetic_average"] == synthetic["value"] is not None
    assert bench["synthetic_average_stderr"] == synthetic["uncertainty"]["value"]["stderr"] is not None
    assert bench["normalized_average"] is None and bench["normalized_average_stderr"] is None
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final_eval"]["benchmark"]["synthetic_average"] == synthetic["value"]


# --- rescoring predictions without item ids ----------------------------------------------------------------


def test_rescored_rows_without_item_ids_get_their_position_in_their_subtask(tmp_path):
    """An item id is a position in its subtask (what a report pairs by). Rows without "item_id" were given their
    line number in the whole file, so the second subtask's first row became item len(first subtask): it named
    another item, was looked up as that item, and would pair with it."""
    import json

    from flanlab.eval.benchmarks import BENCHMARKS
    from flanlab.eval.runner import rescore
    from flanlab.eval.spec import EvalOptions

    bench = BENCHMARKS["synthetic"]
    families = bench.subtasks(None)[:2]
    rows, expected = [], []
    for family in families:
        for item in bench.items(None, family, "direct", EvalOptions(limit=3)):
            rows.append({"task": family, "prediction": f"{item.target}", "target": item.target, "mode": "direct"})
            expected.append((family, item.item_id))
    path = tmp_path / "predictions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rescore("synthetic", path, tmp_path / "out")
    samples = [json.loads(line) for line in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    assert [(s["subtask"], s["item_id"]) for s in samples] == expected
    # looked up as the items they are: each row's prompt is its item's
    for s, (family, item_id) in zip(samples, expected):
        item = bench.items(None, family, "direct", EvalOptions(limit=3))[int(item_id)]
        assert s["prompt"] == item.prompt
