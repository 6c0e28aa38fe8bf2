"""Nothing lost: one run per output folder (flanlab.runlock), a finished training run returned only for its own
settings, damaged checkpoints detected and skipped, and no temporary folder left behind by a killed mix.

The concurrent-run tests start real processes. A first run is held at a known point by a test-side patch (it
prints HOLDING and waits for a line on its stdin), so that the second run meets a live lock every time: no
sleeps, no timing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from flanlab.runlock import FolderLocked, lock_path, run_lock
from flanlab.train import load_train_config, train
from flanlab.train.checkpoint import CheckpointError, list_checkpoints

sys.path.insert(0, str(Path(__file__).parent))
from test_train import write_mixture  # noqa: E402

ROOT = Path(__file__).parents[1]
MIXTURE = ROOT / "configs" / "mixtures" / "demo.yaml"
MIX_OVERRIDES = ["size=300", "validation_size=20"]


def _env(tmp_path: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", FLANLAB_CACHE=str(tmp_path / "cache"))
    env.pop("FLANLAB_DATA_DIR", None)
    env.pop("RANK", None)
    return env


def _holder(tmp_path: Path, patch: str, argv: list[str]) -> subprocess.Popen:
    """`flanlab ARGV` in a child process, with `patch` (test-side Python run before the command) making it
    print HOLDING and wait for a line on stdin (once) at a point where it holds its folder's lock. Returns once
    HOLDING was printed."""
    code = textwrap.dedent("""
        import sys
        held = []
        def hold():  # the first time only
            if not held:
                held.append(True)
                print("HOLDING", flush=True)
                sys.stdin.readline()
    """) + textwrap.dedent(patch) + textwrap.dedent("""
        from flanlab.cli import main
        sys.argv[0] = "flanlab"
        sys.exit(main(sys.argv[1:]))
    """)
    log_path = tmp_path / f"holder-{len(list(tmp_path.glob('holder-*')))}.log"
    with open(log_path, "w") as log:
        child = subprocess.Popen([sys.executable, "-c", code, *argv], env=_env(tmp_path), stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=log, text=True)
    child.log_path = log_path
    for line in child.stdout:
        if line == "HOLDING\n":
            return child
    child.wait()
    raise AssertionError(f"the holder ended (exit {child.returncode}) without reaching its hold point:\n"
                         + log_path.read_text()[-3000:])


def _release(child: subprocess.Popen) -> int:
    child.stdin.write("\n")
    child.stdin.flush()
    child.stdout.read()
    return child.wait(timeout=900)


def _flanlab(tmp_path: Path, argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flanlab.cli", *argv], env=_env(tmp_path), capture_output=True,
                          text=True, timeout=900)


def _refused(result: subprocess.CompletedProcess, command: str, folder: Path, holder: subprocess.Popen) -> None:
    """The second run stopped with one error line naming the folder and the holding process."""
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"flanlab {command}: error: {folder} is in use by another run: pid {holder.pid} on host ")
    assert "HOLDING" not in result.stdout


# ----------------------------------------------------------------------------------------------------------
# item 5: two runs, one folder


def test_second_eval_into_a_busy_folder_stops_at_once_and_nothing_is_lost(tmp_path):
    out = tmp_path / "eval"
    argv = ["eval", "--model", "tiny-llama", "--suite", "synthetic", "--modes", "direct", "--limit", "2",
            "--no-progress", "-o", str(out)]
    # the first eval holds right before it writes results.json
    first = _holder(tmp_path, """
        import flanlab.eval.runner as runner
        real_write_run = runner.write_run
        def write_run(*args, **kwargs):
            hold()
            return real_write_run(*args, **kwargs)
        runner.write_run = write_run
    """, argv)
    try:
        second = _flanlab(tmp_path, argv)
        _refused(second, "eval", out, first)
        assert "flanlab eval" in second.stderr  # the holder's command line is shown
        assert not (out / "results.json").exists()
    finally:
        code = _release(first)
    assert code == 0, Path(first.log_path).read_text()[-3000:]
    assert json.loads((out / "results.json").read_text())["settings"]["limit"] == 2
    assert not lock_path(out).exists()  # released on exit
    # once the first has finished, the folder is free again
    assert _flanlab(tmp_path, argv).returncode == 0


def _train_yaml(tmp_path: Path, out: Path, **fields) -> Path:
    data = tmp_path / "mix" if (tmp_path / "mix").is_dir() else write_mixture(tmp_path / "mix")
    config = dict(model="tiny-llama", data=str(data), output_dir=str(out), steps=4, batch_size=8, lr=1e-2,
                  max_input_len=64, max_target_len=32, pack_len=128, save_every=2, keep_checkpoints=3, threads=1)
    config.update(fields)
    path = tmp_path / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_second_train_into_a_busy_folder_stops_at_once(tmp_path):
    out = tmp_path / "run"
    config = _train_yaml(tmp_path, out)
    # the first run holds as it writes its first checkpoint
    first = _holder(tmp_path, """
        import flanlab.train.sft as sft
        real_save = sft.save_checkpoint
        def save_checkpoint(*args, **kwargs):
            hold()
            return real_save(*args, **kwargs)
        sft.save_checkpoint = save_checkpoint
    """, ["train", str(config), "--no-progress"])
    try:
        second = _flanlab(tmp_path, ["train", str(config), "--no-progress"])
        _refused(second, "train", out, first)
        assert not list_checkpoints(out / "checkpoints")
    finally:
        code = _release(first)
    assert code == 0, Path(first.log_path).read_text()[-3000:]
    assert json.loads((out / "summary.json").read_text())["steps"] == 4
    assert [s for s, _ in list_checkpoints(out / "checkpoints")] == [2, 4]


def test_stale_lock_of_a_killed_run_is_reported_and_taken_over(tmp_path, capsys):
    from flanlab.eval.runner import rescore

    out = tmp_path / "eval"
    code = textwrap.dedent(f"""
        from flanlab.runlock import run_lock
        with run_lock({str(out)!r}, "eval"):
            print("HOLDING", flush=True)
            input()
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], env=_env(tmp_path), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "HOLDING\n"
    with pytest.raises(FolderLocked, match=f"pid {holder.pid} "):
        with run_lock(out, "eval"):
            pass
    with pytest.raises(FolderLocked, match=f"{out} is in use by another run: pid {holder.pid} "):
        rescore("synthetic", tmp_path / "samples.jsonl", out_dir=out)  # `flanlab eval score -o` takes it too
    holder.kill()  # SIGKILL: no cleanup, the lock file stays behind
    holder.wait()
    assert json.loads(lock_path(out).read_text())["pid"] == holder.pid
    with run_lock(out, "eval"):
        assert json.loads(lock_path(out).read_text())["pid"] == os.getpid()
    err = capsys.readouterr().err
    assert f"taking over a stale lock left by pid {holder.pid} on host" in err
    assert not lock_path(out).exists()


