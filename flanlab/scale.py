"""The scaling grid behind `flanlab scale CONFIG`: models x mixtures, each cell fine-tuned and evaluated.

A grid is the paper's experiment (Figure 4: the normalized average against the number of fine-tuning tasks,
one line per model size). For every model of the config:
  - the model before fine-tuning is evaluated once: the "0 tasks" column;
  - for every mixture (a task-count preset, built once and shared by all rows) the model is fine-tuned on it
    and the result evaluated.
Mixtures and cells are stages (flanlab/stages.py, the rule the demo's stages follow too): a cell is finished when
its eval/results.json exists, and a rerun skips it only when its run_info.json records the settings the config
gives it, its results.json was computed as this run would compute it (the same model, benchmark versions and data
files, flanlab version and engine code defaults: SameEvaluation, the demo's check too) and its training run
matches the train YAML as it reads now (else it stops, naming the cell and what differs); a killed cell runs
again, its training resuming from the last checkpoint, its evaluation from its cache.
The data dir is read once, by run_scale (the config's data_dir, --data-dir, else FLANLAB_DATA_DIR; none with
offline: true), and passed down to every step.

Layout of the output folder:
  scale.yaml                        the resolved config, as run
  mixtures/<mixture>/               each mixture, built once (train-*.jsonl, validation.jsonl, stats.json)
  cells/<model>/base/eval/          the model before fine-tuning: results.json, samples.jsonl, run_info.json
  cells/<model>/<mixture>/train/    the fine-tuning run: model/, log.jsonl, summary.json, checkpoints/
  cells/<model>/<mixture>/eval/     its evaluation
  grid.json                         every cell: model, mixture, number of tasks, headline score, times, paths
  report/index.html, report.md      the report over every cell (flanlab.report)
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from flanlab import __version__
from flanlab.config import ConfigError, Count, NonEmpty, Text, load_config, to_dict
from flanlab.data.mixture import build_mixture, load_mixture_config
from flanlab.eval.config import EvalConfig, Mode
from flanlab.eval.metrics import normalized_average, synthetic_average
from flanlab.eval.results import benchmark_data
from flanlab.eval.runner import draft_settings, evaluate, resolve_benchmarks
from flanlab.fileio import atomic_write_json, atomic_write_text, read_jsonl
from flanlab.log import get_logger
from flanlab.models import load
from flanlab.report import write_report
from flanlab.report.load import load_runs, mixture_num_tasks
from flanlab.report.tables import fmt_p, fmt_pm, headline, headline_paired, pairing_notes
from flanlab.runlock import locks_folder
from flanlab.settings import NO_DATA_DIR
from flanlab.settings import data_dir as resolve_data_dir
from flanlab.stages import SameSettings, Stage, Stages, normalised

log = get_logger(__name__)
EVALUATED = "results.json"  # an evaluation's completion record (evaluate() and merge write it last)
TRAINED = "summary.json"  # a training run's (flanlab.train writes it last)
BUILT = "stats.json"  # a mixture's (the build writes it aside and renames the folder into place)


@dataclass
class TrainPart:
    config: Text | None = None  # a configs/train/*.yaml; model, data and output_dir are set per cell
    overrides: list[str] = field(default_factory=list)  # key=value for every cell, e.g. ["steps=200"]
    # extra key=value per model (a T5 row may want another lr than a decoder row): model name -> overrides
    per_model: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class EvalPart(EvalConfig):
    """One eval part of a cell: every evaluate() option (flanlab.eval.config.EvalConfig) with a grid's defaults
    (the synthetic suite, 20 items per subtask) and a limit per mode. Benchmarks, when given, replace the suite."""

    suite: Text | None = "synthetic"  # "synthetic" (offline) or "flan-heldout" (needs the data dir)
    limit: Count | None = 20  # items per subtask (null: all)
    mode_limits: dict[Mode, Count] = field(default_factory=dict)  # per-mode limit, e.g. {cot: 3}: CoT generates

    def for_mode(self, mode: str) -> EvalConfig:
        """The EvalConfig evaluating this part's `mode`: the mode's own limit, zero-shot CoT and self-consistency
        (with its temperature) for the cot mode only, as a run of both modes applies them."""
        options = {f.name: getattr(self, f.name) for f in dataclasses.fields(EvalConfig)}
        cot = mode == "cot"
        return EvalConfig(**{**options, "suite": None if self.benchmarks else self.suite, "modes": [mode],
                             "limit": self.mode_limits.get(mode, self.limit),
                             "zero_shot_cot": self.zero_shot_cot and cot,
                             "self_consistency": self.self_consistency if cot else 1,
                             "temperature": self.temperature if cot else None})


@dataclass
class ScaleConfig:
    # presets, folders or hub ids: the rows
    models: Annotated[list[Text], NonEmpty("a grid needs at least one model")]
    # mixture config files (configs/mixtures/*.yaml): the columns
    mixtures: Annotated[list[Text], NonEmpty("a grid needs at least one mixture")]
    output_dir: Text = "runs/scale"
    train: TrainPart = field(default_factory=TrainPart)
    # one eval part, or a list of them evaluated into one results.json (e.g. the synthetic suite zero-shot and
    # the real benchmarks with their own shots); no benchmark and mode may be in two parts
    eval: EvalPart | Annotated[list[EvalPart], NonEmpty()] = field(default_factory=EvalPart)
    mixture_overrides: list[str] = field(default_factory=list)  # key=value applied to every mixture config
    data_dir: Text | None = None  # real data (else the --data-dir / FLANLAB_DATA_DIR setting; None: synthetic only)
    offline: bool = False  # ignore any data dir: built-in task families and the synthetic suite only
    report: bool = True  # write output_dir/report at the end


def load_scale_config(path: str | os.PathLike, overrides: list[str] | None = None) -> ScaleConfig:
    config = load_config(ScaleConfig, path, overrides)
    parts = eval_parts(config.eval)
    for i, part in enumerate(parts):
        where = f"{path}: eval{f'[{i}]' if len(parts) > 1 else ''}"
        if not (part.suite or part.benchmarks):
            raise ConfigError(f"{where}: give a suite or benchmarks")
        try:
            part.chat()  # options that need another: multiturn or a system turn without the chat template
        except ValueError as e:
            raise ConfigError(f"{where}: {e}") from None
        part.check_sampling(where)  # a temperature self_consistency 1 would ignore, or K > 1 at temperature 0
    return config


def eval_parts(value: EvalPart | list[EvalPart]) -> list[EvalPart]:
    """A config's `eval` as a list of parts."""
    return [value] if isinstance(value, EvalPart) else list(value)


