"""The task catalog: synthetic families always, real tasks discovered in the data dir, held-out tasks flagged."""

from __future__ import annotations

import json

import pytest

from flanlab.data import catalog
from flanlab.data.catalog import HELD_OUT_RULES, get_task, held_out_reason, list_tasks


def test_synthetic_families_are_listed_with_held_out_flags():
    from flanlab.data.generators import FAMILIES

    rows = {r.name: r for r in list_tasks(None) if r.source == "synthetic"}
    assert set(rows) == set(FAMILIES)
    for name, fam in FAMILIES.items():
        assert rows[name].source == "synthetic" and rows[name].count == "stream"
        assert rows[name].held_out == fam.held_out
        assert rows[name].category == fam.category


def test_every_synthetic_task_has_templates_for_some_format():
    for t in catalog.discover("synthetic", None):
        formats = t.formats()
        assert formats, t.name
        if "options" in t.fields:
            assert "zs_opt" in formats and "fs_opt" in formats, t.name
        if "rationale" in t.fields:
            assert "cot_zs" in formats, t.name


@pytest.mark.parametrize("name, bench", [
    ("task664_mmmlu_answer_generation_abstract_algebra", "mmlu"),
    ("hendrycks_test_anatomy", "mmlu"),
    ("bbh_navigate", "bbh"),
    ("task062_bigbench_repeat_copy_logic", "bbh"),
    ("tydiqa_goldp_english", "tydiqa"),
    ("mgsm_translated", "mgsm"),
])
def test_held_out_rule_matches_derived_names(name, bench):
    assert held_out_reason(name).startswith(f"derived from {bench}")


@pytest.mark.parametrize("name", ["task1087_two_number_sum", "gsm8k", "cot_strategyqa", "task020_mctaco_span_based_question"])
def test_held_out_rule_keeps_other_tasks(name):
    assert held_out_reason(name) == ""


def test_get_task_did_you_mean():
    from flanlab.data.generators import FAMILIES

    name = next(iter(FAMILIES))
    assert get_task(name).name == name
    with pytest.raises(KeyError, match=f"Did you mean '{name}'"):
        get_task(name[:-1] + "x")


def test_unknown_category_is_a_clear_error():
    with pytest.raises(KeyError, match="unknown category"):
        list_tasks(None, category="no-such-category")


def test_file_task_errors(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="no records"):
        catalog.file_task("e", empty)
    no_answer = tmp_path / "q.jsonl"
    no_answer.write_text(json.dumps({"question": "x"}) + "\n")
    with pytest.raises(ValueError, match="lack answer"):
        catalog.file_task("q", no_answer)
    tsv = tmp_path / "t.tsv"
    tsv.write_text("prompt\tlabel\nhello\tworld\nonly one column\n")
    with pytest.raises(ValueError, match=r"t.tsv:3.*label"):
        catalog.file_task("t", tsv, fields={"question": "prompt", "answer": "label"})
    broken = tmp_path / "b.jsonl"
    broken.write_text(json.dumps({"question": "a", "answer": "b"}) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"b.jsonl:2"):
        catalog.file_task("b", broken)


def test_file_task_fields_decide_formats(tmp_path):
    p = tmp_path / "cls.jsonl"
    p.write_text("".join(json.dumps({"question": f"q{i}", "answer": "yes", "options": ["yes", "no"]}) + "\n" for i in range(3)))
    t = catalog.file_task("cls", p)
    assert t.count == 3 and set(t.formats()) == {"zs_opt", "fs_opt", "zs_noopt", "fs_noopt"}


def test_real_tasks_from_the_data_dir(data_dir):
    rows = list_tasks(data_dir)
    by_source: dict[str, list] = {}
    for r in rows:
        by_source.setdefault(r.source, []).append(r)
    assert len(by_source["niv2"]) == 147
    assert sorted(r.name for r in by_source["flan_cot"]) == [
        "cot_aqua", "cot_creak", "cot_ecqa", "cot_gsm8k", "cot_qasc", "cot_sensemaking", "cot_strategyqa"]
    assert [r.count for r in by_source["gsm8k"]] == [7473]
    assert sum(r.count for r in by_source["niv2"]) == 1405
    assert all(r.available and not r.held_out for r in by_source["niv2"])  # the sample left the derived ones out

    everything = list_tasks(data_dir, include_unavailable=True)
    niv2 = [r for r in everything if r.source == "niv2"]
    assert len(niv2) == 1654 and sum(r.available for r in niv2) == 147
    held = sorted(r.name for r in niv2 if r.held_out)
    assert "task664_mmmlu_answer_generation_abstract_algebra" in held
    assert "task737_mmmlu_answer_generation_world_religions" in held
    assert len([n for n in held if "mmmlu" in n]) == 57  # task664-667 and task685-737
    assert "task062_bigbench_repeat_copy_logic" in held and len(held) == 58
    for r in niv2:  # every metadata task matching a rule is flagged, and only those
        assert r.held_out == any(__import__("re").search(rx, r.name, __import__("re").I) for rx in HELD_OUT_RULES.values())

    cot = get_task("cot_aqua", data_dir)
    assert cot.style == "plain" and {"cot_zs", "cot_fs", "zs_noopt"} <= set(cot.formats())
    rec = next(cot.open(0, "train"))
    assert rec["question"] and rec["answer"] and rec["rationale"]
    niv2_task = get_task("task1087_two_number_sum", data_dir)
    assert niv2_task.style == "niv2" and niv2_task.count == 10
    assert set(niv2_task.formats()) == {"zs_noopt", "fs_noopt"}
