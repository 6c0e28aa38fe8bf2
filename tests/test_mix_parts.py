"""The pieces of a mixture build, one at a time (flanlab/data/mix_*.py): planning is pure arithmetic once tasks are
selected; a finite task's epochs come from memory under the shared budget or are re-read, with the same records
and each removal reported once; each filter reports what it removes; renderers pass pre-rendered rows through
and render templated records reproducibly, a few-shot example never showing its own record as an exemplar."""

from __future__ import annotations

import itertools
import random

import pytest

from flanlab.data import catalog
from flanlab.data.mix_config import MixtureConfig, SubmixtureConfig, load_mixture_config
from flanlab.data.mix_filters import (
    Decontaminator, Dedup, DigestSet, Lengths, LengthLimit, NotEmpty, Removed, lengths_for,
)
from flanlab.data.mix_plan import allocate, mixture_leaves, plan_mixture
from flanlab.data.mix_records import RecordBudget, epochs, record_bytes
from flanlab.data.mix_render import PassThroughRenderer, TemplateRenderer
from flanlab.data.templates import TEMPLATE_SETS, estimate_tokens
import test_mixture as tm  # tests/ is on sys.path under pytest
from test_mixture import offline  # noqa: F401 (a fixture)


def _no_io(*args):
    raise AssertionError("planning opened a task's records")


def _task(name: str, count: int) -> catalog.Task:
    return catalog.Task(name=name, category="c", source="file", style="plain", fields=frozenset({"question", "answer"}),
                        count=count, open=_no_io)


def test_allocate_is_pure_arithmetic_over_capped_weights_and_rates():
    cfg = MixtureConfig(name="m", size=1000, formats={"zs_noopt": 1.0}, submixtures=[
        SubmixtureConfig(name="a", rate=0.75, tasks=["x"], cap=300), SubmixtureConfig(name="b", rate=0.25, tasks=["y"]),
        SubmixtureConfig(name="none", rate=1.0, tasks=["z"])])
    leaves = mixture_leaves(cfg)
    a, b, _ = leaves
    pairs = [(a, _task("big", 1000)), (a, _task("small", 100)), (b, _task("y1", 50)), (b, _task("y2", 150))]
    warnings: list[str] = []
    alloc = allocate(cfg, leaves, pairs, TEMPLATE_SETS, warnings)
    got = {p.task.name: (p.weight, round(p.share, 6), p.count) for p in alloc.tasks}
    # a: big capped at 300 + small 100; b: 50 + 150; "none" has no task: its rate goes to a and b (0.75 : 0.25)
    assert got == {"big": (300.0, 0.5625, 563), "small": (100.0, 0.1875, 188),
                   "y1": (50.0, 0.0625, 62), "y2": (150.0, 0.1875, 187)}  # largest remainder, ties in order
    assert alloc.size == 1000 and sum(p.count for p in alloc.tasks) == 1000
    assert alloc.submixtures["none"]["rate"] == 0.0 and any("submixture none has no tasks" in w for w in warnings)
    # size null: the largest size at which no task needs more than its capped weight: min(400 / 0.75, 200 / 0.25)
    cfg.size = None
    assert allocate(cfg, leaves, pairs, TEMPLATE_SETS, []).size == 533
    with pytest.raises(ValueError, match="no trainable tasks here, said here"):
        allocate(cfg, leaves, [], TEMPLATE_SETS, [], ", said here")


def _records_opener(recs: list[dict], opened: list):
    def open_records():
        opened.append(1)
        return iter([dict(r) for r in recs])

    return open_records