def test_lock_is_reentrant_within_a_process(tmp_path):
    with run_lock(tmp_path / "demo", "demo"):
        with run_lock(tmp_path / "demo", "eval"), run_lock(tmp_path / "demo" / "before", "eval"):
            pass
        assert lock_path(tmp_path / "demo").exists()  # still held by the outer block
    assert not lock_path(tmp_path / "demo").exists()


def test_lock_is_released_when_cleaning_up_temporaries_fails(tmp_path, monkeypatch):
    """A failure while the lock is being set up (removing a killed run's temporaries) still releases it."""
    import flanlab.fileio

    def broken(folder):
        raise PermissionError(f"{folder}: permission denied")

    monkeypatch.setattr(flanlab.fileio, "remove_stale_temporaries", broken)
    with pytest.raises(PermissionError):
        with run_lock(tmp_path / "run", "eval"):
            pass
    assert not lock_path(tmp_path / "run").exists()
    monkeypatch.undo()
    with run_lock(tmp_path / "run", "eval"):  # free again, and not taken as a nested re-entry
        assert lock_path(tmp_path / "run").exists()


# ----------------------------------------------------------------------------------------------------------
# item 2: a finished run and another config


def _tiny(tmp_path: Path, **fields):
    data = fields.pop("data", None)
    if data is None:
        data = tmp_path / "mix" if (tmp_path / "mix").is_dir() else write_mixture(tmp_path / "mix")
    base = dict(model="tiny-llama", data=str(data), output_dir=str(tmp_path / "run"), steps=4, batch_size=8,
                lr=1e-2, max_input_len=64, max_target_len=32, pack_len=128, save_every=0, threads=1)
    base.update(fields)
    return load_train_config(None, None, **base)


