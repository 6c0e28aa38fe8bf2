"""MGSM and TyDiQA evaluate English and report it per subtask, but leave it out of the benchmark's average (the
Flan paper's). A mode section's n counts the averaged items only; the report's "evaluated on N items" summed those,
so it undercounted what was evaluated by the English items and never said English was left out."""

from __future__ import annotations

from pathlib import Path

from flanlab.eval.benchmarks import mgsm, tydiqa
from flanlab.eval.metrics import summarize_mode
from flanlab.eval.runner import summary_text
from flanlab.report.load import Run
from flanlab.report.tables import budget_sentences, eval_items, excluded_items


def _section(bench, mode: str, sizes: dict[str, int]) -> dict:
    metric = bench.metric
    per_item = {name: [{metric: float(i % 2)} for i in range(n)] for name, n in sizes.items()}
    return summarize_mode(bench, mode, "generate", per_item, {}, n_boot=20)


def _run(**benchmarks) -> Run:
    results = {"benchmarks": benchmarks, "settings": {"limit": 3}}
    return Run(path=Path("r"), results=results, label="base", model="m", num_tasks=0, untrained=False, parameters=None)


def test_the_count_includes_english_and_says_it_was_left_out():
    mgsm_cot = _section(mgsm.BENCHMARK, "cot", {"de": 3, "fr": 3, "en": 3})
    tydiqa_direct = _section(tydiqa.BENCHMARK, "direct", {"arabic": 2, "english": 2})
    assert mgsm_cot["n"] == 6 and tydiqa_direct["n"] == 2  # the averaged items: the score's n, unchanged
    run = _run(mgsm={"cot": mgsm_cot}, tydiqa={"direct": tydiqa_direct})
    assert excluded_items(run) == {"mgsm": (["en"], 3), "tydiqa": (["english"], 2)}
    assert eval_items(run) == 3 + 3 + 3 + 2 + 2
    [sentence] = budget_sentences([run])
    assert ("evaluated on 13 items (at most 3 per subtask), 5 of them (mgsm: en; tydiqa: english) reported per "
            "subtask but left out of their benchmark's average, as in the Flan paper.") in sentence, sentence


def test_a_run_without_excluded_subtasks_reads_as_before():
    run = _run(mgsm={"cot": _section(mgsm.BENCHMARK, "cot", {"de": 2, "fr": 2})})
    assert excluded_items(run) == {} and eval_items(run) == 4
    assert budget_sentences([run])[0].endswith("evaluated on 4 items (at most 3 per subtask).")


def test_the_terminal_summary_names_the_subtask_left_out():
    text = summary_text({"benchmarks": {"mgsm": {"cot": _section(mgsm.BENCHMARK, "cot", {"de": 3, "en": 2})}}})
    assert "(n=3, generate; not averaged: en n=2)" in text, text
