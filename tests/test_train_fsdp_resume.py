"""Exact resume under FSDP (version 2, 2 CPU processes, gloo, started by `accelerate launch`): a run whose
process 0 is SIGKILLed while writing a checkpoint, then relaunched, ends with the same weights and logs the
same losses as an uninterrupted 2-process FSDP run (tiny model, dropout on so that the per-process random
generators matter too; AdamW and flanlab's Adafactor, whose factored moments are sharded by rows and
replicated by columns, so that the optimizer state does)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from flanlab.train.checkpoint import list_checkpoints, load_checkpoint

sys.path.insert(0, str(Path(__file__).parent))
from test_train import write_mixture  # noqa: E402
from test_train_resume import killed_while_saving, logged_losses  # noqa: E402

FIELDS = dict(model="tiny-llama", steps=8, batch_size=8, grad_accum=1, lr=1e-2, dropout=0.1,
              schedule="cosine", warmup_steps=2, max_input_len=64, max_target_len=32, pack_len=128, save_every=3,
              keep_checkpoints=3, threads=1)

# Process 0 kills itself while writing the step-6 checkpoint (killed_while_saving); the launcher then stops
# process 1, which is waiting for process 0 to finish the checkpoint.


def _launch(tmp_path: Path, config: Path, *program: str) -> subprocess.CompletedProcess:
    accelerate = Path(sys.executable).parent / "accelerate"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1]), OMP_NUM_THREADS="1")
    cmd = [str(accelerate), "launch", "--use_fsdp", "--fsdp_version", "2", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", *program, str(config)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)


def _config(tmp_path: Path, data: Path, name: str, optimizer: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(dict(FIELDS, optimizer=optimizer, data=str(data), output_dir=str(tmp_path / name))))
    return path


@pytest.mark.parametrize("optimizer", ["adamw", "adafactor"])
def test_fsdp_sigkill_then_resume_equals_uninterrupted(tmp_path, optimizer):
    if not (Path(sys.executable).parent / "accelerate").exists():
        pytest.skip("the accelerate launcher is not installed next to this python")
    data = write_mixture(tmp_path / "mix")
    train_cli = ("-m", "flanlab.cli", "train", "--no-progress")

    ref = _launch(tmp_path, _config(tmp_path, data, "ref", optimizer), *train_cli)
    assert ref.returncode == 0, ref.stderr[-3000:]
    reference = tmp_path / "ref"

    config = _config(tmp_path, data, "killed", optimizer)
    run = tmp_path / "killed"
    (tmp_path / "child.py").write_text(killed_while_saving(6))
    killed = _launch(tmp_path, config, str(tmp_path / "child.py"))
    assert killed.returncode != 0, "the run was meant to die while writing its step-6 checkpoint"
    # the step-6 checkpoint was being written: only its temporary folder exists; step 3 is the last complete one
    assert [s for s, _ in list_checkpoints(run / "checkpoints")] == [3]
    assert list((run / "checkpoints").glob(".step-000006*"))
    assert not (run / "summary.json").exists()
    assert max(step for step, _ in logged_losses(run)) == 6

    # the checkpoint has the single-process layout: every trainable weight whole, one RNG state per process
    ckpt = load_checkpoint(run / "checkpoints" / "step-000003")
    ref_model = load_file(str(reference / "model" / "model.safetensors"))
    assert all(ckpt["weights"][k].shape == ref_model[k].shape for k in ckpt["weights"])
    assert ckpt["state"]["world_size"] == 2 and len(ckpt["rng"]) == 2
    assert set(ckpt["optimizer"]["state"]) == set(range(len(ckpt["weights"])))

    resumed = _launch(tmp_path, config, *train_cli)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr and "(step 3)" in resumed.stderr
    ours = load_file(str(run / "model" / "model.safetensors"))
    assert ours.keys() == ref_model.keys()
    for name in ours:
        assert torch.equal(ours[name], ref_model[name]), f"{name} differs after resume"
    # the log was cut back to the checkpoint and continued: the same losses as the uninterrupted run
    assert logged_losses(run) == logged_losses(reference)
    assert len(logged_losses(run)) == FIELDS["steps"]
    assert not list((run / "checkpoints").glob(".step-*"))  # the killed save's temporary folder was cleaned up
