"""Checkpoints for exact resumption, without pickle.

A checkpoint is a folder checkpoints/step-000120/ written atomically (flanlab.fileio.atomic_dir: it appears
whole under its final name or not at all):
    weights.safetensors     the trainable parameters by name (all of them in full fine-tuning; the LoRA
                            matrices with LoRA); tied parameters appear once
    optimizer.safetensors   every tensor of the optimizer state, keyed "<param index>/<name>"
    rng.safetensors         torch's CPU (and CUDA) generator states, per process: "rank0/cpu", "rank0/cuda0"
    state.json              step, data position, the optimizer's non-tensor state and param groups, the LR
                            scheduler's state, Python's and NumPy's generator states per process, elapsed
                            time, token count, and the config it was trained with
Everything needed to continue bit-for-bit is there: weights, optimizer moments, scheduler position, random
generators (dropout) and data position (the step: flanlab.train.data makes batches a pure function of it).
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from flanlab.fileio import atomic_dir

STEP_DIR = re.compile(r"^step-(\d+)$")


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(step, path) of the complete checkpoints in `folder`, oldest first (temporary folders are ignored)."""
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = STEP_DIR.match(p.name)
        if m and p.is_dir() and (p / "state.json").is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(folder: Path) -> Path | None:
    found = list_checkpoints(folder)
    return found[-1][1] if found else None


def prune_checkpoints(folder: Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints, and temporaries left by a killed save."""
    for _, path in list_checkpoints(folder)[:-keep]:
        shutil.rmtree(path, ignore_errors=True)
    for stale in folder.glob(".step-*"):
        shutil.rmtree(stale, ignore_errors=True)


# ----------------------------------------------------------------------------------------------------------
# random generators


def capture_rng() -> tuple[dict, dict[str, torch.Tensor]]:
    """This process's generator states: (JSON part: python, numpy; tensor part: cpu, cuda<i>)."""
    version, state, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    plain = {"python": [version, list(state), gauss], "numpy": [name, keys.tolist(), pos, has_gauss, cached]}
    tensors = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda{i}"] = s
    return plain, tensors


def restore_rng(plain: dict, tensors: dict[str, torch.Tensor]) -> None:
    version, state, gauss = plain["python"]
    random.setstate((version, tuple(state), gauss))
    name, keys, pos, has_gauss, cached = plain["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["cpu"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("cuda")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


# ----------------------------------------------------------------------------------------------------------
# optimizer state: tensors to safetensors, the rest to JSON


def split_optimizer_state(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors: dict[str, torch.Tensor] = {}
    plain_state: dict[str, dict] = {}
    for index, entries in state_dict["state"].items():
        plain_state[str(index)] = {}
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}/{name}"] = value.detach().contiguous().cpu()
            else:
                plain_state[str(index)][name] = value
    return tensors, {"state": plain_state, "param_groups": state_dict["param_groups"]}


def join_optimizer_state(tensors: dict[str, torch.Tensor], plain: dict) -> dict:
    state: dict[int, dict] = {int(i): dict(entries) for i, entries in plain["state"].items()}
    for key, value in tensors.items():
        index, name = key.split("/", 1)
        state.setdefault(int(index), {})[name] = value
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in plain["param_groups"]]
    return {"state": state, "param_groups": groups}


# ----------------------------------------------------------------------------------------------------------
# save / load


def save_checkpoint(folder: Path, step: int, *, weights: dict[str, torch.Tensor], optimizer_state: dict,
                    scheduler_state: dict, rng: list[tuple[dict, dict[str, torch.Tensor]]], state: dict,
                    keep: int) -> Path:
    """Write checkpoints/step-N atomically (rng: one (plain, tensors) pair per process), then prune old ones."""
    path = folder / checkpoint_name(step)
    opt_tensors, opt_plain = split_optimizer_state(optimizer_state)
    with atomic_dir(path, overwrite=True) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in weights.items()}, str(tmp / "weights.safetensors"))
        save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
        save_file({f"rank{r}/{k}": v for r, (_, t) in enumerate(rng) for k, v in t.items()},
                  str(tmp / "rng.safetensors"))
        record = dict(state, step=step, optimizer=opt_plain, scheduler=scheduler_state, rng=[p for p, _ in rng])
        (tmp / "state.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    prune_checkpoints(folder, keep)
    return path


def load_checkpoint(path: Path) -> dict:
    """{"weights", "optimizer", "scheduler", "rng": [(plain, tensors) per process], "state": the rest}."""
    record = json.loads((path / "state.json").read_text(encoding="utf-8"))
    rng_tensors = load_file(str(path / "rng.safetensors"))
    rng = []
    for r, plain in enumerate(record.pop("rng")):
        prefix = f"rank{r}/"
        rng.append((plain, {k[len(prefix):]: v for k, v in rng_tensors.items() if k.startswith(prefix)}))
    return {
        "weights": load_file(str(path / "weights.safetensors")),
        "optimizer": join_optimizer_state(load_file(str(path / "optimizer.safetensors")), record.pop("optimizer")),
        "scheduler": record.pop("scheduler"),
        "rng": rng,
        "state": record,
    }
