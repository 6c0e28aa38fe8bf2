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
    manifest.json           written last: the size and xxh3-128 checksum of each file above
A resumed run trusts a checkpoint only once its manifest matches (`verify_checkpoint`) and its files load;
`load_latest_usable` falls back to an older checkpoint, with a warning, when the newest is damaged (truncated
or altered file, broken JSON), and names the damaged files when none is usable.
Everything needed to continue bit-for-bit is there: weights, optimizer moments, scheduler position, random
generators (dropout) and data position (the step: flanlab.train.data makes batches a pure function of it).

The format is the same whatever the number of processes and however they hold the model (one process, DDP,
or FSDP2 with every parameter sharded): `training_state` gathers the full state of a sharded model and its
optimizer into the single-process layout (weights by parameter name, optimizer state by parameter index),
and `restore_training_state` loads it back, each process keeping its shards
(torch.distributed.checkpoint.state_dict does the gathering and the sharding).
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from flanlab.fileio import atomic_dir

STEP_DIR = re.compile(r"^step-(\d+)$")
MANIFEST = "manifest.json"
CHECKPOINT_FILES = ("weights.safetensors", "optimizer.safetensors", "rng.safetensors", "state.json")


class CheckpointError(ValueError):
    """A checkpoint (or every checkpoint of a run) is damaged; the message names the file."""


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


def prune_checkpoints(folder: Path, keep: int, step: int | None = None) -> None:
    """Delete all but the newest `keep` checkpoints, and temporaries left by a killed save. With `step` (the one
    just saved), checkpoints of later steps go first: they belong to a run that was resumed from an older
    checkpoint (the newer one was damaged), and counting them would prune the checkpoint just written."""
    found = list_checkpoints(folder)
    if step is not None:
        for later, path in found:
            if later > step:
                shutil.rmtree(path, ignore_errors=True)
        found = [(s, p) for s, p in found if s <= step]
    for _, path in found[:-keep]:
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
# the state of the model and optimizer being trained: whole (one process, DDP) or sharded (FSDP2)


def parameter_names(root: torch.nn.Module) -> dict[int, list[str]]:
    """id(parameter) -> its names in `root`, first the one named_parameters() gives (tied weights have more)."""
    names: dict[int, list[str]] = {}
    for name, p in root.named_parameters(remove_duplicate=False):
        names.setdefault(id(p), []).append(name)
    return names


def _optimizer_order(names: dict[int, list[str]], optimizer) -> list[str]:
    """The name of each parameter the optimizer updates, in the order of its parameter indices
    (`names`: parameter_names of the module the parameters belong to)."""
    return [names[id(p)][0] for group in optimizer.param_groups for p in group["params"]]


