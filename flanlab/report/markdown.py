"""The report's Markdown twin: the same tables as the HTML page, plots linked as plots/<name>.png.

Markdown renders raw HTML and link syntax, so run text is escaped twice over: HTML special characters become
entities and Markdown punctuation is backslash-escaped (`md`); table cells also lose their newlines and pipes.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone

from flanlab.report import tables
from flanlab.report.load import Run
from flanlab.report.plots import CAPTIONS, UNTRAINED
from flanlab.report.tables import Headline

_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}()#+!|~])")


def md(text) -> str:
    """Run text made inert in Markdown: entities for < > & and quotes, backslashes before Markdown syntax."""
    escaped = _MD_SPECIAL.sub(r"\\\1", str(text))  # first: html.escape's entities (&#x27;) hold a "#"
    escaped = html.escape(escaped, quote=True)
    return escaped.replace("\r", "").replace("\n", " ⏎ ")


def _label(run: Run) -> str:
    return md(run.label) + (f" **[{UNTRAINED}]**" if run.untrained else "")


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _cell(score, delta=None, n=None, stderr=None, paired=None, cut=None) -> str:
    """"28.0 ± 1.7 (+2.0, 95% CI [-3.1, +7.2]: no significant change) n=20"; a change is in bold only when
    significant, and says "not paired" where there were no per-item samples to pair."""
    if score is None:
        return "—"
    text = tables.fmt_pm(score, stderr)
    if delta is not None:
        text += " " + _change(delta, paired)
    if n is not None:
        text += f" n={n}"
    if cut:
        text += f", {cut} cut"
    return text


def _change(delta: float, paired) -> str:
    text = f"({tables.fmt_score(delta, signed=True)})"
    if paired is None:
        return f"{text} not paired"
    # the change shown is the paired one (over the shared items), the number its interval belongs to
    text = f"({tables.fmt_score(paired.diff, signed=True)}{md(tables.fmt_shared(paired))})"
    if paired.significant:
        return f"**{text}** 95% CI {tables.fmt_ci(paired)}, p {tables.fmt_p(paired.p_value)}: {paired.verdict()}"
    return f"{text} 95% CI {tables.fmt_ci(paired)}: no significant change"


def render(runs: list[Run], head: Headline, plot_files: dict[str, str], title: str = "flanlab report",
           notes: str | None = None) -> str:
    """The Markdown page; plot_files maps plot stem -> relative PNG path; notes: the author's Markdown, as is."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [f"# {md(title)}", "", f"Generated {now} from {len(runs)} evaluation run(s). Scores are percentages.", ""]
    if notes:
        out += [notes.strip(), ""]
    untrained = sorted({r.model for r in runs if r.untrained})
    if untrained:
        out += [f"> **Untrained models ({UNTRAINED}):** {', '.join(md(m) for m in untrained)}. Their numbers are "
                "meaningless; they are here only to exercise the pipeline.", ""]

    pairing = tables.pairing_notes(runs)
    if pairing:  # beside the changes they concern, not only in a log
        out += ["> **Pairing:**", ">"] + [f"> - {md(n)}" for n in pairing] + [""]

    out += ["## What the numbers rest on", ""]
    out += [f"- {md(s)}" for s in tables.budget_sentences(runs)] + [""]

    out += ["## Summary", "", md(head.description), ""]
    deltas = tables.headline_deltas(runs, head)
    paired = tables.headline_paired(runs, head)
    second = tables.secondary(runs, head)
    second_deltas = tables.headline_deltas(runs, second) if second else {}
    second_paired = tables.headline_paired(runs, second) if second else {}
    rows = []
    for run, b in zip(runs, tables.budget_rows(runs)):
        d = deltas[run.label]
        extra = ([_cell(second.values.get(run.label), second_deltas[run.label], None, second.stderr(run.label),
                        second_paired[run.label])] if second else [])
        rows.append([_label(run), md(run.model), b["parameters"], md(b["tasks"]),
                     f"**{tables.fmt_pm(head.values.get(run.label), head.stderr(run.label))}**",
                     _change(d, paired[run.label]) if d is not None else "—"] + extra)
    header = ["run", "model", "parameters", "fine-tuning tasks", md(head.name), "Δ vs not fine-tuned"]
    out += [_table(header + ([md(second.name)] if second else []), rows), ""]

    out += ["## Results per benchmark and mode", "",
            "Each cell: score ± one standard error, in brackets the change against the same model before fine-tuning "
            "with its paired 95% interval, n the number of items. A change is a gain or a loss (in bold) only when "
            "its interval excludes 0.", ""]
    rows, cut = [], False
    for row in tables.results_rows(runs):
        cells = [_cell(c.score, c.delta, c.n, c.stderr, c.paired, c.cut) for c in (row["cells"][r.label] for r in runs)]
        cut = cut or any(c.cut for c in row["cells"].values())
        rows.append([md(row["benchmark"]), md(row["mode"]), md(row["metric"]), md(row["scoring"])] + cells)
    out += [_table(["benchmark", "mode", "metric", "scoring"] + [_label(r) for r in runs], rows), ""]
    if cut:
        out += [md(tables.CUT_NOTE) + ".", ""]

    out += ["## Paired comparisons", "",
            "Each fine-tuned run against the same model before fine-tuning, and against the same model fine-tuned on "
            "the next smaller number of tasks, over the items both scored: change, 95% "
            "interval (paired bootstrap over items, within each subtask), p-value, exact McNemar p for 0/1 scores.", ""]
    rows = []
    for r in tables.comparisons(runs, head):
        d = r["diff"]
        if d is None:
            rows.append([md(r["run"]), md(r["baseline"]), md(r["what"]), tables.fmt_score(r["delta"], signed=True),
                         "—", "—", "—", "—", f"not paired: {md(r['why'])}"])
            continue
        paired_n = f"{d.n_paired}" + (f" ({d.n_only_a} + {d.n_only_b} unshared)" if d.n_only_a or d.n_only_b else "")
        rows.append([md(r["run"]), md(r["baseline"]), md(r["what"]), tables.fmt_score(d.diff, signed=True),
                     tables.fmt_ci(d), tables.fmt_p(d.p_value), tables.fmt_p(d.mcnemar_p), paired_n,
                     f"**{d.verdict()}**" if d.significant else d.verdict()])
    out += [_table(["run", "against", "what", "change", "95% CI", "p (bootstrap)", "p (McNemar)", "items paired",
                    "verdict"], rows) if rows else "No run has an un-fine-tuned counterpart to compare with.", ""]

    out += ["## Plots", ""]
    for stem, path in plot_files.items():
        out += [f"![{stem} plot]({path})", "", f"*{CAPTIONS.get(stem, stem)}*", ""]

    out += ["## Per-subtask breakdown", ""]
    for t in tables.subtask_tables(runs):
        out += [f"### {md(t['benchmark'])} / {md(t['mode'])}", ""]
        rows = []
        for name, cells in t["rows"]:
            rows.append([md(name)] + [_cell(score, None, n, se) for score, n, se in (cells[r.label] for r in runs)])
        out += [_table(["subtask"] + [_label(r) for r in runs], rows), ""]

    out += ["## Training budget", ""]
    keys = ["parameters", "tasks", "steps", "tokens", "flops", "wall_time", "loss", "eval_items", "limit", "eval_time"]
    heads = ["parameters", "tasks", "steps", "tokens", "train FLOPs", "train wall time", "loss first → last",
             "eval items", "limit / subtask", "eval time"]
    rows = [[_label(run)] + [md(b[k]) for k in keys] for run, b in zip(runs, tables.budget_rows(runs))]
    out += [_table(["run"] + heads, rows), ""]

    out += ["## Sample outputs", ""]
    for run in runs:
        if not run.samples:
            continue
        rows = [[md(f"{s.get('benchmark', '')}/{s.get('mode', '')} {s.get('subtask', '')}"), md(str(s.get("output", ""))[:300]),
                 md(s.get("extracted", "")), md(s.get("target", "")), md(s.get("correct", "?"))] for s in run.samples]
        out += [f"### {_label(run)}", "", _table(["item", "output", "extracted", "target", "correct"], rows), ""]
    return "\n".join(out) + "\n"