def resolve_path(value: str, config_path: str | os.PathLike | None) -> Path:
    """A path from a config: as given (absolute, or relative to the current folder), else relative to the
    config file's folder or one of its parents (so configs/scale/x.yaml may name configs/mixtures/y.yaml)."""
    path = Path(value).expanduser()
    if path.is_absolute() or path.exists() or config_path is None:
        return path
    for base in Path(config_path).resolve().parents:
        if (base / path).exists():
            return base / path
    return path


def slug(name: str) -> str:
    """A folder name for a model or mixture: 'HuggingFaceTB/SmolLM2-135M' -> 'HuggingFaceTB_SmolLM2-135M'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("_.") or "model"


# ----------------------------------------------------------------------------------------------------------
# the steps of a cell


def cell_train_config(model: str, mixture_dir: Path, out_dir: Path, part: TrainPart, config_path=None):
    """The TrainConfig of a cell: the train YAML as it reads now, the overrides, the cell's model, data and folder."""
    from flanlab.train.config import load_train_config  # imports torch: kept out of `flanlab scale|demo --help`

    train_yaml = resolve_path(part.config, config_path) if part.config else None
    overrides = list(part.overrides) + list(part.per_model.get(model, []))
    return load_train_config(train_yaml, overrides, model=model, data=str(mixture_dir), output_dir=str(out_dir))


def train_cell(model: str, mixture_dir: Path, out_dir: Path, part: TrainPart, config_path=None, progress=True,
               data_dir: Path | None = None) -> Path:
    """Fine-tune `model` on the mixture into out_dir (resuming a killed run); return the model folder. data_dir
    (None: none) is what the train YAML's eval_suite evaluates on, if it has one.

    A finished run there is returned as it is only when trained with these settings: flanlab.train.train
    checks that (quickly, before loading anything) and refuses one trained otherwise."""
    from flanlab.train.sft import train  # imports torch: kept out of `flanlab scale|demo --help`

    train(cell_train_config(model, mixture_dir, out_dir, part, config_path), progress=progress,
          data_dir=NO_DATA_DIR if data_dir is None else data_dir)  # train() given None would read the environment
    return out_dir / "model"


