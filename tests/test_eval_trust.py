"""Results to trust: the resume cache never serves another model's outputs (the fingerprint covers every weight,
the tokenizer and the config; file hashes are cached so a rerun reads no weight file), and a benchmark never
gives fewer shots than it promises (it stops naming the file, and records the shots it used)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from flanlab.eval import results as results_mod
from flanlab.eval import runner
from flanlab.eval.engine import Engine
from flanlab.eval.metrics import exact_match
from flanlab.eval.spec import Benchmark, EvalItem, EvalOptions
from flanlab.fileio import read_jsonl


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Each test its own FLANLAB_CACHE (the file-hash cache lives there) and one torch thread."""
    monkeypatch.setenv("FLANLAB_CACHE", str(tmp_path / "flanlab-cache"))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------------------------------------------------------
# a model folder and a small benchmark


MIDDLE = "model.layers.1.mlp.down_proj.weight"  # neither among the first nor the last tensors of the state dict


@pytest.fixture
def save_tiny_llama(lively_tiny_llama):
    """save(folder, middle_scale=None): the module's lively tiny Llama (tests/conftest.py; ByT5 byte tokenizer)
    saved as a Hugging Face folder with safetensors weights; middle_scale multiplies only the MIDDLE tensor of
    the saved copy (what a LoRA on one middle layer changes)."""
    import copy

    def save(folder: Path, middle_scale: float | None = None) -> None:
        model = lively_tiny_llama.model
        if middle_scale is not None:
            model = copy.deepcopy(model)
            with torch.no_grad():
                dict(model.named_parameters())[MIDDLE].mul_(middle_scale)
        model.save_pretrained(folder, safe_serialization=True)
        lively_tiny_llama.tokenizer.save_pretrained(folder)

    return save


