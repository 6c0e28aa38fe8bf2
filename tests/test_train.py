"""flanlab train on tiny models: loss falls, the run folder is complete and loads, LoRA, configs, divergence."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from flanlab.config import ConfigError
from flanlab.train import TrainingDiverged, load_train_config, train

WORDS = "alpha beta gamma delta kappa sigma omega red green blue seven eleven".split()


def write_mixture(folder: Path, n_train: int = 160, n_val: int = 16, seed: int = 0) -> Path:
    """A mixture folder like `flanlab mix` writes: a learnable task (reverse the words)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)

    def rows(n):
        for _ in range(n):
            ws = [rng.choice(WORDS) for _ in range(rng.randint(2, 6))]
            yield {"inputs": "Reverse the words: " + " ".join(ws), "targets": " ".join(reversed(ws)),
                   "task": "reverse", "category": "synthetic", "template_id": "t0", "format": "zs_noopt",
                   "source": "synthetic"}

    for name, n in (("train-00000-of-00001.jsonl", n_train), ("validation.jsonl", n_val)):
        with open(folder / name, "w", encoding="utf-8") as f:
            for row in rows(n):
                f.write(json.dumps(row) + "\n")
    return folder


def tiny_config(tmp_path: Path, model: str = "tiny-llama", **fields):
    data = tmp_path / "mix" if (tmp_path / "mix").is_dir() else write_mixture(tmp_path / "mix")
    base = dict(model=model, data=str(data), output_dir=str(tmp_path / "run"), steps=12, batch_size=8, lr=1e-2,
                max_input_len=64, max_target_len=32, pack_len=128, pack_target_len=48, save_every=0, threads=1)
    base.update(fields)
    return load_train_config(None, None, **base)


def read_log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_causal_packed_run_folder(tmp_path):
    from transformers import AutoModelForCausalLM

    from flanlab.models import load

    run = train(tiny_config(tmp_path, steps=16, eval_every=8, tensorboard=True, pretrain_tokens=1e6, warmup_steps=2),
                progress=False)
    log = read_log(run)
    steps = [e for e in log if "loss" in e]
    assert [e["step"] for e in steps] == list(range(1, 17))
    assert set(steps[0]) >= {"step", "loss", "lr", "tokens", "tokens_per_s", "elapsed_s"}
    assert steps[-1]["loss"] < 0.7 * steps[0]["loss"]
    assert [e["lr"] for e in steps[:3]] == pytest.approx([0.5e-2, 1e-2, 1e-2])  # the rate each step used (warmup)
    assert [e["step"] for e in log if "eval" in e] == [8, 16]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["untrained"] is True and summary["steps"] == 16
    assert summary["tokens"] == steps[-1]["tokens"] > 0
    assert summary["train_flops"] == pytest.approx(6 * summary["parameters"] * summary["tokens"])
    assert summary["percent_of_pretraining"] == pytest.approx(100 * summary["tokens"] / 1e6)
    assert summary["first_loss"] == steps[0]["loss"] and summary["final_loss"] == steps[-1]["loss"]
    assert summary["config"]["model"] == "tiny-llama"
    assert any((run / "tensorboard").iterdir())
    assert json.loads((run / "model" / "flanlab_model.json").read_text())["untrained"] is True
    assert list((run / "model").glob("*.safetensors")) and not list((run / "model").glob("*.bin"))
    # flanlab.models.load reads it (and the untrained flag), and so does plain transformers
    lm = load(run / "model", device="cpu")
    assert lm.kind == "causal" and lm.untrained
    plain = AutoModelForCausalLM.from_pretrained(run / "model")
    for (n, a), (_, b) in zip(lm.model.state_dict().items(), plain.state_dict().items()):
        assert torch.equal(a, b), n
    # the saved model computes the logged held-out loss
    assert summary["final_eval"]["loss"] == pytest.approx(log[-1]["eval"]["loss"])

    # a finished folder is not retrained; asked for another warmup, it refuses (more: tests/test_run_safety.py)
    mtime = (run / "model" / "model.safetensors").stat().st_mtime_ns
    same = dict(steps=16, eval_every=8, tensorboard=True, pretrain_tokens=1e6, warmup_steps=2)
    assert train(tiny_config(tmp_path, **same), progress=False) == run
    with pytest.raises(ValueError, match=r"finished run trained with different settings: warmup_steps \(2 -> 0\)"):
        train(tiny_config(tmp_path, steps=16), progress=False)
    assert (run / "model" / "model.safetensors").stat().st_mtime_ns == mtime


def test_seq2seq_packed_trains(tmp_path):
    from flanlab.models import load

    run = train(tiny_config(tmp_path, model="tiny-t5", steps=16, optimizer="adafactor", lr=3e-2, dropout=0.05),
                progress=False)
    losses = [e["loss"] for e in read_log(run) if "loss" in e]
    assert losses[-1] < 0.7 * losses[0]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["kind"] == "seq2seq" and summary["config"]["packing"] is True
    assert "encoder" in summary["train_flops_formula"]
    lm = load(run / "model", device="cpu")
    assert lm.kind == "seq2seq" and lm.model.config.dropout_rate == 0.05


