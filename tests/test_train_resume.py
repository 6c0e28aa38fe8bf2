"""Exact resume: a run SIGKILLed while writing a checkpoint, then rerun, ends with the same weights as an
uninterrupted run (CPU, tiny model, dropout on so that the random generators matter too)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from safetensors.torch import load_file

from flanlab.train import load_train_config, train
from flanlab.train.checkpoint import list_checkpoints

sys.path.insert(0, str(Path(__file__).parent))
from test_train import write_mixture  # noqa: E402

FIELDS = dict(model="tiny-llama", steps=12, batch_size=8, grad_accum=2, lr=1e-2, dropout=0.1, optimizer="adamw",
              schedule="cosine", warmup_steps=2, max_input_len=64, max_target_len=32, pack_len=128, save_every=4,
              keep_checkpoints=3, threads=1)


def killed_while_saving(step: int) -> str:
    """A Python program (argument: a config file) that trains and kills itself (SIGKILL, no cleanup) in the
    middle of writing the step-`step` checkpoint, right after its weights file is written: a test-side patch of
    the writer, nothing in the library."""
    return textwrap.dedent(f"""
        import os, signal, sys
        import flanlab.train.checkpoint as ck
        from flanlab.train import load_train_config, train
        real_save_file = ck.save_file
        def save_file(tensors, filename, *args, **kwargs):
            real_save_file(tensors, filename, *args, **kwargs)
            if "step-{step:06d}" in filename:
                os.kill(os.getpid(), signal.SIGKILL)
        ck.save_file = save_file
        train(load_train_config(sys.argv[1]), progress=False)
    """)


def logged_losses(run: Path) -> list[tuple[int, float]]:
    """(step, loss) of every training step in a run's log.jsonl."""
    return [(e["step"], e["loss"]) for e in map(json.loads, (run / "log.jsonl").read_text().splitlines())
            if "loss" in e]


def _config_file(tmp_path: Path, data: Path, out: Path) -> Path:
    import yaml

    path = tmp_path / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(dict(FIELDS, data=str(data), output_dir=str(out))))
    return path


def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    data = write_mixture(tmp_path / "mix")
    reference = train(load_train_config(_config_file(tmp_path, data, tmp_path / "ref")), progress=False)

    run = tmp_path / "killed"
    config_path = _config_file(tmp_path, data, run)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1]))
    child = subprocess.run([sys.executable, "-c", killed_while_saving(8), str(config_path)], env=env, capture_output=True, text=True,
                           timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    # the step-8 checkpoint was being written: only its temporary folder exists; step 4 is the last complete one
    assert [s for s, _ in list_checkpoints(run / "checkpoints")] == [4]
    assert list((run / "checkpoints").glob(".step-000008*"))
    assert not (run / "summary.json").exists()
    assert max(json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()) == 8

    resumed = train(load_train_config(config_path), progress=False)
    ours = load_file(str(resumed / "model" / "model.safetensors"))
    theirs = load_file(str(reference / "model" / "model.safetensors"))
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert torch.equal(ours[name], theirs[name]), f"{name} differs after resume"
    # the log was cut back to the checkpoint and continued: the same losses as the uninterrupted run
    assert logged_losses(resumed) == logged_losses(reference)
    assert not list((run / "checkpoints").glob(".step-*"))  # the killed save's temporary folder was cleaned up
