"""What a benchmark is, as data: the contract between the benchmark files and the evaluation engine.

A benchmark file (flanlab/eval/benchmarks/<name>.py) declares one `Benchmark`: where its data comes from,
which subtasks and modes it has, how it builds prompts (as EvalItems) and, right beside that, how it
extracts and scores an answer. The engine (flanlab/eval/engine.py) knows nothing about any benchmark: it
turns EvalItems into generations or option log-likelihoods, and hands them back to the benchmark to score.

results.json (written by flanlab/eval/results.py, read and checked by flanlab/eval/schema.py's dataclasses) has
this shape; scores are percentages (0-100). Every section's "uncertainty" gives each of its numbers an interval
I = {"stderr", "ci95": [lo, hi], "method", "n"} (computed as flanlab/eval/stats.py says):
{
  "schema": "flanlab.results/2",
  "model": {"name": str, "kind": "causal"|"seq2seq", "parameters": int, "untrained": bool,
            "fingerprint": str, "fingerprint_basis": {...what was hashed, see results.fingerprint_with_basis}},
  "settings": {...every option that changes a score: limit, scoring, shots, self_consistency, ...},
  "benchmarks": {
    "<benchmark>": {
      "<mode>": {                      # "direct" | "cot" (| "zs_cot")
        "score": float, "metric": str, "n": int, "scoring": "generate"|"rank",
        "chance": float,               # benchmark-level random-guess rate (mean of subtasks' for BBH)
        "normalized": float,           # 100*(x-r)/(100-r), per subtask then averaged for BBH
        "shots": int|null, "shots_max": int|null,  # exemplars the prompts really had: fewest, most (null: unknown)
        "uncertainty": {"score": I, "normalized": I, "micro": I, "macro": I, "metrics": {"<metric>": I}},
        "subtasks": {"<subtask>": {"score": float, "n": int, "chance": float, "shots": int|null, "metrics": {...},
                                   "uncertainty": {"score": I, "normalized": I, "metrics": {"<metric>": I}}}}
      }
    }
  },
  "normalized_average": {"value": float|null, "components": {"mmlu/direct": float, ...}, "missing": [...],
                         "uncertainty": {"value": I}|null},
  "synthetic_average": {the same, over the synthetic suite's modes}|null,
  "provenance": {"flanlab_version": str, "git_revision": str|null, "libraries": {"torch": str, "transformers": str},
                 "data_dir": str|null, "data_files": {path: sha256},
                 "benchmark_data": {benchmark: sha256 of its data files' hashes}, "created": iso-time},
  "timings": {"total_s": float, "<benchmark>/<mode>": {"seconds": float, "items_per_s": float}}
}
samples.jsonl: one object per item: benchmark, subtask, mode, item_id, prompt, shots, output, extracted, target,
correct, metrics (the per-item metrics every interval and paired comparison is computed from); with
self-consistency also outputs, answers, votes ({answer: count}) and vote_margin ((winner's votes - runner-up's)
/ samples).

Shots: a benchmark never gives fewer worked exemplars than it promises (its default, or --shots): `take_shots`
stops with an error naming the file (or hub split) that has too few, and every item records the shots its prompt
really has (EvalItem.shots), which results.json reports per subtask and mode and the printed table shows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from flanlab.eval.fewshot import PromptParts

MODES = ("direct", "cot")


@dataclass(frozen=True)
class EvalItem:
    """One question of one benchmark in one mode, with its prompt split for prefix-KV reuse."""

    benchmark: str  # "mmlu"
    subtask: str  # "abstract_algebra"
    mode: str  # "direct" | "cot" | "zs_cot"
    item_id: str  # stable within (benchmark, subtask)
    prefix: str  # the few-shot part shared by every item of (subtask, mode); its KV cache is computed once
    query: str  # the item's own part: the full prompt is prefix + query
    target: str  # the gold answer in the form the metric compares
    choices: tuple[str, ...] = ()  # continuations for rank classification, e.g. (" A", " B", " C", " D")
    aliases: tuple[str, ...] = ()  # further accepted answers (TyDiQA lists several)
    chance: float = 0.0  # random-guess accuracy in percent, for the normalized score
    shots: int | None = None  # worked exemplars in the prompt (None: not known, e.g. rebuilt from predictions)
    # the prefix as description and (user, answer) exemplars, for --fewshot-as-multiturn (flanlab/eval/fewshot.py;
    # parts.text == prefix); None: not given (a custom benchmark, an exemplar in another shape)
    parts: PromptParts | None = None

    @property
    def prompt(self) -> str:
        return self.prefix + self.query


@dataclass(frozen=True)
class EvalOptions:
    """Options that change which items are built or how they are prompted."""

    limit: int | None = None  # at most this many items per subtask (the first N, deterministic)
    zero_shot_cot: bool = False  # no exemplars; append "Let's think step by step."
    shots: int | None = None  # override the benchmark's number of exemplars

    def __post_init__(self):
        bad = isinstance(self.shots, bool) or not isinstance(self.shots, int) or self.shots < 0
        if self.shots is not None and bad:
            raise ValueError(f"shots must be a whole number >= 0, not {self.shots!r}")

    def shots_or(self, default: int) -> int:
        """The shots asked for (--shots), else the benchmark's default."""
        return default if self.shots is None else self.shots


