"""The numbers a report shows, computed once from the runs and rendered by html.py and markdown.py alike.

- the headline score per run: the paper's normalized average where the results have one, else the mean
  normalized score of the synthetic held-out suite (else of whatever benchmarks were run) -- the report
  says which;
- the results table per benchmark and mode, with deltas against the un-fine-tuned model of the same row;
- uncertainty: every score with its standard error (from results.json; the headline's from the per-item
  samples), and every change against the un-fine-tuned model as a paired comparison over the items both runs
  scored (difference, 95% interval, p-value; flanlab.eval.metrics.paired_comparison). A change counts as a gain
  or a loss only when its interval excludes 0; without per-item samples a delta is shown unpaired, never coloured;
- per-subtask breakdowns;
- the budget behind the numbers: model size, fine-tuning steps, tokens, FLOPs, wall time, evaluation size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flanlab.eval.metrics import NORMALIZED_AVERAGE_COMPONENTS, average_estimate, paired_comparison
from flanlab.eval.stats import Estimate, PairedDiff
from flanlab.report.load import SYNTHETIC_PREFIX, Run

PAPER_ORDER = ("mmlu", "bbh", "tydiqa", "mgsm")
MODE_ORDER = ("direct", "cot", "zs_cot")


@dataclass
class Headline:
    name: str  # short, for axis labels: "normalized average"
    description: str  # one sentence saying exactly what is averaged
    values: dict[str, float | None]  # run label -> value
    keys: list[str] = field(default_factory=list)  # the "bench/mode" components averaged (normalized scores)
    estimates: dict[str, Estimate] = field(default_factory=dict)  # run label -> its SE and 95% interval

    def stderr(self, label: str) -> float | None:
        e = self.estimates.get(label)
        return e.stderr if e is not None else None


def components(run: Run) -> dict[str, float]:
    """'benchmark/mode' -> normalized score (the raw score where no normalized one is given)."""
    out = {}
    for bench, modes in run.benchmarks.items():
        for mode, entry in (modes or {}).items():
            if not isinstance(entry, dict):
                continue
            value = entry.get("normalized", entry.get("score"))
            if isinstance(value, (int, float)):
                out[f"{bench}/{mode}"] = float(value)
    return out


def paper_average(run: Run) -> float | None:
    value = (run.results.get("normalized_average") or {}).get("value")
    return float(value) if isinstance(value, (int, float)) else None


def synthetic_average(runs: list[Run]) -> tuple[dict[str, float | None], list[str]]:
    """Mean normalized score over the synthetic components every run has (so runs compare like with like)."""
    keys = None
    for run in runs:
        mine = {k for k in components(run) if k.startswith(SYNTHETIC_PREFIX)}
        keys = mine if keys is None else keys & mine
    keys = sorted(keys or [])
    values = {}
    for run in runs:
        comp = components(run)
        values[run.label] = sum(comp[k] for k in keys) / len(keys) if keys else None
    return values, keys


def headline(runs: list[Run]) -> Headline:
    paper = {run.label: paper_average(run) for run in runs}
    if any(v is not None for v in paper.values()):
        missing = sorted({m for run in runs for m in (run.results.get("normalized_average") or {}).get("missing") or []})
        note = f" Missing components in some runs: {', '.join(missing)}." if missing else ""
        return _with_estimates(runs, Headline(
            name="normalized average",
            description="The paper's normalized average: mean of MMLU direct, MMLU CoT, BBH direct, BBH CoT, "
            "TyDiQA and MGSM, each normalized as 100·(x − r)/(100 − r) with r the random-guess rate." + note,
            values=paper, keys=[f"{b}/{m}" for b, m in NORMALIZED_AVERAGE_COMPONENTS],
        ))
    values, keys = synthetic_average(runs)
    missing = sorted({m for run in runs for m in (run.results.get("normalized_average") or {}).get("missing") or []})
    ran = sorted({m for run in runs for m in ((run.results.get("normalized_average") or {}).get("components") or {})})
    why = (f"its components {', '.join(missing)} were not run, only {', '.join(ran)}" if ran
           else "the real benchmarks were not run")
    if keys:
        return _with_estimates(runs, Headline(
            name="synthetic suite average",
            description=f"Not the paper's normalized average ({why}): the mean "
            f"chance-normalized score of the synthetic held-out suite over {', '.join(keys)}.",
            values=values, keys=keys,
        ))
    keys = None
    for run in runs:
        keys = set(components(run)) if keys is None else keys & set(components(run))
    keys = sorted(keys or [])
    values = {run.label: (sum(components(run)[k] for k in keys) / len(keys) if keys else None) for run in runs}
    return _with_estimates(runs, Headline(
        name="mean normalized score",
        description=f"Not the paper's normalized average: the mean chance-normalized score over {', '.join(keys) or 'nothing'}.",
        values=values, keys=keys,
    ))


def _with_estimates(runs: list[Run], head: Headline) -> Headline:
    """The headline with each run's SE and interval, bootstrapped over its per-item samples."""
    for run in runs:
        if head.values.get(run.label) is not None:
            head.estimates[run.label] = average_estimate(run.benchmarks, head.keys, run.items)
    return head


