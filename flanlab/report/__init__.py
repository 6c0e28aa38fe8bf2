"""Reports: run folders (results.json, training summaries) -> one HTML page, its Markdown twin and PNG plots.

    from flanlab.report import write_report
    index = write_report(["runs/scale-tiny"], "reports/scale-tiny")   # -> reports/scale-tiny/index.html

The steps, one module each: load.py finds and reads the runs, tables.py computes what is shown, plots.py
draws the PNGs, html.py and markdown.py render the two pages.
"""

from __future__ import annotations

import os
from pathlib import Path

from flanlab.fileio import atomic_write_bytes, atomic_write_text


def write_report(run_dirs, out_dir: str | os.PathLike, title: str = "flanlab report", notes: str | None = None) -> Path:
    """Write out_dir/index.html (self-contained: plots inlined), out_dir/report.md and out_dir/plots/*.png.

    notes: Markdown written by the report's author (a study's commands, config and reading), placed after the
    title: as written in report.md, converted to HTML in index.html (the author's own text: its HTML is kept).
    Returns the path of index.html. Raises FileNotFoundError when no results.json is found."""
    # imported here, not at the top: importing any flanlab.report.* module runs this package first, and
    # plots loads matplotlib, which the report's readers (flanlab.report.load, .tables) do not need
    from flanlab.report import html, markdown, plots
    from flanlab.report.load import load_runs
    from flanlab.report.tables import headline

    out_dir = Path(out_dir)
    runs = load_runs(list(run_dirs))
    head = headline(runs)
    pngs = plots.draw_all(runs, head)
    plot_files = {}
    for stem, png in pngs.items():
        atomic_write_bytes(out_dir / "plots" / f"{stem}.png", png)
        plot_files[stem] = f"plots/{stem}.png"
    atomic_write_text(out_dir / "report.md", markdown.render(runs, head, plot_files, title=title, notes=notes))
    index = out_dir / "index.html"
    atomic_write_text(index, html.render(runs, head, pngs, title=title, notes=notes))
    return index