def check_trained(model: str, mixture_dir: Path, out_dir: Path, part: TrainPart, config_path=None) -> None:
    """For a finished training run (or a finished cell) about to be skipped: the run must match the train YAML as
    it reads now (a cell's recorded settings name the YAML, not its content) and the mixture's files; else
    ValueError, naming what differs (flanlab.train's own finished-run check: it knows which settings a finished
    run may differ in). Nothing to check where out_dir holds no finished run."""
    from flanlab.train.sft import check_finished  # imports torch: kept out of `flanlab scale|demo --help`

    if (out_dir / TRAINED).is_file():
        check_finished(out_dir, cell_train_config(model, mixture_dir, out_dir, part, config_path))


NOT_PER_MODE = {"limit", "benchmark_versions", "modes", "benchmarks"}  # merged on their own in merge_results


def merge_results(parts: list[dict], samples: list[dict] | None = None) -> dict:
    """One results.json from evaluations of the same model in different modes (each with its own limit); the
    parts' samples.jsonl rows give the averages their intervals."""
    merged = dict(parts[0])
    merged["benchmarks"] = {}
    merged["settings"] = dict(parts[0].get("settings") or {})
    merged["settings"]["limit"] = {}
    merged["timings"] = {"total_s": 0.0}
    for part in parts:
        for bench, modes in (part.get("benchmarks") or {}).items():
            merged["benchmarks"].setdefault(bench, {}).update(modes)
        for bench, modes in (part.get("benchmarks") or {}).items():
            for mode in modes:
                merged["settings"]["limit"][f"{bench}/{mode}"] = (part.get("settings") or {}).get("limit")
        versions = (part.get("settings") or {}).get("benchmark_versions") or {}
        merged["settings"].setdefault("benchmark_versions", {}).update(versions)
        for key, value in (part.get("timings") or {}).items():
            if key == "total_s":
                merged["timings"]["total_s"] += float(value or 0)
            else:
                merged["timings"][key] = value
    merged["provenance"] = dict(parts[0].get("provenance") or {})
    merged["provenance"]["data_files"] = {k: v for part in parts for k, v in ((part.get("provenance") or {}).get("data_files") or {}).items()}
    if any("benchmark_data" in (part.get("provenance") or {}) for part in parts):
        merged["provenance"]["benchmark_data"] = {k: v for part in parts
                                                  for k, v in ((part.get("provenance") or {}).get("benchmark_data") or {}).items()}
    merged["settings"]["modes"] = list(dict.fromkeys(m for modes in merged["benchmarks"].values() for m in modes))
    merged["settings"]["benchmarks"] = list(merged["benchmarks"])
    # a setting the parts ran with different values of is recorded per "bench/mode", as limit is (parts[0]'s
    # value would mislabel the others: a zero-shot synthetic part beside 5-shot MMLU)
    for name in sorted({k for part in parts for k in (part.get("settings") or {})} - NOT_PER_MODE):
        values = {f"{bench}/{mode}": (part.get("settings") or {}).get(name)
                  for part in parts for bench, modes in (part.get("benchmarks") or {}).items() for mode in modes}
        if len({json.dumps(v, sort_keys=True) for v in values.values()}) > 1:
            merged["settings"][name] = values
    merged["normalized_average"] = normalized_average(merged["benchmarks"], samples)
    merged["synthetic_average"] = synthetic_average(merged["benchmarks"], samples)
    return merged