def secondary(runs: list[Run], head: Headline) -> Headline | None:
    """The synthetic suite average beside the paper's normalized average, when both exist."""
    if head.name == "synthetic suite average":
        return None
    values, keys = synthetic_average(runs)
    if not keys:
        return None
    return _with_estimates(runs, Headline(name="synthetic suite average",
                                          description=f"mean normalized score over {', '.join(keys)}",
                                          values=values, keys=keys))


def baseline_of(run: Run, runs: list[Run]) -> Run | None:
    """The un-fine-tuned evaluation of the same model (the row's '0 tasks' cell), or None."""
    if not run.fine_tuned:
        return None
    for other in runs:
        if other is not run and other.model == run.model and not other.fine_tuned:
            return other
    return None


def ordered_keys(runs: list[Run]) -> list[tuple[str, str]]:
    """(benchmark, mode) pairs in the paper's order, then the others alphabetically."""
    keys = {(b, m) for run in runs for b, modes in run.benchmarks.items() for m in (modes or {})}

    def rank(key):
        bench, mode = key
        b = PAPER_ORDER.index(bench) if bench in PAPER_ORDER else len(PAPER_ORDER)
        m = MODE_ORDER.index(mode) if mode in MODE_ORDER else len(MODE_ORDER)
        return (b, bench, m, mode)

    return sorted(keys, key=rank)


def entry(run: Run, bench: str, mode: str) -> dict | None:
    e = (run.benchmarks.get(bench) or {}).get(mode)
    return e if isinstance(e, dict) else None


@dataclass
class Cell:
    score: float | None
    n: int | None
    delta: float | None  # against the un-fine-tuned model of the same row
    normalized: float | None = None
    stderr: float | None = None  # of the score (results.json's uncertainty)
    paired: PairedDiff | None = None  # the delta as a paired comparison over the shared items, where possible
    cut: int | None = None  # items whose input was longer than the model's context and lost its first tokens


def score_stderr(e: dict, name: str = "score") -> float | None:
    """The standard error results.json gives for e[name] (None in files written before schema 2)."""
    se = ((e.get("uncertainty") or {}).get(name) or {}).get("stderr")
    return float(se) if isinstance(se, (int, float)) else None


def benchmark_version(run: Run, bench: str) -> str | None:
    """The version of `bench` the run scored (settings.benchmark_versions), or None where not recorded."""
    value = ((run.results.get("settings") or {}).get("benchmark_versions") or {}).get(bench)
    return str(value) if value is not None else None


