"""Durable atomic writes (flanlab/fileio.py): a file's data and a folder's files are flushed to disk before the
rename that gives them their final name, and the folder holding that name after it, so that a power loss cannot
leave a whole-looking result (a checkpoint, a model, a mixture, results.json) over data that never reached the
disk. Checkpoints (flanlab/train/checkpoint.py) are written through atomic_dir, and a save that fails midway
leaves nothing that looks like a checkpoint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import flanlab.fileio as fileio

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads /proc/self/fd (Linux)")


@pytest.fixture
def disk_events(monkeypatch):
    """("fsync", path) and ("replace", src, dst) in the order fileio did them."""
    events: list[tuple] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(Path(src).resolve()), str(Path(dst).resolve())))
        return real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "fsync", fsync)
    monkeypatch.setattr(fileio.os, "replace", replace)
    return events


def _index(events: list[tuple], event: tuple) -> int:
    assert event in events, f"{event} not in {events}"
    return events.index(event)


def test_atomic_write_flushes_the_file_then_its_folder(tmp_path, disk_events):
    target = tmp_path / "results.json"
    fileio.atomic_write_json(target, {"a": 1})
    [(_, tmp, dst)] = [e for e in disk_events if e[0] == "replace"]
    assert dst == str(target.resolve())
    renamed = _index(disk_events, ("replace", tmp, dst))
    assert _index(disk_events, ("fsync", tmp)) < renamed < _index(disk_events, ("fsync", str(tmp_path.resolve())))


@pytest.mark.parametrize("overwrite", [False, True])
def test_atomic_dir_flushes_every_file_and_folder_before_its_rename_and_the_parent_after(tmp_path, disk_events,
                                                                                          overwrite):
    target = tmp_path / "model"
    if overwrite:
        target.mkdir()
        (target / "old.bin").write_bytes(b"old")
    with fileio.atomic_dir(target, overwrite=overwrite) as tmp:
        (tmp / "weights.bin").write_bytes(b"w" * 1000)
        (tmp / "sub").mkdir()
        (tmp / "sub" / "state.json").write_text("{}")
        tmp = tmp.resolve()
    renamed = _index(disk_events, ("replace", str(tmp), str(target.resolve())))
    for written in (tmp / "weights.bin", tmp / "sub" / "state.json", tmp / "sub", tmp):
        assert _index(disk_events, ("fsync", str(written))) < renamed, written
    assert renamed < max(i for i, e in enumerate(disk_events) if e == ("fsync", str(tmp_path.resolve())))
    assert sorted(p.name for p in target.iterdir()) == ["sub", "weights.bin"]


def _save(folder: Path, step: int, value: float):
    import torch

    from flanlab.train.checkpoint import save_checkpoint

    weights = {"w": torch.full((4, 4), value)}
    optimizer_state = {"state": {0: {"exp_avg": torch.full((4, 4), value), "step": step}},
                       "param_groups": [{"lr": 0.1, "params": [0]}]}
    return save_checkpoint(folder, step, weights=weights, optimizer_state=optimizer_state,
                           scheduler_state={"last_epoch": step}, rng=[({"python": 1}, {"cpu": torch.zeros(3)})],
                           state={"tokens": step}, keep=3)


def test_a_checkpoint_reaches_the_disk_before_its_name(tmp_path, disk_events):
    from flanlab.train.checkpoint import CHECKPOINT_FILES, MANIFEST

    path = _save(tmp_path / "checkpoints", 2, 1.0).resolve()
    [(_, tmp, dst)] = [e for e in disk_events if e[0] == "replace"]
    assert dst == str(path)
    renamed = disk_events.index(("replace", tmp, dst))
    for name in (*CHECKPOINT_FILES, MANIFEST):
        assert _index(disk_events, ("fsync", str(Path(tmp) / name))) < renamed, name
    assert renamed < _index(disk_events, ("fsync", str(path.parent)))


def test_a_checkpoint_save_that_fails_midway_leaves_no_checkpoint(tmp_path, monkeypatch):
    """The process dies (here: an exception) after the weights are written and before the optimizer state:
    no step-000004 folder appears, the previous checkpoint stays the newest and verifies."""
    import flanlab.train.checkpoint as checkpoint

    folder = tmp_path / "checkpoints"
    first = _save(folder, 2, 1.0)
    real_save_file = checkpoint.save_file

    def save_file(tensors, filename, *args, **kwargs):
        if Path(filename).name == "optimizer.safetensors":
            raise OSError(28, "No space left on device")
        return real_save_file(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "save_file", save_file)
    with pytest.raises(OSError, match="No space left"):
        _save(folder, 4, 2.0)
    assert sorted(p.name for p in folder.iterdir()) == [first.name]  # no temporary, no step-000004
    assert checkpoint.list_checkpoints(folder) == [(2, first)]
    checkpoint.verify_checkpoint(first)
    path, loaded = checkpoint.load_latest_usable(folder, warn=lambda message: pytest.fail(message))
    assert path == first and float(loaded["weights"]["w"][0, 0]) == 1.0


def test_the_training_log_rewritten_on_resume_is_kept_whole_when_the_rewrite_fails(tmp_path, monkeypatch):
    """On resume log.jsonl drops the entries after the checkpoint: rewritten atomically, a failure (here the disk
    full at the flush) leaves the old log, not a truncated one."""
    import json
    import types

    from flanlab.train.trackers import RunLog

    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps({"step": s, "loss": 1.0 / s}) + "\n" for s in range(1, 6)))
    before = log.read_text()

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileio.os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        RunLog(tmp_path, resume_step=3, accelerator=types.SimpleNamespace(is_main_process=True))
    assert log.read_text() == before and [p.name for p in tmp_path.iterdir()] == ["log.jsonl"]
    monkeypatch.undo()
    RunLog(tmp_path, resume_step=3, accelerator=types.SimpleNamespace(is_main_process=True))
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2, 3]


def test_a_filesystem_that_cannot_sync_folders_is_no_error_but_an_io_error_is(tmp_path, monkeypatch):
    import errno

    def failing(code):
        def fsync(fd):
            raise OSError(code, os.strerror(code))
        return fsync

    monkeypatch.setattr(fileio.os, "fsync", failing(errno.EINVAL))
    fileio.fsync_dir(tmp_path)
    monkeypatch.setattr(fileio.os, "fsync", failing(errno.EIO))
    with pytest.raises(OSError, match="Input/output error"):
        fileio.fsync_dir(tmp_path)
