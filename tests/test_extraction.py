"""Answers extracted and scored as the benchmarks' authors scored them (the rules and their sources are written
beside each benchmark's `score`), on hedged, repeated, truncated and empty outputs; the lenient BBH/MMLU reading
reported beside the strict one and never averaged; `flanlab eval score` labelling and normalizing rows right."""

from __future__ import annotations

import json

import pytest

from flanlab.eval.benchmarks import BENCHMARKS, bbh, mgsm, mmlu, synthetic, tydiqa
from flanlab.eval.metrics import normalize, normalized_average, squad_em, squad_f1, summarize_mode
from flanlab.eval.spec import EvalItem

DATE_QUERY = ("Q: Today is Christmas Eve of 1937. What is the date 10 days ago in MM/DD/YYYY?\nOptions:\n"
              "(A) 12/14/2026\n(B) 12/14/1950\n(C) 12/14/2007\n(D) 12/14/1937\n(E) 07/14/1938\nA:")


def _item(benchmark: str, subtask: str, mode: str, target: str, query: str = "Q: x\nA:") -> EvalItem:
    return EvalItem(benchmark=benchmark, subtask=subtask, mode=mode, item_id="0", prefix="", query=query,
                    target=target)


def _scores(module, output: str, item: EvalItem) -> dict[str, float]:
    return module.score(module.extract(output, item), item)


# --- BBH: the whole answer after "the answer is" is compared with the target --------------------------------

@pytest.mark.parametrize("task,output,target,strict,lenient", [
    # well-formed answers
    ("date_understanding", "So the answer is (D).", "(D)", 1, 1),
    ("date_understanding", "So the answer is **(D)**.", "(D)", 1, 1),
    ("date_understanding", "The answer is: (D)", "(D)", 1, 1),
    ("web_of_lies", "So the answer is Yes.", "Yes", 1, 1),
    ("object_counting", "So the answer is 12.", "12", 1, 1),
    ("dyck_languages", "So the answer is ] } ].", "] } ]", 1, 1),
    ("word_sorting", "So the answer is apple banana cherry.", "apple banana cherry", 1, 1),
    # hedged: more than one option, or anything beyond the target, is wrong; the lenient reading credits them
    ("date_understanding", "So the answer is (D) or (B).", "(D)", 0, 1),
    ("date_understanding", "So the answer is (D) and (B).", "(D)", 0, 1),
    ("date_understanding", "So the answer is (D) 12/14/1937.", "(D)", 0, 1),
    ("causal_judgement", "So the answer is Yes or No.", "Yes", 0, 1),
    ("object_counting", "So the answer is 12 or 13.", "12", 0, 1),
    # not the target's spelling: wrong (exact match), read leniently
    ("date_understanding", "So the answer is D.", "(D)", 0, 1),
    ("date_understanding", "So the answer is 12/14/1937.", "(D)", 0, 1),
    ("web_of_lies", "So the answer is yes.", "Yes", 0, 1),
    ("multistep_arithmetic_two", "So the answer is -1,219.", "-1219", 0, 1),
    # repeated: the first answer counts
    ("date_understanding", "So the answer is (D). So the answer is (B).", "(D)", 1, 1),
    ("date_understanding", "So the answer is (B).\nWait, so the answer is (D).", "(D)", 0, 0),
    ("date_understanding", "So the answer is (D). Let me check: (A) is wrong.", "(D)", 1, 1),
    # truncated and empty
    ("date_understanding", "Let's see, 10 days before December 24 is", "(D)", 0, 0),
    ("date_understanding", "So the answer is (", "(D)", 0, 0),
    ("date_understanding", "So the answer is", "(D)", 0, 0),
    ("date_understanding", "", "(D)", 0, 0),
])
def test_bbh_cot_strict_and_lenient(task, output, target, strict, lenient):
    item = _item("bbh", task, "cot", target, DATE_QUERY)
    assert _scores(bbh, output, item) == {"accuracy": float(strict), "accuracy_lenient": float(lenient)}


