"""The report's PNG plots, drawn with matplotlib's Agg canvas (no display, no pyplot global state).

PLOTS is the registry: file stem -> function(runs, headline) -> PNG bytes, or None when the runs hold nothing
to draw (for example no training run, hence no loss curve).
- tasks:      the headline score against the number of fine-tuning tasks, one line per model (the paper's
              Figure 4-style plot); 0 tasks is the model before fine-tuning; two mixtures of as many tasks are two
              places on the axis, each labelled with its mixture (task_column), as the scale table's columns;
- size:       the headline score against model size (parameters, log scale), one line per number of tasks and
              mixture (drawn when the runs hold at least two model sizes);
- benchmarks: one bar per run for each benchmark and mode;
- loss:       training loss against step, one curve per training run.
Untrained models are labelled "untrained — random weights" in every legend. Every score is drawn with its 95%
interval as an error bar (the headline's from the per-item samples, a benchmark's from results.json); a point
without one (no samples, a single item, an old results.json) has no bar.
"""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from flanlab.report.load import Run
from flanlab.report.tables import Headline, ordered_keys, entry

UNTRAINED = "untrained — random weights"


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def _yerr(points: list[tuple[float, tuple[float, float] | None]]) -> list[list[float]]:
    """matplotlib's asymmetric yerr [[below...], [above...]] from (value, 95% interval or None) pairs."""
    below = [max(0.0, v - ci[0]) if ci else 0.0 for v, ci in points]
    above = [max(0.0, ci[1] - v) if ci else 0.0 for v, ci in points]
    return [below, above]


def _head_ci(head: Headline, label: str) -> tuple[float, float] | None:
    e = head.estimates.get(label)
    return (e.ci_low, e.ci_high) if e is not None and e.ci_low is not None and e.ci_high is not None else None


def _model_label(model: str, runs: list[Run]) -> str:
    untrained = any(r.untrained for r in runs if r.model == model)
    return f"{model} ({UNTRAINED})" if untrained else model


def task_column(run: Run) -> tuple[int, str | None]:
    """Where a run sits on the task axis: its number of fine-tuning tasks (0 before fine-tuning) and its mixture
    (None before fine-tuning). Two mixtures of as many tasks are two places, as the scale table's columns: keyed by
    the count alone, their scores were drawn as one point of a line, or joined into one line, under one label."""
    if not run.fine_tuned:
        return 0, None
    return run.num_tasks, (Path(run.mixture).name if run.mixture else None)


def task_title(column: tuple[int, str | None], columns, unit: str = "") -> str:
    """A task-axis label: "9" (+ unit, e.g. " tasks"), with the mixture named where another mixture of `columns`
    has as many tasks ("9 (mix-a)"); "0 (no FT)" before fine-tuning."""
    n, mixture = column
    if n == 0 and mixture is None:
        return "0 (no FT)"
    repeated = sum(1 for m, _ in columns if m == n) > 1
    return f"{n}{unit}" + (f" ({mixture or '?'})" if repeated else "")


