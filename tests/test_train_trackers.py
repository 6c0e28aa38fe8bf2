"""report_to: training reports to TensorBoard, MLflow (its local file store) and W&B (offline mode) what it writes
to log.jsonl, through accelerate's trackers; a tracker asked for but not installed is one error at config time.

The MLflow and W&B tests skip, saying why, where the package is not installed (`pip install 'flanlab[trackers]'`)."""

from __future__ import annotations

import glob
import importlib.util
import json
import struct
import sys
from pathlib import Path

import pytest

from flanlab.config import ConfigError
from flanlab.train import TrainingDiverged, load_train_config, train

from test_train import read_log, tiny_config

needs_mlflow = pytest.mark.skipif(importlib.util.find_spec("mlflow") is None,
                                  reason="mlflow is not installed (pip install 'flanlab[trackers]')")
needs_wandb = pytest.mark.skipif(importlib.util.find_spec("wandb") is None,
                                 reason="wandb is not installed (pip install 'flanlab[trackers]')")


def logged_losses(run: Path) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in read_log(run) if "loss" in e}


# ----------------------------------------------------------------------------------------------------------
# the config


def test_report_to_is_declared_and_checked():
    base = dict(model="m", data="d", output_dir="o")
    assert load_train_config(None, None, **base).trackers() == []
    assert load_train_config(None, None, tensorboard=True, **base).trackers() == ["tensorboard"]
    assert load_train_config(None, ["report_to=[tensorboard]"], tensorboard=True, **base).trackers() == ["tensorboard"]
    with pytest.raises(ConfigError, match="report_to"):
        load_train_config(None, ["report_to=[comet]"], **base)
    with pytest.raises(ConfigError, match="report_to: each tracker once"):
        load_train_config(None, ["report_to=[tensorboard,tensorboard]"], **base)


@pytest.mark.parametrize("name", ["mlflow", "wandb"])
def test_a_tracker_not_installed_is_one_error_before_anything_loads(tmp_path, monkeypatch, name):
    monkeypatch.setitem(sys.modules, name, None)  # importlib finds no such module: as where it is not installed
    with pytest.raises(ConfigError, match=rf"report_to: {name} is not installed in this Python \(pip install "
                                          r"'flanlab\[trackers\]'"):
        load_train_config(None, [f"report_to=[{name}]"], model="m", data="d", output_dir="o")
    # a config built in code is checked by train() before the model or data are read (neither exists here)
    config = load_train_config(None, None, model="no-such-model", data=str(tmp_path / "nothing"),
                               output_dir=str(tmp_path / "run"))
    config.report_to = [name]
    with pytest.raises(ConfigError, match=f"report_to: {name} is not installed"):
        train(config, progress=False)
    assert not (tmp_path / "run").exists()


def test_cli_names_the_missing_tracker_in_one_line(tmp_path, capsys, monkeypatch):
    from flanlab.cli import main

    from test_cli_errors import one_error_line

    monkeypatch.setitem(sys.modules, "wandb", None)
    config = tmp_path / "train.yaml"
    config.write_text(f"model: tiny-llama\ndata: {tmp_path / 'mix'}\noutput_dir: {tmp_path / 'run'}\n"
                      "report_to: [tensorboard, wandb]\n", encoding="utf-8")
    assert main(["train", str(config), "--no-progress"]) == 1
    line = one_error_line(capsys.readouterr().err, "train")
    assert "report_to: wandb is not installed" in line and str(config) in line


# ----------------------------------------------------------------------------------------------------------
# TensorBoard (a required dependency)


def tensorboard_scalars(folder: Path, tag: str) -> dict[int, float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    return {e.step: e.value for e in events.Scalars(tag)}


def test_tensorboard_gets_the_logged_numbers(tmp_path):
    run = train(tiny_config(tmp_path, steps=6, eval_every=3, report_to=["tensorboard"]), progress=False)
    losses = logged_losses(run)
    assert tensorboard_scalars(run / "tensorboard", "train/loss") == pytest.approx(losses, rel=1e-6)
    evals = {e["step"]: e["eval"]["loss"] for e in read_log(run) if "eval" in e}
    assert tensorboard_scalars(run / "tensorboard", "eval/loss") == pytest.approx(evals, rel=1e-6)
    assert sorted(evals) == [3, 6]


# ----------------------------------------------------------------------------------------------------------
# MLflow, local file store


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch) -> str:
    """A private MLflow file store (MLflow 3 keeps the file store only with MLFLOW_ALLOW_FILE_STORE)."""
    import mlflow

    for name in ("MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID", "MLFLOW_TAGS", "MLFLOW_NESTED_RUN"):
        monkeypatch.delenv(name, raising=False)
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.end_run()
    mlflow.set_tracking_uri(None)


def mlflow_history(run_id: str, metric: str) -> list[tuple[int, float]]:
    from mlflow.tracking import MlflowClient

    return [(m.step, m.value) for m in MlflowClient().get_metric_history(run_id, metric)]