def benchmark_data(run: Run, bench: str) -> str | None:
    """The digest of the data files `bench` read in the run (flanlab.eval.results.data_digest), or None where it
    cannot be known. Results from before provenance.benchmark_data get it from their provenance's data_dir and
    data_files, for the benchmarks of the registry (a custom benchmark's files are not known)."""
    from flanlab.eval.results import data_digest, data_file_name

    prov = run.results.get("provenance") or {}
    recorded = (prov.get("benchmark_data") or {}).get(bench)
    if recorded:
        return str(recorded)
    files = prov.get("data_files")
    if "data_dir" not in prov or not isinstance(files, dict):
        return None
    from pathlib import Path

    from flanlab.eval.benchmarks import BENCHMARKS

    if bench not in BENCHMARKS:
        return None
    data_dir = Path(prov["data_dir"]) if prov["data_dir"] else None
    names = (data_file_name(path, data_dir) for path in BENCHMARKS[bench].data_files(data_dir))
    return data_digest({name: files[name] for name in names if name in files})


@dataclass
class Pairing:
    """Whether two runs' items of some benchmarks may be paired by item id (an id is a position in the
    benchmark's data: the same id names the same item only for the same version and the same data files)."""
    refused: list[str] = field(default_factory=list)  # why not paired: a line per benchmark, naming the runs
    warnings: list[str] = field(default_factory=list)  # what could not be checked: paired, but said on the page


def pairing(run: Run, base: Run, benches, keys=None) -> Pairing:
    """Refuse to pair `run` with `base` on a benchmark whose recorded version or data differ, or on a
    "bench/mode" of `keys` (default: every one of `benches` both ran) evaluated with other settings
    (eval_setting_differences); where either run did not record a version or data, pair them but say so."""
    out = Pairing()
    if keys is None:
        keys = [f"{b}/{m}" for b, m in ordered_keys([run, base]) if b in set(benches)]
    for key in keys:
        diffs = eval_setting_differences(run, base, key)
        if diffs:
            out.refused.append(f"{key} evaluated with other settings in {run.label} than in {base.label} "
                               f"({'; '.join(diffs)}): a change would be theirs as much as the model's")
    for bench in sorted(set(benches)):
        va, vb = benchmark_version(run, bench), benchmark_version(base, bench)
        if va is not None and vb is not None and va != vb:
            out.refused.append(f"{bench} version {va} in {run.label}, {vb} in {base.label}: other prompts, items "
                               f"or scoring")
        da, db = benchmark_data(run, bench), benchmark_data(base, bench)
        if da is not None and db is not None and da != db:
            out.refused.append(f"{bench} read other data files in {run.label} than in {base.label} "
                               f"(provenance.benchmark_data differs): the same item id may name another item")
        other = _other_item(run, base, bench)
        if other:
            out.refused.append(f"{bench}: item {other} in {run.label} and {base.label}: the same "
                               f"ids name other items")
        for label, version, data in ((run.label, va, da), (base.label, vb, db)):
            unknown = [what for what, value in (("version", version), ("data files", data)) if value is None]
            if unknown:
                out.warnings.append(f"{label}: {bench}'s {' and '.join(unknown)} not recorded, so its items are "
                                    f"paired by id without knowing they are the same items")
    return out


# What an item's output or score depends on beyond the model, the benchmark version and its data, as results.json
# records it: its mode section says how the items were scored and how many exemplars they had (what ran, not
# what was asked), its settings how prompts were rendered and, in the CoT modes, how answers were sampled.
PROMPT_SETTINGS = ("apply_chat_template", "fewshot_as_multiturn", "system_instruction", "chat_format")
_UNKNOWN = object()


def _setting(run: Run, name: str, key: str):
    """settings[name] for the "bench/mode" `key` (a merged scale cell records a setting its parts ran with
    different values of per "bench/mode"), or _UNKNOWN where not recorded."""
    settings = run.results.get("settings") or {}
    if name not in settings:
        return _UNKNOWN
    value = settings[name]
    if isinstance(value, dict):
        return value.get(key, _UNKNOWN)
    return value


