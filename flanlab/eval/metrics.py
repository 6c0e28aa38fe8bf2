"""Scores: per-item metrics, how subtask scores become a benchmark score, and the paper's normalized average.

Per item (values in 0..1, the engine averages them):
    exact_match          string equality after stripping (BBH, MMLU letters, synthetic)
    squad_f1 / squad_em  the official SQuAD v1.1 token F1 / exact match, max over gold answers (TyDiQA)
    numeric_match        equal as numbers: "1,000" == "1000.0" (MGSM)
    majority_vote        self-consistency: the most frequent extracted answer (ties: the first seen)

Per benchmark and mode, `summarize_mode` builds the section of results.json described in flanlab/eval/spec.py.
How a benchmark averages its subtasks is an `Aggregation` declared in its own file (AGGREGATION there) and
collected in flanlab/eval/benchmarks/__init__.py AGGREGATIONS:
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
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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
    counts: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    for i, a in enumerate(answers):
        a = (a or "").strip()
        if a:
            counts[a] += 1
            first_seen.setdefault(a, i)
    if not counts:
        return ""
    return min(counts, key=lambda a: (-counts[a], first_seen[a]))


def normalize(x: float, r: float) -> float:
    """The paper's normalized score: 100 * (x - r) / (100 - r); x and r in percent."""
    if r >= 100:
        raise ValueError(f"random-guess rate must be below 100, got {r}")
    return 100.0 * (x - r) / (100.0 - r)


# ---------------------------------------------------------------------------------------------------------
# From per-item metrics to the per-mode section of results.json


@dataclass(frozen=True)
class Aggregation:
    """How a benchmark's subtask scores become its score (declared as AGGREGATION in each benchmark file)."""

    average: str = "subtasks"  # "subtasks": unweighted mean over subtasks (macro); "items": over all items (micro)
    excluded: tuple[str, ...] = ()  # subtasks reported but left out of the benchmark's mean (English for TyDiQA)
    note: str = ""  # one line for results.json saying what was done and why


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def summarize_mode(benchmark, mode: str, scoring: str, per_item: dict[str, list[dict[str, float]]],
                   chance: dict[str, float], aggregation: Aggregation | None = None,
                   subtask_scoring: dict[str, str] | None = None) -> dict:
    """The per-mode section of results.json from each subtask's per-item metric dicts (values 0..1).

    benchmark: a flanlab.eval.spec.Benchmark; its `metric` names the main metric in the per-item dicts.
    chance: subtask -> random-guess rate in percent. aggregation: defaults to the benchmark's registered one.
    subtask_scoring: where subtasks were scored differently (BBH direct under rank scoring: the free-form
    subtasks have no choices and are generated), subtask -> "rank"|"generate", recorded per subtask.
    Subtasks with no items are left out. Scores are percentages."""
    if aggregation is None:
        from flanlab.eval.benchmarks import AGGREGATIONS

        aggregation = AGGREGATIONS.get(benchmark.name, Aggregation())
    metric = benchmark.metric
    subtasks: dict[str, dict] = {}
    for name, rows in per_item.items():
        if not rows:
            continue
        if metric not in rows[0]:
            raise ValueError(f"{benchmark.name}/{mode}/{name}: per-item metrics {sorted(rows[0])} lack the main "
                             f"metric {metric!r}")
        names = list(rows[0])
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
        "excluded_from_mean": [k for k in subtasks if k in aggregation.excluded],
        "subtasks": subtasks,
    }


# ---------------------------------------------------------------------------------------------------------
# The paper's normalized average

NORMALIZED_AVERAGE_COMPONENTS: tuple[tuple[str, str], ...] = (
    ("mmlu", "direct"), ("mmlu", "cot"), ("bbh", "direct"), ("bbh", "cot"), ("tydiqa", "direct"), ("mgsm", "cot"),
)


def normalized_average(benchmarks_section: dict) -> dict:
    """{"value", "components", "missing"} from results.json's "benchmarks" section.

    components: "bench/mode" -> normalized score for each of the six present; missing: the absent ones in the
    paper's order; value: their mean, or None when any is missing."""
    components: dict[str, float] = {}
    missing: list[str] = []
    for bench, mode in NORMALIZED_AVERAGE_COMPONENTS:
        section = (benchmarks_section or {}).get(bench, {}).get(mode)
        key = f"{bench}/{mode}"
        if section is None or section.get("normalized") is None:
            missing.append(key)
        else:
            components[key] = float(section["normalized"])
    value = _mean(list(components.values())) if not missing else None
    return {"value": value, "components": components, "missing": missing}
