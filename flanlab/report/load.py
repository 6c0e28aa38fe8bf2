"""Read run folders into the few facts a report shows: scores, model, fine-tuning budget, loss curve.

A run folder is anything holding a `results.json` (the schema is in flanlab/eval/spec.py), searched
recursively, so `flanlab report` takes an eval folder, a training folder with its evaluations, a scale grid
or a demo folder alike (a results.json inside the folder of another one is a part of that run, not a run). Beside each results.json the report looks for:

- `run_info.json` (written by `flanlab scale` and `flanlab demo`): {"label", "model", "num_tasks",
  "mixture", "train_dir", "stage"} -- the grid coordinates of the evaluation. `model` is the row (the base
  model before fine-tuning), `num_tasks` the number of fine-tuning tasks (0: not fine-tuned), `train_dir`
  the training run (relative to the run_info.json folder or absolute).
- otherwise the facts are inferred: a model loaded from a folder `<train_dir>/model` whose parent holds the
  training `summary.json` is a fine-tuned model (its base is summary["model"]); any other model counts as
  not fine-tuned (0 tasks).

A training run folder holds `summary.json` (model, untrained, steps, tokens, train_flops, wall_time_s,
final_loss, first_loss, ...) and `log.jsonl` (one row per logged step: step, loss, lr, tokens, ...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from flanlab.eval.metrics import item_strata
from flanlab.eval.schema import check_schema
from flanlab.fileio import read_jsonl

SYNTHETIC_PREFIX = "synthetic"


@dataclass
class TrainInfo:
    """One fine-tuning run: its summary.json and its loss log."""

    path: Path
    summary: dict
    log: list[dict] = field(default_factory=list)
    num_tasks: int | None = None  # from the mixture's stats.json, where it can be found
    mixture: str | None = None


@dataclass
class Run:
    """One evaluation (one results.json) with what the report needs to place it."""

    path: Path  # the folder holding results.json
    results: dict
    label: str  # unique display name
    model: str  # the row: base model before fine-tuning
    num_tasks: int | None  # 0 = not fine-tuned; None = unknown
    untrained: bool  # random weights: every number is meaningless
    parameters: int | None
    train: TrainInfo | None = None
    mixture: str | None = None
    stage: str | None = None  # "before" / "after" in the demo
    samples: list[dict] = field(default_factory=list)
    # every item's metrics from samples.jsonl, "bench/mode" -> subtask -> item_id -> metrics (for intervals and
    # paired comparisons; empty without samples.jsonl or when its rows carry no per-item metrics)
    items: dict = field(default_factory=dict)
    # every item's target, "bench/mode" -> subtask -> item_id -> its JSON text: a pair of runs whose shared item
    # ids have other targets scored other items under those ids (flanlab.report.tables.pairing refuses them)
    targets: dict = field(default_factory=dict)

    @property
    def fine_tuned(self) -> bool:
        return bool(self.num_tasks) or self.train is not None

    @property
    def benchmarks(self) -> dict:
        return self.results.get("benchmarks") or {}


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None


def find_results(paths) -> list[Path]:
    """Every results.json under the given files/folders, in a stable order; temporary (dot) folders skipped."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            found.append(p)
            continue
        if not p.is_dir():
            raise FileNotFoundError(f"no such run folder or results.json: {p}")
        for r in sorted(p.rglob("results.json")):
            rel = r.relative_to(p)
            if any(part.startswith(".") for part in rel.parts):
                continue  # an atomic write still in progress, or a moved-aside old copy
            if any((p / Path(*rel.parts[:i]) / "results.json").is_file() for i in range(len(rel.parts) - 1)):
                continue  # a part of an enclosing run (its per-mode pieces), already merged into its results.json
            if r.parent.parent.name == "parts" and (r.parent.parent.parent / "run_info.json").is_file():
                continue  # a piece of a cell still being evaluated (scale/demo): not a run of its own
            found.append(r)
    unique = list(dict.fromkeys(f.resolve() for f in found))
    return unique


def mixture_num_tasks(mixture_dir: Path) -> int | None:
    """Number of tasks in a built mixture that gave it at least one example, from its stats.json.

    A planned task whose every record was pruned (too long for the mixture's token limits) is not counted: a
    grid's "number of fine-tuning tasks" axis says how many tasks the model saw, not how many were asked for."""
    stats_path = Path(mixture_dir) / "stats.json"
    if not stats_path.is_file():
        return None
    stats = _read_json(stats_path)
    if "planned_tasks" in stats and isinstance(stats.get("num_tasks"), int):
        return stats["num_tasks"]  # counted so by the build (flanlab.data.mixture._stats)
    # older stats.json counted the planned tasks: count those that gave examples, by task name (a task serving
    # two submixtures has an entry for each, "submixture:task" for the second)
    tasks = stats.get("tasks")
    if isinstance(tasks, dict) and tasks and all(isinstance(t, dict) and "examples" in t for t in tasks.values()):
        return len({t.get("task", key) for key, t in tasks.items() if t["examples"] > 0})
    for key in ("num_tasks", "n_tasks"):
        if isinstance(stats.get(key), int):
            return stats[key]
    for key in ("tasks", "task_counts", "per_task"):
        if isinstance(stats.get(key), (dict, list)):
            return len(stats[key])
    return None


