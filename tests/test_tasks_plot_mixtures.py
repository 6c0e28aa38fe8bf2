"""Two mixtures with as many tasks are two points of the tasks plot, each labelled with its mixture (as the scale
table's columns); keyed by the count alone they shared one x, joined by the model's line under one label
(flanlab.report.plots.task_column). Nor does the model's line join them side by side, as if one were a step past
the other: it runs through the counts with one mixture, and same-count points stand unjoined in its colour. The size plot draws a line per (number of tasks, mixture) likewise."""

from __future__ import annotations

from pathlib import Path

from flanlab.report import plots
from flanlab.report.load import Run
from flanlab.report.tables import Headline


def _run(label, model, num_tasks, mixture, parameters):
    return Run(path=Path("."), results={}, label=label, model=model, num_tasks=num_tasks, untrained=False,
               parameters=parameters, mixture=mixture)


def _drawn(monkeypatch, fn, runs, head):
    figures = []
    monkeypatch.setattr(plots, "_png", lambda fig: figures.append(fig) or b"png")
    assert fn(runs, head) == b"png"
    (ax,) = figures[0].axes
    return ax


RUNS = [_run("s base", "s", 0, None, 100), _run("s a", "s", 9, "runs/scale/mixtures/mix-a", 100),
        _run("s b", "s", 9, "runs/scale/mixtures/mix-b", 100), _run("s 20", "s", 20, "mix-20", 100),
        _run("l base", "l", 0, None, 1000), _run("l a", "l", 9, "mix-a", 1000), _run("l b", "l", 9, "mix-b", 1000)]
HEAD = Headline("normalized average", "", {"s base": 10.0, "s a": 20.0, "s b": 30.0, "s 20": 25.0,
                                           "l base": 15.0, "l a": 35.0, "l b": 40.0})


def test_each_mixture_is_its_own_labelled_point(monkeypatch):
    ax = _drawn(monkeypatch, plots.plot_tasks, RUNS, HEAD)
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["0 (no FT)", "9 (mix-a)", "9 (mix-b)", "20"]
    line, apart = ax.containers[0].lines[0], ax.containers[1].lines[0]  # model s: its line, its same-count points
    assert list(line.get_xdata()) == [0, 3] and list(line.get_ydata()) == [10.0, 25.0]
    assert list(apart.get_xdata()) == [1, 2] and list(apart.get_ydata()) == [20.0, 30.0]
    assert apart.get_linestyle() == "None" and apart.get_color() == line.get_color()  # never joined, one colour
    assert ax.get_legend_handles_labels()[1] == ["s", "l"]  # one legend entry a model
    (only_apart,) = [c.lines[0] for c in ax.containers[2:] if list(c.lines[0].get_xdata()) == [1, 2]]
    assert only_apart.get_linestyle() == "None"  # model l: 0 joined to nothing, mix-a and mix-b unjoined


def test_the_size_plot_draws_a_line_per_mixture(monkeypatch):
    ax = _drawn(monkeypatch, plots.plot_size, RUNS, HEAD)
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["not fine-tuned", "9 tasks (mix-a)", "9 tasks (mix-b)", "20 tasks"]
    ys = sorted(tuple(c.lines[0].get_ydata()) for c in ax.containers)  # each errorbar's data line
    assert ys == [(10.0, 15.0), (20.0, 35.0), (25.0,), (30.0, 40.0)]  # each mixture its own line, never the two joined