def gather_full_weights(root: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The whole state dict of an FSDP2-sharded module, on the CPU of process 0 ({} on the others).
    Every process must call it: the shards are gathered collectively."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(root, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def _unwrap_optimizer(optimizer):
    return getattr(optimizer, "optimizer", optimizer)  # accelerate's AcceleratedOptimizer wraps the torch one


def training_state(root: torch.nn.Module, optimizer, trainable: list[tuple[str, torch.nn.Parameter]],
                   sharded: bool) -> tuple[dict[str, torch.Tensor], dict]:
    """(trainable weights by name, optimizer.state_dict() keyed by parameter index), as one process holds them.

    `root` is the module the optimizer's parameters belong to (for FSDP2 the root of the sharding);
    `trainable` the (name, parameter) pairs to save, named as the checkpoint names them. With `sharded`
    (FSDP2), every process must call this (the shards are gathered collectively); the full state lands on
    process 0, on the CPU, and the other processes get ({}, {})."""
    if not sharded:
        return dict(trainable), optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    optim = _unwrap_optimizer(optimizer)
    full_weights = gather_full_weights(root)
    full_optim = get_optimizer_state_dict(root, optim, options=StateDictOptions(full_state_dict=True,
                                                                                 cpu_offload=True))
    if torch.distributed.get_rank() != 0:  # gathered to process 0 only
        return {}, {}
    names = parameter_names(root)
    weights = {name: full_weights[names[id(p)][0]] for name, p in trainable}
    # torch names the optimizer's parameters; the checkpoint numbers them, as optimizer.state_dict() does
    order = _optimizer_order(names, optim)
    listed = [name for group in full_optim["param_groups"] for name in group["params"]]
    if listed != order:
        raise RuntimeError(f"the gathered optimizer state lists its parameters in another order ({listed[:3]}... "
                           f"vs {order[:3]}...)")
    index = {name: i for i, name in enumerate(order)}
    state = {index[name]: entries for name, entries in full_optim["state"].items()}
    groups = [dict(group, params=[index[name] for name in group["params"]]) for group in full_optim["param_groups"]]
    return weights, {"state": state, "param_groups": groups}


def restore_training_state(root: torch.nn.Module, optimizer, trainable: list[tuple[str, torch.nn.Parameter]],
                           weights: dict[str, torch.Tensor], optimizer_state: dict, sharded: bool) -> None:
    """Load a checkpoint's weights (by trainable name) and optimizer state (by parameter index).

    With `sharded` (FSDP2), every process calls this with the full state and keeps its own shards."""
    if not sharded:
        with torch.no_grad():
            for name, p in trainable:
                p.copy_(weights[name])
        optimizer.load_state_dict(optimizer_state)
        return
    from torch.distributed.checkpoint.state_dict import (StateDictOptions, set_model_state_dict,
                                                         set_optimizer_state_dict)

    options = StateDictOptions(full_state_dict=True)
    optim = _unwrap_optimizer(optimizer)
    names = parameter_names(root)
    order = _optimizer_order(names, optim)
    named = {
        "state": {order[index]: entries for index, entries in optimizer_state["state"].items()},
        "param_groups": [dict(group, params=[order[i] for i in group["params"]])
                         for group in optimizer_state["param_groups"]],
    }
    # the optimizer first: torch initialises an empty optimizer state with a zero-learning-rate step
    set_optimizer_state_dict(root, optim, named, options=options)
    # every name of a tied parameter gets the value, or loading would overwrite it with the stale alias
    full = {alias: weights[name] for name, p in trainable for alias in names[id(p)]}
    set_model_state_dict(root, full, options=options)


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
        manifest = {name: {"bytes": (tmp / name).stat().st_size, "xxh3_128": _checksum(tmp / name)}
                    for name in CHECKPOINT_FILES}
        (tmp / MANIFEST).write_text(json.dumps({"files": manifest}, indent=1) + "\n", encoding="utf-8")
    prune_checkpoints(folder, keep, step)
    return path


def _checksum(path: Path) -> str:
    import xxhash

    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


def verify_checkpoint(path: Path) -> None:
    """Raise CheckpointError, naming the file, unless every file of the checkpoint has the size and checksum
    its manifest (written last at save time) records. A checkpoint written before manifests existed (none in
    the folder, which atomic_dir renamed into place whole) is checked by loading only."""
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        return
    try:
        files = json.loads(manifest_path.read_text(encoding="utf-8"))["files"]
        expected = {name: (int(files[name]["bytes"]), str(files[name]["xxh3_128"])) for name in CHECKPOINT_FILES}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{manifest_path}: unreadable ({type(e).__name__}: {e})") from None
    for name, (size, checksum) in expected.items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"{file}: missing")
        if file.stat().st_size != size:
            raise CheckpointError(f"{file}: {file.stat().st_size} bytes, the manifest says {size} (truncated?)")
        if _checksum(file) != checksum:
            raise CheckpointError(f"{file}: its checksum differs from the manifest's (the file was altered)")


def load_checkpoint(path: Path) -> dict:
    """{"weights", "optimizer", "scheduler", "rng": [(plain, tensors) per process], "state": the rest}.

    A file that does not load raises CheckpointError naming it (verify_checkpoint checks sizes and checksums)."""
    with _naming(path / "state.json"):
        record = json.loads((path / "state.json").read_text(encoding="utf-8"))
        optimizer_plain, scheduler, rng_plain = record.pop("optimizer"), record.pop("scheduler"), record.pop("rng")
    with _naming(path / "rng.safetensors"):
        rng_tensors = load_file(str(path / "rng.safetensors"))
    rng = []
    for r, plain in enumerate(rng_plain):
        prefix = f"rank{r}/"
        rng.append((plain, {k[len(prefix):]: v for k, v in rng_tensors.items() if k.startswith(prefix)}))
    with _naming(path / "weights.safetensors"):
        weights = load_file(str(path / "weights.safetensors"))
    with _naming(path / "optimizer.safetensors"):
        optimizer = join_optimizer_state(load_file(str(path / "optimizer.safetensors")), optimizer_plain)
    return {"weights": weights, "optimizer": optimizer, "scheduler": scheduler, "rng": rng, "state": record}


@contextlib.contextmanager
def _naming(file: Path):
    """Re-raise any failure to read or parse `file` as a CheckpointError naming it."""
    try:
        yield
    except CheckpointError:
        raise
    except Exception as e:  # json, safetensors (its own error type), a missing key, an OS error
        raise CheckpointError(f"{file}: unreadable ({type(e).__name__}: {e})") from None


def load_latest_usable(folder: Path, warn: Callable[[str], None]) -> tuple[Path, dict] | None:
    """The newest checkpoint in `folder` that verifies and loads, as (path, load_checkpoint's dict); None when
    there is no checkpoint. A damaged newer one is skipped with a warning (`warn`); when every checkpoint is
    damaged, CheckpointError names each damaged file."""
    problems = []
    for _, path in reversed(list_checkpoints(folder)):
        try:
            verify_checkpoint(path)
            loaded = load_checkpoint(path)
        except CheckpointError as e:
            problems.append(str(e))
            warn(f"checkpoint {path} is damaged and not used: {e}")
            continue
        if problems:
            warn(f"falling back to the older checkpoint {path}")
        return path, loaded
    if problems:
        raise CheckpointError(f"no usable checkpoint in {folder}: {'; '.join(problems)}. Delete the damaged "
                              "checkpoints to train from the start, or rerun with --overwrite")
    return None