def test_bbh_direct_rank_choices_and_first_line():
    item = _item("bbh", "date_understanding", "direct", "(D)", DATE_QUERY)
    for choice in bbh.choices("date_understanding", DATE_QUERY.removeprefix("Q: ").rsplit("\nA:", 1)[0]):
        expected = float(choice.strip() == "(D)")
        assert _scores(bbh, choice, item) == {"accuracy": expected, "accuracy_lenient": expected}
    assert _scores(bbh, " (D)\n\nQ: next", item)["accuracy"] == 1.0
    assert _scores(bbh, " (D) or (A)", item) == {"accuracy": 0.0, "accuracy_lenient": 1.0}


def test_lenient_metric_never_enters_the_score_or_the_normalized_average():
    """Hedged CoT outputs: the lenient reading says 100%, the strict one 0%; every averaged number is strict."""
    bench = BENCHMARKS["bbh"]
    rows = {}
    for task, target, hedge in [("date_understanding", "(D)", "So the answer is (D) or (B)."),
                                ("web_of_lies", "Yes", "So the answer is Yes or No.")]:
        item = _item("bbh", task, "cot", target, DATE_QUERY)
        rows[task] = [_scores(bbh, hedge, item)] * 4
    chance = {t: bbh.CHANCE[t] for t in rows}
    section = summarize_mode(bench, "cot", "generate", rows, chance)
    assert section["metric"] == "accuracy"
    assert section["metrics"]["accuracy_lenient"] == 100.0 and section["score"] == 0.0
    for name, entry in section["subtasks"].items():
        assert entry["score"] == 0.0 and entry["metrics"]["accuracy_lenient"] == 100.0
        assert entry["normalized"] == pytest.approx(normalize(0.0, bbh.CHANCE[name]))
    assert section["normalized"] == pytest.approx(sum(normalize(0.0, c) for c in chance.values()) / 2)
    avg = normalized_average({"bbh": {"cot": section}})
    assert avg["components"]["bbh/cot"] == pytest.approx(section["normalized"]) and avg["components"]["bbh/cot"] < 0


# --- MMLU CoT: the whole answer after "the answer is" must be the letter alone ------------------------------

@pytest.mark.parametrize("output,strict,lenient", [
    ("Let's think. The answer is (B).", 1, 1),
    ("The answer is B", 1, 1),
    ("the answer is (b).", 1, 1),
    ("**The answer is (B)**", 1, 1),
    ("The answer is: B.", 1, 1),
    ("The answer is (B) or (C).", 0, 1),  # hedged
    ("The answer is (B) and (C).", 0, 1),
    ("The answer is (B) because it is larger.", 0, 1),  # more than the letter
    ("The answer is (B). The answer is (C).", 1, 1),  # repeated: the first
    ("The answer is (C).\nThe answer is (B).", 0, 0),
    ("The answer is (", 0, 0),  # truncated
    ("The answer is", 0, 0),
    ("so it must be (B)", 0, 0),  # no phrase, no answer
    ("", 0, 0),
])
def test_mmlu_cot_strict_and_lenient(output, strict, lenient):
    item = _item("mmlu", "anatomy", "cot", "B")
    assert _scores(mmlu, output, item) == {"accuracy": float(strict), "accuracy_lenient": float(lenient)}


def test_mmlu_direct_reads_the_continuation():
    item = _item("mmlu", "anatomy", "direct", "B")
    for output, expected in [(" B", 1.0), (" B. because", 1.0), ("(B)", 1.0), (" C", 0.0), ("", 0.0),
                             ("The answer is (B) or (C)", 0.0)]:
        assert _scores(mmlu, output, item)["accuracy"] == expected, output


# --- MGSM: the number right after the answer phrase (lm-eval's native_cot "get-answer") ----------------------