def eval_setting_differences(run: Run, base: Run, key: str) -> list[str]:
    """How `run` and `base` evaluated the "bench/mode" `key` differently ("shots 3 vs 0"), where both recorded
    it: other exemplars, scoring, chat rendering or (CoT modes) self-consistency sampling score the same item
    differently, so their difference is not the model's. [] when the same, or not known."""
    from flanlab.eval.config import COT_MODES

    bench, _, mode = key.partition("/")
    ea, eb = entry(run, bench, mode), entry(base, bench, mode)
    if ea is None or eb is None:
        return []
    pairs = [("scoring", ea.get("scoring") or _UNKNOWN, eb.get("scoring") or _UNKNOWN),
             ("shots", _shots(ea), _shots(eb))]
    pairs += [(name, _setting(run, name, key), _setting(base, name, key)) for name in PROMPT_SETTINGS]
    if mode in COT_MODES:
        k = ("self_consistency", _setting(run, "self_consistency", key), _setting(base, "self_consistency", key))
        pairs.append(k)
        if isinstance(k[1], int) and k[1] > 1 and k[1] == k[2]:  # both sampled: how
            pairs += [(name, _setting(run, name, key), _setting(base, name, key)) for name in ("temperature", "seed")]
    return [f"{name} {a} vs {b}" for name, a, b in pairs if a is not _UNKNOWN and b is not _UNKNOWN and a != b]


def _shots(section: dict):
    """The exemplars a mode's prompts had, as its section records them ("3", or "4-5" where subtasks differ),
    or _UNKNOWN."""
    low, high = section.get("shots"), section.get("shots_max")
    if low is None:
        return _UNKNOWN
    return str(low) if high in (None, low) else f"{low}-{high}"


def _other_item(run: Run, base: Run, bench: str) -> str | None:
    """The first item id of `bench` both runs scored with other targets ("bbh/direct/navigate/3 has target 'Yes'
    vs 'No'"), or None: whatever the recorded versions say, such ids do not name the same items."""
    for key in sorted(k for k in run.targets if k.partition("/")[0] == bench and k in base.targets):
        for sub in sorted(set(run.targets[key]) & set(base.targets[key])):
            mine, theirs = run.targets[key][sub], base.targets[key][sub]
            for item_id in sorted(set(mine) & set(theirs)):
                if mine[item_id] != theirs[item_id]:
                    return f"{key}/{sub}/{item_id} has target {mine[item_id]} vs {theirs[item_id]}"
    return None


@dataclass
class Comparison:
    """One paired comparison of `run` against `base` on some "bench/mode" keys: the pairing check it rests on
    (computed once, read by the page's reason too) and its result."""
    pairing: Pairing  # whether the two runs' items of those benchmarks may be paired by id
    diff: PairedDiff | None  # run minus base over the items both scored; None where not paired or not possible
    why: str | None  # why diff is None, in words; None when it is not


def comparison(run: Run, base: Run, keys: list[str], quantity: str) -> Comparison:
    """run minus base over the items both scored (see flanlab.eval.metrics.paired_comparison), with the pairing
    check it rests on: no diff where the runs lack per-item samples for it, or scored a benchmark of `keys` in
    different versions or from other data files (`pairing`: item ids would pair unlike items)."""
    checked = pairing(run, base, {key.partition("/")[0] for key in keys}, keys)
    diff = None
    if run.items and base.items and not checked.refused:
        diff = paired_comparison(run.benchmarks, run.items, base.benchmarks, base.items, keys, quantity)
    return Comparison(checked, diff, None if diff is not None else _reason(run, base, checked))


def _reason(run: Run, base: Run, checked: Pairing) -> str:
    if checked.refused:
        return "; ".join(checked.refused)
    if not run.items or not base.items:
        return "no per-item samples (samples.jsonl)"
    return "no per-item metrics shared by both runs for it"


def compare(run: Run, base: Run, keys: list[str], quantity: str) -> PairedDiff | None:
    """comparison()'s result alone: run minus base over the items both scored, or None where not paired."""
    return comparison(run, base, keys, quantity).diff


def not_paired_reason(run: Run, base: Run, keys: list[str]) -> str:
    """Why compare() gave None, in words (comparison() gives it with its result, from the same pairing check)."""
    return _reason(run, base, pairing(run, base, {key.partition("/")[0] for key in keys}, keys))


