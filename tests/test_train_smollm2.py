"""The shipped SmolLM2 config fine-tunes the real preset for a few steps on a `flanlab mix` mixture, on CPU:
the held-out loss falls below the base model's, and the saved folder loads and answers. Marked slow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_smollm2_demo_config_trains_and_loads(tmp_path, smollm2):
    from flanlab.models import generate_one, load
    from flanlab.train import load_train_config, train
    from flanlab.train.data import eval_rows, find_data_files, read_pairs, tokenize_pairs
    from flanlab.train.loss import SFTLoss
    from flanlab.train.packing import collate

    mix = tmp_path / "mix"
    subprocess.run([sys.executable, "-m", "flanlab.cli", "mix", str(ROOT / "configs/mixtures/demo.yaml"), "-o", str(mix)],
                   check=True, capture_output=True, cwd=ROOT)
    # the shipped config, made smaller so that the test stays near a minute
    config = load_train_config(ROOT / "configs/train/smollm2-demo.yaml",
                               [f"data={mix}", f"output_dir={tmp_path / 'run'}", "steps=3", "batch_size=2",
                                "pack_len=160", "max_input_len=112", "max_target_len=48", "eval_examples=8",
                                "lr=2e-4", "warmup_steps=1"])

    # the base model's held-out loss on the same validation examples
    _, val_files = find_data_files(mix)
    val = tokenize_pairs(read_pairs(val_files, limit=8), smollm2.tokenizer, "causal", 112, 48)
    rows = eval_rows(val)
    batch = collate(rows, "causal", smollm2.tokenizer.pad_token_id, packed=False)
    with torch.no_grad():
        base_loss = float(SFTLoss(smollm2.model, "causal").eval()(batch)) / sum(r.target_tokens for r in rows)

    run = train(config, progress=False)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["untrained"] is False and summary["steps"] == 3
    assert summary["final_eval"]["loss"] < base_loss, (summary["final_eval"], base_loss)
    assert summary["percent_of_pretraining"] == pytest.approx(100 * summary["tokens"] / 2e12)

    lm = load(run / "model", device="cpu")
    assert lm.kind == "causal" and not lm.untrained
    assert isinstance(generate_one(lm, "What is 2 + 3?", max_new_tokens=4, use_chat_template=False), str)
