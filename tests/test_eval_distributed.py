"""Distributed evaluation: two CPU processes (gloo) under `accelerate launch` give exactly the single-process
results and samples (the batch plan depends only on the items; batches are dealt round-robin and gathered)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from flanlab.fileio import read_jsonl

ARGS = ["eval", "--model", "tiny-llama", "--suite", "synthetic", "--modes", "direct", "--limit", "3",
        "--batch-size", "4", "--no-progress", "--no-cache"]


def test_two_processes_equal_one(tmp_path):
    accelerate = Path(sys.executable).parent / "accelerate"
    if not accelerate.is_file():
        pytest.skip(f"no accelerate launcher next to {sys.executable}")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    # --multi_gpu starts N processes through torch.distributed.run; without CUDA they use gloo on the CPU
    # (`accelerate launch --cpu --num_processes 2` would start only one process without an MPI hostfile)
    cmd = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "flanlab.cli", *ARGS, "-o", str(tmp_path / "two")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    from flanlab.cli import main

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main([*ARGS, "-o", str(tmp_path / "one")]) == 0
    finally:
        torch.set_num_threads(before)

    one = json.loads((tmp_path / "one" / "results.json").read_text())
    two = json.loads((tmp_path / "two" / "results.json").read_text())
    assert two["settings"]["processes"] == 2 and one["settings"]["processes"] == 1
    assert two["benchmarks"] == one["benchmarks"]
    assert two["benchmarks"]["synthetic"]["direct"]["scoring"] in ("rank", "mixed")  # rank rows were sharded too
    assert list(read_jsonl(tmp_path / "two" / "samples.jsonl")) == list(read_jsonl(tmp_path / "one" / "samples.jsonl"))
    assert proc.stdout.count("wrote ") == 1  # only the main process writes and prints