def _age(folder: Path, seconds: int = 3600) -> None:
    """Set every file's mtime an hour back (a folder written long ago: its hashes may be remembered)."""
    old = (os.stat(folder).st_mtime_ns // 10**9 - seconds) * 10**9
    for p in folder.iterdir():
        os.utime(p, ns=(old, old))


def _items(data_dir, subtask: str, mode: str, options: EvalOptions) -> list[EvalItem]:
    prefix = "Add the numbers.\n\nQ: 1 + 1?\nA: 2\n\n"
    items = []
    for i in range(4):
        a, b = i + 3, 2 * i + 1
        items.append(EvalItem("adds", subtask, mode, str(i), prefix, f"Q: {a} + {b}?\nA:", str(a + b),
                              choices=tuple(f" {a + b + d}" for d in (0, 1, 2)), chance=100 / 3, shots=1))
    return items


ADDS = Benchmark(
    name="adds", version="1", description="test sums", modes=("direct",), metric="accuracy",
    scorings=("generate", "rank"), subtasks=lambda data_dir: ["one"], items=_items,
    extract=lambda output, item: output.strip(), score=lambda e, item: {"accuracy": exact_match(e, item.target)},
    max_new_tokens={"direct": 4}, stop=("\n",),
)


@pytest.fixture
def computed(monkeypatch):
    """Counts the items the engine actually runs (the rest come from the resume cache)."""
    counter = {"n": 0}
    real = Engine.rank_batch

    def counting(self, items, *args, **kw):
        counter["n"] += len(items)
        return real(self, items, *args, **kw)

    monkeypatch.setattr(Engine, "rank_batch", counting)
    return counter


def _evaluate(model, out: Path, **kw) -> dict:
    return runner.evaluate(model, benchmarks=[ADDS], modes=("direct",), out_dir=out, progress=False, **kw)


def _logprobs(out: Path) -> list:
    return [row["logprobs"] for row in read_jsonl(out / "samples.jsonl")]


# ----------------------------------------------------------------------------------------------------------
# item 1: the fingerprint and the resume cache


def test_a_retrained_middle_layer_is_never_served_from_the_cache(tmp_path, computed, save_tiny_llama):
    from flanlab.models import load

    folder, out = tmp_path / "model", tmp_path / "eval"
    save_tiny_llama(folder)
    names = list(load(str(folder), device="cpu").model.state_dict())
    assert MIDDLE in names[3:-3]  # the old fingerprint hashed only the first and last 3 tensors

    first = _evaluate(str(folder), out)
    assert computed["n"] == 4
    old = _logprobs(out)
    again = _evaluate(str(folder), out)  # same weights, reloaded: every item from the cache
    assert computed["n"] == 4 and again["model"]["fingerprint"] == first["model"]["fingerprint"]
    assert _logprobs(out) == old

    save_tiny_llama(folder, middle_scale=-1.0)  # "retrained" into the same folder: one middle tensor changed
    retrained = _evaluate(str(folder), out)
    assert computed["n"] == 8  # all recomputed
    assert retrained["model"]["fingerprint"] != first["model"]["fingerprint"]
    served = _logprobs(out)
    assert served != old
    fresh = _evaluate(str(folder), tmp_path / "fresh", cache_dir=False)
    assert _logprobs(tmp_path / "fresh") == served  # what a fresh run gives
    assert fresh["model"]["fingerprint"] == retrained["model"]["fingerprint"]
    basis = retrained["model"]["fingerprint_basis"]
    assert basis["method"] == "xxh3-128 of contents"
    assert basis["weights"]["hashed"] == "files of the folder it was loaded from"
    assert set(basis["weights"]["files"]) >= {"model.safetensors", "config.json", "tokenizer_config.json"}
    assert basis["weights"]["files"]["model.safetensors"] != first["model"]["fingerprint_basis"]["weights"]["files"][
        "model.safetensors"]


def test_same_files_give_the_same_fingerprint_and_are_read_once(tmp_path, monkeypatch, save_tiny_llama):
    from flanlab.models import load

    folder = tmp_path / "model"
    save_tiny_llama(folder)
    _age(folder)
    reads = []
    real = results_mod.hash_file
    monkeypatch.setattr(results_mod, "hash_file", lambda path: reads.append(Path(path)) or real(path))

    def folder_reads() -> list[str]:
        return sorted(p.name for p in reads if p.parent == folder.resolve())

    one = results_mod.model_fingerprint(load(str(folder), device="cpu"))
    assert folder_reads() == sorted(p.name for p in folder.iterdir())  # every file hashed once
    reads.clear()
    two = results_mod.model_fingerprint(load(str(folder), device="cpu"))
    assert two == one and folder_reads() == []  # a rerun reads no file of the folder

    cache_file = Path(os.environ["FLANLAB_CACHE"]) / "file_hashes.json"
    assert json.loads(cache_file.read_text())["schema"] == "flanlab.file_hashes/1"
    cache_file.write_text('{"schema": "flanlab.file_hashes/1", "files": {"trunc')  # corrupt: an empty cache
    reads.clear()
    assert results_mod.model_fingerprint(load(str(folder), device="cpu")) == one
    assert folder_reads() == sorted(p.name for p in folder.iterdir())


def test_a_file_written_just_now_is_hashed_again_next_time(tmp_path, monkeypatch, save_tiny_llama):
    """Within the filesystem's timestamp tick a rewrite could keep size, mtime and inode: such a file's hash is
    not remembered."""
    from flanlab.models import load

    folder = tmp_path / "model"
    save_tiny_llama(folder)
    monkeypatch.setattr(results_mod, "RACY_NS", 10**15)  # every file counts as just written
    reads = []
    real = results_mod.hash_file
    monkeypatch.setattr(results_mod, "hash_file", lambda path: reads.append(Path(path).name) or real(path))
    results_mod.model_fingerprint(load(str(folder), device="cpu"))
    results_mod.model_fingerprint(load(str(folder), device="cpu"))
    assert reads.count("model.safetensors") == 2


def test_a_changed_tokenizer_file_changes_the_fingerprint(tmp_path, save_tiny_llama):
    from flanlab.models import load

    folder = tmp_path / "model"
    save_tiny_llama(folder)
    before = load(str(folder), device="cpu")
    one = results_mod.model_fingerprint(before)
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config["model_max_length"] = 77
    path.write_text(json.dumps(config))
    after = load(str(folder), device="cpu")
    assert after.tokenizer.model_max_length == 77
    two, basis = results_mod.fingerprint_with_basis(after)
    assert two != one
    assert basis["tokenizer"] != results_mod.fingerprint_with_basis(before)[1]["tokenizer"]


def test_weights_changed_after_loading_are_hashed_in_memory(tmp_path, save_tiny_llama):
    from flanlab.models import load

    folder = tmp_path / "model"
    save_tiny_llama(folder)
    lm = load(str(folder), device="cpu")
    one, basis = results_mod.fingerprint_with_basis(lm)
    assert basis["weights"]["hashed"] == "files of the folder it was loaded from"
    with torch.no_grad():
        dict(lm.model.named_parameters())[MIDDLE].mul_(-1.0)  # in memory only: the folder is unchanged
    two, basis = results_mod.fingerprint_with_basis(lm)
    assert two != one and basis["weights"]["hashed"] == "tensors in memory"
    assert basis["weights"]["why"] == "the weights were changed in memory after loading"

    lm = load(str(folder), device="cpu")
    save_tiny_llama(folder, middle_scale=3.0)  # the folder rewritten after this model was loaded from it
    three, basis = results_mod.fingerprint_with_basis(lm)
    assert basis["weights"]["why"] == "the model folder's files changed after loading"
    # the weights in memory are still the original ones: never the fingerprint of the folder's new files
    assert three not in (one, results_mod.model_fingerprint(load(str(folder), device="cpu")))


def test_models_built_in_memory_hash_every_tensor(tiny_t5):
    import copy

    one, basis = results_mod.fingerprint_with_basis(tiny_t5)
    assert basis["weights"] == {"hashed": "tensors in memory", "why": "built in memory",
                                "tensors": len(tiny_t5.model.state_dict()), "hash": basis["weights"]["hash"]}
    changed = copy.copy(tiny_t5)
    changed.model = copy.deepcopy(tiny_t5.model)
    with torch.no_grad():
        changed.model.decoder.block[0].layer[1].EncDecAttention.v.weight[3, 5] += 1e-3  # one value, mid-model
    assert results_mod.model_fingerprint(changed) != one
    assert results_mod.model_fingerprint(tiny_t5) == one


# ----------------------------------------------------------------------------------------------------------
# item 4: never fewer shots than promised; item 9 (MMLU part): a bad answer letter is named as such


def _cot_block(i: int) -> str:
    return f"Q: Question {i}?\n(A) w (B) x (C) y (D) z\nA: Let's think step by step. Because. The answer is (B)."


def write_mmlu(root: Path, dev_rows: int = 5, subjects: tuple[str, ...] = ("astronomy", "marketing"),
               cot_shots: dict[str, int] | None = None) -> Path:
    """A data dir holding MMLU for a few subjects: dev_rows dev rows, 3 test rows, and Flan CoT prompts for every
    subject (5 exemplars unless cot_shots says otherwise)."""
    from flanlab.eval.benchmarks import mmlu

    for split, n in (("dev", dev_rows), ("test", 3)):
        folder = root / "mmlu" / "data" / split
        folder.mkdir(parents=True, exist_ok=True)
        for subject in subjects:
            rows = "".join(f"{split} question {i} on {subject}?,w,x,y,z,{'ABCD'[i % 4]}\n" for i in range(n))
            (folder / f"{subject}_{split}.csv").write_text(rows)
    cot_shots = cot_shots or {}
    prompts = {s: mmlu.header(s) + "\n\n".join(_cot_block(i) for i in range(cot_shots.get(s, 5)))
               for s in mmlu.SUBJECTS}
    (root / "mmlu" / "flan_cot_prompts.json").write_text(json.dumps(prompts))
    return root


def test_mmlu_dev_file_with_too_few_rows_stops_naming_it(tmp_path):
    from flanlab.eval.benchmarks import mmlu

    data = write_mmlu(tmp_path / "data", dev_rows=1)
    dev = data / "mmlu" / "data" / "dev" / "astronomy_dev.csv"
    with pytest.raises(ValueError, match=f"^{dev}: 1 exemplar, but the 5-shot prompt needs 5; pass --shots 1"):
        mmlu.items(data, "astronomy", "direct", EvalOptions())
    with pytest.raises(ValueError, match="astronomy_dev.csv: 1 exemplar, but the 3-shot prompt needs 3"):
        mmlu.items(data, "astronomy", "direct", EvalOptions(shots=3))
    one = mmlu.items(data, "astronomy", "direct", EvalOptions(shots=1))  # asked for: runs, and says so
    assert [it.shots for it in one] == [1, 1, 1] and one[0].prefix.count("Answer:") == 1
    assert {it.shots for it in mmlu.items(data, "astronomy", "cot", EvalOptions(zero_shot_cot=True))} == {0}


def test_mmlu_cot_uses_the_published_prompt_and_records_its_shots(tmp_path):
    from flanlab.eval.benchmarks import mmlu

    data = write_mmlu(tmp_path / "data", cot_shots={"marketing": 4})
    assert {it.shots for it in mmlu.items(data, "astronomy", "cot", EvalOptions())} == {5}
    four = mmlu.items(data, "marketing", "cot", EvalOptions())  # as published: 4 exemplars, labelled 4
    assert {it.shots for it in four} == {4} and four[0].prefix.count("The answer is") == 4
    with pytest.raises(ValueError, match=r"flan_cot_prompts.json \(marketing\): 4 exemplars, but the 5-shot"):
        mmlu.items(data, "marketing", "cot", EvalOptions(shots=5))
    assert {it.shots for it in mmlu.items(data, "marketing", "cot", EvalOptions(shots=2))} == {2}


def test_results_and_the_table_record_the_shots_used(tmp_path, tiny_llama):
    import dataclasses

    from flanlab.eval.benchmarks import mmlu

    data = write_mmlu(tmp_path / "data", dev_rows=2, cot_shots={"marketing": 4})
    small = dataclasses.replace(mmlu.BENCHMARK, subtasks=lambda d: ["astronomy", "marketing"],
                                max_new_tokens={"direct": 2, "cot": 3, "zs_cot": 3})
    kw = dict(benchmarks=[small], data_dir=data, limit=2, progress=False, cache_dir=False)
    with pytest.raises(ValueError, match="astronomy_dev.csv: 2 exemplars, but the 5-shot prompt needs 5"):
        runner.evaluate(tiny_llama, out_dir=tmp_path / "default", **kw)
    assert not (tmp_path / "default" / "results.json").exists()

    results = runner.evaluate(tiny_llama, out_dir=tmp_path / "two", shots=2, **kw)
    direct, cot = results["benchmarks"]["mmlu"]["direct"], results["benchmarks"]["mmlu"]["cot"]
    assert results["settings"]["shots"] == 2
    assert (direct["shots"], direct["shots_max"]) == (2, 2) and (cot["shots"], cot["shots_max"]) == (2, 2)
    assert all(entry["shots"] == 2 for entry in direct["subtasks"].values())
    assert all(row["shots"] == 2 for row in read_jsonl(tmp_path / "two" / "samples.jsonl"))
    table = runner.summary_text(results)
    assert "(n=4, rank, 2-shot)" in table and "(n=4, generate, 2-shot)" in table

    data5 = write_mmlu(tmp_path / "data5", cot_shots={"marketing": 4})
    results = runner.evaluate(tiny_llama, out_dir=tmp_path / "published", modes=("cot",), **{**kw, "data_dir": data5})
    cot = results["benchmarks"]["mmlu"]["cot"]
    assert (cot["shots"], cot["shots_max"]) == (4, 5)
    assert cot["subtasks"]["astronomy"]["shots"] == 5 and cot["subtasks"]["marketing"]["shots"] == 4
    assert "generate, 4-5-shot)" in runner.summary_text(results)


def test_mmlu_csv_answer_letter_and_field_count_errors(tmp_path):
    from flanlab.eval.benchmarks import mmlu

    data = write_mmlu(tmp_path / "data")
    test = data / "mmlu" / "data" / "test" / "astronomy_test.csv"
    test.write_text("q1?,w,x,y,z,A\nq2?,w,x,y,z,F\n")
    with pytest.raises(ValueError, match=f"^{test}:2: answer 'F' is not one of A, B, C, D$"):
        mmlu.items(data, "astronomy", "direct", EvalOptions())
    test.write_text("q1?,w,x,y,z,A\nq2?,w,x,y,B\n")
    with pytest.raises(ValueError, match=f"^{test}:2: expected 6 fields .*found 5$"):
        mmlu.items(data, "astronomy", "direct", EvalOptions(shots=0))


def test_bbh_prompt_file_with_too_few_exemplars_stops_naming_it(tmp_path):
    from flanlab.eval.benchmarks import bbh

    root = tmp_path / "data" / "bbh"
    (root / "bbh").mkdir(parents=True)
    (root / "cot-prompts").mkdir()
    (root / "bbh" / "navigate.json").write_text(json.dumps({"examples": [{"input": "Go?", "target": "Yes"}]}))
    prompt = root / "cot-prompts" / "navigate.txt"
    shots = "\n\n".join(f"Q: Walk {i}?\nA: Let's think step by step. So the answer is Yes." for i in range(2))
    prompt.write_text(f"canary\n-----\nNavigate.\n\n{shots}\n")
    for mode in ("direct", "cot"):
        with pytest.raises(ValueError, match=f"^{prompt}: 2 exemplars, but the 3-shot prompt needs 3"):
            bbh.items(tmp_path / "data", "navigate", mode, EvalOptions())
        assert {it.shots for it in bbh.items(tmp_path / "data", "navigate", mode, EvalOptions(shots=2))} == {2}
    assert {it.shots for it in bbh.items(tmp_path / "data", "navigate", "zs_cot", EvalOptions())} == {0}


def test_mgsm_and_tydiqa_with_too_few_exemplars_stop_naming_the_file(tmp_path):
    from flanlab.eval.benchmarks import mgsm, tydiqa

    data = tmp_path / "data"
    (data / "mgsm").mkdir(parents=True)
    (data / "mgsm" / "mgsm_de.tsv").write_text("Frage eins?\t3\n")
    exemplars = {str(i): {"q": f"Frage: {i}?", "a": f"Schritt-für-Schritt-Antwort: Die Antwort ist {i}."}
                 for i in range(1, 4)}
    (data / "mgsm" / "exemplars.json").write_text(json.dumps({"de": exemplars}))
    with pytest.raises(ValueError, match=r"exemplars.json \(de\): 3 exemplars, but the 8-shot prompt needs 8"):
        mgsm.items(data, "de", "cot", EvalOptions())
    assert {it.shots for it in mgsm.items(data, "de", "direct", EvalOptions(shots=3))} == {3}

    (data / "tydiqa_goldp").mkdir()
    path = data / "tydiqa_goldp" / "finnish_tydiqa_dev.json"
    qa = {"id": "finnish-1", "question": "Mikä?", "answers": [{"text": "se", "answer_start": 0}]}
    path.write_text(json.dumps({"data": [{"paragraphs": [{"context": "se on", "qas": [qa]}]}]}))
    with pytest.raises(ValueError, match=f"^{path}: 1 question\\(s\\), but the 1-shot prompt needs 2"):
        tydiqa.items(data, "finnish", "direct", EvalOptions())
    assert [it.shots for it in tydiqa.items(data, "finnish", "direct", EvalOptions(shots=0))] == [0]


def test_synthetic_items_record_their_shots_and_negative_shots_are_refused():
    from flanlab.eval.benchmarks import synthetic

    family = synthetic.subtasks(None)[0]
    assert {it.shots for it in synthetic.items(None, family, "cot", EvalOptions(limit=2))} == {3}
    assert {it.shots for it in synthetic.items(None, family, "direct", EvalOptions(limit=2, shots=0))} == {0}
    assert {it.shots for it in synthetic.items(None, family, "cot", EvalOptions(limit=2, zero_shot_cot=True))} == {0}
    with pytest.raises(ValueError, match="shots must be a whole number >= 0, not -1"):
        EvalOptions(shots=-1)


def test_a_prompt_that_cannot_be_built_stops_the_run_before_any_work(tmp_path, tiny_llama, computed):
    import dataclasses

    from flanlab.eval.benchmarks import mmlu

    data = write_mmlu(tmp_path / "data", dev_rows=1)
    small = dataclasses.replace(mmlu.BENCHMARK, subtasks=lambda d: ["astronomy"])
    with pytest.raises(ValueError, match="astronomy_dev.csv: 1 exemplar, but the 5-shot prompt needs 5"):
        runner.evaluate(tiny_llama, benchmarks=[ADDS, small], modes=("direct",), data_dir=data,
                        out_dir=tmp_path / "out", progress=False)
    assert computed["n"] == 0  # ADDS, first in line, was not run either
