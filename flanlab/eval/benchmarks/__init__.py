"""The benchmarks: BENCHMARKS (name -> Benchmark) and SUITES (name -> benchmark names), literal registries.

One file per benchmark holds its spec as data, its prompt building and, beside it, its answer extraction:
    mmlu.py       MMLU, 57 subjects, 5-shot from dev; direct + Flan CoT
    bbh.py        BIG-Bench Hard, 27 subtasks, the published 3-shot prompts; CoT + direct (rationales stripped)
    tydiqa.py     TyDiQA-GoldP, 1-shot, 8 languages averaged (English reported)
    mgsm.py       MGSM, 8-shot native CoT exemplars, 10 languages averaged (English reported)
    synthetic.py  the held-out synthetic families, offline, no data needed
A new benchmark is a new file defining BENCHMARK (its aggregation a field of it), added to BENCHMARKS below.

Conventions every benchmark file follows (what the engine may rely on):
- items(data_dir, subtask, mode, options): mode "direct", "cot" or "zs_cot"; "cot" with
  options.zero_shot_cot=True is the same as "zs_cot" (items then carry mode "zs_cot").
- Rank scoring applies to direct mode only: cot/zs_cot items have choices == (). For a direct item with
  choices, choices[i].strip() is the answer text of option i: extract(choice, item) == choice.strip() and
  score(choice.strip(), item) scores it, so rank and generate results go through the same score().
- All items of (subtask, mode) share one prefix, except TyDiQA's exemplar item (see tydiqa.py).
- Every item gives its prefix in parts (EvalItem.parts: description, (user, answer) per exemplar, the answer
  prefix its query ends with; flanlab/eval/fewshot.py), from which the plain prefix is built, for
  --fewshot-as-multiturn; tests/test_fewshot_parts.py checks them for every benchmark and mode.
- Benchmark.max_new_tokens has keys "direct", "cot" and "zs_cot" for every mode the benchmark supports.
"""

from __future__ import annotations

from flanlab.eval.benchmarks import bbh, mgsm, mmlu, synthetic, tydiqa
from flanlab.eval.spec import Benchmark
from flanlab.registry import lookup

BENCHMARKS: dict[str, Benchmark] = {
    "mmlu": mmlu.BENCHMARK,
    "bbh": bbh.BENCHMARK,
    "tydiqa": tydiqa.BENCHMARK,
    "mgsm": mgsm.BENCHMARK,
    "synthetic": synthetic.BENCHMARK,
}

SUITES: dict[str, list[str]] = {
    "flan-heldout": ["mmlu", "bbh", "tydiqa", "mgsm"],  # the paper's held-out suite (needs the data dir or hub)
    "synthetic": ["synthetic"],  # works offline with no data
    "all": ["mmlu", "bbh", "tydiqa", "mgsm", "synthetic"],
}


def get_benchmark(name: str) -> Benchmark:
    return lookup(BENCHMARKS, name, "benchmark")


def get_suite(name: str) -> list[Benchmark]:
    return [get_benchmark(b) for b in lookup(SUITES, name, "suite")]