def evaluate_cell(model, out_dir: Path, parts, data_dir, info: dict, progress=True) -> dict:
    """Evaluate `model` (a LoadedModel) into out_dir: results.json + samples.jsonl + run_info.json.

    `parts` is one EvalPart or a list of them (e.g. the synthetic suite and the real benchmarks). Modes that
    share a suite and a limit are evaluated in one call; when there are several such groups, each goes to
    out_dir/parts/<n>-<suite>-limit-<limit>/ and they are merged into one results.json (samples concatenated).
    data_dir is the folder an entry point resolved, or None: no data dir (FLANLAB_DATA_DIR is not read here)."""
    parts = [parts] if isinstance(parts, EvalPart) else list(parts)
    seen: dict[tuple[str, str], int] = {}  # (benchmark, mode as recorded) -> the part that evaluates it
    for i, part in enumerate(parts):
        for bench in resolve_benchmarks(part.benchmarks, None if part.benchmarks else part.suite):
            for mode in (m for m in part.modes if m in bench.modes):
                recorded = (bench.name, "zs_cot" if part.zero_shot_cot and mode == "cot" else mode)
                if recorded in seen:
                    raise ValueError(f"eval parts {seen[recorded]} and {i} both evaluate {recorded[0]} in mode "
                                     f"{recorded[1]}: one results.json holds one score per benchmark and mode")
                seen[recorded] = i
    atomic_write_json(out_dir / "run_info.json", info)
    # modes whose EvalConfigs are alike but for the mode run in one evaluate() call
    groups: dict[str, EvalConfig] = {}
    for part in parts:
        for mode in part.modes:
            config = part.for_mode(mode)
            key = json.dumps({**to_dict(config), "modes": None}, sort_keys=True)
            if key in groups:
                groups[key].modes.append(mode)
            else:
                groups[key] = config

    def run_group(config: EvalConfig, where: Path) -> dict:
        # evaluate() is an entry point too (the Python API): given None it would read FLANLAB_DATA_DIR
        return evaluate(model, config, out_dir=where, data_dir=NO_DATA_DIR if data_dir is None else data_dir,
                        progress=progress)

    def folder_name(i: int, config: EvalConfig) -> str:
        limit = config.limit if config.limit is not None else "all"
        return slug(f"{i}-{config.suite or '-'.join(config.benchmarks or ())}-limit-{limit}"
                    + (f"-shots-{config.shots}" if config.shots is not None else "")
                    + ("-zs-cot" if config.zero_shot_cot else ""))

    if len(groups) == 1:
        (config,) = groups.values()
        return run_group(config, out_dir)
    results, samples = [], []
    for i, config in enumerate(groups.values()):
        sub = out_dir / "parts" / folder_name(i, config)
        results.append(run_group(config, sub))
        if (sub / "samples.jsonl").is_file():
            samples.extend(read_jsonl(sub / "samples.jsonl"))
    merged = merge_results(results, samples)
    atomic_write_text(out_dir / "samples.jsonl", "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples))
    atomic_write_json(out_dir / EVALUATED, merged)  # written last: it marks the cell finished
    return merged


def evaluate_model(model: str, out_dir: Path, parts, data_dir: Path | None, info: dict, progress=True) -> dict:
    """Load `model` (a preset, folder or hub id), evaluate it into out_dir (evaluate_cell), and free it."""
    lm = load(model, verbose=progress)
    results = evaluate_cell(lm, out_dir, parts, data_dir, info, progress)
    del lm
    gc.collect()
    return results


# ----------------------------------------------------------------------------------------------------------
# the stages of a run: the kinds that flanlab/stages.py's rule skips, refuses or runs (the demo's too)


def mixture_stage(name: str, mixture_yaml: Path, out_dir: Path, data_dir: Path | None, overrides=(),
                  progress=True) -> Stage:
    """Build the mixture of `mixture_yaml` (with overrides) into out_dir. One built there before from other settings
    (the YAML edited, other overrides), or with a data dir where this run has none or the reverse (offline: true
    turned on or off), is refused, naming them: reusing it would train new cells on the old mixture under the new
    config's name."""
    config = load_mixture_config(mixture_yaml, overrides=list(overrides))
    same_config = SameSettings(out_dir / BUILT, "config", normalised(to_dict(config)), redo=out_dir,
                               refused=f"built from other mixture settings than {mixture_yaml} gives now",
                               remove=" and what was trained on it")

    def check() -> None:
        same_config()
        built_with = json.loads((out_dir / BUILT).read_text(encoding="utf-8")).get("data_dir")
        if (built_with is None) != (data_dir is None):  # the same data dir elsewhere is not told apart
            raise ValueError(
                f"{out_dir}: built {f'from the data dir {built_with}' if built_with else 'without a data dir'}, "
                f"but this run has {f'the data dir {data_dir}' if data_dir else 'none (offline: true, or no --data-dir)'}"
                f"; use another output folder, or remove {out_dir} and what was trained on it to redo it")

    return Stage(name, f"build {mixture_yaml.name}", out_dir, BUILT, check,
                 lambda: build_mixture(config, out_dir, data_dir=data_dir, progress=progress),
                 skipped="built before (reused)")


@dataclass(frozen=True)
class SameEvaluation:
    """The check of a finished evaluation (a scale cell, a demo stage): its run_info.json records the settings this
    run gives it (`settings`: SameSettings), and its results.json was computed as this run would compute it: the
    same model (the one run_info.json names), the benchmark versions this flanlab scores and the same data files
    (provenance.benchmark_data: their contents in this run's data dir), the same
    flanlab version (a release can change the engine's code or a benchmark without a recorded setting changing)
    and the engine's code defaults (the draft tokens and n-grams: not config settings). A record results.json
    lacks (an older flanlab) is not compared. Else ValueError, one line naming `redo`, each difference and the
    file."""

    settings: SameSettings
    model: str | None = None  # the model this run evaluates (run_info.json's "model"); None: not compared
    benches: tuple = ()  # the Benchmarks this run would evaluate: their versions, and their files in data_dir
    data_dir: Path | None = None  # the data dir this run reads

    def __call__(self) -> None:
        self.settings()
        folder, redo = self.settings.file.parent, self.settings.redo
        info = json.loads(self.settings.file.read_text(encoding="utf-8"))
        try:
            results = json.loads((folder / EVALUATED).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{folder / EVALUATED}: unreadable ({type(e).__name__}: {e}); remove {redo} to redo "
                             f"it") from None
        results = results if isinstance(results, dict) else {}
        changed = []
        if self.model is not None and info.get("model") not in (None, self.model):
            changed.append(f"model ({info['model']!r} -> {self.model!r})")
        recorded = (results.get("settings") or {}).get("benchmark_versions") or {}
        changed += [f"{b.name} version ({recorded[b.name]!r} -> {b.version!r})" for b in self.benches
                    if b.name in recorded and str(recorded[b.name]) != str(b.version)]
        read = (results.get("provenance") or {}).get("benchmark_data") or {}
        now = benchmark_data([b for b in self.benches if b.name in read], self.data_dir)
        changed += [f"{name} data files (other contents in {self.data_dir or 'no data dir'})"
                    for name, digest in now.items() if read[name] != digest]
        ran_by = (results.get("provenance") or {}).get("flanlab_version")
        if ran_by is not None and ran_by != __version__:
            changed.append(f"flanlab version ({ran_by!r} -> {__version__!r})")
        changed += _engine_code_differences((results.get("settings") or {}).get("engine"))
        if changed:
            raise ValueError(f"{redo}: evaluated otherwise than this run would evaluate it: {', '.join(changed)} "
                             f"({folder / EVALUATED} and run_info.json record the first values); use another output "
                             f"folder, or remove {redo}{self.settings.remove} to redo it")


def _engine_code_differences(engine) -> list[str]:
    """How a results.json's settings.engine (one record, or a merged cell's per "bench/mode" records) differs from
    the engine's code today: its revision (engine.REVISION; a record from before revisions were recorded counts as
    another revision), and the draft tokens of a shared-attention run and the n-grams they are drafted from
    (runner.engine_settings; the batch size and the prefix cache are config settings, compared as such)."""
    if not isinstance(engine, dict):
        return []
    records = [engine] if "batch_size" in engine else [e for e in engine.values() if isinstance(e, dict)]
    if not records:
        return []
    from flanlab.eval.engine import REVISION  # imports torch: only for a finished evaluation

    today = draft_settings()
    out: list[str] = []
    for r in records:
        line = f"engine revision ({r.get('engine_revision', 'not recorded')!r} -> {REVISION!r})"
        if r.get("engine_revision") != REVISION and line not in out:
            out.append(line)
    for r in records:
        if not r.get("shared_attention") or "draft_tokens" not in r:
            continue
        for name, value in today.items():
            line = f"engine {name} ({r.get(name)!r} -> {value!r})"
            if name in r and r[name] != value and line not in out:
                out.append(line)
    return out


def evaluation_check(folder: Path, settings: dict, redo: Path | None = None, model: str | None = None,
                     parts=(), data_dir: Path | None = None) -> SameEvaluation:
    """An evaluation (results.json) is finished with `settings` when its run_info.json records them and its
    results.json was computed as this run would compute it (SameEvaluation: `model`, the versions of the `parts`'
    benchmarks and their files in `data_dir`, the flanlab version, the engine's code defaults); refused otherwise,
    naming `redo` (default: the folder) as what to remove to redo it."""
    same = SameSettings(folder / "run_info.json", "settings", settings, redo=redo or folder, as_today=_as_today)
    benches = {b.name: b for part in parts
               for b in resolve_benchmarks(part.benchmarks, None if part.benchmarks else part.suite)}
    return SameEvaluation(same, model, tuple(benches.values()), data_dir)


def eval_finished(folder: Path, settings: dict, redo: Path | None = None, model: str | None = None,
                  parts=(), data_dir: Path | None = None) -> bool:
    """True when `folder` holds an evaluation finished with `settings`; False when it holds none; ValueError,
    naming what differs, when it finished with other settings (flanlab.stages)."""
    check = evaluation_check(folder, settings, redo, model, parts, data_dir)
    return Stage(str(folder), "evaluate", folder, EVALUATED, check, work=lambda: None).finished()


def training_stage(name: str, action: str, model: str, mixture_dir: Path, out_dir: Path, part: TrainPart,
                   config_path=None, progress=True, data_dir: Path | None = None) -> Stage:
    """Fine-tune `model` on the mixture into out_dir: finished when its summary.json exists and it was trained
    with these settings (check_trained); a killed run resumes from its last checkpoint."""
    return Stage(name, action, out_dir, TRAINED,
                 check=lambda: check_trained(model, mixture_dir, out_dir, part, config_path),
                 work=lambda: train_cell(model, mixture_dir, out_dir, part, config_path, progress, data_dir))


def _cell_settings(config: ScaleConfig, mixture: str | None) -> dict:
    """What a cell's numbers depend on beyond its model: the eval parts (EvalConfig.recorded: their fields, and the
    templated prompts' format), and for a fine-tuned cell the training part and the mixture overrides
    (JSON-normalised, as run_info.json stores it)."""
    parts = eval_parts(config.eval)
    settings = {"eval": parts[0].recorded() if isinstance(config.eval, EvalPart) else [p.recorded() for p in parts]}
    if mixture is not None:
        settings.update(mixture=mixture, train=to_dict(config.train), mixture_overrides=config.mixture_overrides)
    return normalised(settings)


def _as_today(recorded):
    """Recorded cell (or demo stage) settings as today's flanlab would record that run: the eval options added to
    EvalPart since then filled in at their defaults (the run had no such option, and evaluate() ran at the value
    that is now the default: self_consistency 1, seed 0, the plain prompts, ...), so a finished cell of an earlier
    version is still recognised; and a templated part recorded without "chat_format" read as format 1 (its
    prompts were rendered before EvalConfig's CHAT_FORMAT 2), so it is refused, naming chat_format (1 -> 2),
    instead of being paired with cells evaluated on today's prompts. A temperature recorded beside self_consistency
    1 (the old default 0.7, which sampled nothing) is read as null, as EvalConfig.recorded() now records it."""
    if not isinstance(recorded, dict) or "eval" not in recorded:
        return recorded
    defaults = normalised(to_dict(EvalPart()))

    def fill(part):
        if not isinstance(part, dict):
            return part
        part = {**defaults, **part}
        if part.get("apply_chat_template") and "chat_format" not in part:
            part["chat_format"] = 1
        if part.get("self_consistency") == 1:  # recorded at the old default 0.7 while unused: nothing was sampled
            part["temperature"] = None
        return part

    parts = recorded["eval"]
    return {**recorded, "eval": [fill(p) for p in parts] if isinstance(parts, list) else fill(parts)}


def base_cell(config: ScaleConfig, out: Path, model: str, data_dir: Path | None, progress=True) -> Stage:
    """A row's model before fine-tuning, evaluated into cells/<model>/base/eval: the "0 tasks" column."""
    cell = out / "cells" / slug(model) / "base"
    settings = _cell_settings(config, None)
    info = {"model": model, "num_tasks": 0, "mixture": None, "train_dir": None, "stage": "before",
            "settings": settings}
    return Stage(f"{model} · not fine-tuned", "evaluate", cell / "eval", EVALUATED,
                 check=evaluation_check(cell / "eval", settings, cell, model, eval_parts(config.eval), data_dir),
                 work=lambda: evaluate_model(model, cell / "eval", eval_parts(config.eval), data_dir, info, progress))


def fine_tuned_cell(config: ScaleConfig, config_path, out: Path, model: str, mixture: str, mixture_dir: Path,
                    num_tasks: int | None, data_dir: Path | None, progress=True) -> Stage:
    """`model` fine-tuned on a mixture (cells/<model>/<mixture>/train) and evaluated (…/eval). The cell is one
    stage: finished when its evaluation ran with the config's settings and its training run with the train YAML
    as it reads now (a training run alone may have finished: it is then returned as it is, by flanlab.train)."""
    cell = out / "cells" / slug(model) / mixture
    settings = _cell_settings(config, mixture)
    same_eval = evaluation_check(cell / "eval", settings, cell, model, eval_parts(config.eval), data_dir)

    def check() -> None:
        same_eval()
        check_trained(model, mixture_dir, cell / "train", config.train, config_path)

    def work() -> None:
        folder = train_cell(model, mixture_dir, cell / "train", config.train, config_path, progress, data_dir)
        info = {"model": model, "num_tasks": num_tasks, "mixture": mixture, "train_dir": "../train",
                "stage": "after", "settings": settings}
        evaluate_model(str(folder), cell / "eval", eval_parts(config.eval), data_dir, info, progress)

    return Stage(f"{model} · {mixture}", "fine-tune and evaluate", cell / "eval", EVALUATED, check, work)


# ----------------------------------------------------------------------------------------------------------
# the grid


@locks_folder("scale", lambda config, *args, **kwargs: config.output_dir)
def run_scale(config: ScaleConfig, config_path=None, data_dir=None, progress: bool = True) -> dict:
    """Run (or finish) the grid; return grid.json's content. See the module docstring for the layout. Its stages
    are said on stderr (status lines); its result, the table and the report's path, is printed on stdout.

    The data dir is read here, once: data_dir (--data-dir), else the config's, else FLANLAB_DATA_DIR; none at all
    with offline: true, whatever the environment says (the environment is neither read nor changed then)."""
    data = None if config.offline else resolve_data_dir(data_dir or config.data_dir)
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "scale.json", to_dict(config))
    stages = Stages()

    mixtures: dict[str, tuple[Path, int | None]] = {}
    for m in config.mixtures:
        path = resolve_path(m, config_path)
        name = slug(path.stem)
        stages.run(mixture_stage(f"mixture {name}", path, out / "mixtures" / name, data, config.mixture_overrides,
                                 progress))
        n = mixture_num_tasks(out / "mixtures" / name)
        mixtures[name] = (out / "mixtures" / name, n)
        log.info("  %s: %s tasks", name, n if n is not None else "?")

    for model in config.models:
        stages.run(base_cell(config, out, model, data, progress))
    for name, (mixture_dir, n) in mixtures.items():
        for model in config.models:
            stages.run(fine_tuned_cell(config, config_path, out, model, name, mixture_dir, n, data, progress))

    grid = aggregate(out, stages.times)
    print(format_table(grid))
    if config.report:
        index = write_report([out / "cells"], out / "report", title=f"flanlab scale: {out.name}")
        grid["report"] = str(index)
        print(f"[flanlab] report: {index.resolve()}")
    return grid