CUT_NOTE = ("\"k cut\": k of the n inputs were longer than the model's context and lost their first tokens, as "
            "lm-evaluation-harness cuts them (results.json: prompts_cut per subtask)")


def results_rows(runs: list[Run]) -> list[dict]:
    """One row per (benchmark, mode): metric, scoring, and a Cell per run label."""
    rows = []
    for bench, mode in ordered_keys(runs):
        cells, metric, scoring = {}, None, set()
        for run in runs:
            e = entry(run, bench, mode)
            if e is None:
                cells[run.label] = Cell(None, None, None)
                continue
            metric = metric or e.get("metric")
            if e.get("scoring"):
                scoring.add(str(e["scoring"]))
            base = baseline_of(run, runs)
            be = entry(base, bench, mode) if base else None
            score = e.get("score")
            delta = score - be["score"] if (be and isinstance(score, (int, float)) and isinstance(be.get("score"), (int, float))) else None
            paired = compare(run, base, [f"{bench}/{mode}"], "score") if delta is not None else None
            cells[run.label] = Cell(score, e.get("n"), delta, e.get("normalized"), score_stderr(e), paired,
                                    e.get("prompts_cut"))
        rows.append({"benchmark": bench, "mode": mode, "metric": metric or "score",
                     "scoring": "/".join(sorted(scoring)), "cells": cells})
    return rows


def headline_paired(runs: list[Run], head: Headline) -> dict[str, PairedDiff | None]:
    """run label -> the headline's change against the row's un-fine-tuned model, paired over shared items."""
    out = {}
    for run in runs:
        base = baseline_of(run, runs)
        ok = base is not None and head.values.get(run.label) is not None and head.values.get(base.label) is not None
        out[run.label] = compare(run, base, head.keys, "normalized") if ok and head.keys else None
    return out


def compared_pairs(runs: list[Run]) -> list[tuple[Run, Run]]:
    """(run, baseline): each fine-tuned run and its row's un-fine-tuned model, then (a grid's task axis) each
    fine-tuned run and the same model fine-tuned on the next smaller number of tasks."""
    pairs = [(run, baseline_of(run, runs)) for run in runs]
    for model in dict.fromkeys(run.model for run in runs):
        tuned = sorted((r for r in runs if r.model == model and r.fine_tuned and r.num_tasks is not None),
                       key=lambda r: r.num_tasks)
        pairs += [(b, a) for a, b in zip(tuned, tuned[1:]) if b.num_tasks > a.num_tasks]
    return [(run, base) for run, base in pairs if base is not None]


def comparisons(runs: list[Run], head: Headline) -> list[dict]:
    """The paired comparisons table (compared_pairs), each on the headline and every benchmark mode both have:
    {"run", "baseline", "what", "diff": PairedDiff | None, "delta": float, "why": why diff is None, else None}."""
    rows = []
    for run, base in compared_pairs(runs):
        v, b = head.values.get(run.label), head.values.get(base.label)
        if v is not None and b is not None and head.keys:
            c = comparison(run, base, head.keys, "normalized")
            rows.append({"run": run.label, "baseline": base.label, "what": head.name, "delta": v - b,
                         "diff": c.diff, "why": c.why})
        for bench, mode in ordered_keys([run, base]):
            e, be = entry(run, bench, mode), entry(base, bench, mode)
            if e is None or be is None or not isinstance(e.get("score"), (int, float)):
                continue
            c = comparison(run, base, [f"{bench}/{mode}"], "score")
            rows.append({"run": run.label, "baseline": base.label, "what": f"{bench}/{mode} {e.get('metric', 'score')}",
                         "delta": e["score"] - be["score"], "diff": c.diff, "why": c.why})
    return rows


