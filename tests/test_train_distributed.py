"""Two CPU processes (gloo, started by `accelerate launch`) train like one process on the same global batch:
the logged losses agree to ~1e-5. DDP (the default), and FSDP (version 2) selected through accelerate, which
on CPU processes flanlab applies itself (torch's fully_shard: the parameters really are sharded). Both write
checkpoints in the single-process format. Exact resume under FSDP: tests/test_train_fsdp_resume.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from flanlab.train import load_train_config, train
from flanlab.train.checkpoint import load_checkpoint

sys.path.insert(0, str(Path(__file__).parent))
from test_train import write_mixture  # noqa: E402

FIELDS = dict(model="tiny-llama", steps=6, batch_size=8, lr=1e-2, max_input_len=64, max_target_len=32,
              pack_len=128, save_every=3, threads=1)


def _losses(run: Path) -> list[float]:
    return [e["loss"] for e in map(json.loads, (run / "log.jsonl").read_text().splitlines()) if "loss" in e]


@pytest.mark.parametrize("mode, optimizer", [("ddp", "adafactor"), ("fsdp", "adamw"), ("fsdp", "adafactor")])
def test_two_processes_match_one(tmp_path, mode, optimizer):
    accelerate = Path(sys.executable).parent / "accelerate"
    if not accelerate.exists():
        pytest.skip("the accelerate launcher is not installed next to this python")
    data = write_mixture(tmp_path / "mix")
    # one process, the global batch of 8 in two micro-batches of 4
    fields = dict(FIELDS, optimizer=optimizer)
    single = train(load_train_config(None, None, **fields, grad_accum=2, data=str(data),
                                     output_dir=str(tmp_path / "one")), progress=False)

    # two processes, each a micro-batch of 4 of the same global batch
    config = tmp_path / "two.yaml"
    config.write_text(yaml.safe_dump(dict(fields, grad_accum=1, data=str(data), output_dir=str(tmp_path / "two"))))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1]), OMP_NUM_THREADS="1")
    launcher = ["--multi_gpu"] if mode == "ddp" else ["--use_fsdp", "--fsdp_version", "2"]
    cmd = [str(accelerate), "launch", *launcher, "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "flanlab.cli", "train", str(config),
           "--no-progress"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"2 process(es) ({mode})" in proc.stderr
    two = tmp_path / "two"
    summary = json.loads((two / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["parallelism"] == mode

    one_losses, two_losses = _losses(single), _losses(two)
    assert len(one_losses) == len(two_losses) == 6
    assert one_losses[-1] < one_losses[0]
    for a, b in zip(one_losses, two_losses):
        assert b == pytest.approx(a, rel=1e-5, abs=1e-5)
    # the exported model is the same
    from safetensors.torch import load_file

    ours, theirs = load_file(str(two / "model" / "model.safetensors")), load_file(str(single / "model" / "model.safetensors"))
    assert ours.keys() == theirs.keys()
    assert all(torch.allclose(ours[k], theirs[k], atol=1e-5) for k in ours)
    # the 2-process checkpoint has the 1-process format (under FSDP too: the shards were gathered whole), with
    # one random-generator state per process
    one_ckpt = load_checkpoint(single / "checkpoints" / "step-000006")
    two_ckpt = load_checkpoint(two / "checkpoints" / "step-000006")
    assert two_ckpt["state"]["world_size"] == 2 and len(two_ckpt["rng"]) == 2
    assert two_ckpt["weights"].keys() == one_ckpt["weights"].keys()
    assert all(torch.allclose(two_ckpt["weights"][k], one_ckpt["weights"][k], atol=1e-5) for k in two_ckpt["weights"])
    one_opt, two_opt = one_ckpt["optimizer"], two_ckpt["optimizer"]
    assert two_opt["param_groups"] == one_opt["param_groups"]
    assert two_opt["state"].keys() == one_opt["state"].keys()
    for index, entries in two_opt["state"].items():
        assert entries.keys() == one_opt["state"][index].keys()
        for name, value in entries.items():
            theirs_value = one_opt["state"][index][name]
            if isinstance(value, torch.Tensor):
                assert value.shape == theirs_value.shape and torch.allclose(value, theirs_value, rtol=1e-4, atol=1e-6)
            else:
                assert value == theirs_value