def aggregate(out: Path, times: dict | None = None) -> dict:
    """grid.json: one entry per finished cell, with the report's headline score, its standard error and 95%
    interval, and "vs_base": its paired comparison with the row's un-fine-tuned cell (flanlab/eval/stats.py)."""
    runs = load_runs([out / "cells"])
    head = headline(runs)
    paired = headline_paired(runs, head)
    cells = []
    for run in runs:
        s = run.train.summary if run.train else {}
        est = head.estimates.get(run.label)
        cells.append({
            "model": run.model, "mixture": run.mixture, "num_tasks": run.num_tasks if run.fine_tuned else 0,
            "untrained": run.untrained, "parameters": run.parameters, "score": head.values.get(run.label),
            "uncertainty": est.to_json() if est is not None else None,
            "vs_base": paired[run.label].to_json() if paired.get(run.label) is not None else None,
            "results": str(run.path / "results.json"),
            "train_steps": s.get("steps"), "train_tokens": s.get("tokens"), "train_flops": s.get("train_flops"),
            "train_wall_time_s": s.get("wall_time_s"),
            "eval_s": (run.results.get("timings") or {}).get("total_s"),
        })
    previous = {}
    if (out / "grid.json").is_file():  # keep the stage times of earlier (resumed) invocations
        previous = json.loads((out / "grid.json").read_text()).get("stage_times_s") or {}
    grid = {"headline": head.name, "headline_description": head.description, "cells": cells,
            "pairing_notes": pairing_notes(runs),  # pairs refused (other benchmark versions or data) or unchecked
            "stage_times_s": {**previous, **(times or {})}}
    atomic_write_json(out / "grid.json", grid)
    return grid


