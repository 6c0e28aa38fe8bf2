"""The evaluation runner: results.json / samples.jsonl shape, scoring choice, resume after a crash, rescoring,
self-consistency and the `flanlab eval` CLI. A small benchmark defined here (no data) and the tiny models."""

from __future__ import annotations

import json
import os

import pytest

from flanlab.eval import runner
from flanlab.eval.engine import Engine
from flanlab.eval.metrics import exact_match
from flanlab.eval.spec import Benchmark, EvalItem, EvalOptions
from flanlab.fileio import read_jsonl


# tiny matmuls gain nothing from threads, and the CPU is shared with other test files
pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------------------------------------
# a small benchmark: two subtasks of sums, direct with choices, cot without


def _items(data_dir, subtask: str, mode: str, options: EvalOptions) -> list[EvalItem]:
    offset = {"small": 1, "large": 50}[subtask]
    if options.zero_shot_cot and mode == "cot":
        mode = "zs_cot"
    prefix = "" if mode == "zs_cot" else f"Add the numbers.\n\nQ: {offset} + 1?\nA: {offset + 1}\n\n"
    n = 6 if options.limit is None else min(6, options.limit)
    items = []
    for i in range(n):
        a, b = offset + i, i + 2
        choices = tuple(f" {a + b + d}" for d in (0, 1, 2)) if mode == "direct" else ()
        tail = "" if mode == "direct" else " Let's think step by step."
        items.append(EvalItem("sums", subtask, mode, str(i), prefix, f"Q: {a} + {b}?\nA:{tail}", str(a + b),
                              choices=choices, chance=100 / 3 if mode == "direct" else 0.0))
    return items


def _extract(output: str, item: EvalItem) -> str:
    return output.strip().split("\n")[0].strip()


SUMS = Benchmark(
    name="sums", version="1", description="test sums", modes=("direct", "cot"), metric="accuracy",
    scorings=("generate", "rank"), subtasks=lambda data_dir: ["small", "large"], items=_items, extract=_extract,
    score=lambda extracted, item: {"accuracy": exact_match(extracted, item.target)},
    max_new_tokens={"direct": 6, "cot": 12, "zs_cot": 12}, stop=("\n",),
)


@pytest.fixture(scope="module")
def llama(lively_tiny_llama):
    return lively_tiny_llama


def run(lm, out, **kw):
    kw.setdefault("progress", False)
    return runner.evaluate(lm, benchmarks=[SUMS], out_dir=out, **kw)


# ----------------------------------------------------------------------------------------------------------


