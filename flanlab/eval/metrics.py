"""Scores: per-item metrics, how subtask scores become a benchmark score, and the paper's normalized average.

Per item (values in 0..1, the engine averages them):
    exact_match          string equality after stripping (BBH, MMLU letters, synthetic)
    squad_f1 / squad_em  the official SQuAD v1.1 token F1 / exact match, max over gold answers (TyDiQA)
    numeric_match        equal as numbers: "1,000" == "1000.0" (MGSM)
    majority_vote        self-consistency: the most frequent extracted answer (ties: the first seen)

Per benchmark and mode, `summarize_mode` builds the section of results.json described in flanlab/eval/spec.py.
How a benchmark averages its subtasks is its `Benchmark.aggregation` (an `Aggregation`, flanlab/eval/spec.py),
declared in its own file:
    mmlu       micro: mean over all 14,042 items (as Hendrycks et al.'s evaluate.py and lm-evaluation-harness);
               the macro mean over the 57 subjects is reported beside it.
    bbh        macro: unweighted mean over the 27 subtasks (Suzgun et al.; the Flan paper).
    tydiqa     macro over 8 languages, English excluded from the mean but still reported (the Flan paper).
    mgsm       macro over 10 languages, English excluded from the mean but still reported.
    synthetic  macro over its families.

Normalization (the Flan paper, Sec. 2 / Appendix): normalize(x, r) = 100 * (x - r) / (100 - r), r the
random-guess rate in percent. For a macro-averaged benchmark it is applied per subtask and then averaged (this
is what the paper does for BBH, whose subtasks have different r); for a micro-averaged one it is applied to the
benchmark score with the item-weighted chance rate. For MMLU (r = 25 everywhere), TyDiQA and MGSM (r = 0) both
ways give the same number.

The normalized average is the mean of six normalized scores: MMLU direct, MMLU CoT, BBH direct, BBH CoT,
TyDiQA direct, MGSM CoT (NORMALIZED_AVERAGE_COMPONENTS). It is None when any of them is missing.
"""

from __future__ import annotations

import math
import re
import string
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from flanlab.eval.spec import Aggregation, Benchmark
from flanlab.eval.stats import N_BOOT, SEED, Estimate, Linear, PairedDiff, estimate, mean_of, paired_diff

# ---------------------------------------------------------------------------------------------------------
# Per-item metrics


def exact_match(prediction: str, target: str) -> float:
    """1.0 when equal after stripping surrounding whitespace, else 0.0."""
    return float(prediction.strip() == target.strip())


