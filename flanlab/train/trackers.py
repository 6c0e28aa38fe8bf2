"""Where a training run reports: log.jsonl always (`RunLog`), and the trackers `report_to` names, through
accelerate's tracker interface (accelerate.tracking: each tracker's start / log / finish, `accelerator.log`).

    tensorboard   output_dir/tensorboard (a resumed run drops the events after its checkpoint: purge_step)
    mlflow        the store MLflow is set up to use (MLFLOW_TRACKING_URI; else MLflow's own default), experiment
                  MLFLOW_EXPERIMENT_NAME or "flanlab", the run named after output_dir, the config as parameters
    wandb         project WANDB_PROJECT or "flanlab", the run named after output_dir, files in output_dir/wandb,
                  the config as its config; WANDB_MODE=offline keeps it on this machine (`wandb sync` uploads it)

Every tracker gets the numbers of log.jsonl at the same step: train/loss, train/lr, train/tokens,
train/tokens_per_s, train/elapsed_s, train/grad_norm, and at evaluations eval/loss and
eval/benchmark/normalized_average and eval/benchmark/synthetic_average (and each one's _stderr: its standard
error). A resumed run continues the MLflow and W&B runs it started (their ids are kept
in output_dir/trackers.json); the steps between its checkpoint and the interruption are reported again, with the
same values (resumption is exact): MLflow keeps both points, W&B ignores steps it already has.

mlflow and wandb are optional (`pip install 'flanlab[trackers]'`): one asked for but not installed is refused
when the config is checked (`check_installed`), before any model loads. A tracker that does not start (a store
that refuses the connection, say) stops the run before its first step, naming the tracker. The run's end
finishes every tracker; an exception marks the MLflow and W&B runs failed.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

from flanlab.fileio import atomic_write_json, atomic_write_text

# report_to name -> (the module it needs, what installs it)
TRACKERS: dict[str, tuple[str, str]] = {
    "tensorboard": ("tensorboard", "pip install tensorboard"),
    "mlflow": ("mlflow", "pip install 'flanlab[trackers]' (or pip install mlflow)"),
    "wandb": ("wandb", "pip install 'flanlab[trackers]' (or pip install wandb)"),
}
IDS_FILE = "trackers.json"  # the MLflow and W&B run ids, so that a resumed run continues them


def missing_tracker(names: list[str]) -> str | None:
    """The first of `names` whose package is not installed here, with what installs it; None when all are."""
    for name in names:
        module, install = TRACKERS[name]
        if importlib.util.find_spec(module) is None:
            return f"{name} is not installed in this Python ({install}), or remove it from report_to"
    return None


def start_trackers(accelerator, names: list[str], out: Path, resume_step: int, config_values: dict) -> None:
    """Start the trackers `names` on the main process (they join accelerator.trackers; the other processes
    report nothing). `config_values` (nested dicts allowed) become the MLflow parameters / W&B config of a new
    run; a continued one keeps those it has. Raises ValueError naming a tracker that does not start."""
    if not names or not accelerator.is_main_process:
        return
    ids = _run_ids(out / IDS_FILE) if resume_step > 0 else {}
    flat = flatten(config_values)
    for name in names:
        tracker = BUILDERS[name](out, resume_step, ids.get(name))
        try:
            tracker.start()
            accelerator.trackers.append(tracker)  # from here on, close_trackers finishes it
            if name != "tensorboard" and name not in ids:  # TensorBoard gets the scalars only, as before
                tracker.store_init_configuration(flat)
        except Exception as e:  # each tracker raises its own types (MlflowException, wandb.Error, OSError)
            close_trackers(accelerator, failed=True)
            first_line = (str(e).strip().splitlines() or [""])[0][:300]
            raise ValueError(f"report_to: {name} did not start ({type(e).__name__}: {first_line}); check its "
                             "settings (MLFLOW_TRACKING_URI, WANDB_MODE, ...) or remove it from report_to") from None
        if name == "mlflow":
            ids[name] = tracker.active_run.info.run_id
        elif name == "wandb":
            ids[name] = tracker.run.id
    if ids:
        atomic_write_json(out / IDS_FILE, ids)


def _run_ids(path: Path) -> dict[str, str]:
    """The tracker run ids a resumed run continues ({} when none were kept)."""
    if not path.is_file():
        return {}
    try:
        ids = json.loads(path.read_text(encoding="utf-8"))
        if not (isinstance(ids, dict) and all(isinstance(v, str) for v in ids.values())):
            raise TypeError("not an object of run ids")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError) as e:
        raise ValueError(f"{path}: unreadable ({type(e).__name__}: {e}); delete it to report to new tracker "
                         "runs") from None
    return ids


def close_trackers(accelerator, failed: bool) -> None:
    """Finish every started tracker once (`failed` marks the MLflow and W&B runs failed)."""
    for tracker in accelerator.trackers:
        if tracker.name == "mlflow":
            import mlflow

            mlflow.end_run(status="FAILED" if failed else "FINISHED")
        elif tracker.name == "wandb":
            tracker.run.finish(exit_code=1 if failed else 0)
        else:
            tracker.finish()
    accelerator.trackers.clear()


def scalars(entry: dict) -> dict[str, float]:
    """A log.jsonl entry's numbers under tracker names: train/<key>, or eval/<key>[/<subkey>] for evaluations."""
    prefix, values = ("eval", entry["eval"]) if "eval" in entry else ("train", entry)
    return {f"{prefix}/{key}": value for key, value in flatten(values, sep="/").items()
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool)}