def plot_tasks(runs: list[Run], head: Headline) -> bytes | None:
    points = [(r, head.values.get(r.label)) for r in runs if r.num_tasks is not None]
    points = [(r, v) for r, v in points if v is not None]
    if not points:
        return None
    columns = sorted({task_column(r) for r, _ in points}, key=lambda c: (c[0], c[1] or ""))
    xpos = {c: i for i, c in enumerate(columns)}  # evenly spaced categories, as in the paper's figure
    fig = Figure(figsize=(max(7, 1.1 * len(columns)), 4.2))
    ax = fig.add_subplot()
    for model in dict.fromkeys(r.model for r, _ in points):
        mine = sorted((xpos[task_column(r)], v, r.label) for r, v in points if r.model == model)
        # a model's line runs through the task counts it has one mixture of; two mixtures of as many tasks are
        # alternatives, not steps of a trend: their points stand apart, in the line's colour, unjoined
        count = [columns[x][0] for x, _, _ in mine]
        joined = [p for p, n in zip(mine, count) if count.count(n) == 1]
        apart = [p for p, n in zip(mine, count) if count.count(n) > 1]
        color = None
        for part, style in ((joined, "-"), (apart, "none")):
            if not part:
                continue
            bars = ax.errorbar([x for x, _, _ in part], [v for _, v, _ in part],
                               yerr=_yerr([(v, _head_ci(head, lab)) for _, v, lab in part]), marker="o", capsize=3,
                               linestyle=style, color=color, label=None if color else _model_label(model, runs))
            color = bars.lines[0].get_color()
        for x, v, _ in mine:
            ax.annotate(f"{v:.1f}", (x, v), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    ax.set_xticks(range(len(columns)), [task_title(c, columns) for c in columns],
                  fontsize=8 if len(columns) > len({n for n, _ in columns}) else None)
    ax.set_xlabel("number of fine-tuning tasks")
    ax.set_ylabel(head.name)
    ax.set_title(f"{head.name} vs number of fine-tuning tasks")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    notes = []
    if head.name != "normalized average":
        notes.append(f"y: {head.name} — not the paper's normalized average")
    if len(columns) > len({n for n, _ in columns}):
        notes.append("mixtures with as many tasks: their points are not joined by the model's line")
    for i, note in enumerate(notes):
        fig.text(0.01, -0.02 - 0.04 * i, note, fontsize=8, style="italic")
    return _png(fig)


def plot_size(runs: list[Run], head: Headline) -> bytes | None:
    points = [(r, head.values.get(r.label)) for r in runs if r.parameters and r.num_tasks is not None]
    points = [(r, v) for r, v in points if v is not None]
    if len({r.parameters for r, _ in points}) < 2:
        return None  # one model size: nothing to compare
    fig = Figure(figsize=(7, 4.2))
    ax = fig.add_subplot()
    columns = sorted({task_column(r) for r, _ in points}, key=lambda c: (c[0], c[1] or ""))
    for column in columns:  # a line per (number of tasks, mixture)
        mine = sorted(((r.parameters, v, r) for r, v in points if task_column(r) == column),
                      key=lambda t: (t[0], t[1]))
        label = "not fine-tuned" if column == (0, None) else task_title(column, columns, " tasks")
        ax.errorbar([p for p, _, _ in mine], [v for _, v, _ in mine],
                    yerr=_yerr([(v, _head_ci(head, r.label)) for _, v, r in mine]), marker="o", capsize=3, label=label)
        for p, v, r in mine:
            name = r.model + (f"\n({UNTRAINED})" if r.untrained else "")
            ax.annotate(name, (p, v), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("model parameters (log scale)")
    ax.set_ylabel(head.name)
    ax.set_title(f"{head.name} vs model size")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def plot_benchmarks(runs: list[Run], head: Headline) -> bytes | None:
    keys = ordered_keys(runs)
    if not keys:
        return None
    width = 0.8 / max(1, len(runs))
    fig = Figure(figsize=(max(6, 1.2 * len(keys) * max(1, len(runs)) ** 0.5 + 2), 4.2))
    ax = fig.add_subplot()
    for i, run in enumerate(runs):
        xs, ys, cis = [], [], []
        for k, (bench, mode) in enumerate(keys):
            e = entry(run, bench, mode)
            if e is not None and isinstance(e.get("score"), (int, float)):
                xs.append(k - 0.4 + width * (i + 0.5))
                ys.append(e["score"])
                ci = ((e.get("uncertainty") or {}).get("score") or {}).get("ci95")
                cis.append((ci[0], ci[1]) if isinstance(ci, list) and None not in ci else None)
        label = run.label + (f" ({UNTRAINED})" if run.untrained else "")
        ax.bar(xs, ys, width=width, label=label, yerr=_yerr(list(zip(ys, cis))) if xs else None, capsize=2,
               error_kw={"elinewidth": 1})
    ax.set_xticks(range(len(keys)), [f"{b}\n{m}" for b, m in keys], fontsize=8)
    ax.set_ylabel("score (%)")
    ax.set_title("score per benchmark and mode")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _png(fig)


def plot_loss(runs: list[Run], head: Headline) -> bytes | None:
    curves = {}
    for run in runs:
        if run.train and run.train.log and str(run.train.path) not in curves:
            curves[str(run.train.path)] = run
    if not curves:
        return None
    fig = Figure(figsize=(7, 4.2))
    ax = fig.add_subplot()
    for run in curves.values():
        rows = [row for row in run.train.log if isinstance(row.get("loss"), (int, float))]
        label = run.label + (f" ({UNTRAINED})" if run.untrained else "")
        ax.plot([row.get("step", i) for i, row in enumerate(rows)], [row["loss"] for row in rows], label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (targets only)")
    ax.set_title("fine-tuning loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


PLOTS = {
    "tasks": plot_tasks,
    "size": plot_size,
    "benchmarks": plot_benchmarks,
    "loss": plot_loss,
}

CAPTIONS = {
    "tasks": "Headline score against the number of fine-tuning tasks, one line per model (0 = before fine-tuning); "
             "error bars: 95% intervals.",
    "size": "Headline score against model size, one line per number of fine-tuning tasks and mixture; error bars: "
            "95% intervals.",
    "benchmarks": "Score per benchmark and mode, one bar per run; error bars: 95% intervals.",
    "loss": "Training loss (on targets only) against step, one curve per fine-tuning run.",
}


def draw_all(runs: list[Run], head: Headline) -> dict[str, bytes]:
    """stem -> PNG bytes for every plot the runs can fill."""
    out = {}
    for stem, fn in PLOTS.items():
        png = fn(runs, head)
        if png:
            out[stem] = png
    return out