def test_finished_run_is_refused_for_other_settings_and_retrained_with_overwrite(tmp_path):
    run = train(_tiny(tmp_path), progress=False)
    weights = run / "model" / "model.safetensors"
    before = load_file(str(weights))
    mtime = weights.stat().st_mtime_ns

    # the same settings (and ones that do not change what is trained): returned as it is
    assert train(_tiny(tmp_path, log_every=2, threads=2), progress=False) == run
    assert weights.stat().st_mtime_ns == mtime
    # another learning rate, optimizer, step count or model: refused, naming each setting and both values
    refusals = [({"lr": 2e-2}, "lr (0.01 -> 0.02)"),
                ({"optimizer": "adamw"}, "optimizer ('adafactor' -> 'adamw')"),
                ({"steps": 6}, "steps (4 -> 6)"),
                ({"model": "tiny-t5", "pack_target_len": 48}, "model ('tiny-llama' -> 'tiny-t5')")]
    for fields, named in refusals:
        with pytest.raises(ValueError, match="is a finished run trained with different settings") as e:
            train(_tiny(tmp_path, **fields), progress=False)
        assert named in str(e.value) and "--overwrite" in str(e.value)
    assert weights.stat().st_mtime_ns == mtime
    # the data changed since: refused too
    with open(tmp_path / "mix" / "train-00000-of-00001.jsonl", "a") as f:
        f.write(json.dumps({"inputs": "Reverse the words: red blue", "targets": "blue red"}) + "\n")
    with pytest.raises(ValueError, match="trained on other data"):
        train(_tiny(tmp_path), progress=False)

    # overwrite: trained again from the start, with the new settings
    assert train(_tiny(tmp_path, lr=2e-2), progress=False, overwrite=True) == run
    summary = json.loads((run / "summary.json").read_text())
    assert summary["config"]["lr"] == 2e-2 and summary["steps"] == 4
    after = load_file(str(weights))
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert not list(tmp_path.glob(".run.*"))  # the old content was removed, nothing left aside


def test_scale_and_demo_cells_do_not_reuse_a_run_trained_otherwise(tmp_path):
    from flanlab.scale import TrainPart, train_cell

    data = write_mixture(tmp_path / "mix")
    part = TrainPart(overrides=["steps=2", "max_input_len=64", "max_target_len=32", "pack_len=128", "threads=1",
                                "save_every=0"])
    model = train_cell("tiny-llama", data, tmp_path / "cell", part, progress=False)
    assert train_cell("tiny-llama", data, tmp_path / "cell", part, progress=False) == model
    other = TrainPart(overrides=part.overrides + ["lr=0.02"])
    with pytest.raises(ValueError, match=r"different settings: lr \(0.0005 -> 0.02\)"):
        train_cell("tiny-llama", data, tmp_path / "cell", other, progress=False)


def test_train_command_has_overwrite(tmp_path):
    from flanlab.cli import build_parser

    args = build_parser(only="train").parse_args(["train", "c.yaml", "steps=3", "--overwrite"])
    assert args.overwrite and args.overrides == ["steps=3"]


# ----------------------------------------------------------------------------------------------------------
# item 6: damaged checkpoints


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def _break_json(path: Path) -> None:
    path.write_text('{\n "step": 4,\n')


RESUME_FIELDS = dict(steps=4, save_every=2, keep_checkpoints=3, dropout=0.1, optimizer="adamw")


@pytest.fixture(scope="module")
def finished_reference(tmp_path_factory) -> Path:
    """An uninterrupted 4-step run with checkpoints at steps 2 and 4."""
    tmp = tmp_path_factory.mktemp("reference")
    run = train(_tiny(tmp, output_dir=str(tmp / "ref"), **RESUME_FIELDS), progress=False)
    assert [s for s, _ in list_checkpoints(run / "checkpoints")] == [2, 4]
    return run


def _unfinished_copy(reference: Path, tmp_path: Path) -> Path:
    """The reference run as a run killed after its last checkpoint: no summary, no exported model."""
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    (run / "summary.json").unlink()
    shutil.rmtree(run / "model")
    return run


@pytest.mark.parametrize("damage", [
    ("weights.safetensors", _truncate),
    ("optimizer.safetensors", _flip_byte),
    ("state.json", _break_json),
], ids=["truncated-weights", "altered-optimizer", "broken-state-json"])
def test_damaged_newest_checkpoint_falls_back_to_the_previous_one(finished_reference, tmp_path, capsys, damage):
    name, spoil = damage
    run = _unfinished_copy(finished_reference, tmp_path)
    spoil(run / "checkpoints" / "step-000004" / name)

    data = finished_reference.parent / "mix"
    resumed = train(_tiny(tmp_path, data=data, output_dir=str(run), **RESUME_FIELDS), progress=False)
    err = capsys.readouterr().err
    assert f"warning: checkpoint {run / 'checkpoints' / 'step-000004'} is damaged" in err
    assert str(run / "checkpoints" / "step-000004" / name) in err
    assert f"falling back to the older checkpoint {run / 'checkpoints' / 'step-000002'}" in err
    assert f"resuming from {run / 'checkpoints' / 'step-000002'} (step 2)" in err
    # steps 3 and 4 trained again: the same weights as the uninterrupted run
    ours = load_file(str(resumed / "model" / "model.safetensors"))
    theirs = load_file(str(finished_reference / "model" / "model.safetensors"))
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key