def pairing_notes(runs: list[Run]) -> list[str]:
    """Every refusal and warning of the pairs a report compares (compared_pairs), over the benchmarks both runs
    scored, each once: the page shows them above its changes, so that a change is never read as paired over the
    same items where that was not checked or not so."""
    notes: list[str] = []
    for run, base in compared_pairs(runs):
        p = pairing(run, base, set(run.benchmarks) & set(base.benchmarks))
        for note in [f"not paired: {why}" for why in p.refused] + p.warnings:
            if note not in notes:
                notes.append(note)
    return notes


def fmt_pm(x, stderr=None) -> str:
    """"28.0 ± 1.7" (± one standard error), or "28.0" without a standard error."""
    if not isinstance(x, (int, float)):
        return "—"
    return f"{x:.1f} ± {stderr:.1f}" if isinstance(stderr, (int, float)) else f"{x:.1f}"


def fmt_ci(d: PairedDiff) -> str:
    return f"[{d.ci_low:+.1f}, {d.ci_high:+.1f}]" if d.ci_low is not None and d.ci_high is not None else "—"


def fmt_shared(d: PairedDiff) -> str:
    """", over the 40 shared items" when the two runs did not score the same items (else nothing)."""
    return f", over the {d.n_paired} shared items" if d.n_only_a or d.n_only_b else ""


def fmt_p(p) -> str:
    if not isinstance(p, (int, float)):
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def headline_deltas(runs: list[Run], head: Headline) -> dict[str, float | None]:
    out = {}
    for run in runs:
        base = baseline_of(run, runs)
        v, b = head.values.get(run.label), head.values.get(base.label) if base else None
        out[run.label] = v - b if (v is not None and b is not None) else None
    return out


def subtask_tables(runs: list[Run]) -> list[dict]:
    """Per (benchmark, mode) with more than one subtask: rows subtask -> {label: (score, n, stderr)}."""
    tables = []
    for bench, mode in ordered_keys(runs):
        names: list[str] = []
        for run in runs:
            for name in (entry(run, bench, mode) or {}).get("subtasks") or {}:
                if name not in names:
                    names.append(name)
        if len(names) < 2:
            continue
        rows = []
        for name in sorted(names):
            cells = {}
            for run in runs:
                sub = ((entry(run, bench, mode) or {}).get("subtasks") or {}).get(name)
                cells[run.label] = ((sub.get("score"), sub.get("n"), score_stderr(sub)) if isinstance(sub, dict)
                                    else (None, None, None))
            rows.append((name, cells))
        tables.append({"benchmark": bench, "mode": mode, "rows": rows})
    return tables


# ----------------------------------------------------------------------------------------------------------
# the budget behind the numbers


def fmt_int(n) -> str:
    return f"{int(n):,}" if isinstance(n, (int, float)) else "—"


def fmt_params(n) -> str:
    if not isinstance(n, (int, float)):
        return "—"
    if n >= 1e9:
        return f"{n / 1e9:.2f}B"
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}K"
    return str(int(n))


def fmt_flops(x) -> str:
    return f"{x:.2e}" if isinstance(x, (int, float)) else "—"


def fmt_seconds(s) -> str:
    if not isinstance(s, (int, float)):
        return "—"
    s = float(s)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60)} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"


def fmt_score(x, signed: bool = False) -> str:
    if not isinstance(x, (int, float)):
        return "—"
    return f"{x:+.1f}" if signed else f"{x:.1f}"


def fmt_limit(limit) -> str:
    """A results.json settings.limit: a number, null (all items) or, for merged runs, 'bench/mode' -> number."""
    if isinstance(limit, dict):
        return ", ".join(f"{k} {'all' if v in (None, 0) else v}" for k, v in limit.items())
    return "all" if limit in (None, 0) else str(limit)


def excluded_items(run: Run) -> dict[str, tuple[list[str], int]]:
    """benchmark -> (the subtasks it evaluated and reported but left out of its average, their items over its
    modes): English in MGSM and TyDiQA, as the Flan paper does. A mode section's n counts its averaged items only."""
    out: dict[str, tuple[list[str], int]] = {}
    for bench, modes in run.benchmarks.items():
        for section in (modes or {}).values():
            if not isinstance(section, dict):
                continue
            subtasks = section.get("subtasks") or {}
            for name in section.get("excluded_from_mean") or ():
                names, n = out.get(bench, ([], 0))
                out[bench] = (names + [name] * (name not in names), n + int((subtasks.get(name) or {}).get("n") or 0))
    return out