# TyDiQA-GoldP is scored by the official SQuAD v1.1 evaluation script (evaluate-v1.1.py; the TyDi QA repository
# google-research-datasets/tydiqa points GoldP users to it), reproduced exactly here:
#   normalize_answer: lower(); drop the characters of Python's string.punctuation (ASCII only: the Arabic comma,
#       the Bengali danda, guillemets and CJK full stops stay, as they do in the official script); replace the
#       English articles r"\b(a|an|the)\b" with a space; squeeze whitespace.
#   exact_match: normalized prediction == normalized gold; f1: token overlap of the normalized texts, 0 when no
#       token is shared (so 0 when either side normalizes to nothing); both the max over the gold answers.
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def squad_normalize(text: str) -> str:
    """SQuAD v1.1's normalize_answer: lowercase, drop ASCII punctuation, drop English articles, squeeze spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def squad_em(prediction: str, golds: Sequence[str]) -> float:
    """Exact match after squad_normalize, max over the gold answers."""
    p = squad_normalize(prediction)
    return max((float(p == squad_normalize(g)) for g in golds), default=0.0)


def _f1(prediction: str, gold: str) -> float:
    pred_tokens, gold_tokens = squad_normalize(prediction).split(), squad_normalize(gold).split()
    common = Counter(pred_tokens) & Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:  # the official script: also when either side is empty after normalization
        return 0.0
    precision, recall = overlap / len(pred_tokens), overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_f1(prediction: str, golds: Sequence[str]) -> float:
    """SQuAD token-overlap F1 after squad_normalize, max over the gold answers."""
    return max((_f1(prediction, g) for g in golds), default=0.0)


# A number: optional sign, digits with optional thousands separators (comma or thin/no-break space every
# three digits), an optional decimal part with "." (or "," followed by 1-2 digits: decimal comma).
_NUMBER = re.compile(r"-?\d{1,3}(?:[,\u202f\u00a0]\d{3})+(?:\.\d+)?(?!\d)|-?\d+(?:[.,]\d+)?")


def parse_number(text: str) -> float | None:
    """The first number in text as a float ("1,234.5" -> 1234.5, "2,5" -> 2.5, "-3" -> -3.0), else None."""
    m = _NUMBER.search(text)
    return _number_value(m.group(0)) if m else None


def _number_value(token: str) -> float | None:
    token = token.replace("\u202f", ",").replace("\u00a0", ",")
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", token):
        token = token.replace(",", "")  # thousands separators
    else:
        token = token.replace(",", ".")  # a decimal comma
    try:
        return float(token)
    except ValueError:
        return None


def find_numbers(text: str) -> list[str]:
    """Every number token in text, in order (thousands separators kept; see parse_number)."""
    return _NUMBER.findall(text)


def numeric_match(prediction: str, target: str) -> float:
    """1.0 when both parse as numbers and are equal (to 1e-6 relative), else 0.0."""
    p, t = parse_number(prediction), parse_number(target)
    if p is None or t is None:
        return 0.0
    return float(math.isclose(p, t, rel_tol=1e-6, abs_tol=1e-9))


def accuracy(values: Iterable[float]) -> float:
    """Mean of 0/1 values, in percent (0.0 for no values)."""
    values = list(values)
    return 100.0 * sum(values) / len(values) if values else 0.0


def majority_vote(answers: Sequence[str]) -> str:
    """The most frequent non-empty answer (after stripping); ties go to the one seen first; "" if none.

    Self-consistency (Wang et al. 2022): empty extractions (no answer found) do not vote."""
    ranked = vote_counts(answers)
    return ranked[0][0] if ranked else ""


def vote_counts(answers: Sequence[str]) -> list[tuple[str, int]]:
    """(answer, votes) for the non-empty answers (stripped), in majority_vote's order: most votes first, ties by
    first appearance."""
    counts: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    for i, a in enumerate(answers):
        a = (a or "").strip()
        if a:
            counts[a] += 1
            first_seen.setdefault(a, i)
    return sorted(counts.items(), key=lambda kv: (-kv[1], first_seen[kv[0]]))


def vote_margin(answers: Sequence[str]) -> float:
    """(votes of the winner - votes of the runner-up) / number of samples: 1 unanimous, 0 a tie (or no answer)."""
    ranked = vote_counts(answers)
    if not ranked or not answers:
        return 0.0
    second = ranked[1][1] if len(ranked) > 1 else 0
    return (ranked[0][1] - second) / len(answers)


def normalize(x: float, r: float) -> float:
    """The paper's normalized score: 100 * (x - r) / (100 - r); x and r in percent."""
    if r >= 100:
        raise ValueError(f"random-guess rate must be below 100, got {r}")
    return 100.0 * (x - r) / (100.0 - r)