@pytest.mark.parametrize("output,lang,mode,expected", [
    ("5 + 6 = 11. The answer is 11.", "en", "cot", "11"),
    ("Die Antwort lautet 11.", "de", "cot", "11"),
    ("The answer is 11 or 12.", "en", "cot", "11"),  # a hedge reads the first number, as the reference regex
    ("The answer is 11. The answer is 12.", "en", "cot", "11"),  # repeated: the first phrase
    ("She has 5, then 7, then 11", "en", "cot", ""),  # no phrase: no answer
    ("5 + 6 = 11. The answer is", "en", "cot", ""),  # truncated
    ("", "en", "cot", ""),
    (" 11\n\nQuestion: next", "en", "direct", "11"),  # direct: the continuation is the answer
    ("The answer is \u221211.", "en", "cot", "-11"),  # a minus sign is a minus: -11 is not 11
    ("The answer is \u201311.", "en", "cot", "-11"),  # an en dash glued to the number too
    ("The answer is \u2013 11.", "en", "cot", "11"),  # a dash between spaces is a separator
    ("Ответ \u2014 11.", "ru", "cot", "11"),
])
def test_mgsm_rule(output, lang, mode, expected):
    item = _item("mgsm", lang, mode, "11")
    assert mgsm.extract(output, item) == expected
    assert mgsm.score(mgsm.extract(output, item), item) == {"accuracy": float(expected == "11")}


# --- TyDiQA-GoldP: the official SQuAD v1.1 exact match and F1 ------------------------------------------------

@pytest.mark.parametrize("output,golds,em,f1", [
    ("Eiffel Tower", ["the Eiffel Tower"], 1.0, 1.0),  # articles and case ignored
    ("Paris.", ["Paris"], 1.0, 1.0),  # ASCII punctuation ignored
    ("Paris or Lyon", ["Paris"], 0.0, 0.5),  # hedged: precision 1/3, recall 1
    ("Paris Paris", ["Paris"], 0.0, 2 / 3),  # repeated: one token shared
    ("Eiffel", ["Eiffel Tower"], 0.0, 2 / 3),  # truncated
    ("", ["Paris"], 0.0, 0.0),  # empty
    ("ঢাকা।", ["ঢাকা"], 0.0, 0.0),  # the danda is not ASCII punctuation: kept, as the official script does
    ("1,000", ["1000", "one thousand"], 1.0, 1.0),  # max over the gold answers
])
def test_tydiqa_official_squad(output, golds, em, f1):
    item = EvalItem("tydiqa", "bengali", "direct", "0", "", "Passage: p\nQuestion: q\nAnswer:", golds[0],
                    aliases=tuple(golds[1:]))
    extracted = tydiqa.extract(output + ("\nQuestion: next" if output else ""), item)
    assert extracted == output.strip()
    assert tydiqa.score(extracted, item) == {"exact_match": em, "f1": pytest.approx(f1)}
    assert (squad_em(output, golds), squad_f1(output, golds)) == (em, pytest.approx(f1))


# --- the synthetic suite: BBH's rule -----------------------------------------------------------------------

@pytest.mark.parametrize("output,target,options,strict,lenient", [
    ("So the answer is True.", "True", ("True", "False"), 1, 1),
    ("So the answer is true.", "True", ("True", "False"), 1, 1),  # options match case-insensitively
    ("So the answer is True or False.", "True", ("True", "False"), 0, 1),
    ("So the answer is True, because it holds.", "True", ("True", "False"), 0, 1),
    ("So the answer is 7.", "7", (), 1, 1),
    ("So the answer is 7 or 8.", "7", (), 0, 1),
    ("So the answer is True. So the answer is False.", "True", ("True", "False"), 1, 1),
    ("So the answer is", "True", ("True", "False"), 0, 0),
    ("", "True", ("True", "False"), 0, 0),
])
def test_synthetic_strict_and_lenient(output, target, options, strict, lenient):
    query = "Q: Is it so?" + ("\nOptions:\n" + "\n".join(f"- {o}" for o in options) if options else "")
    item = _item("synthetic", "boolean_expressions", "cot", target, query + "\nA: Let's think step by step.")
    assert _scores(synthetic, output, item) == {"accuracy": float(strict), "accuracy_lenient": float(lenient)}


# --- flanlab eval score: mode, chance rates, rows of the wrong task or benchmark ----------------------------