def take_shots(exemplars: Sequence, wanted: int, source: str) -> list:
    """The first `wanted` exemplars of a k-shot prompt. Fewer available than wanted is a ValueError naming
    `source` (the file, or hub split, they come from): a prompt never silently has fewer shots than promised."""
    if len(exemplars) < wanted:
        have = len(exemplars)
        raise ValueError(f"{source}: {have} exemplar{'s' if have != 1 else ''}, but the {wanted}-shot prompt needs "
                         f"{wanted}; pass --shots {have} to run {have}-shot (results record the shots used)")
    return list(exemplars[:wanted])


@dataclass(frozen=True)
class Aggregation:
    """How a benchmark's subtask scores become its score (Benchmark.aggregation; flanlab/eval/metrics.py
    summarize_mode applies it)."""

    average: str = "subtasks"  # "subtasks": unweighted mean over subtasks (macro); "items": over all items (micro)
    excluded: tuple[str, ...] = ()  # subtasks reported but left out of the benchmark's mean (English for TyDiQA)
    note: str = ""  # one line for results.json saying what was done and why

    def __post_init__(self):
        if self.average not in ("items", "subtasks"):
            raise ValueError(f"unknown aggregation {self.average!r} (use 'items' or 'subtasks')")


@dataclass(frozen=True)
class Benchmark:
    name: str
    version: str  # bump whenever prompts, extraction or scoring change
    description: str
    modes: tuple[str, ...]  # which of MODES it supports
    metric: str  # the main metric's name ("accuracy", "exact_match")
    scorings: tuple[str, ...]  # "generate" and/or "rank" (rank needs EvalItem.choices)
    subtasks: Callable[[Path | None], list[str]]  # data dir -> subtask names
    items: Callable[[Path | None, str, str, EvalOptions], list[EvalItem]]  # (data dir, subtask, mode, options)
    extract: Callable[[str, EvalItem], str]  # raw generation -> extracted answer
    score: Callable[[str, EvalItem], dict[str, float]]  # extracted answer -> {metric: 0..1, ...}; main metric first
    max_new_tokens: dict[str, int] = field(default_factory=lambda: {"direct": 16, "cot": 256})
    stop: tuple[str, ...] = ("\n\nQ:", "\n\nQuestion:")
    data_files: Callable[[Path | None], list[Path]] = lambda data_dir: []  # files hashed into provenance
    # subtask -> random-guess rate in percent from the benchmark's own table (needs no data; raises for an
    # unknown subtask). `flanlab eval score` takes chance rates from it; None: from the rebuilt items or rows.
    chance: Callable[[str], float] | None = None
    aggregation: Aggregation = Aggregation()  # how subtask scores are averaged; default: macro over all subtasks
