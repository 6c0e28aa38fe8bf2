"""The synthetic held-out suite: BBH-style items from the built-in held-out task families, so that evaluation
works offline on a fresh machine with no data at all.

Subtasks: the families of flanlab/data/generators FAMILIES with held_out=True (never in a training mixture).
Items: generate(family, ITEMS, seed=0, split="eval") (the first --limit of them); exemplars: the first 3 records
of split="train" (disjoint seed stream). The prompt has BBH's shape:
    {family instruction}\n\n
    Q: {question}[\nOptions:\n- a\n- b]\nA: Let's think step by step.\n{rationale} So the answer is {answer}.\n\n  (x3)
    Q: {question}[\nOptions:...]\nA: Let's think step by step.
direct drops the rationale ("A: {answer}", the item ends "A:"); zs_cot has no exemplars.
Answers: as BBH ("the answer is X", direct falls back to the first line), then matched to the item's options
(case-insensitive) or, for numeric answers, reduced to the number. Rank scoring (direct only): " " + each
option; families without options are generation only. Chance: Family.chance. Score: accuracy, macro mean.
"""

from __future__ import annotations

import re
from pathlib import Path

from flanlab.eval.benchmarks.bbh import answer_phrase, clean
from flanlab.eval.metrics import Aggregation, exact_match
from flanlab.eval.spec import Benchmark, EvalItem, EvalOptions, take_shots

ITEMS = 50  # per family
SHOTS = 3
SEED = 0
AGGREGATION = Aggregation(average="subtasks", note="unweighted mean over the held-out families")


def _families() -> dict:
    from flanlab.data.generators import FAMILIES

    return {name: fam for name, fam in FAMILIES.items() if fam.held_out}


def subtasks(data_dir: Path | None) -> list[str]:
    return list(_families())


def data_files(data_dir: Path | None) -> list[Path]:
    return []  # generated in code; the benchmark version and the generator code identify the data


# --- prompts ---------------------------------------------------------------------------------------------

def format_question(record: dict) -> str:
    options = record.get("options") or []
    return record["question"] + ("\nOptions:\n" + "\n".join(f"- {o}" for o in options) if options else "")


def format_cot_answer(record: dict) -> str:
    rationale = (record.get("rationale") or "").strip()
    answer = str(record["answer"]).rstrip(".")  # "So the answer is Felix finished first." (no double period)
    return f"Let's think step by step.\n{rationale + ' ' if rationale else ''}So the answer is {answer}."


def items(data_dir: Path | None, family: str, mode: str, options: EvalOptions) -> list[EvalItem]:
    from flanlab.data.generators import generate
    from flanlab.registry import lookup

    fam = lookup(_families(), family, "held-out synthetic family")
    if options.zero_shot_cot and mode == "cot":
        mode = "zs_cot"
    k = options.shots_or(SHOTS)
    shots = take_shots(generate(fam, k, seed=SEED, split="train"), k, f"synthetic family {family} (train split)")
    if mode == "cot":
        exemplars = [f"Q: {format_question(r)}\nA: {format_cot_answer(r)}" for r in shots]
        suffix = "A: Let's think step by step."
    elif mode == "direct":
        exemplars = [f"Q: {format_question(r)}\nA: {r['answer']}" for r in shots]
        suffix = "A:"
    elif mode == "zs_cot":
        exemplars, suffix = [], "A: Let's think step by step."
    else:
        raise ValueError(f"synthetic has no mode {mode!r} (direct, cot, zs_cot)")
    prefix = fam.instruction.strip() + "\n\n" + "".join(e + "\n\n" for e in exemplars)
    n = ITEMS if options.limit is None else min(ITEMS, options.limit)
    return [
        EvalItem(benchmark="synthetic", subtask=family, mode=mode, item_id=str(i), prefix=prefix,
                 query=f"Q: {format_question(r)}\n{suffix}", target=str(r["answer"]),
                 choices=tuple(" " + str(o) for o in r.get("options") or ()) if mode == "direct" else (),
                 chance=float(fam.chance), shots=len(exemplars))
        for i, r in enumerate(generate(fam, n, seed=SEED, split="eval"))
    ]


# --- answers ---------------------------------------------------------------------------------------------
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")


def canonical(answer: str, options: tuple[str, ...], target: str) -> str:
    """An answer matched onto one of the options (case and a trailing period ignored), a number, or squeezed text."""
    answer = clean(answer)
    for option in options:
        if answer.lower() == option.lower().rstrip("."):
            return option
    for option in options:  # "(True)" or "True, because ..."
        m = re.match(r"^\(?" + re.escape(option.rstrip(".")) + r"\)?(?![\w])", answer, re.IGNORECASE)
        if m:
            return option
    if _NUMBER.match(target.strip()):
        m = re.search(r"-?\d+(?:\.\d+)?", answer.replace(",", ""))
        return m.group(0) if m else answer
    return " ".join(answer.split()).rstrip(".")


def item_options(item: EvalItem) -> tuple[str, ...]:
    """The options listed in the item's query ("Options:\n- a\n- b"), or ()."""
    if "\nOptions:\n" not in item.query:
        return ()
    block = item.query.split("\nOptions:\n", 1)[1]
    return tuple(line[2:] for line in block.split("\n") if line.startswith("- "))


def extract(output: str, item: EvalItem) -> str:
    found = answer_phrase(output)
    if not found and item.mode == "direct":
        found = next((line for line in output.strip().split("\n") if line.strip()), "")
    return canonical(found, item_options(item), item.target) if found else ""


def score(extracted: str, item: EvalItem) -> dict[str, float]:
    target = item.target if item_options(item) else " ".join(item.target.split()).rstrip(".")
    return {"accuracy": exact_match(extracted, target)}


BENCHMARK = Benchmark(
    name="synthetic",
    version="2",  # 2: records drawn in seeded blocks (generators/base.py), new items
    description="Held-out synthetic families (BBH-style, generated in code): offline evaluation with no data",
    modes=("direct", "cot"),
    metric="accuracy",
    scorings=("generate", "rank"),
    subtasks=subtasks,
    items=items,
    extract=extract,
    score=score,
    max_new_tokens={"direct": 32, "cot": 256, "zs_cot": 256},  # answers <= 16 tokens, CoT exemplars 95% <= 196 (SmolLM2)
    stop=("\n\nQ:",),
    data_files=data_files,
)