@needs_mlflow
def test_mlflow_gets_the_logged_numbers_and_a_resumed_run_continues_it(tmp_path, mlflow_store):
    from mlflow.tracking import MlflowClient

    config = dict(steps=4, save_every=2, report_to=["mlflow"], warmup_steps=1)
    run = train(tiny_config(tmp_path, **config), progress=False)
    run_id = json.loads((run / "trackers.json").read_text())["mlflow"]
    info = MlflowClient().get_run(run_id)
    assert info.info.status == "FINISHED" and info.info.run_name == "run"
    assert info.data.params["lr"] == "0.01" and info.data.params["lora.r"] == "16"
    assert dict(mlflow_history(run_id, "train/loss")) == pytest.approx(logged_losses(run), rel=1e-6)
    assert [s for s, _ in mlflow_history(run_id, "train/loss")] == [1, 2, 3, 4]

    # killed after its last checkpoint, before the summary: the rerun with more steps continues the same run
    (run / "summary.json").unlink()
    train(tiny_config(tmp_path, **dict(config, steps=6)), progress=False)
    assert json.loads((run / "trackers.json").read_text())["mlflow"] == run_id
    history = mlflow_history(run_id, "train/loss")
    assert [s for s, _ in history] == [1, 2, 3, 4, 5, 6]
    assert dict(history) == pytest.approx(logged_losses(run), rel=1e-6)
    assert MlflowClient().get_run(run_id).info.status == "FINISHED"


@needs_mlflow
def test_a_diverged_run_is_failed_in_mlflow(tmp_path, mlflow_store):
    from mlflow.tracking import MlflowClient

    config = tiny_config(tmp_path, steps=8, lr=1e30, optimizer="adamw", clip_grad=0.0, report_to=["mlflow"])
    with pytest.raises(TrainingDiverged):
        train(config, progress=False)
    run_id = json.loads((Path(config.output_dir) / "trackers.json").read_text())["mlflow"]
    assert MlflowClient().get_run(run_id).info.status == "FAILED"


@needs_mlflow
def test_a_tracker_that_does_not_start_stops_the_run_naming_it(tmp_path, monkeypatch, mlflow_store):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nosuchscheme://nowhere")  # no MLflow store has this scheme
    mlflow.set_tracking_uri("nosuchscheme://nowhere")
    with pytest.raises(ValueError, match=r"report_to: mlflow did not start \(\w+: .*nosuchscheme"):
        train(tiny_config(tmp_path, steps=2, report_to=["mlflow"]), progress=False)
    run = tmp_path / "run"
    assert not (run / "summary.json").exists() and not (run / "log.jsonl").exists()
    assert not (run / "trackers.json").exists()


# ----------------------------------------------------------------------------------------------------------
# Weights & Biases, offline


def wandb_records(run_file: Path):
    """The protobuf records of an offline run's .wandb file (a LevelDB-style log: 7-byte file header, 32 KiB
    blocks, each record chunk headed by checksum (4), length (2), type (1: full, 2: first, 3: middle, 4: last))."""
    from wandb.proto import wandb_internal_pb2

    data, pos, pending = run_file.read_bytes(), 7, b""
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if length == 0 and kind == 0:  # zero padding up to the block's end
            pos += left
            continue
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


@needs_wandb
def test_wandb_offline_gets_the_logged_numbers(tmp_path, monkeypatch):
    for name in ("WANDB_PROJECT", "WANDB_RUN_ID", "WANDB_RESUME", "WANDB_NAME", "WANDB_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    run = train(tiny_config(tmp_path, steps=4, eval_every=2, report_to=["wandb"]), progress=False)
    run_id = json.loads((run / "trackers.json").read_text())["wandb"]
    files = glob.glob(str(run / "wandb" / f"offline-run-*-{run_id}" / f"run-{run_id}.wandb"))
    assert len(files) == 1, list((run / "wandb").iterdir())
    records = list(wandb_records(Path(files[0])))
    started = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert started and started[0].project == "flanlab" and started[0].display_name == "run"
    history = {}
    for r in records:
        if r.WhichOneof("record_type") == "history":
            items = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
            history.setdefault(items["_step"], {}).update(items)
    assert {s: h["train/loss"] for s, h in history.items() if "train/loss" in h} == pytest.approx(
        logged_losses(run), rel=1e-6)
    evals = {e["step"]: e["eval"]["loss"] for e in read_log(run) if "eval" in e}
    assert {s: h["eval/loss"] for s, h in history.items() if "eval/loss" in h} == pytest.approx(evals, rel=1e-6)
    config_items = {i.key: json.loads(i.value_json) for r in records if r.WhichOneof("record_type") == "config"
                    for i in r.config.update}
    config_items.update({i.key: json.loads(i.value_json) for run_record in started for i in run_record.config.update})
    assert config_items.get("lr") == 0.01 and config_items.get("lora.r") == 16
