"""The end-to-end demo behind `make demo` / `flanlab demo`: the paper's method, small enough for a laptop CPU.

Stages, each said with its wall time (status lines on stderr; the before/after summary and the report's path, the
demo's result, on stdout); a rerun skips the finished ones only when they ran with the settings
they would run with now, else it stops naming the folder and what differs; a killed stage resumes (the rule of
flanlab/stages.py, which `flanlab scale` follows too):
  1. mixture  build a small instruction-tuning mixture from the built-in task families
              (configs/mixtures/demo.yaml; with --data-dir, configs/mixtures/real.yaml cut to the same size:
              the real training sources found there beside the built-in families)
  2. before   evaluate the model (default: the SmolLM2-135M-Instruct preset) on the synthetic held-out suite:
              direct answers by rank scoring, a small chain-of-thought generation subset (generation is the
              slow part on CPU: ~25 tokens/s for SmolLM2); with --data-dir also the real benchmarks (MMLU, BBH,
              TyDiQA, MGSM), a subset of --limit items per subtask. That is far slower: even at --limit 1 the
              CoT prompts are long (MGSM's 8 native exemplars: ~40 s an item for SmolLM2 on 2 cores), and the
              whole demo took 75 min here with the machine shared (34 min per evaluation), against 9 min offline
  3. train    fine-tune briefly (configs/train/smollm2-demo.yaml)
  4. after    evaluate the fine-tuned model exactly as in stage 2
  5. report   the HTML page and its Markdown twin with before/after (score ± SE), each change as a paired
              comparison over the items both evaluations scored (95% interval, p; a gain or a loss only when
              the interval excludes 0) and plots with 95% error bars; the closing lines say what is significant

Layout of the output folder (default runs/demo; with a data dir runs/demo-data):
  mixture/  before/  train/  after/  report/index.html  report/report.md  stages.json

Everything runs offline on these embedded defaults (DemoConfig); `flanlab demo key=value` changes any of them,
e.g. `model=tiny-llama` for a smoke test.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from flanlab.config import ConfigError, Text, apply_overrides, from_dict, read_yaml, to_dict
from flanlab.fileio import atomic_write_json
from flanlab.log import get_logger
from flanlab.report import write_report
from flanlab.report.load import load_runs, mixture_num_tasks
from flanlab.report.tables import (comparisons, fmt_ci, fmt_p, fmt_pm, fmt_score, headline, pairing_notes,
                                   results_rows)
from flanlab.runlock import run_lock
from flanlab.scale import (
    EVALUATED, EvalPart, TrainPart, evaluate_model, evaluation_check, mixture_stage, resolve_path, training_stage,
)
from flanlab.settings import data_dir as resolve_data_dir
from flanlab.stages import Stage, Stages, normalised

log = get_logger(__name__)
HERE = Path(__file__)  # configs/ paths below are found from here (the repo) when not found from the current folder


@dataclass
class DemoConfig:
    model: Text = "smollm2-135m-instruct"
    mixture: Text = "configs/mixtures/demo.yaml"  # offline: the built-in task families
    mixture_overrides: list[str] = field(default_factory=list)
    # with a data dir: the real training sources beside the built-in families, cut to the demo's size and lengths
    mixture_with_data: Text = "configs/mixtures/real.yaml"
    mixture_with_data_overrides: list[str] = field(default_factory=lambda: [
        "size=3000", "validation_size=200", "max_input_tokens=256", "max_target_tokens=128", "fewshot=2"])
    train: TrainPart = field(default_factory=lambda: TrainPart(config="configs/train/smollm2-demo.yaml"))
    # the synthetic held-out suite: every family, `limit` items each for direct (rank scoring), fewer for CoT
    synthetic: EvalPart = field(default_factory=lambda: EvalPart(
        suite="synthetic", modes=["direct", "cot"], limit=20, mode_limits={"cot": 4}, scoring="auto", batch_size=8))
    # the real benchmarks, only with a data dir; --limit sets their items per subtask
    real: EvalPart = field(default_factory=lambda: EvalPart(
        suite="flan-heldout", modes=["direct", "cot"], limit=1, scoring="auto", batch_size=8))
    output_dir: Text | None = None  # default: runs/demo, or runs/demo-data with a data dir (kept apart for resuming)


def _deep_merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value
    return base


def load_demo_config(path=None, overrides: list[str] | None = None) -> DemoConfig:
    """The embedded defaults, updated field by field by a YAML file and key=value overrides.

    (Nested defaults are kept: `real.limit=5` changes the limit and leaves real.suite at flan-heldout.)"""
    data = to_dict(DemoConfig())
    if path is not None:
        _deep_merge(data, read_yaml(path))
    apply_overrides(data, overrides)
    where = str(path) if path is not None else "demo config"
    config = from_dict(DemoConfig, data, where)
    for name in ("synthetic", "real"):
        try:
            getattr(config, name).chat()  # multiturn or a system turn without the chat template
        except ValueError as e:
            raise ConfigError(f"{where}: {name}: {e}") from None
        getattr(config, name).check_sampling(f"{where}: {name}")  # a temperature self_consistency 1 would ignore
    return config


def _eval_parts(config: DemoConfig, data_dir: Path | None) -> list[EvalPart]:
    return [config.synthetic] + ([config.real] if data_dir is not None else [])


def _eval_settings(config: DemoConfig, data_dir: Path | None) -> dict:
    """What the before/after numbers depend on beyond the model: the eval parts (EvalConfig.recorded: their fields,
    and the templated prompts' format; JSON-normalised, as run_info.json stores them). A finished stage is skipped
    only when it recorded these (flanlab.scale.evaluation_check)."""
    return normalised({"eval": [p.recorded() for p in _eval_parts(config, data_dir)]})


def _evaluation(name: str, action: str, model: str, out_dir: Path, config: DemoConfig, data_dir: Path | None,
                info: dict, progress: bool, inputs: tuple[str, ...] = ()) -> Stage:
    """The before or after stage: `model` evaluated into out_dir on the demo's eval parts."""
    check = evaluation_check(out_dir, info["settings"], model=info["model"], parts=_eval_parts(config, data_dir),
                             data_dir=data_dir)
    return Stage(name, action, out_dir, EVALUATED, check=check,
                 work=lambda: evaluate_model(model, out_dir, _eval_parts(config, data_dir), data_dir, info, progress),
                 inputs=inputs)


def run_demo(config: DemoConfig, data_dir=None, progress: bool = True) -> Path:
    """Run (or finish) the demo; return the path of the report's index.html. The data dir is read here, once:
    data_dir (--data-dir), else FLANLAB_DATA_DIR, else none."""
    data = resolve_data_dir(data_dir)
    out = Path(config.output_dir or ("runs/demo-data" if data else "runs/demo"))
    with run_lock(out, "demo"):  # a second demo on the same folder stops at once
        return _run_demo(config, out, data, progress)


def _run_demo(config: DemoConfig, out: Path, data: Path | None, progress: bool) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stages = Stages()
    t0 = time.time()
    log.info("demo: %s, output in %s%s", config.model, out.resolve(),
             f", real data from {data}" if data else ", offline on the built-in task families")

    if data is None:
        mixture_yaml, mixture_overrides = resolve_path(config.mixture, HERE), config.mixture_overrides
    else:
        mixture_yaml, mixture_overrides = resolve_path(config.mixture_with_data, HERE), config.mixture_with_data_overrides
    stages.run(mixture_stage("1/5 mixture", mixture_yaml, out / "mixture", data, mixture_overrides, progress))
    num_tasks = mixture_num_tasks(out / "mixture")
    log.info("  %s tasks in %s", num_tasks if num_tasks is not None else "?", out / "mixture")

    settings = _eval_settings(config, data)
    before_info = {"label": f"{config.model} · before fine-tuning", "model": config.model, "num_tasks": 0,
                   "mixture": None, "train_dir": None, "stage": "before", "settings": settings}
    stages.run(_evaluation("2/5 before", f"evaluate {config.model}", config.model, out / "before", config, data,
                           before_info, progress))

    train_part = config.train
    if train_part.config:
        train_part = TrainPart(config=str(resolve_path(train_part.config, HERE)), overrides=train_part.overrides,
                               per_model=train_part.per_model)
    stages.run(training_stage("3/5 train", "fine-tune briefly", config.model, out / "mixture", out / "train",
                              train_part, progress=progress, data_dir=data))

    after_info = {"label": f"{config.model} · after fine-tuning", "model": config.model, "num_tasks": num_tasks,
                  "mixture": "demo", "train_dir": "../train", "stage": "after", "settings": settings}
    stages.run(_evaluation("4/5 after", "evaluate the fine-tuned model", str(out / "train" / "model"),
                           out / "after", config, data, after_info, progress, inputs=("3/5 train",)))

    with stages.timed("5/5 report"):
        index = write_report([out / "before", out / "after"], out / "report", title=f"flanlab demo: {config.model}")
    times = stages.times

    previous = json.loads((out / "stages.json").read_text()).get("stages_s", {}) if (out / "stages.json").is_file() else {}
    atomic_write_json(out / "stages.json", {"stages_s": {**previous, **times}, "this_invocation_s": round(time.time() - t0, 1)})
    # the demo's result, on stdout: the before/after summary and the closing lines
    print(summary_text(out))
    print(f"[flanlab] demo finished in {time.time() - t0:.0f} s (this invocation). Stage times: "
          + ", ".join(f"{k.split(':')[0]} {v:.0f} s" for k, v in times.items()))
    print(f"[flanlab] report: {index.resolve()}")
    return index


def summary_text(out: Path) -> str:
    """Before/after per benchmark and mode (score ± SE), the headline, and which changes are significant: each
    change is a paired comparison over the items both evaluations scored (flanlab.report.tables.comparisons)."""
    runs = load_runs([out / "before", out / "after"])
    head = headline(runs)
    labels = [r.label for r in runs]
    lines = [f"{'benchmark/mode':<24}" + "".join(f"{lab.split(' · ')[-1]:>22}" for lab in labels)
             + "   (± one standard error)"]
    for row in results_rows(runs):
        cells = [row["cells"][lab] for lab in labels]
        lines.append(f"{row['benchmark'] + '/' + row['mode']:<24}" + "".join(f"{fmt_pm(c.score, c.stderr):>22}" for c in cells))
    lines.append(f"{head.name:<24}" + "".join(f"{fmt_pm(head.values.get(lab), head.stderr(lab)):>22}" for lab in labels))
    significant, unchanged, untested = [], [], []
    for c in comparisons(runs, head):
        d = c["diff"]
        if d is None:
            lines.append(f"  {c['what']}: {fmt_score(c['delta'], signed=True)} (not paired: {c['why']})")
            untested.append(c["what"])
            continue
        lines.append(f"  {c['what']}: {fmt_score(d.diff, signed=True)}, 95% CI {fmt_ci(d)}, p {fmt_p(d.p_value)}, "
                     f"{d.n_paired} items paired: {d.verdict()}")
        (significant if d.significant else unchanged).append(f"{c['what']} ({d.verdict()})" if d.significant else c["what"])
    lines.append("significant changes after fine-tuning: " + (", ".join(significant) or "none")
                 + "; no significant change: " + (", ".join(unchanged) or "none")
                 + (f"; not tested (not paired): {', '.join(untested)}" if untested else ""))
    lines += [f"warning: {note}" for note in pairing_notes(runs)]
    return "\n".join(lines)