@pytest.mark.parametrize("megabytes", [1, 0])
def test_epochs_from_memory_or_reread_give_the_same_records_and_report_once(megabytes):
    recs = [{"question": f"q{i}", "answer": "a"} for i in range(5)] + [{"question": "", "answer": "a"}]
    opened: list = []
    removed = Removed()
    budget = RecordBudget(megabytes)
    got = list(itertools.islice(epochs(_records_opener(recs, opened), NotEmpty("t", "question", "answer", removed).keep,
                                       budget), 15))
    assert [r["question"] for r in got] == [f"q{i}" for i in range(5)] * 3
    assert removed.counts == {"empty": 1} and removed.by_task == {"t": {"empty": 1}}
    if megabytes:  # the first epoch fitted: read once, its bytes taken from the shared budget
        assert len(opened) == 1 and budget.left == (1 << 20) - sum(record_bytes(r) for r in recs[:5])
    else:  # nothing fits: every epoch re-read, the budget untouched
        assert len(opened) == 3 and budget.left == 0


def test_epochs_without_a_budget_recheck_each_pass_and_report_the_first():
    recs = [{"inputs": "x", "targets": "y"}, {"inputs": "", "targets": "y"}]
    opened: list = []
    removed = Removed()
    got = list(itertools.islice(epochs(_records_opener(recs, opened), NotEmpty("t", "inputs", "targets", removed).keep,
                                       None), 3))
    assert got == [recs[0]] * 3 and len(opened) == 3 and removed.counts == {"empty": 1}


def test_length_and_dedup_filters_report_what_they_remove():
    lengths = Lengths(estimate_tokens, lambda text, n: text[: n * 4], "estimate", max_input=10, max_target=5)
    assert lengths.max_chars == (43, 23)  # len(text) // 4 <= 10 up to 43 characters
    removed = Removed()
    fits, over = ("x" * 43, "y", "id", "zs_noopt"), ("x" * 44, "y", "id", "zs_noopt")
    drop = LengthLimit("t", lengths, "drop", removed).keep
    assert drop({}, fits) == fits and drop({}, over) is None
    cut = LengthLimit("t", lengths, "truncate", removed).keep
    assert cut({}, over) == ("x" * 40, "y", "id", "zs_noopt")
    dedup = Dedup("t", DigestSet(), removed).keep
    assert dedup({}, fits) == fits and dedup({}, fits) is None
    assert removed.counts == {"too_long": 1, "truncated": 1, "duplicate": 1}
    assert removed.to_dict()["too_long"]["examples"] == [{"task": "t", "text": "x" * 44}]


def test_pass_through_renderer_hands_rows_over_unchanged():
    rows = [{"inputs": "Q: 1+1?", "targets": "2", "template_id": "flan_collection/x/zs_opt", "format": "zs_opt"}]
    r = PassThroughRenderer(iter(rows))
    assert not r.shows_rationales
    assert r.next() == (rows[0], ("Q: 1+1?", "2", "flan_collection/x/zs_opt", "zs_opt")) and r.next() is None


def test_template_renderer_is_seeded_and_never_shows_the_query_as_its_exemplar(tmp_path, offline):
    tm.write_jsonl(tmp_path / "t.jsonl", tm.records("t", 40))
    cfg_path = tm.write_config(tmp_path / "m.yaml", {"name": "r", "size": 100, "fewshot": 3,
                                                      "formats": {"fs_opt": 1.0, "fs_noopt": 1.0},
                                                      "submixtures": [{"name": "f", "files": [{"name": "t", "path": "t.jsonl"}]}]})
    plan = plan_mixture(load_mixture_config(cfg_path))
    [pt] = plan.tasks

    def render_all(seed: int) -> list:
        recs = iter(tm.records("t", 40))
        r = TemplateRenderer(pt, recs, random.Random(seed), fewshot=3, lengths=lengths_for(plan.config),
                             decontam=Decontaminator(None), template_sets=plan.template_sets, buffer_size=8)
        return list(iter(r.next, None))

    one = render_all(1)
    assert len(one) == 40 and one == render_all(1) and one != render_all(2)
    few_shot = [(rec, ex) for rec, ex in one if ex[3].startswith("fs_")]
    assert few_shot
    for rec, (inputs, _, _, _) in few_shot:
        assert inputs.count(rec["question"]) == 1  # the query once; its exemplars are other records
        assert inputs.count(" item ") >= 2  # at least one exemplar
