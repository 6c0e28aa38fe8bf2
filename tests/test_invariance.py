"""Results that do not depend on how they were computed (issue 12, part 4).

On the real SmolLM2-135M preset, a few items of each benchmark go through the Engine with batch sizes 1, 8 and
32 and with the prefix cache on and off: greedy outputs must be identical and log-likelihoods within 1e-4
(absolute) of the reference setting (batch 1, no prefix cache, i.e. every item alone and unpadded). Each call
holds more than 8 items, so batch 8 and batch 32 cut different batches (padding, mixed prefixes in a batch, rows
leaving the decoding batch). The largest log-likelihood difference seen is printed (pytest -s shows it).

The synthetic suite needs no data dir, so that part runs everywhere the SmolLM2 preset is installed."""

from __future__ import annotations

import os

import pytest

from flanlab.eval.benchmarks import get_benchmark
from flanlab.eval.engine import Engine, GenerationSettings
from flanlab.eval.spec import EvalOptions

pytestmark = pytest.mark.slow

SETTINGS = [(1, False), (1, True), (8, False), (8, True), (32, False), (32, True)]  # (batch_size, prefix_cache)
REFERENCE = SETTINGS[0]
TOLERANCE = 1e-4
MAX_NEW_TOKENS = 32

largest = {"diff": 0.0, "where": "none"}  # the largest |log-likelihood difference| seen in this file


def pick_items(name: str, data_dir, mode: str, subtasks: int, per_subtask: int):
    """The first `per_subtask` items of the first `subtasks` subtasks of a benchmark in one mode."""
    bench = get_benchmark(name)
    names = bench.subtasks(data_dir)[:subtasks]
    items = [it for s in names for it in bench.items(data_dir, s, mode, EvalOptions())[:per_subtask]]
    assert items, f"{name}/{mode}: no items built"
    return bench, items


def check_rank(lm, items, label: str) -> None:
    results = {s: Engine(lm, batch_size=s[0], prefix_cache=s[1]).rank(items) for s in SETTINGS}
    ref = results[REFERENCE]
    assert all(len(r.logprobs) >= 2 for r in ref), f"{label}: rank items need at least two choices"
    for setting, res in results.items():
        for item, a, b in zip(items, ref, res):
            assert len(a.logprobs) == len(b.logprobs)
            for j, (x, y) in enumerate(zip(a.logprobs, b.logprobs)):
                diff = abs(x - y)
                if diff > largest["diff"]:
                    largest.update(diff=diff, where=f"{label} {item.subtask}/{item.item_id} choice {j} {setting}")
                assert diff <= TOLERANCE, (
                    f"{label} {item.subtask}/{item.item_id} choice {j}: log-likelihood {y:.6f} with "
                    f"(batch_size, prefix_cache)={setting}, {x:.6f} with {REFERENCE}")
            assert a.best == b.best or abs(a.logprobs[a.best] - a.logprobs[b.best]) <= TOLERANCE, (
                f"{label} {item.subtask}/{item.item_id}: prediction {b.best} with {setting}, {a.best} with {REFERENCE}")
    print(f"\n{label}: {len(items)} items x {len(SETTINGS)} settings ranked; largest difference so far "
          f"{largest['diff']:.3g} ({largest['where']})")


def check_generate(lm, bench, items, label: str) -> None:
    settings = GenerationSettings(max_new_tokens=MAX_NEW_TOKENS, stop=tuple(bench.stop))
    outputs = {s: Engine(lm, batch_size=s[0], prefix_cache=s[1]).generate_detailed(items, settings) for s in SETTINGS}
    ref = outputs[REFERENCE]
    for setting, outs in outputs.items():
        for item, a, b in zip(items, ref, outs):
            assert a == b, (f"{label} {item.subtask}/{item.item_id}: greedy output {b!r} with "
                            f"(batch_size, prefix_cache)={setting}, {a!r} with {REFERENCE}")
    ended = sorted({g[0].stopped for g in ref})
    print(f"\n{label}: {len(items)} items x {len(SETTINGS)} settings generated identically (rows ended by {ended})")


@pytest.fixture(autouse=True, scope="module")
def report_largest():
    yield
    print(f"\nlargest log-likelihood difference over all settings: {largest['diff']:.3g} ({largest['where']})")


# ----------------------------------------------------------------------------------------------------------
# everywhere (no data dir)


def test_synthetic_rank_invariant(smollm2):
    _, items = pick_items("synthetic", None, "direct", subtasks=12, per_subtask=2)
    items = [it for it in items if it.choices]
    assert len(items) > 8, "need more than 8 items with choices so batch 8 and 32 differ"
    check_rank(smollm2, items, "synthetic/direct rank")


def test_synthetic_generate_invariant(smollm2):
    # one item a subtask (12): still more than 8, so batch 8 and 32 cut different batches; two a subtask took
    # over 5 minutes of the suite's 15 on a slow host (2026-12-05)
    bench, items = pick_items("synthetic", None, "direct", subtasks=12, per_subtask=1)
    assert len(items) > 8
    check_generate(smollm2, bench, items, "synthetic/direct generate")


# ----------------------------------------------------------------------------------------------------------
# the real benchmarks (data dir): about 6 minutes together on the 2-core CPU, so they run only when asked
# (FLANLAB_LONG_TESTS=1), to keep the suite inside its time budget; the synthetic tests above run everywhere

long_test = pytest.mark.skipif(
    os.environ.get("FLANLAB_LONG_TESTS") != "1",
    reason="long real-model test (~1-2 min each on 2 CPU cores): set FLANLAB_LONG_TESTS=1 to run it",
)


@pytest.mark.data
@long_test
def test_mmlu_direct_loglikelihoods_invariant(smollm2, data_dir):
    _, items = pick_items("mmlu", data_dir, "direct", subtasks=3, per_subtask=4)
    check_rank(smollm2, items, "mmlu/direct rank")


@pytest.mark.data
@long_test
def test_bbh_direct_rank_invariant(smollm2, data_dir):
    _, items = pick_items("bbh", data_dir, "direct", subtasks=5, per_subtask=3)
    items = [it for it in items if it.choices]
    assert len(items) > 8
    check_rank(smollm2, items, "bbh/direct rank")


@pytest.mark.data
@long_test
def test_bbh_cot_generate_invariant(smollm2, data_dir):
    bench, items = pick_items("bbh", data_dir, "cot", subtasks=2, per_subtask=1)
    check_generate(smollm2, bench, items, "bbh/cot generate")


@pytest.mark.data
@long_test
def test_mgsm_generate_invariant(smollm2, data_dir):
    bench, items = pick_items("mgsm", data_dir, "direct", subtasks=3, per_subtask=3)
    check_generate(smollm2, bench, items, "mgsm/direct generate")


@pytest.mark.data
@long_test
def test_tydiqa_generate_invariant(smollm2, data_dir):
    bench, items = pick_items("tydiqa", data_dir, "direct", subtasks=3, per_subtask=3)
    check_generate(smollm2, bench, items, "tydiqa/direct generate")