# ---------------------------------------------------------------------------------------------------------
# From per-item metrics to the per-mode section of results.json


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def summarize_mode(benchmark: Benchmark, mode: str, scoring: str, per_item: dict[str, list[dict[str, float]]],
                   chance: dict[str, float], aggregation: Aggregation | None = None,
                   subtask_scoring: dict[str, str] | None = None, n_boot: int = N_BOOT, seed: int = SEED) -> dict:
    """The per-mode section of results.json from each subtask's per-item metric dicts (values 0..1).

    benchmark: its `metric` names the main metric in the per-item dicts.
    chance: subtask -> random-guess rate in percent. aggregation: defaults to the benchmark's own.
    subtask_scoring: where subtasks were scored differently (BBH direct under rank scoring: the free-form
    subtasks have no choices and are generated), subtask -> "rank"|"generate", recorded per subtask.
    Subtasks with no items are left out. Scores are percentages. Every number carries its standard error and
    95% interval in the "uncertainty" mapping beside it (flanlab/eval/stats.py; n_boot, seed: the bootstrap's)."""
    if aggregation is None:
        aggregation = benchmark.aggregation
    metric = benchmark.metric
    subtasks: dict[str, dict] = {}
    values: dict[str, dict[str, np.ndarray]] = {}  # metric -> subtask -> per-item values
    for name, rows in per_item.items():
        if not rows:
            continue
        if metric not in rows[0]:
            raise ValueError(f"{benchmark.name}/{mode}/{name}: per-item metrics {sorted(rows[0])} lack the main "
                             f"metric {metric!r}")
        names = list(rows[0])
        for m in names:
            values.setdefault(m, {})[name] = np.array([r[m] for r in rows], dtype=np.float64)
        metrics = {m: 100.0 * _mean([r[m] for r in rows]) for m in names}
        r = float(chance.get(name, 0.0))
        entry = {"score": metrics[metric], "n": len(rows), "chance": r,
                 "normalized": normalize(metrics[metric], r), "metrics": metrics}
        if subtask_scoring and name in subtask_scoring:
            entry["scoring"] = subtask_scoring[name]
        if name in aggregation.excluded:
            entry["excluded_from_mean"] = True
        subtasks[name] = entry

    included = {k: v for k, v in subtasks.items() if k not in aggregation.excluded}
    n = sum(v["n"] for v in included.values())
    metric_names = list(next(iter(included.values()))["metrics"]) if included else [metric]
    macro = {m: _mean([v["metrics"][m] for v in included.values()]) for m in metric_names}
    micro = {m: (sum(v["metrics"][m] * v["n"] for v in included.values()) / n if n else 0.0) for m in metric_names}
    macro_chance = _mean([v["chance"] for v in included.values()])
    micro_chance = sum(v["chance"] * v["n"] for v in included.values()) / n if n else 0.0
    if aggregation.average == "items":
        metrics, bench_chance = micro, micro_chance
        normalized = normalize(metrics[metric], bench_chance)
    elif aggregation.average == "subtasks":
        metrics, bench_chance = macro, macro_chance
        normalized = _mean([v["normalized"] for v in included.values()])
    else:
        raise ValueError(f"unknown aggregation {aggregation.average!r} (use 'items' or 'subtasks')")

    # uncertainty: every number above as a Linear combination of subtask means, estimated (flanlab/eval/stats.py)
    for name, entry in subtasks.items():
        own = subtask_linears(name, entry["chance"])
        entry["uncertainty"] = {
            "score": estimate(own["score"], values[metric], n_boot, seed).to_json(),
            "normalized": estimate(own["normalized"], values[metric], n_boot, seed).to_json(),
            "metrics": {m: estimate(own["score"], values[m], n_boot, seed).to_json() for m in entry["metrics"]},
        }
    lins = mode_linears(aggregation, {k: v["n"] for k, v in subtasks.items()},
                        {k: v["chance"] for k, v in subtasks.items()})
    done: dict[tuple[Linear, str], dict] = {}  # the score is the micro or the macro average: estimated once

    def interval(lin: Linear, m: str) -> dict:
        if (lin, m) not in done:
            done[(lin, m)] = estimate(lin, values.get(m, {}), n_boot, seed).to_json()
        return dict(done[(lin, m)])

    uncertainty = {q: interval(lins[q], metric) for q in ("score", "normalized", "micro", "macro")}
    uncertainty["metrics"] = {m: interval(lins["score"], m) for m in metric_names if m in values}
    return {
        "score": metrics[metric],
        "metric": metric,
        "n": n,
        "scoring": scoring,
        "chance": bench_chance,
        "normalized": normalized,
        "aggregation": aggregation.average,
        "aggregation_note": aggregation.note,
        "micro": micro[metric],
        "macro": macro[metric],
        "metrics": metrics,
        "uncertainty": uncertainty,
        "excluded_from_mean": [k for k in subtasks if k in aggregation.excluded],
        "subtasks": subtasks,
    }