def format_table(grid: dict) -> str:
    """Rows: models; columns: number of fine-tuning tasks; cells: the headline score (± one standard error where
    known); below, each fine-tuned cell's paired change against the row's un-fine-tuned one and its verdict."""
    cells = grid["cells"]
    models = list(dict.fromkeys(c["model"] for c in cells))
    # a column per (number of tasks, mixture): two mixtures of as many tasks are two columns (keyed by the count
    # alone, one cell replaced the other); a count that is not known is a column too, last
    columns = sorted({_column(c) for c in cells}, key=lambda k: (k[0] is None, k[0] or 0, k[1] or ""))
    repeated = {n for n, _ in columns if sum(1 for m, _ in columns if m == n) > 1}

    def title(key) -> str:
        n, mixture = key
        if n == 0 and mixture is None:
            return "no FT"
        named = mixture and (n is None or n in repeated)
        return f"{'?' if n is None else n} tasks" + (f" ({mixture})" if named else "")

    by = {(c["model"], _column(c)): c for c in cells}
    names = {m: m + (" [UNTRAINED]" if any(c["untrained"] for c in cells if c["model"] == m) else "") for m in models}
    width = max(len(n) for n in list(names.values()) + ["model"]) + 2

    def shown(c) -> str:
        return fmt_pm(c.get("score"), (c.get("uncertainty") or {}).get("stderr")) if c else "—"

    col = max([12] + [len(shown(c)) + 2 for c in cells])
    col = max([col] + [len(title(k)) + 2 for k in columns])
    head = f"{'model':<{width}}" + "".join(f"{title(k):>{col}}" for k in columns)
    lines = [f"{grid['headline']} (rows: models; columns: number of fine-tuning tasks)", head, "-" * len(head)]
    for m in models:
        name = names[m]
        row = "".join(f"{shown(by.get((m, k))):>{col}}" for k in columns)
        lines.append(f"{name:<{width}}{row}")
    paired = [c for c in cells if c.get("vs_base")]
    if paired:
        lines.append("change against no FT, paired over shared items (95% interval; significant only when it excludes 0):")
    for c in paired:
        d = c["vs_base"]
        ci = f"[{d['ci95'][0]:+.1f}, {d['ci95'][1]:+.1f}]" if d.get("ci95") else "no interval"
        p = f", p {fmt_p(d['p_value'])}" if d.get("p_value") is not None else ""
        verdict = ("gain" if d["diff"] > 0 else "loss") if d["significant"] else "no significant change"
        lines.append(f"  {names[c['model']]} · {title(_column(c))}: {d['diff']:+.1f} {ci}{p}, "
                     f"{d['n_paired']} items paired: {verdict}")
    lines += [f"warning: {note}" for note in grid.get("pairing_notes") or []]
    return "\n".join(lines)


def _column(cell: dict) -> tuple[int | None, str | None]:
    """A grid.json cell's column in format_table: its number of fine-tuning tasks and its mixture."""
    return cell["num_tasks"], cell.get("mixture")