def test_results_and_samples_shape(llama, tmp_path):
    results = run(llama, tmp_path / "run")
    on_disk = json.loads((tmp_path / "run" / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(results))
    assert results["schema"] == "flanlab.results/2"
    assert results["model"]["name"] == "tiny-llama" and results["model"]["untrained"] is True
    assert results["model"]["kind"] == "causal" and results["model"]["parameters"] > 0
    direct, cot = results["benchmarks"]["sums"]["direct"], results["benchmarks"]["sums"]["cot"]
    assert direct["scoring"] == "rank" and cot["scoring"] == "generate"  # auto
    assert direct["n"] == 12 and set(direct["subtasks"]) == {"small", "large"}
    assert direct["chance"] == pytest.approx(100 / 3)
    assert results["normalized_average"]["value"] is None and "mmlu/direct" in results["normalized_average"]["missing"]
    prov = results["provenance"]
    assert prov["flanlab_version"] and "created" in prov and "data_files" in prov
    assert prov["git_revision"] is None or len(prov["git_revision"]) == 40
    assert prov["libraries"]["torch"] and prov["libraries"]["transformers"]
    assert set(prov["benchmark_data"]) == {"sums"}
    assert results["timings"]["sums/direct"]["items_per_s"] > 0 and "total_s" in results["timings"]
    samples = list(read_jsonl(tmp_path / "run" / "samples.jsonl"))
    assert len(samples) == 24
    for row in samples:
        for key in ("benchmark", "subtask", "mode", "item_id", "prompt", "output", "extracted", "target", "correct"):
            assert key in row
    rank_rows = [r for r in samples if r["mode"] == "direct"]
    assert all(r["output"] in r["choices"] and len(r["logprobs"]) == 3 for r in rank_rows)
    # the score is the mean of the rows' correctness, per subtask
    small = [r["correct"] for r in rank_rows if r["subtask"] == "small"]
    assert direct["subtasks"]["small"]["score"] == pytest.approx(100 * sum(small) / len(small))


def test_scoring_generate_and_limit(llama, tmp_path):
    results = run(llama, tmp_path / "gen", scoring="generate", modes=("direct",), limit=2)
    section = results["benchmarks"]["sums"]["direct"]
    assert section["scoring"] == "generate" and section["n"] == 4
    assert "cot" not in results["benchmarks"]["sums"]
    with pytest.raises(ValueError, match="scoring"):
        run(llama, tmp_path / "bad", scoring="nope")


def test_resume_after_a_crash_redoes_nothing(llama, tmp_path, monkeypatch):
    full = run(llama, tmp_path / "clean", batch_size=2, cache_dir=False)

    calls = {"n": 0}
    real_rank, real_gen = Engine.rank_batch, Engine.generate_batch

    def counting(real, crash_after=None):
        def wrapper(self, items, *args):
            calls["n"] += 1
            if crash_after is not None and calls["n"] > crash_after:
                raise RuntimeError("injected crash")
            return real(self, items, *args)
        return wrapper

    monkeypatch.setattr(Engine, "rank_batch", counting(real_rank, crash_after=4))
    monkeypatch.setattr(Engine, "generate_batch", counting(real_gen, crash_after=4))
    with pytest.raises(RuntimeError, match="injected crash"):
        run(llama, tmp_path / "resumed", batch_size=2)
    assert not (tmp_path / "resumed" / "results.json").exists()

    calls["n"] = 0
    monkeypatch.setattr(Engine, "rank_batch", counting(real_rank))
    monkeypatch.setattr(Engine, "generate_batch", counting(real_gen))
    resumed = run(llama, tmp_path / "resumed", batch_size=2)
    total_batches = 12  # 2 modes x 2 subtasks x 6 items / batch 2 (the plan never mixes prefixes)
    assert calls["n"] == total_batches - 4
    assert resumed["provenance"]["cache"]["entries_at_start"] == 8
    assert resumed["benchmarks"] == full["benchmarks"]
    assert list(read_jsonl(tmp_path / "resumed" / "samples.jsonl")) == list(read_jsonl(tmp_path / "clean" / "samples.jsonl"))

    calls["n"] = 0
    run(llama, tmp_path / "resumed", batch_size=2)
    assert calls["n"] == 0  # everything cached
    run(llama, tmp_path / "resumed", batch_size=2, seed=1, self_consistency=2, temperature=1.0)
    assert calls["n"] == 6  # CoT sampling settings changed: the 6 cot batches are redone, direct is reused


def test_resume_with_other_engine_settings_is_refused_not_mixed(llama, tmp_path, caplog):
    """Batch size and the engine's levers are not in an item's cache key (they are meant not to change outputs,
    but padding and multi-token forwards change fp32 rounding): results.json records them, the cache its
    engine.json, and a resume with other ones is refused in one line instead of served the old items."""
    first = run(llama, tmp_path / "run", batch_size=2, modes=("direct",))
    engine = first["settings"]["engine"]
    assert engine["batch_size"] == 2 and engine["prefix_cache"] is True
    assert {"shared_attention", "draft_tokens"} <= set(engine)
    recorded = json.loads((tmp_path / "run" / "cache" / "engine.json").read_text())
    assert recorded.pop("flanlab_version") and recorded == engine  # engine.json adds the version (test_cache_version.py)
    for changed, what in (({"batch_size": 3}, "batch_size 2 (this run: 3)"),
                          ({"prefix_cache": False}, "prefix_cache True (this run: False)")):
        with pytest.raises(ValueError) as refused:
            run(llama, tmp_path / "run", modes=("direct",), **{"batch_size": 2, **changed})
        line = str(refused.value)
        assert "\n" not in line and str(tmp_path / "run" / "cache") in line and what in line
    assert json.loads((tmp_path / "run" / "results.json").read_text()) == json.loads(json.dumps(first))
    from flanlab.eval import speculative

    assert engine["draft_tokens"] == speculative.DRAFT_TOKENS and engine["draft_ngrams"] == [4, 3, 2, 1]
    with pytest.MonkeyPatch.context() as mp:  # drafted with other n-grams (a release that changed them): refused
        mp.setattr(speculative, "NGRAMS", (3, 2))
        with pytest.raises(ValueError, match=r"draft_ngrams \[4, 3, 2, 1\] \(this run: \[3, 2\]\)"):
            run(llama, tmp_path / "run", batch_size=2, modes=("direct",))
    assert run(llama, tmp_path / "run", batch_size=2, modes=("direct",))["provenance"]["cache"]["entries_at_start"] == 12
    assert run(llama, tmp_path / "other", batch_size=3, modes=("direct",), cache_dir=False)["settings"]["engine"]["batch_size"] == 3
    # a cache from before the record: served, with a warning saying what is not known
    (tmp_path / "run" / "cache" / "engine.json").unlink()
    with caplog.at_level("WARNING", logger="flanlab"):
        run(llama, tmp_path / "run", batch_size=3, modes=("direct",))
    assert "from before engine settings were recorded" in caplog.text
    assert not (tmp_path / "run" / "cache" / "engine.json").exists()
    # a record without entries (a run killed before its first batch) takes the next run's settings
    run(llama, tmp_path / "fresh", batch_size=2, modes=("direct",))
    for items in (tmp_path / "fresh" / "cache").glob("items.*.jsonl"):
        items.unlink()
    assert run(llama, tmp_path / "fresh", batch_size=3, modes=("direct",))["settings"]["engine"]["batch_size"] == 3
    assert json.loads((tmp_path / "fresh" / "cache" / "engine.json").read_text())["batch_size"] == 3



def test_the_engine_revision_is_recorded_and_another_one_is_refused_on_resume(llama, tmp_path, monkeypatch):
    """flanlab.eval.engine.REVISION stands for the engine's code (test_engine_revision.py): a cache computed by other
    engine code is refused, not resumed."""
    from flanlab.eval import engine as engine_module

    first = run(llama, tmp_path / "run", modes=("direct",))
    assert first["settings"]["engine"]["engine_revision"] == engine_module.REVISION
    recorded = json.loads((tmp_path / "run" / "cache" / "engine.json").read_text())
    assert recorded["engine_revision"] == engine_module.REVISION
    monkeypatch.setattr(engine_module, "REVISION", engine_module.REVISION + 1)  # the next engine change
    with pytest.raises(ValueError) as refused:
        run(llama, tmp_path / "run", modes=("direct",))
    line = str(refused.value)
    assert "\n" not in line and str(tmp_path / "run" / "cache") in line
    assert f"engine_revision {engine_module.REVISION - 1} (this run: {engine_module.REVISION})" in line
    assert "other engine code" in line and "--no-cache" in line


def test_cache_survives_a_line_cut_short(tmp_path):
    from flanlab.eval.results import ResultCache

    cache = ResultCache(tmp_path)
    cache.put_many([("a", {"outputs": ["x"]}), ("b", {"outputs": ["y"]})])
    cache.close()
    with open(cache.path, "a") as f:
        f.write('{"key": "c", "val')  # killed mid-write
    again = ResultCache(tmp_path)
    assert again.load() == 2 and again.get("b") == {"outputs": ["y"]}
    again.put_many([("d", {"outputs": ["z"]})])
    again.close()
    third = ResultCache(tmp_path)
    assert third.load() == 3


def test_self_consistency_majority_vote(llama, tmp_path):
    results = run(llama, tmp_path / "sc", modes=("cot",), self_consistency=3, temperature=1.0, limit=3)
    rows = list(read_jsonl(tmp_path / "sc" / "samples.jsonl"))
    from flanlab.eval.metrics import majority_vote

    for row in rows:
        assert len(row["outputs"]) == 3 and len(row["answers"]) == 3
        assert row["extracted"] == majority_vote(row["answers"])
    assert results["settings"]["self_consistency"] == 3


def test_rescore_own_samples_and_plain_predictions(llama, tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("flanlab.eval.benchmarks", fromlist=["BENCHMARKS"]).BENCHMARKS, "sums", SUMS)
    original = run(llama, tmp_path / "run", modes=("direct", "cot"))
    rescored = runner.rescore("sums", tmp_path / "run" / "samples.jsonl", tmp_path / "rescored")
    for mode in ("direct", "cot"):
        a, b = original["benchmarks"]["sums"][mode], rescored["benchmarks"]["sums"][mode]
        assert (a["score"], a["n"], a["normalized"], a["scoring"]) == (b["score"], b["n"], b["normalized"], b["scoring"])
    assert rescored["model"]["name"] == "tiny-llama"  # taken from the results.json beside the samples
    assert (tmp_path / "rescored" / "results.json").is_file() and (tmp_path / "rescored" / "samples.jsonl").is_file()

    plain = tmp_path / "preds.jsonl"
    plain.write_text("\n".join(json.dumps(r) for r in [
        {"task": "small", "prediction": "3\nmore text", "target": "3"},
        {"task": "small", "prediction": "4", "target": "5"},
        {"task": "large", "prediction": " 52", "target": "52"},
    ]) + "\n")
    res = runner.rescore("sums", plain, None, mode="direct")  # rows without a "mode" field need the mode given
    direct = res["benchmarks"]["sums"]["direct"]
    assert direct["subtasks"]["small"]["score"] == 50.0 and direct["subtasks"]["large"]["score"] == 100.0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task": "small", "target": "3"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        runner.rescore("sums", bad, None)


def test_cli_eval_and_eval_score(tmp_path, capsys):
    from flanlab.cli import main

    out = tmp_path / "cli"
    assert main(["eval", "--model", "tiny-llama", "--suite", "synthetic", "--modes", "direct", "--limit", "2",
                 "-o", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "UNTRAINED" in printed and "synthetic/direct" in printed
    results = json.loads((out / "results.json").read_text())
    assert results["benchmarks"]["synthetic"]["direct"]["n"] > 0

    assert main(["eval", "score", "--benchmark", "synthetic", "--predictions", str(out / "samples.jsonl"),
                 "-o", str(tmp_path / "rescored")]) == 0
    rescored = json.loads((tmp_path / "rescored" / "results.json").read_text())
    assert rescored["benchmarks"]["synthetic"]["direct"]["score"] == results["benchmarks"]["synthetic"]["direct"]["score"]

    assert main(["eval", "--model", "tiny-llama", "-o", str(out)]) == 1  # neither --suite nor --benchmark
    assert "exactly one of --suite" in capsys.readouterr().err
    assert main(["eval", "--suite", "synthetic", "-o", str(out)]) == 1
    assert "--model" in capsys.readouterr().err


@pytest.mark.slow
def test_smollm2_real_mmlu_end_to_end(smollm2, data_dir, tmp_path):
    """The real model on real MMLU items of two subjects: rank for direct, generation for CoT (shortened)."""
    import dataclasses

    from flanlab.eval.benchmarks import mmlu

    small = dataclasses.replace(mmlu.BENCHMARK, subtasks=lambda d: ["astronomy", "marketing"],
                                max_new_tokens={"direct": 8, "cot": 48})
    results = runner.evaluate(smollm2, benchmarks=[small], data_dir=data_dir, out_dir=tmp_path, limit=3,
                              progress=False, batch_size=8)
    section = results["benchmarks"]["mmlu"]
    assert section["direct"]["scoring"] == "rank" and section["direct"]["n"] == 6
    assert section["cot"]["scoring"] == "generate" and section["cot"]["n"] == 6
    assert len(results["provenance"]["data_files"]) == 57 * 2 + 1
    rows = list(read_jsonl(tmp_path / "samples.jsonl"))
    assert all(r["extracted"] in "ABCD" for r in rows if r["mode"] == "direct")
    assert all(r["prompt"].endswith("A: Let's think step by step.") for r in rows if r["mode"] == "cot")
    if os.environ.get("FLANLAB_DEBUG"):
        print(runner.summary_text(results))