# ---------------------------------------------------------------------------------------------------------
# Scores as Linear combinations of subtask means (for their intervals; see flanlab/eval/stats.py)


def subtask_linears(key: str, chance: float) -> dict[str, Linear]:
    """A subtask's score (100 * mean) and normalized score, over the stratum `key`."""
    if chance >= 100:
        raise ValueError(f"random-guess rate must be below 100, got {chance}")
    score = Linear.of({key: 100.0})
    return {"score": score, "normalized": score.scaled(100.0 / (100.0 - chance), -100.0 * chance / (100.0 - chance))}


def mode_linears(aggregation: Aggregation, sizes: dict[str, int], chance: dict[str, float],
                 prefix: str = "") -> dict[str, Linear]:
    """A benchmark mode's "score", "micro", "macro" and "normalized" over its subtasks (stratum keys: prefix +
    subtask name), as summarize_mode computes them from subtasks of these sizes and chance rates."""
    included = [s for s in sizes if s not in aggregation.excluded and sizes[s] > 0]
    if not included:
        empty = Linear(())
        return {"score": empty, "micro": empty, "macro": empty, "normalized": empty}
    total = sum(sizes[s] for s in included)
    micro = Linear.of({prefix + s: 100.0 * sizes[s] / total for s in included})
    macro = Linear.of({prefix + s: 100.0 / len(included) for s in included})
    if aggregation.average == "items":
        r = sum(chance.get(s, 0.0) * sizes[s] for s in included) / total
        score, normalized = micro, micro.scaled(100.0 / (100.0 - r), -100.0 * r / (100.0 - r))
    elif aggregation.average == "subtasks":
        score = macro
        normalized = mean_of([subtask_linears(prefix + s, chance.get(s, 0.0))["normalized"] for s in included])
    else:
        raise ValueError(f"unknown aggregation {aggregation.average!r} (use 'items' or 'subtasks')")
    return {"score": score, "micro": micro, "macro": macro, "normalized": normalized}


def section_aggregation(section: dict) -> Aggregation:
    """The Aggregation a results.json mode section was summarized with (as it records it)."""
    return Aggregation(average=section.get("aggregation") or "subtasks",
                       excluded=tuple(section.get("excluded_from_mean") or ()))


# ---------------------------------------------------------------------------------------------------------
# The paper's normalized average

NORMALIZED_AVERAGE_COMPONENTS: tuple[tuple[str, str], ...] = (
    ("mmlu", "direct"), ("mmlu", "cot"), ("bbh", "direct"), ("bbh", "cot"), ("tydiqa", "direct"), ("mgsm", "cot"),
)


def normalized_average(benchmarks_section: dict, samples: Sequence[dict] | None = None,
                       n_boot: int = N_BOOT, seed: int = SEED) -> dict:
    """{"value", "components", "missing", "uncertainty"} from results.json's "benchmarks" section.

    components: "bench/mode" -> normalized score for each of the six present; missing: the absent ones in the
    paper's order; value: their mean, or None when any is missing. uncertainty: {"value": SE, 95% interval,
    method} by the stratified bootstrap over the items of `samples` (samples.jsonl rows); without them, or
    when they do not match the section, there is no interval and the method says why."""
    keys = [f"{bench}/{mode}" for bench, mode in NORMALIZED_AVERAGE_COMPONENTS]
    out = average_of_components(benchmarks_section, keys, samples, n_boot, seed)
    return {"value": out["value"] if not out["missing"] else None, "components": out["components"],
            "missing": out["missing"], "uncertainty": out["uncertainty"] if not out["missing"] else None}


