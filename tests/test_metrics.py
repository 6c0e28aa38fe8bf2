"""Metrics: per-item scores, aggregation into results.json's per-mode section, and the paper's normalized
average checked against numbers worked out by hand."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from flanlab.eval.benchmarks import BENCHMARKS
from flanlab.eval.metrics import (
    Aggregation, exact_match, majority_vote, normalize, normalized_average, numeric_match, parse_number,
    squad_em, squad_f1, squad_normalize, summarize_mode,
)


def test_exact_match_and_squad():
    assert exact_match(" (A) ", "(A)") == 1.0 and exact_match("(a)", "(A)") == 0.0
    assert squad_normalize("The  Eiffel-Tower!") == "eiffeltower"
    # the official SQuAD v1.1 script drops ASCII punctuation only (string.punctuation)
    assert squad_normalize("«Москва»,") == "«москва»"  # guillemets stay, the ASCII comma goes
    assert squad_normalize("ঢাকা।") == "ঢাকা।"  # Bengali danda stays
    assert squad_normalize("بطولتين،") == "بطولتين،"  # Arabic comma stays
    assert squad_em("an apple.", ["Apple", "pear"]) == 1.0
    # F1 by hand: pred {red, big, ball}, gold {big, ball, game}: overlap 2, P = 2/3, R = 2/3, F1 = 2/3
    assert squad_f1("red big ball", ["big ball game"]) == pytest.approx(2 / 3)
    assert squad_f1("red big ball", ["nothing", "big ball game", "ball"]) == pytest.approx(2 / 3)  # max over golds
    assert squad_f1("", ["x"]) == 0.0 and squad_f1("the", ["a"]) == 0.0  # both empty: 0, as the official script


@pytest.mark.parametrize("text,value", [
    ("18", 18.0), ("The answer is 1,000 dollars", 1000.0), ("-3.5", -3.5), ("2,5", 2.5), ("114,200", 114200.0),
    ("1,234,567.25", 1234567.25), ("x", None), ("", None), ("11.", 11.0),
])
def test_parse_number(text, value):
    assert parse_number(text) == value


def test_numeric_match():
    assert numeric_match("5", "5.0") == 1.0 and numeric_match("1,000", "1000") == 1.0
    assert numeric_match("", "5") == 0.0 and numeric_match("6", "5") == 0.0


def test_majority_vote():
    assert majority_vote(["3", "5", "5", "3", "7"]) == "3"  # tie 2-2: the one seen first
    assert majority_vote(["", "5", " 5", "", ""]) == "5"  # empty extractions do not vote
    assert majority_vote(["", ""]) == "" and majority_vote([]) == ""
    assert majority_vote(["(B)", "(A)", "(A)"]) == "(A)"


def test_normalize():
    assert normalize(25.0, 25.0) == 0.0 and normalize(100.0, 25.0) == 100.0
    assert normalize(62.5, 25.0) == pytest.approx(50.0) and normalize(40.0, 0.0) == 40.0
    assert normalize(10.0, 50.0) == pytest.approx(-80.0)
    with pytest.raises(ValueError):
        normalize(50.0, 100.0)


def _acc(correct: list[int], metric: str = "accuracy") -> list[dict[str, float]]:
    return [{metric: float(c)} for c in correct]


def hand_results() -> dict:
    """A benchmarks section built by summarize_mode from per-item results chosen so that every number below
    can be checked by hand."""
    mmlu, bbh, tydiqa, mgsm = (BENCHMARKS[n] for n in ("mmlu", "bbh", "tydiqa", "mgsm"))
    mc = {"a": 25.0, "b": 25.0}
    bbh_chance = {"t1": 50.0, "t2": 20.0, "t3": 0.0}
    return {
        "mmlu": {
            "direct": summarize_mode(mmlu, "direct", "rank", {"a": _acc([1, 1, 1, 0]), "b": _acc([0, 0])}, mc),
            "cot": summarize_mode(mmlu, "cot", "generate", {"a": _acc([1, 1, 0, 0]), "b": _acc([1, 1])}, mc),
        },
        "bbh": {
            "direct": summarize_mode(bbh, "direct", "generate", {"t1": _acc([1, 1, 1, 0]), "t2": _acc([1, 0, 0, 0, 0]),
                                                                 "t3": _acc([1, 0])}, bbh_chance),
            "cot": summarize_mode(bbh, "cot", "generate", {"t1": _acc([1, 1, 1, 1]), "t2": _acc([1, 1, 0, 0, 0]),
                                                           "t3": _acc([0, 0])}, bbh_chance),
        },
        "tydiqa": {"direct": summarize_mode(
            tydiqa, "direct", "generate",
            {"arabic": [{"exact_match": 1.0, "f1": 1.0}, {"exact_match": 0.0, "f1": 0.5}],
             "bengali": [{"exact_match": 1.0, "f1": 1.0}],
             "english": [{"exact_match": 0.0, "f1": 0.0}]},
            {"arabic": 0.0, "bengali": 0.0, "english": 0.0})},
        "mgsm": {"cot": summarize_mode(mgsm, "cot", "generate",
                                       {"bn": _acc([1, 0, 0, 0]), "de": _acc([1, 1, 1, 0]), "en": _acc([1])},
                                       {"bn": 0.0, "de": 0.0, "en": 0.0})},
    }


def test_summarize_mode_by_hand():
    r = hand_results()
    mmlu = r["mmlu"]["direct"]
    # micro: 3 of 6 items = 50; macro: (75 + 0) / 2 = 37.5; normalized 100 * (50 - 25) / 75 = 33.33
    assert (mmlu["score"], mmlu["micro"], mmlu["macro"], mmlu["n"]) == (50.0, 50.0, 37.5, 6)
    assert mmlu["normalized"] == pytest.approx(33.333333) and mmlu["chance"] == 25.0 and mmlu["scoring"] == "rank"
    assert mmlu["subtasks"]["a"]["uncertainty"]["score"]["method"].startswith("analytic")  # tested in test_stats.py
    assert {k: v for k, v in mmlu["subtasks"]["a"].items() if k != "uncertainty"} == {"score": 75.0, "n": 4, "chance": 25.0, "normalized": pytest.approx(66.666667),
                                     "metrics": {"accuracy": 75.0}}
    bbh = r["bbh"]["direct"]
    # scores 75, 20, 50 -> mean 48.33; per-subtask normalized 50, 0, 50 -> 33.33 (not normalize(48.33, 23.33) = 32.61)
    assert bbh["score"] == pytest.approx(48.333333) and bbh["chance"] == pytest.approx(23.333333)
    assert bbh["normalized"] == pytest.approx(33.333333)
    assert r["bbh"]["cot"]["normalized"] == pytest.approx(41.666667)  # (100 + 25 + 0) / 3
    mixed = summarize_mode(BENCHMARKS["bbh"], "direct", "rank", {"t1": _acc([1]), "t3": _acc([0])}, {},
                           subtask_scoring={"t1": "rank", "t3": "generate"})
    assert mixed["subtasks"]["t3"]["scoring"] == "generate" and mixed["scoring"] == "rank"
    ty = r["tydiqa"]["direct"]
    # arabic EM 50, bengali 100 -> 75; English 0 reported, excluded; F1 (75 + 100) / 2 = 87.5
    assert ty["score"] == 75.0 and ty["normalized"] == 75.0 and ty["n"] == 3 and ty["metric"] == "exact_match"
    assert ty["metrics"] == {"exact_match": 75.0, "f1": 87.5}
    assert ty["subtasks"]["english"]["excluded_from_mean"] is True and ty["excluded_from_mean"] == ["english"]
    assert r["mgsm"]["cot"]["score"] == 50.0 and r["mgsm"]["cot"]["n"] == 8
    json.dumps(r)  # results.json-ready


def test_summarize_mode_rejects_missing_main_metric():
    with pytest.raises(ValueError, match="exact_match"):
        summarize_mode(BENCHMARKS["tydiqa"], "direct", "generate", {"arabic": _acc([1])}, {})
    with pytest.raises(ValueError, match="aggregation"):
        summarize_mode(BENCHMARKS["bbh"], "cot", "generate", {"t": _acc([1])}, {}, Aggregation(average="median"))


def test_aggregation_is_part_of_the_benchmark():
    """Each benchmark carries its own averaging (Benchmark.aggregation, no registry beside BENCHMARKS), as
    flanlab/eval/metrics.py documents it; a copy made with dataclasses.replace keeps it."""
    declared = {name: (b.aggregation.average, b.aggregation.excluded) for name, b in BENCHMARKS.items()}
    assert declared == {"mmlu": ("items", ()), "bbh": ("subtasks", ()), "tydiqa": ("subtasks", ("english",)),
                        "mgsm": ("subtasks", ("en",)), "synthetic": ("subtasks", ())}
    renamed = dataclasses.replace(BENCHMARKS["mmlu"], name="mmlu-copy")
    section = summarize_mode(renamed, "direct", "rank", {"a": _acc([1, 1, 1, 0]), "b": _acc([0, 0])}, {})
    assert section["aggregation"] == "items" and section["score"] == 50.0  # micro: 3 of 6, not (75 + 0) / 2
    with pytest.raises(ValueError, match="unknown aggregation 'median'"):
        Aggregation(average="median")


def test_normalized_average_by_hand():
    avg = normalized_average(hand_results())
    # mmlu/direct 33.3333, mmlu/cot 100*(66.6667-25)/75 = 55.5556, bbh/direct 33.3333, bbh/cot 41.6667,
    # tydiqa 75, mgsm 50: sum 288.8889, mean 48.1481
    assert avg["components"] == {
        "mmlu/direct": pytest.approx(33.333333), "mmlu/cot": pytest.approx(55.555556),
        "bbh/direct": pytest.approx(33.333333), "bbh/cot": pytest.approx(41.666667),
        "tydiqa/direct": pytest.approx(75.0), "mgsm/cot": pytest.approx(50.0),
    }
    assert avg["missing"] == [] and avg["value"] == pytest.approx(48.148148)


def test_normalized_average_missing():
    section = hand_results()
    del section["mgsm"]
    del section["bbh"]["cot"]
    avg = normalized_average(section)
    assert avg["value"] is None and avg["missing"] == ["bbh/cot", "mgsm/cot"]
    assert set(avg["components"]) == {"mmlu/direct", "mmlu/cot", "bbh/direct", "tydiqa/direct"}
    assert normalized_average({}) == {"value": None, "components": {}, "uncertainty": None, "missing": [
        "mmlu/direct", "mmlu/cot", "bbh/direct", "bbh/cot", "tydiqa/direct", "mgsm/cot"]}


def test_normavg_command(tmp_path, capsys):
    from flanlab.cli import main

    full, partial = tmp_path / "full", tmp_path / "partial.json"
    full.mkdir()
    (full / "results.json").write_text(json.dumps({"model": {"name": "m1"}, "benchmarks": hand_results()}))
    section = hand_results()
    del section["tydiqa"]
    partial.write_text(json.dumps({"benchmarks": section}))
    assert main(["normavg", str(full), str(partial)]) == 0
    out = capsys.readouterr().out
    assert "(model m1)" in out and "normalized average: 48.15" in out
    assert "mmlu/cot          66.67   25.00       55.56  generate" in out
    assert re.search(r"tydiqa/direct +missing\n", out) and "n/a (missing tydiqa/direct)" in out
    assert main(["normavg", "--json", str(full)]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["normalized_average"]["value"] == pytest.approx(48.148148)
    bad = tmp_path / "bad.json"
    bad.write_text("{\n  oops")
    assert main(["normavg", str(bad)]) == 1
    assert f"{bad}:2" in capsys.readouterr().err
