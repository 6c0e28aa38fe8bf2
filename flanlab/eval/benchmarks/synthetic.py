"""The synthetic held-out suite: BBH-style items from the built-in held-out task families, so that evaluation
works offline on a fresh machine with no data at all.

Subtasks: the families of flanlab/data/generators FAMILIES with held_out=True (never in a training mixture).
Items: generate(family, ITEMS, seed=0, split="eval") (the first --limit of them); exemplars: the first 3 records
of split="train" (disjoint seed stream). The prompt has BBH's shape:
    {family instruction}\n\n
    Q: {question}[\nOptions:\n- a\n- b]\nA: Let's think step by step.\n{rationale} So the answer is {answer}.\n\n  (x3)
    Q: {question}[\nOptions:...]\nA: Let's think step by step.
direct drops the rationale ("A: {answer}", the item ends "A:"); zs_cot has no exemplars.
Answers: as BBH ("the answer is X", direct falls back to the first line), scored whole (accuracy: the answer
must be one option, case-insensitive, or the number alone) and leniently (accuracy_lenient, never averaged);
the rule is written beside `score`. Rank scoring (direct only): " " + each
option; families without options are generation only. Chance: Family.chance. Score: accuracy, macro mean.
"""

from __future__ import annotations

import re
from pathlib import Path

from flanlab.eval.benchmarks.bbh import clean, extract_answer
from flanlab.eval.fewshot import split
from flanlab.eval.metrics import exact_match
from flanlab.eval.spec import Aggregation, Benchmark, EvalItem, EvalOptions, take_shots

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
        suffix, answers = "A: Let's think step by step.", [format_cot_answer(r) for r in shots]
    elif mode == "direct":
        suffix, answers = "A:", [str(r["answer"]) for r in shots]
    elif mode == "zs_cot":
        suffix, answers = "A: Let's think step by step.", []
    else:
        raise ValueError(f"synthetic has no mode {mode!r} (direct, cot, zs_cot)")
    # each exemplar as (its plain text, its user part: the question and the item's answer prefix; fewshot.py)
    exemplars = [(f"Q: {format_question(r)}\nA: {a}\n\n", f"Q: {format_question(r)}\n{suffix}")
                 for r, a in zip(shots, answers)]
    prefix, parts = split(fam.instruction.strip() + "\n\n", exemplars, suffix)
    n = ITEMS if options.limit is None else min(ITEMS, options.limit)
    return [
        EvalItem(benchmark="synthetic", subtask=family, mode=mode, item_id=str(i), prefix=prefix,
                 query=f"Q: {format_question(r)}\n{suffix}", target=str(r["answer"]),
                 choices=tuple(" " + str(o) for o in r.get("options") or ()) if mode == "direct" else (),
                 chance=float(fam.chance), shots=len(exemplars), parts=parts)
        for i, r in enumerate(generate(fam, n, seed=SEED, split="eval"))
    ]


# --- answers ---------------------------------------------------------------------------------------------
#
# No outside reference: the suite is flanlab's own, built in BBH's shape, so it is scored by BBH's rule
# (flanlab/eval/benchmarks/bbh.py, from Suzgun et al. 2022 and lm-evaluation-harness's BBH "get-answer" filter).
#   accuracy (averaged): the whole cleaned answer after the first "the answer is" (direct mode: else the first
#       line) must BE the target: one of the item's options (case-insensitive, a trailing period ignored) or,
#       for a numeric target, the number alone. "True or False", "True, because ...", "7 or 8" are wrong.
#   accuracy_lenient (reported, never averaged): `canonical`, the first option at the start of the answer
#       ("(True)", "True, because ...") or the first number in it.
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")


def canonical(answer: str, options: tuple[str, ...], target: str) -> str:
    """The lenient reading: an answer matched onto one of the options (case and a trailing period ignored; also
    an option at its start), a number, or squeezed text."""
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


def strict(answer: str, options: tuple[str, ...]) -> str:
    """The strict reading: the whole answer, spelled as the option it equals (case-insensitive), else as written."""
    answer = clean(answer)
    return next((o for o in options if answer.lower() == o.lower().rstrip(".")), answer)


def item_options(item: EvalItem) -> tuple[str, ...]:
    """The options listed in the item's query ("Options:\n- a\n- b"), or ()."""
    if "\nOptions:\n" not in item.query:
        return ()
    block = item.query.split("\nOptions:\n", 1)[1]
    return tuple(line[2:] for line in block.split("\n") if line.startswith("- "))


def extract(output: str, item: EvalItem) -> str:
    """The whole cleaned answer (bbh.extract_answer), spelled as its option when it is one."""
    found = extract_answer(output, item.mode)
    return strict(found, item_options(item)) if found else ""


def score(extracted: str, item: EvalItem) -> dict[str, float]:
    options = item_options(item)
    target = item.target if options else " ".join(item.target.split()).rstrip(".")
    lenient = canonical(extracted, options, item.target) if extracted else ""
    return {"accuracy": exact_match(strict(extracted, options) if extracted else "", target),
            "accuracy_lenient": exact_match(lenient, target)}


def chance(family: str) -> float:
    """The family's random-guess rate (Family.chance; generated in code, needs no data)."""
    from flanlab.registry import lookup

    return float(lookup(_families(), family, "held-out synthetic family").chance)


BENCHMARK = Benchmark(
    name="synthetic",
    # 4: a quoted answer closed by a period is unquoted (bbh.clean); 3: strict whole-answer accuracy (BBH's
    # rule), the old reading as accuracy_lenient; 2: seeded blocks
    version="4",
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
    chance=chance,
    aggregation=AGGREGATION,
)
