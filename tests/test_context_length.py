"""Inputs longer than the model's context (flanlab.eval.engine: Engine.max_length, fit_generation, fit_rank).

A causal model reads at most its config's max_position_embeddings positions. Before, a longer prompt (MGSM's
Telugu 8-shot prompt is 8,373 SmolLM2 tokens, its context 8,192) ran past the positions the model was trained
on without a word. Now it loses its first tokens, as lm-evaluation-harness cuts it (generation: keep the last
max_length - max_new_tokens; log-likelihood: the model reads at most max_length positions), and the runner
counts such items per subtask in results.json (prompts_cut) and marks each in samples.jsonl (prompt_cut).
A tiny untrained Llama whose context is set small stands in for the real model.
"""

from __future__ import annotations

import json

import pytest

from flanlab.eval import runner
from flanlab.eval.engine import Engine, GenerationSettings
from flanlab.eval.metrics import exact_match
from flanlab.eval.spec import Benchmark, EvalItem
from flanlab.fileio import read_jsonl

pytestmark = pytest.mark.usefixtures("one_thread")

CONTEXT = 48
LONG = "Some words that make the prompt long. " * 12 + "Q: 3 + 4?\nA:"


@pytest.fixture(scope="module")
def short_context_llama(lively_tiny_llama):
    """This module's UNTRAINED tiny-llama (conftest: fresh per module, outputs that vary with the prompt) with a
    context of CONTEXT tokens."""
    lively_tiny_llama.model.config.max_position_embeddings = CONTEXT
    return lively_tiny_llama


def item(item_id: str, prompt: str, prefix: str = "", choices: tuple[str, ...] = ()) -> EvalItem:
    return EvalItem("test", "sub", "cot", item_id, prefix, prompt[len(prefix):] if prefix else prompt, "7",
                    choices=choices)


def test_a_generation_prompt_longer_than_the_context_loses_its_first_tokens(short_context_llama):
    engine = Engine(short_context_llama, batch_size=4)
    assert engine.max_length == CONTEXT
    settings = GenerationSettings(max_new_tokens=8)
    long, short = item("long", LONG), item("short", "Q: 1 + 1?\nA:")
    ids = engine.prompt_ids(long)
    assert len(ids) > CONTEXT
    assert engine.input_cut(long, "generate", 8) == len(ids) - (CONTEXT - 8)
    assert engine.input_cut(short, "generate", 8) == 0
    got = engine.generate_detailed([long, short], settings)
    # the reference: the model given only the last CONTEXT - 8 tokens, alone in its batch
    alone = Engine(short_context_llama, batch_size=1, prefix_cache=False)
    ref = alone._decode([long], [ids[-(CONTEXT - 8):]], settings, alone.bos)
    assert got[0][0] == ref[0][0]
    assert got[1][0] == alone.generate_detailed([short], settings)[0][0]
    # a long prompt whose few-shot prefix is cut reads none of the prefix cache, and still gives the same output
    prefix = LONG[:200]
    with_prefix = item("prefixed", LONG, prefix=prefix)
    assert engine.generate_detailed([with_prefix], settings)[0][0] == ref[0][0]
    assert prefix not in engine._prefix_kv  # its cache was not computed for nothing


def test_plan_batches_cut_items_apart_from_a_prefix_group(short_context_llama):
    """An item whose input is cut reuses no prefix: plan() groups it with the items without one, so that its
    long row does not pad a batch of short rows that share a prefix."""
    engine = Engine(short_context_llama, batch_size=2)
    prefix = "Q: 1 + 1?\nA: 2\n\n"
    shared = [item(f"s{i}", prefix + f"Q: {i} + 2?\nA:", prefix=prefix) for i in range(3)]
    cut = item("cut", prefix + LONG, prefix=prefix)
    items = [shared[0], cut, shared[1], shared[2]]
    assert engine.plan(items) == [[1, 0], [2, 3]]  # without max_new_tokens: by prefix text, longest first
    # the cut item in a batch of its own: beside a row that reuses the prefix, its whole input would pad that
    # row's short tail
    assert engine.plan(items, max_new_tokens=8) == [[0, 2], [3], [1]]


