"""The report as one self-contained HTML page: inline CSS, PNG plots embedded as data: URIs, no script.

Every piece of text that comes from a run (model names, labels, benchmark names, prompts and outputs) goes
through `esc` (html.escape, quotes included); nothing from a run is ever inserted unescaped.
"""

from __future__ import annotations

import base64
import html
from datetime import datetime, timezone

from flanlab.report import tables
from flanlab.report.load import Run
from flanlab.report.plots import CAPTIONS, UNTRAINED
from flanlab.report.tables import Headline

CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .9rem; }
th, td { border: 1px solid #d0d0d0; padding: .25rem .55rem; text-align: right; vertical-align: top; }
th { background: #f4f4f6; } td.l, th.l { text-align: left; }
.warn { background: #fff3cd; border: 1px solid #e0c060; padding: .6rem .9rem; border-radius: 4px; }
.badge { background: #b00020; color: #fff; border-radius: 3px; padding: 0 .35rem; font-size: .75rem;
         white-space: nowrap; }
.pos { color: #0a7a2f; } .neg { color: #b00020; } .muted { color: #666; font-size: .85rem; }
figure { margin: 1rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
pre { white-space: pre-wrap; word-break: break-word; background: #f7f7f9; padding: .4rem; margin: 0;
      max-height: 14rem; overflow: auto; font-size: .8rem; }
.scroll { overflow-x: auto; } details { margin: .4rem 0; } summary { cursor: pointer; }
"""


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def _label(run: Run) -> str:
    badge = f' <span class="badge">{esc(UNTRAINED)}</span>' if run.untrained else ""
    return f"{esc(run.label)}{badge}"


def _delta(d, paired=None) -> str:
    """A change in brackets: green/red only when the paired comparison finds it significant (its 95% interval
    excludes 0); otherwise grey, "no significant change" or "not paired" (no per-item samples) beside it."""
    if d is None:
        return ""
    text = f"({esc(tables.fmt_score(d, signed=True))})"
    if paired is None:
        return f' <span class="muted">{text} not paired</span>'
    # the change shown is the paired one (over the shared items), the number its interval and colour belong to
    text = f"({esc(tables.fmt_score(paired.diff, signed=True))}{esc(tables.fmt_shared(paired))})"
    if paired.significant:
        cls = "pos" if paired.diff > 0 else "neg"
        return (f' <span class="{cls}">{text}</span> <span class="muted">95% CI {esc(tables.fmt_ci(paired))}, '
                f'p {esc(tables.fmt_p(paired.p_value))}</span>')
    return f' <span class="muted">{text} 95% CI {esc(tables.fmt_ci(paired))}: no significant change</span>'


def _summary_table(runs: list[Run], head: Headline) -> str:
    deltas = tables.headline_deltas(runs, head)
    paired = tables.headline_paired(runs, head)
    second = tables.secondary(runs, head)
    second_deltas = tables.headline_deltas(runs, second) if second else {}
    second_paired = tables.headline_paired(runs, second) if second else {}
    extra = f"<th>{esc(second.name)}</th>" if second else ""
    out = ['<table><tr><th class="l">run</th><th class="l">model</th><th>parameters</th>'
           f'<th>fine-tuning tasks</th><th>{esc(head.name)}</th><th>Δ vs not fine-tuned</th>{extra}</tr>']
    for run, b in zip(runs, tables.budget_rows(runs)):
        d = deltas[run.label]
        extra = (f"<td>{esc(tables.fmt_pm(second.values.get(run.label), second.stderr(run.label)))}"
                 f"{_delta(second_deltas[run.label], second_paired[run.label])}</td>" if second else "")
        out.append(
            f'<tr><td class="l">{_label(run)}</td><td class="l">{esc(run.model)}</td><td>{esc(b["parameters"])}</td>'
            f'<td>{esc(b["tasks"])}</td><td><b>{esc(tables.fmt_pm(head.values.get(run.label), head.stderr(run.label)))}</b></td>'
            f'<td>{_delta(d, paired[run.label]) if d is not None else "—"}</td>{extra}</tr>'
        )
    out.append("</table>")
    return "\n".join(out)


def _results_table(runs: list[Run]) -> str:
    head = "".join(f"<th>{_label(r)}</th>" for r in runs)
    out = [f'<table><tr><th class="l">benchmark</th><th class="l">mode</th><th class="l">metric</th>'
           f'<th class="l">scoring</th>{head}</tr>']
    rows = tables.results_rows(runs)  # pairs each change by bootstrap: computed once
    for row in rows:
        cells = []
        for run in runs:
            c = row["cells"][run.label]
            if c.score is None:
                cells.append("<td>—</td>")
                continue
            n = f' <span class="muted">n={esc(c.n)}</span>' if c.n is not None else ""
            if c.cut:
                n += f' <span class="neg" title="{esc(tables.CUT_NOTE)}">{esc(c.cut)} cut</span>'
            cells.append(f"<td>{esc(tables.fmt_pm(c.score, c.stderr))}{_delta(c.delta, c.paired)}{n}</td>")
        out.append(f'<tr><td class="l">{esc(row["benchmark"])}</td><td class="l">{esc(row["mode"])}</td>'
                   f'<td class="l">{esc(row["metric"])}</td><td class="l">{esc(row["scoring"])}</td>{"".join(cells)}</tr>')
    out.append("</table>")
    if any(c.cut for row in rows for c in row["cells"].values()):
        out.append(f'<p class="muted">{esc(tables.CUT_NOTE)}.</p>')
    return "\n".join(out)


def _comparisons(runs: list[Run], head: Headline) -> str:
    rows = []
    for r in tables.comparisons(runs, head):
        d = r["diff"]
        if d is None:
            rows.append(f'<tr><td class="l">{esc(r["run"])}</td><td class="l">{esc(r["baseline"])}</td>'
                        f'<td class="l">{esc(r["what"])}</td><td>{esc(tables.fmt_score(r["delta"], signed=True))}</td>'
                        f'<td colspan="5" class="l muted">not paired: {esc(r["why"])}</td></tr>')
            continue
        cls = ("pos" if d.diff > 0 else "neg") if d.significant else "muted"
        rows.append(
            f'<tr><td class="l">{esc(r["run"])}</td><td class="l">{esc(r["baseline"])}</td><td class="l">{esc(r["what"])}</td>'
            f'<td><span class="{cls}">{esc(tables.fmt_score(d.diff, signed=True))}</span></td><td>{esc(tables.fmt_ci(d))}</td>'
            f'<td>{esc(tables.fmt_p(d.p_value))}</td><td>{esc(tables.fmt_p(d.mcnemar_p))}</td>'
            f'<td>{d.n_paired}' + (f' <span class="muted">({d.n_only_a} + {d.n_only_b} unshared)</span>'
                                   if d.n_only_a or d.n_only_b else "") + '</td>'
            f'<td class="l"><span class="{cls}">{esc(d.verdict())}</span></td></tr>')
    if not rows:
        return '<p class="muted">No fine-tuned run has an un-fine-tuned counterpart or a run with fewer tasks to compare with.</p>'
    return ('<table><tr><th class="l">run</th><th class="l">against</th><th class="l">what</th><th>change</th>'
            '<th>95% CI</th><th>p (bootstrap)</th><th>p (McNemar)</th><th>items paired</th><th class="l">verdict</th></tr>'
            + "".join(rows) + "</table>")


def _subtask_sections(runs: list[Run]) -> str:
    parts = []
    for t in tables.subtask_tables(runs):
        head = "".join(f"<th>{_label(r)}</th>" for r in runs)
        rows = []
        for name, cells in t["rows"]:
            tds = "".join(
                f"<td>{esc(tables.fmt_pm(s, se))}" + (f' <span class="muted">n={esc(n)}</span>' if n is not None else "") + "</td>"
                for s, n, se in (cells[r.label] for r in runs)
            )
            rows.append(f'<tr><td class="l">{esc(name)}</td>{tds}</tr>')
        parts.append(
            f'<details><summary>{esc(t["benchmark"])} / {esc(t["mode"])} — {len(t["rows"])} subtasks</summary>'
            f'<table><tr><th class="l">subtask</th>{head}</tr>{"".join(rows)}</table></details>'
        )
    return "\n".join(parts) or '<p class="muted">No benchmark with several subtasks.</p>'


def _budget_table(runs: list[Run]) -> str:
    cols = [("parameters", "parameters"), ("tasks", "tasks"), ("steps", "steps"), ("tokens", "tokens"),
            ("flops", "train FLOPs"), ("wall_time", "train wall time"), ("loss", "loss first → last"),
            ("eval_items", "eval items"), ("limit", "limit / subtask"), ("eval_time", "eval time")]
    out = ['<table><tr><th class="l">run</th>' + "".join(f"<th>{esc(h)}</th>" for _, h in cols) + "</tr>"]
    for run, b in zip(runs, tables.budget_rows(runs)):
        out.append(f'<tr><td class="l">{_label(run)}</td>' + "".join(f"<td>{esc(b[k])}</td>" for k, _ in cols) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _samples(runs: list[Run]) -> str:
    parts = []
    for run in runs:
        if not run.samples:
            continue
        rows = []
        for s in run.samples:
            ok = s.get("correct")
            mark = "✓" if ok is True or ok == 1 else "✗" if ok is False or ok == 0 else "?"
            rows.append(
                f'<tr><td class="l">{esc(s.get("benchmark", ""))}/{esc(s.get("mode", ""))}<br>'
                f'<span class="muted">{esc(s.get("subtask", ""))} {esc(s.get("item_id", ""))}</span></td>'
                f'<td class="l"><pre>{esc(str(s.get("prompt", ""))[-1500:])}</pre></td>'
                f'<td class="l"><pre>{esc(s.get("output", ""))}</pre></td>'
                f'<td class="l">{esc(s.get("extracted", ""))}</td><td class="l">{esc(s.get("target", ""))}</td>'
                f"<td>{mark}</td></tr>"
            )
        parts.append(
            f"<details><summary>{_label(run)} — {len(run.samples)} samples</summary>"
            '<table><tr><th class="l">item</th><th class="l">prompt (end)</th><th class="l">output</th>'
            '<th class="l">extracted</th><th class="l">target</th><th>ok</th></tr>' + "".join(rows) + "</table></details>"
        )
    return "\n".join(parts) or '<p class="muted">No samples.jsonl found.</p>'


def _provenance(runs: list[Run]) -> str:
    rows = []
    for run in runs:
        p = run.results.get("provenance") or {}
        settings = run.results.get("settings") or {}
        shown = ", ".join(f"{k}={v}" for k, v in settings.items() if not isinstance(v, (dict, list)))
        rows.append(
            f'<tr><td class="l">{_label(run)}</td><td class="l">{esc(run.path)}</td>'
            f'<td class="l">{esc(p.get("flanlab_version", "—"))}</td><td class="l">{esc(p.get("git_revision") or "—")}</td>'
            f'<td class="l">{esc(p.get("created", "—"))}</td><td class="l">{esc(shown)}</td></tr>'
        )
    return ('<table><tr><th class="l">run</th><th class="l">folder</th><th class="l">flanlab</th><th class="l">git</th>'
            '<th class="l">created</th><th class="l">settings</th></tr>' + "".join(rows) + "</table>")


def render(runs: list[Run], head: Headline, pngs: dict[str, bytes], title: str = "flanlab report",
           notes: str | None = None) -> str:
    """The whole page as a string; notes: the author's Markdown, converted (its own HTML kept: it is their text)."""
    import markdown as markdown_lib

    notes_html = f'<section class="notes">{markdown_lib.markdown(notes, extensions=["tables", "fenced_code"])}</section>' if notes else ""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    untrained = [r for r in runs if r.untrained]
    warn = ""
    if untrained:
        names = ", ".join(sorted({esc(r.model) for r in untrained}))
        warn = (f'<p class="warn"><b>Untrained models ({esc(UNTRAINED)}):</b> {names}. Their numbers are '
                "meaningless; they are here only to exercise the pipeline.</p>")
    pairing = tables.pairing_notes(runs)
    if pairing:  # beside the changes they concern, not only in a log
        warn += ('<div class="warn"><b>Pairing:</b><ul>' + "".join(f"<li>{esc(n)}</li>" for n in pairing)
                 + "</ul></div>")
    budget = "".join(f"<li>{esc(s)}</li>" for s in tables.budget_sentences(runs))
    figures = "\n".join(
        f'<figure><img src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}" '
        f'alt="{esc(stem)} plot"><figcaption class="muted">{esc(CAPTIONS.get(stem, stem))}</figcaption></figure>'
        for stem, png in pngs.items()
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{CSS}</style></head>
<body>
<h1>{esc(title)}</h1>
<p class="muted">Generated {esc(now)} from {len(runs)} evaluation run(s). Scores are percentages.</p>
{notes_html}
{warn}
<h2>What the numbers rest on</h2>
<ul>{budget}</ul>
<h2>Summary</h2>
<p>{esc(head.description)}</p>
{_summary_table(runs, head)}
<h2>Results per benchmark and mode</h2>
<p class="muted">Each cell: score ± one standard error, in brackets the change against the same model before
fine-tuning with its paired 95% interval, n the number of items. A change is coloured (gain green, loss red) only
when its interval excludes 0; otherwise it reads "no significant change".</p>
<div class="scroll">{_results_table(runs)}</div>
<h2>Paired comparisons</h2>
<p class="muted">Each fine-tuned run against the same model before fine-tuning, and against the same model fine-tuned on the next smaller number of tasks, over the items both scored
(unshared items are left out and counted). Change in points with its 95% interval from a paired bootstrap over
items, resampled within each subtask, and the two-sided p-value; for 0/1 scores the exact McNemar test on the
pooled items as a cross-check. Significant: the interval excludes 0.</p>
<div class="scroll">{_comparisons(runs, head)}</div>
<h2>Plots</h2>
{figures or '<p class="muted">Nothing to plot.</p>'}
{'' if 'size' in pngs else '<p class="muted">No model-size plot: the runs hold a single model size.</p>'}
<h2>Per-subtask breakdown</h2>
{_subtask_sections(runs)}
<h2>Training budget</h2>
<div class="scroll">{_budget_table(runs)}</div>
<h2>Sample outputs</h2>
<p class="muted">The first few items of each benchmark and mode, as the model answered them (shown as text).</p>
{_samples(runs)}
<h2>Provenance</h2>
{_provenance(runs)}
</body></html>
"""