def _write(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


BBH_ROWS = [
    {"task": "date_understanding", "prediction": "So the answer is (D).", "target": "(D)"},
    {"task": "date_understanding", "prediction": "So the answer is (D) or (B).", "target": "(D)"},
    {"task": "web_of_lies", "prediction": "So the answer is Yes.", "target": "Yes"},
    {"task": "web_of_lies", "prediction": "So the answer is No.", "target": "Yes"},
]


@pytest.fixture
def no_data_dir(monkeypatch):
    monkeypatch.delenv("FLANLAB_DATA_DIR", raising=False)


def test_eval_score_needs_a_mode(tmp_path, capsys, no_data_dir):
    from flanlab.cli import main

    preds = _write(tmp_path / "preds.jsonl", BBH_ROWS)
    assert main(["eval", "score", "--benchmark", "bbh", "--predictions", preds]) == 1
    err = capsys.readouterr().err
    assert f"{preds}:1" in err and "--mode" in err


def test_eval_score_mode_flag_and_chance_without_data(tmp_path, capsys, no_data_dir):
    from flanlab.cli import main

    preds = _write(tmp_path / "preds.jsonl", BBH_ROWS)
    assert main(["eval", "score", "--benchmark", "bbh", "--mode", "cot", "--predictions", preds,
                 "-o", str(tmp_path / "out")]) == 0
    section = json.loads((tmp_path / "out" / "results.json").read_text())["benchmarks"]["bbh"]
    assert list(section) == ["cot"]  # filed under the mode given, not "direct"
    cot = section["cot"]
    for task in ("date_understanding", "web_of_lies"):
        assert cot["subtasks"][task]["chance"] == bbh.CHANCE[task]  # the benchmark's table, no data dir
        assert cot["subtasks"][task]["score"] == 50.0
        assert cot["subtasks"][task]["normalized"] == pytest.approx(normalize(50.0, bbh.CHANCE[task]))
    assert cot["subtasks"]["date_understanding"]["metrics"]["accuracy_lenient"] == 100.0
    assert cot["normalized"] != cot["score"]


def test_eval_score_mode_from_rows_and_conflicts(tmp_path, no_data_dir):
    from flanlab.eval.runner import rescore

    rows = [dict(r, mode="cot") for r in BBH_ROWS]
    res = rescore("bbh", _write(tmp_path / "rows.jsonl", rows))
    assert list(res["benchmarks"]["bbh"]) == ["cot"]
    with pytest.raises(ValueError, match=r"rows\.jsonl:1: the row's mode 'cot' disagrees with --mode direct"):
        rescore("bbh", tmp_path / "rows.jsonl", mode="direct")
    with pytest.raises(ValueError, match=r"bad_mode\.jsonl:2: mode 'cto'"):
        rescore("bbh", _write(tmp_path / "bad_mode.jsonl", [rows[0], dict(rows[1], mode="cto")]))


def test_eval_score_unknown_task_names_file_and_line(tmp_path, capsys, no_data_dir):
    from flanlab.cli import main

    rows = BBH_ROWS[:2] + [{"task": "no_such_task", "prediction": "x", "target": "y"}]
    preds = _write(tmp_path / "preds.jsonl", rows)
    assert main(["eval", "score", "--benchmark", "bbh", "--mode", "cot", "--predictions", preds]) == 1
    err = capsys.readouterr().err
    assert f"{preds}:3" in err and "no_such_task" in err and "unknown bbh subtask" in err


def test_eval_score_rows_of_another_benchmark(tmp_path, capsys, no_data_dir):
    from flanlab.cli import main

    plain = _write(tmp_path / "plain.jsonl", BBH_ROWS)  # BBH rows, no benchmark field
    assert main(["eval", "score", "--benchmark", "mmlu", "--mode", "cot", "--predictions", plain]) == 1
    err = capsys.readouterr().err
    assert f"{plain}:1" in err and "unknown mmlu subtask 'date_understanding'" in err

    tagged = _write(tmp_path / "tagged.jsonl", [dict(r, benchmark="bbh", mode="cot") for r in BBH_ROWS])
    assert main(["eval", "score", "--benchmark", "mmlu", "--predictions", tagged]) == 1
    err = capsys.readouterr().err
    assert f"{tagged}:1" in err and "benchmark 'bbh'" in err