def test_no_usable_checkpoint_is_one_error_naming_the_files(finished_reference, tmp_path):
    run = _unfinished_copy(finished_reference, tmp_path)
    _truncate(run / "checkpoints" / "step-000004" / "weights.safetensors")
    _break_json(run / "checkpoints" / "step-000002" / "state.json")
    data = finished_reference.parent / "mix"
    with pytest.raises(CheckpointError) as e:
        train(_tiny(tmp_path, data=data, output_dir=str(run), **RESUME_FIELDS), progress=False)
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith(f"no usable checkpoint in {run / 'checkpoints'}: ")
    assert str(run / "checkpoints" / "step-000004" / "weights.safetensors") in message
    assert str(run / "checkpoints" / "step-000002" / "state.json") in message


def test_manifest_records_every_file(finished_reference):
    for _, path in list_checkpoints(finished_reference / "checkpoints"):
        files = json.loads((path / "manifest.json").read_text())["files"]
        assert set(files) == {"weights.safetensors", "optimizer.safetensors", "rng.safetensors", "state.json"}
        for name, entry in files.items():
            assert entry["bytes"] == (path / name).stat().st_size


# ----------------------------------------------------------------------------------------------------------
# item 7: no temporary folders left by a killed or terminated mix


def _mix_holder(tmp_path: Path, out: Path, extra: list[str] = ()) -> subprocess.Popen:
    """`flanlab mix` held at its first training row (the temporary folder exists, validation.jsonl written)."""
    return _holder(tmp_path, """
        import flanlab.data.mixture as mixture
        real_write = mixture._ShardWriter.write
        def write(self, *args):
            hold()
            return real_write(self, *args)
        mixture._ShardWriter.write = write
    """, ["mix", str(MIXTURE), *MIX_OVERRIDES, "--no-progress", "-o", str(out), *extra])


def _temporaries(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.*.tmp"))


def test_killed_mix_leaves_a_temporary_that_the_next_run_removes(tmp_path, monkeypatch, capsys):
    from flanlab.data.mixture import build_mixture, load_mixture_config

    monkeypatch.delenv("FLANLAB_DATA_DIR", raising=False)
    monkeypatch.setenv("FLANLAB_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "mix-out"
    config = load_mixture_config(MIXTURE, MIX_OVERRIDES)
    build_mixture(config, out, progress=False)
    original = (out / "stats.json").read_text()

    killed = _mix_holder(tmp_path, out, ["--overwrite"])
    killed.kill()  # SIGKILL while it writes: nothing can clean up
    killed.wait()
    left = _temporaries(out)
    assert len(left) == 1 and (left[0] / "validation.jsonl").is_file()
    assert (out / "stats.json").read_text() == original  # the finished mixture is untouched

    # the next run, even one that stops because the output exists, removes it first
    with pytest.raises(FileExistsError):
        build_mixture(config, out, progress=False)
    assert not _temporaries(out)
    assert f"removed {left[0]}" in capsys.readouterr().err
    assert (out / "stats.json").read_text() == original


def test_terminated_mix_removes_its_temporary_and_a_second_mix_is_refused(tmp_path):
    out = tmp_path / "mix-out"
    first = _mix_holder(tmp_path, out)
    try:
        assert len(_temporaries(out)) == 1
        second = _flanlab(tmp_path, ["mix", str(MIXTURE), *MIX_OVERRIDES, "--no-progress", "-o", str(out)])
        _refused(second, "mix", out, first)
        first.send_signal(signal.SIGTERM)
        first.stdout.read()
        code = first.wait(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert code == 128 + signal.SIGTERM, Path(first.log_path).read_text()[-3000:]
    assert not _temporaries(out) and not out.exists() and not lock_path(out).exists()


def test_stale_temporaries_match_only_the_folder_they_belong_to(tmp_path):
    from flanlab.fileio import remove_stale_temporaries

    ours = [tmp_path / ".out.abcd_123.tmp", tmp_path / ".out.old"]
    others = [tmp_path / ".out.json.abcd_123.tmp", tmp_path / ".outer.abcd_123.tmp", tmp_path / ".out.x.tmp"]
    for p in ours + others:
        p.mkdir()
    (ours[0] / "shard.jsonl").write_text("x" * 1000)
    removed = remove_stale_temporaries(tmp_path / "out")
    assert len(removed) == 2 and all(p.exists() for p in others) and not any(p.exists() for p in ours)


def test_a_checkpoint_saved_after_falling_back_is_not_pruned_for_the_damaged_one(tmp_path):
    """Resumed from step 2 past a damaged step 4, the next save (step 3, keep 1) keeps step 3: the abandoned
    step 4 goes, not the checkpoint just written."""
    from flanlab.train.checkpoint import list_checkpoints, prune_checkpoints

    for step in (2, 4, 3):
        (tmp_path / f"step-{step:06d}").mkdir()
        (tmp_path / f"step-{step:06d}" / "state.json").write_text("{}")
    prune_checkpoints(tmp_path, keep=1, step=3)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [3]