def flatten(values: dict, sep: str = ".") -> dict:
    """{"lora": {"r": 4}} -> {"lora.r": 4}; other values as they are."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update({f"{key}{sep}{k}": v for k, v in flatten(value, sep).items()})
        else:
            flat[key] = value
    return flat


class RunLog:
    """log.jsonl (append-only; on resume, the entries after the checkpoint are dropped), each entry also
    reported to the started trackers (accelerator.log: the main process only)."""

    def __init__(self, out: Path, resume_step: int, accelerator):
        self.path = out / "log.jsonl"
        self.accelerator = accelerator
        self.active = accelerator.is_main_process
        if self.active and self.path.exists():
            kept = [line for line in self.path.read_text(encoding="utf-8").splitlines()
                    if line.strip() and json.loads(line)["step"] <= resume_step]
            atomic_write_text(self.path, "".join(line + "\n" for line in kept))  # a kill here keeps the old log

    def write(self, entry: dict) -> None:
        if not self.active:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
        if self.accelerator.trackers:
            self.accelerator.log(scalars(entry), step=entry["step"])

    def entries(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]


# ----------------------------------------------------------------------------------------------------------
# one accelerate tracker per name


def _tensorboard(out: Path, resume_step: int, run_id: str | None):
    from accelerate.tracking import TensorBoardTracker

    return TensorBoardTracker("tensorboard", out, purge_step=resume_step + 1)  # writes to out/tensorboard


def _mlflow(out: Path, resume_step: int, run_id: str | None):
    from accelerate.tracking import MLflowTracker

    # accelerate lets MLFLOW_EXPERIMENT_NAME / MLFLOW_RUN_ID / MLFLOW_TAGS override these
    return MLflowTracker(experiment_name="flanlab", run_id=run_id, run_name=out.name,
                         tags={"flanlab.output_dir": str(out.resolve())})


def _wandb(out: Path, resume_step: int, run_id: str | None):
    from accelerate.tracking import WandBTracker

    return WandBTracker(os.environ.get("WANDB_PROJECT", "flanlab"), name=out.name, dir=str(out), id=run_id,
                        resume="allow" if run_id else None)


BUILDERS = {"tensorboard": _tensorboard, "mlflow": _mlflow, "wandb": _wandb}