def synthetic_keys(benchmarks_section: dict) -> list[str]:
    """"bench/mode" of every synthetic benchmark mode present (the synthetic suite average's components)."""
    return [f"{b}/{m}" for b, modes in (benchmarks_section or {}).items() if b.startswith("synthetic")
            for m in (modes or {})]


def synthetic_average(benchmarks_section: dict, samples: Sequence[dict] | None = None,
                      n_boot: int = N_BOOT, seed: int = SEED) -> dict | None:
    """The synthetic suite average (mean normalized score over its modes) with its interval, or None."""
    keys = synthetic_keys(benchmarks_section)
    return average_of_components(benchmarks_section, keys, samples, n_boot, seed) if keys else None


def average_of_components(benchmarks_section: dict, keys: Sequence[str], samples: Sequence[dict] | None = None,
                          n_boot: int = N_BOOT, seed: int = SEED) -> dict:
    """{"value", "components", "missing", "uncertainty"}: the mean normalized score over `keys` ("bench/mode")."""
    components: dict[str, float] = {}
    missing: list[str] = []
    for key in keys:
        section = _section(benchmarks_section, key)
        if section is None or section.get("normalized") is None:
            missing.append(key)
        else:
            components[key] = float(section["normalized"])
    value = _mean(list(components.values())) if components else None
    uncertainty = None
    if components:
        if samples is None:
            est = Estimate(value, None, None, None, 0, "no interval: needs the per-item samples (samples.jsonl)")
        else:
            est = average_estimate(benchmarks_section, list(components), item_strata(samples), n_boot, seed)
        uncertainty = {"value": est.to_json()}
    return {"value": value, "components": components, "missing": missing, "uncertainty": uncertainty}


def _section(benchmarks_section: dict, key: str) -> dict | None:
    bench, _, mode = key.partition("/")
    section = ((benchmarks_section or {}).get(bench) or {}).get(mode)
    return section if isinstance(section, dict) else None


# ---------------------------------------------------------------------------------------------------------
# Intervals and paired comparisons from per-item samples (samples.jsonl rows)

Strata = dict[str, dict[str, dict[str, float]]]  # "bench/mode" -> subtask -> item_id -> per-item metrics


def item_strata(samples: Iterable[dict]) -> Strata:
    """Per-item metric dicts of samples.jsonl rows, grouped by "bench/mode" and subtask, keyed by item_id."""
    out: Strata = {}
    for row in samples:
        metrics = row.get("metrics")
        if not isinstance(metrics, dict):
            continue
        key = f"{row.get('benchmark')}/{row.get('mode')}"
        out.setdefault(key, {}).setdefault(str(row.get("subtask")), {})[str(row.get("item_id"))] = metrics
    return out