def load_train(path: Path) -> TrainInfo | None:
    """The training run in `path` (summary.json + log.jsonl), or None when there is none."""
    path = Path(path)
    summary_path = path / "summary.json"
    if not summary_path.is_file():
        return None
    summary = _read_json(summary_path)
    log_path = path / "log.jsonl"
    log = [row for row in read_jsonl(log_path) if "loss" in row] if log_path.is_file() else []
    mixture = summary.get("mixture") or summary.get("data") or (summary.get("config") or {}).get("data")
    num_tasks = summary.get("num_tasks")
    if num_tasks is None and isinstance(mixture, str) and Path(mixture).is_dir():
        num_tasks = mixture_num_tasks(Path(mixture))
    return TrainInfo(path=path, summary=summary, log=log, num_tasks=num_tasks,
                     mixture=str(mixture) if mixture else None)


def _train_dir_of_model(model_name: str) -> Path | None:
    """`<train_dir>/model` -> <train_dir>, when that folder has a summary.json."""
    p = Path(model_name)
    for candidate in (p.parent, p):
        if (candidate / "summary.json").is_file():
            return candidate
    return None


def load_samples(folder: Path, limit_per_key: int = 3) -> tuple[list[dict], dict, dict]:
    """The first few samples.jsonl rows per (benchmark, mode), for the sample-outputs section, every row's
    per-item metrics (flanlab.eval.metrics.item_strata), for intervals and paired comparisons, and every row's
    target (Run.targets)."""
    path = folder / "samples.jsonl"
    if not path.is_file():
        return [], {}, {}
    kept, counts, compact, targets = [], {}, [], {}
    for row in read_jsonl(path):
        key = (row.get("benchmark"), row.get("mode"))
        if counts.get(key, 0) < limit_per_key:
            counts[key] = counts.get(key, 0) + 1
            kept.append(row)
        compact.append({k: row.get(k) for k in ("benchmark", "mode", "subtask", "item_id", "metrics")})
        if "target" in row:
            targets.setdefault(f"{row.get('benchmark')}/{row.get('mode')}", {}).setdefault(
                str(row.get("subtask")), {})[str(row.get("item_id"))] = json.dumps(row["target"], ensure_ascii=False)
    return kept, item_strata(compact), targets


def load_run(results_path: Path) -> Run:
    results_path = Path(results_path)
    folder = results_path.parent
    results = _read_json(results_path)
    if not isinstance(results.get("benchmarks"), dict):
        raise ValueError(f"{results_path}: no 'benchmarks' mapping; is this a flanlab results.json?")
    check_schema(results, str(results_path))  # schema 1 (or none: hand-made) is read without intervals
    model_info = results.get("model") or {}
    info_path = folder / "run_info.json"
    info = _read_json(info_path) if info_path.is_file() else {}

    train = None
    train_dir = info.get("train_dir")
    if train_dir:
        train_path = Path(train_dir) if Path(train_dir).is_absolute() else folder / train_dir
        train = load_train(train_path)
    elif "num_tasks" not in info:
        inferred = _train_dir_of_model(str(model_info.get("name", "")))
        if inferred is not None:
            train = load_train(inferred)

    if "model" in info:
        model = str(info["model"])
    elif train is not None:
        model = str(train.summary.get("model", model_info.get("name", "?")))
    else:
        model = str(model_info.get("name", "?"))
    if "num_tasks" in info:
        num_tasks = info["num_tasks"]
    elif train is not None:
        num_tasks = train.num_tasks
    else:
        num_tasks = 0
    untrained = bool(model_info.get("untrained")) or bool(train and train.summary.get("untrained"))
    samples, items, targets = load_samples(folder)
    return Run(
        path=folder, results=results, label=str(info.get("label") or ""), model=model, num_tasks=num_tasks,
        untrained=untrained, parameters=model_info.get("parameters"), train=train,
        mixture=info.get("mixture") or (train.mixture if train else None), stage=info.get("stage"),
        samples=samples, items=items, targets=targets,
    )


def default_label(run: Run) -> str:
    if run.num_tasks == 0 and run.train is None:
        return f"{run.model} · not fine-tuned"
    if run.num_tasks is None:
        return f"{run.model} · fine-tuned"
    return f"{run.model} · {run.num_tasks} tasks"


def load_runs(paths) -> list[Run]:
    """All runs under `paths`, each with a unique label; sorted by model, then number of tasks."""
    runs = [load_run(p) for p in find_results(paths)]
    if not runs:
        raise FileNotFoundError(f"no results.json found under {', '.join(map(str, paths))}")
    runs.sort(key=lambda r: (r.model, -1 if r.num_tasks is None else r.num_tasks, r.stage or "", str(r.path)))
    seen: dict[str, int] = {}
    for run in runs:
        label = run.label or default_label(run)
        if label in seen:
            seen[label] += 1
            label = f"{label} ({seen[label]})"
        else:
            seen[label] = 1
        run.label = label
    return runs