def test_no_room_for_a_prompt_is_refused(short_context_llama):
    engine = Engine(short_context_llama, batch_size=1)
    with pytest.raises(ValueError, match="leaves no room for a prompt"):
        engine.generate_detailed([item("x", "Q: 1?\nA:")], GenerationSettings(max_new_tokens=CONTEXT))


def test_a_ranked_context_longer_than_the_context_loses_its_first_tokens(short_context_llama):
    engine = Engine(short_context_llama, batch_size=2)
    long = item("long", LONG, choices=(" 7", " 8 or so"))
    ctx, conts = engine.rank_ids(long)
    room = CONTEXT + 1 - max(len(c) for c in conts)  # context + every choice token but the last
    assert len(ctx) > room
    assert engine.input_cut(long, "rank") == len(ctx) - room
    got = engine.rank_batch([long])[0]
    ref = Engine(short_context_llama, batch_size=1)._rank_causal([""], [(ctx[-room:], conts)])[0]
    assert got.logprobs == pytest.approx(tuple(ref), abs=1e-4)


def _items(data_dir, subtask, mode, options):
    long = EvalItem("ctx", "long", mode, "0", "", LONG, "7")
    short = EvalItem("ctx", "short", mode, "0", "", "Q: 3 + 4?\nA:", "7")
    return [long] if subtask == "long" else [short]


CTX = Benchmark(
    name="ctx", version="1", description="test context length", modes=("cot",), metric="accuracy",
    scorings=("generate",), subtasks=lambda data_dir: ["long", "short"], items=_items,
    extract=lambda output, it: output.strip(), score=lambda extracted, it: {"accuracy": exact_match(extracted, it.target)},
    max_new_tokens={"cot": 8}, stop=("\n",),
)


def test_the_runner_counts_and_marks_the_items_that_were_cut(short_context_llama, tmp_path, caplog):
    results = runner.evaluate(short_context_llama, benchmarks=[CTX], out_dir=tmp_path / "run", progress=False)
    section = results["benchmarks"]["ctx"]["cot"]
    assert section["prompts_cut"] == 1
    assert section["subtasks"]["long"]["prompts_cut"] == 1 and "prompts_cut" not in section["subtasks"]["short"]
    assert results["settings"]["context_length"] == CONTEXT
    rows = {r["subtask"]: r for r in read_jsonl(tmp_path / "run" / "samples.jsonl")}
    assert rows["long"]["prompt_cut"] > 0 and "prompt_cut" not in rows["short"]
    assert json.loads((tmp_path / "run" / "results.json").read_text())["benchmarks"]["ctx"]["cot"]["prompts_cut"] == 1
    assert any("longer than the model's context" in r.getMessage() for r in caplog.records)


def test_a_cache_from_before_the_cut_rule_or_the_fused_kernel_is_refused(short_context_llama, tmp_path):
    """The context length and the attention kernel are in the engine record the resume cache compares: a cache
    recorded before either was (its outputs computed from whole inputs, or on the explicit path, which rounds
    differently) is refused in one line, not mixed with this run's outputs."""
    first = runner.evaluate(short_context_llama, benchmarks=[CTX], out_dir=tmp_path / "run", progress=False)
    engine = first["settings"]["engine"]
    assert engine["context_length"] == CONTEXT
    assert engine["attention_kernel"] == ("fused_cpu" if engine["shared_attention"] else None)
    path = tmp_path / "run" / "cache" / "engine.json"
    recorded = json.loads(path.read_text())
    for key in ("context_length", "attention_kernel"):
        path.write_text(json.dumps({k: v for k, v in recorded.items() if k != key}))
        with pytest.raises(ValueError, match=f"{key} None \\(this run: "):
            runner.evaluate(short_context_llama, benchmarks=[CTX], out_dir=tmp_path / "run", progress=False)