def test_lora_merges_and_exports_adapter(tmp_path):
    from peft import PeftModel

    from flanlab.models import load

    run = train(tiny_config(tmp_path, steps=10, lr=3e-2, optimizer="adamw", packing=False,
                            lora={"enabled": True, "r": 4, "alpha": 8, "dropout": 0.0}), progress=False)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["lora"] and summary["trainable_parameters"] < summary["parameters"] / 3
    assert (run / "adapter" / "adapter_config.json").is_file()
    merged = load(run / "model", device="cpu").model
    base = load("tiny-llama", device="cpu").model
    assert not torch.equal(merged.model.layers[0].mlp.up_proj.weight, base.model.layers[0].mlp.up_proj.weight)
    # adapter on the base == the merged model
    with_adapter = PeftModel.from_pretrained(base, run / "adapter").eval()
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    with torch.no_grad():
        assert torch.allclose(with_adapter(ids).logits, merged(ids).logits, atol=1e-5)


def test_divergence_stops_naming_the_step_and_keeps_the_checkpoint(tmp_path):
    config = tiny_config(tmp_path, steps=8, lr=1e30, optimizer="adamw", clip_grad=0.0, save_every=1,
                         keep_checkpoints=10)
    with pytest.raises(TrainingDiverged) as info:
        train(config, progress=False)
    run = Path(config.output_dir)
    failed = json.loads((run / "failed.json").read_text())
    message = str(info.value)
    assert f"training diverged at step {failed['step']}" in message
    assert failed["step"] >= 2
    assert not (run / "summary.json").exists() and not (run / "model").exists()
    logged = [e["step"] for e in read_log(run)]
    assert logged == list(range(1, failed["step"]))  # every finite step was logged, the bad one was not
    last = failed["last_checkpoint"]
    assert last and last.endswith(f"step-{failed['step'] - 1:06d}") and last in message
    from safetensors.torch import load_file

    assert all(torch.isfinite(t).all() for t in load_file(Path(last) / "weights.safetensors").values())


def test_config_errors_name_the_field(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: tiny-llama\ndata: x\noutput_dir: y\nbatch_sise: 4\n")
    with pytest.raises(ConfigError, match="batch_size"):
        load_train_config(path)
    with pytest.raises(ConfigError, match="lr"):
        load_train_config(None, ["lr=-1"], model="m", data="d", output_dir="o")
    with pytest.raises(ConfigError, match="schedule"):
        load_train_config(None, ["schedule=linear"], model="m", data="d", output_dir="o")
    with pytest.raises(ConfigError, match="pack_len"):
        train(tiny_config(tmp_path, pack_len=50), progress=False)
    with pytest.raises(ValueError, match="multiple of grad_accum"):
        train(tiny_config(tmp_path, batch_size=6, grad_accum=4), progress=False)


def test_bad_data_names_file_and_line(tmp_path):
    data = write_mixture(tmp_path / "mix")
    with open(data / "train-00000-of-00001.jsonl", "a") as f:
        f.write('{"inputs": "x"}\n')
    with pytest.raises(ValueError, match=r"train-00000-of-00001\.jsonl:161: missing field 'targets'"):
        train(tiny_config(tmp_path, data=str(data)), progress=False)
    with pytest.raises(FileNotFoundError, match="no train-"):
        train(tiny_config(tmp_path, data=str(tmp_path)), progress=False)


def test_lr_schedule():
    from flanlab.train.sft import lr_factor

    c = load_train_config(None, None, model="m", data="d", output_dir="o", steps=10, warmup_steps=4)
    assert [lr_factor(c, s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    c = load_train_config(None, ["schedule=cosine", "warmup_steps=2", "steps=10"], model="m", data="d", output_dir="o")
    values = [lr_factor(c, s) for s in range(10)]
    assert values[2] == 1.0 and values[-1] < 0.1 and values == sorted(values[:2]) + sorted(values[2:], reverse=True)


def test_eval_suite_during_training(tmp_path):
    """eval_suite runs flanlab.eval on the model being trained; its results land in the log and evals/."""
    run = train(tiny_config(tmp_path, steps=2, eval_suite="synthetic", eval_limit=1), progress=False)
    evals = [e["eval"] for e in read_log(run) if "eval" in e]
    assert len(evals) == 1 and "loss" in evals[0]
    bench = evals[0]["benchmark"]
    assert bench["suite"] == "synthetic" and "skipped" not in bench
    results = json.loads((run / "evals" / "step-000002" / "results.json").read_text())
    assert results["model"]["untrained"] is True
    assert bench["normalized_average"] == results["normalized_average"]["value"]