def _values(items: dict[str, dict[str, float]], ids: Sequence[str], metric: str) -> np.ndarray | None:
    try:
        return np.array([float(items[i][metric]) for i in ids], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        return None


def average_estimate(benchmarks_section: dict, keys: Sequence[str], strata: Strata, n_boot: int = N_BOOT,
                     seed: int = SEED) -> Estimate:
    """The mean normalized score over `keys` ("bench/mode"), bootstrapped over the items of each section (one
    key: the mode's own normalized score)."""
    if not keys or any(_section(benchmarks_section, k) is None for k in keys):
        return Estimate(None, None, None, None, 0, "no value: a component is missing")
    if not any(k in strata for k in keys):
        return Estimate(None, None, None, None, 0, "no interval: no per-item samples (samples.jsonl with metrics)")
    linears, arrays, draw_keys = [], {}, {}
    for key in keys:
        section = _section(benchmarks_section, key)
        items = strata.get(key, {})
        sizes, chance = {}, {}
        for sub, entry in (section.get("subtasks") or {}).items():
            ids = sorted(items.get(sub, {}))
            values = _values(items.get(sub, {}), ids, section.get("metric", ""))
            if values is None or len(ids) != entry.get("n"):
                return Estimate(None, None, None, None, 0, f"no interval: the samples do not match results for "
                                f"{key}/{sub} ({len(ids)} items with metric {section.get('metric')!r}, "
                                f"results say {entry.get('n')})")
            stratum = f"{key}/{sub}"
            arrays[stratum] = values
            # the same items of one subtask in two modes draw the same resamples (their correlation is kept)
            draw_keys[stratum] = f"{key.partition('/')[0]}/{sub}/{zlib.crc32(chr(10).join(ids).encode())}"
            sizes[sub], chance[sub] = len(ids), float(entry.get("chance") or 0.0)
        linears.append(mode_linears(section_aggregation(section), sizes, chance, prefix=f"{key}/")["normalized"])
    return estimate(mean_of(linears), arrays, n_boot, seed, draw_keys)


def paired_comparison(sections_a: dict, strata_a: Strata, sections_b: dict, strata_b: Strata,
                      keys: Sequence[str], quantity: str = "normalized",
                      n_boot: int = N_BOOT, seed: int = SEED) -> PairedDiff | None:
    """Run a minus run b over the items both scored: the mean over `keys` ("bench/mode") of each mode's
    `quantity` ("score" or "normalized"), each mode aggregated as its results.json section says, over the shared
    items only. None when a key is missing from either run or the samples lack per-item metrics for it."""
    lin_a, lin_b, arr_a, arr_b, draw_keys = [], [], {}, {}, {}
    only_a = only_b = 0
    for key in keys:
        sec_a, sec_b = _section(sections_a, key), _section(sections_b, key)
        if sec_a is None or sec_b is None or key not in strata_a or key not in strata_b:
            return None
        metric = sec_a.get("metric")
        if metric != sec_b.get("metric"):
            return None
        agg = section_aggregation(sec_a)
        sizes, chance_a, chance_b = {}, {}, {}
        subs = [s for s in sec_a.get("subtasks") or {} if s in (sec_b.get("subtasks") or {})]
        for sub in subs:
            items_a, items_b = strata_a[key].get(sub, {}), strata_b[key].get(sub, {})
            shared = sorted(set(items_a) & set(items_b))
            if sub not in agg.excluded:
                only_a += len(set(items_a) - set(items_b))
                only_b += len(set(items_b) - set(items_a))
            if not shared:
                continue
            va, vb = _values(items_a, shared, metric), _values(items_b, shared, metric)
            if va is None or vb is None:
                return None
            arr_a[f"{key}/{sub}"], arr_b[f"{key}/{sub}"] = va, vb
            # the same items of one subtask in two modes draw the same resamples (as in average_estimate)
            draw_keys[f"{key}/{sub}"] = f"{key.partition('/')[0]}/{sub}/{zlib.crc32(chr(10).join(shared).encode())}"
            sizes[sub] = len(shared)
            chance_a[sub] = float(sec_a["subtasks"][sub].get("chance") or 0.0)
            chance_b[sub] = float(sec_b["subtasks"][sub].get("chance") or 0.0)
        for sub in set(sec_a.get("subtasks") or {}) ^ set(sec_b.get("subtasks") or {}):
            if sub not in agg.excluded:
                only_a += len(strata_a[key].get(sub, {})) if sub in (sec_a.get("subtasks") or {}) else 0
                only_b += len(strata_b[key].get(sub, {})) if sub in (sec_b.get("subtasks") or {}) else 0
        la = mode_linears(agg, sizes, chance_a, prefix=f"{key}/")[quantity]
        lb = mode_linears(section_aggregation(sec_b), sizes, chance_b, prefix=f"{key}/")[quantity]
        if not la.terms:
            return None
        lin_a.append(la)
        lin_b.append(lb)
    if not lin_a:
        return None
    return paired_diff(mean_of(lin_a), mean_of(lin_b), arr_a, arr_b, only_a, only_b, n_boot, seed,
                       draw_keys=draw_keys, mcnemar=len(lin_a) == 1)