def eval_items(run: Run) -> int:
    """Items evaluated: every mode's averaged items (its n) and those of subtasks left out of the average."""
    averaged = sum(int(e.get("n") or 0) for modes in run.benchmarks.values() for e in (modes or {}).values()
                   if isinstance(e, dict))
    return averaged + sum(n for _, n in excluded_items(run).values())


def excluded_text(run: Run) -> str:
    """", 500 of them (mgsm: en; tydiqa: english) reported per subtask but left out of their benchmark's average,
    as in the Flan paper", or "" when no subtask was left out."""
    excluded = {bench: v for bench, v in excluded_items(run).items() if v[1]}
    if not excluded:
        return ""
    n = sum(v[1] for v in excluded.values())
    which = "; ".join(f"{bench}: {', '.join(names)}" for bench, (names, _) in excluded.items())
    return (f", {fmt_int(n)} of them ({which}) reported per subtask but left out of their benchmark's average, "
            "as in the Flan paper")


def budget_rows(runs: list[Run]) -> list[dict]:
    """Per run: model size, fine-tuning budget and evaluation size, as display strings."""
    rows = []
    for run in runs:
        s = run.train.summary if run.train else {}
        settings = run.results.get("settings") or {}
        rows.append({
            "label": run.label,
            "model": run.model,
            "untrained": run.untrained,
            "parameters": fmt_params(run.parameters),
            "tasks": "0 (not fine-tuned)" if not run.fine_tuned else (str(run.num_tasks) if run.num_tasks is not None else "?"),
            "steps": fmt_int(s.get("steps")) if run.train else "—",
            "tokens": fmt_int(s.get("tokens")) if run.train else "—",
            "flops": fmt_flops(s.get("train_flops")) if run.train else "—",
            "wall_time": fmt_seconds(s.get("wall_time_s")) if run.train else "—",
            "loss": (f"{s['first_loss']:.3f} → {s['final_loss']:.3f}"
                     if isinstance(s.get("first_loss"), (int, float)) and isinstance(s.get("final_loss"), (int, float)) else "—"),
            "eval_items": fmt_int(eval_items(run)),
            "limit": fmt_limit(settings.get("limit")),
            "eval_time": fmt_seconds((run.results.get("timings") or {}).get("total_s")),
        })
    return rows


def budget_sentences(runs: list[Run]) -> list[str]:
    """Plain sentences stating the model size and training budget behind the numbers, one per fine-tuned run."""
    out = []
    for run in runs:
        size = fmt_params(run.parameters)
        limit = (run.results.get("settings") or {}).get("limit")
        evaluated = (f"evaluated on {fmt_int(eval_items(run))} items"
                     + (f" (at most {fmt_limit(limit)} per subtask)" if limit else "") + excluded_text(run))
        if run.train:
            s = run.train.summary
            tasks = f"{run.num_tasks} tasks" if run.num_tasks is not None else "an unknown number of tasks"
            out.append(
                f"{run.label}: {run.model} ({size} parameters"
                f"{', UNTRAINED — random weights' if run.untrained else ''}) fine-tuned on {tasks} for "
                f"{fmt_int(s.get('steps'))} steps, {fmt_int(s.get('tokens'))} tokens, "
                f"{fmt_flops(s.get('train_flops'))} FLOPs, {fmt_seconds(s.get('wall_time_s'))} wall time"
                + (f" ({s['percent_of_pretraining']:.2g}% of its pretraining tokens)"
                   if isinstance(s.get("percent_of_pretraining"), (int, float)) else "")
                + f"; {evaluated}."
            )
        else:
            out.append(
                f"{run.label}: {run.model} ({size} parameters"
                f"{', UNTRAINED — random weights' if run.untrained else ''}) without fine-tuning; {evaluated}."
            )
    return out
