"""BIG-Bench Hard (Suzgun et al. 2022): 27 subtasks, 6,511 items, the published 3-shot prompts.

Data: <data dir>/bbh/bbh/<task>.json ({"examples": [{"input", "target"}]}) and bbh/cot-prompts/<task>.txt
(canary line, "-----", the task description (snarks: two paragraphs), then three "Q: ...\nA: Let's think step
by step.\n... So the answer is X." exemplars separated by blank lines). The published prompts are not on the
Hugging Face hub, so BBH needs the data dir.

cot     As published: description, the 3 CoT exemplars, then "Q: {input}\nA: Let's think step by step."
direct  The same exemplars with each rationale stripped ("A: (D)"); the item ends "A:".
zs_cot  The description, then the item as in cot.

Answers (the rule and its source are beside `score` below): "accuracy", the score of every table and of the
normalized average, is the authors' exact match of the WHOLE answer after the first "the answer is" (formatting
removed) with the target: an answer naming more than one option, or anything beyond the target, is wrong.
"accuracy_lenient" (never averaged) reads the first answer in the subtask's target format (FORMATS) at the start
of that text. Direct mode without the phrase takes the output's first line.
Rank scoring (direct mode only): the item's "Options:" lines give (" (A)", " (B)", ...) or the labels; the
free-form subtasks (FORMATS "number", "dyck", "words") are generation only.

Chance rates (CHANCE, percent), derived from the data as published (tests/test_benchmarks.py recomputes them):
  binary subtasks (two labels, or always two options (A)/(B)): 50. snarks has one item whose options are
      truncated to one line ("(A) The NB"); it is still a two-way question, so 50.
  multiple choice: the mean over items of 1/(number of options), options counted as the "(X) ..." lines after
      "Options:". ruin_names and movie_recommendation count their two known malformed items as parsed
      (11 and 5 lines); their targets are option text, not letters, and are scored as published.
  free-form (dyck_languages, multistep_arithmetic_two, object_counting, word_sorting): 0, no guessable set.
Score: accuracy per subtask; the benchmark score is the unweighted mean over the 27 subtasks.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from flanlab.eval.benchmarks.hub import need_data_dir
from flanlab.eval.fewshot import split
from flanlab.eval.metrics import exact_match
from flanlab.eval.spec import Aggregation, Benchmark, EvalItem, EvalOptions, take_shots

SHOTS = 3

# The form of each subtask's targets: "letter" = "(A)".."(R)"; a (label, label) pair; or free-form kinds.
FORMATS: dict[str, str | tuple[str, str]] = {
    "boolean_expressions": ("True", "False"),
    "causal_judgement": ("Yes", "No"),
    "date_understanding": "letter",
    "disambiguation_qa": "letter",
    "dyck_languages": "dyck",
    "formal_fallacies": ("valid", "invalid"),
    "geometric_shapes": "letter",
    "hyperbaton": "letter",
    "logical_deduction_five_objects": "letter",
    "logical_deduction_seven_objects": "letter",
    "logical_deduction_three_objects": "letter",
    "movie_recommendation": "letter",
    "multistep_arithmetic_two": "number",
    "navigate": ("Yes", "No"),
    "object_counting": "number",
    "penguins_in_a_table": "letter",
    "reasoning_about_colored_objects": "letter",
    "ruin_names": "letter",
    "salient_translation_error_detection": "letter",
    "snarks": "letter",
    "sports_understanding": ("yes", "no"),
    "temporal_sequences": "letter",
    "tracking_shuffled_objects_five_objects": "letter",
    "tracking_shuffled_objects_seven_objects": "letter",
    "tracking_shuffled_objects_three_objects": "letter",
    "web_of_lies": ("Yes", "No"),
    "word_sorting": "words",
}

# Random-guess accuracy in percent; how each was derived is in the module docstring.
CHANCE: dict[str, float] = {
    "boolean_expressions": 50.0,  # binary True/False
    "causal_judgement": 50.0,  # binary Yes/No
    "date_understanding": 17.1733,  # mean 1/n, 5-6 options
    "disambiguation_qa": 33.2333,  # mean 1/n, 3-4 options
    "dyck_languages": 0.0,  # free-form
    "formal_fallacies": 50.0,  # binary valid/invalid
    "geometric_shapes": 9.8182,  # mean 1/n, 10-11 options
    "hyperbaton": 50.0,  # binary (A)/(B)
    "logical_deduction_five_objects": 20.0,  # 5 options
    "logical_deduction_seven_objects": 14.2857,  # 7 options
    "logical_deduction_three_objects": 33.3333,  # 3 options
    "movie_recommendation": 24.62,  # mean 1/n, 4-5 options
    "multistep_arithmetic_two": 0.0,  # free-form number
    "navigate": 50.0,  # binary Yes/No
    "object_counting": 0.0,  # free-form number
    "penguins_in_a_table": 20.0342,  # mean 1/n, 4-5 options
    "reasoning_about_colored_objects": 12.1063,  # mean 1/n, 2-18 options
    "ruin_names": 24.9268,  # mean 1/n, 3-11 options (malformed items as parsed)
    "salient_translation_error_detection": 16.6667,  # 6 options
    "snarks": 50.0,  # binary (A)/(B)
    "sports_understanding": 50.0,  # binary yes/no
    "temporal_sequences": 25.0,  # 4 options
    "tracking_shuffled_objects_five_objects": 20.0,  # 5 options
    "tracking_shuffled_objects_seven_objects": 14.2857,  # 7 options
    "tracking_shuffled_objects_three_objects": 33.3333,  # 3 options
    "web_of_lies": 50.0,  # binary Yes/No
    "word_sorting": 0.0,  # free-form
}
SUBTASKS: tuple[str, ...] = tuple(FORMATS)
AGGREGATION = Aggregation(average="subtasks", note="unweighted mean over the 27 subtasks (Suzgun et al.; Flan)")


# --- data ------------------------------------------------------------------------------------------------

def subtasks(data_dir: Path | None) -> list[str]:
    return list(SUBTASKS)


def data_files(data_dir: Path | None) -> list[Path]:
    if data_dir is None:
        return []
    root = Path(data_dir) / "bbh"
    return [root / "bbh" / f"{t}.json" for t in SUBTASKS] + [root / "cot-prompts" / f"{t}.txt" for t in SUBTASKS]


def _check(task: str) -> None:
    if task not in FORMATS:
        from flanlab.registry import lookup

        lookup(FORMATS, task, "BBH subtask")


def chance(task: str) -> float:
    """The subtask's random-guess rate in percent (CHANCE; needs no data)."""
    _check(task)
    return CHANCE[task]


@functools.lru_cache(maxsize=64)
def examples(data_dir: Path | None, task: str) -> tuple[tuple[str, str], ...]:
    """The (input, target) items of one subtask, in file order."""
    if data_dir is None:
        raise need_data_dir("bbh", "BBH (its items and published prompts)")
    path = Path(data_dir) / "bbh" / "bbh" / f"{task}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    try:
        return tuple((e["input"], e["target"]) for e in data["examples"])
    except (KeyError, TypeError):
        raise ValueError(f"{path}: expected {{'examples': [{{'input', 'target'}}, ...]}}") from None


@functools.lru_cache(maxsize=64)
def cot_prompt(data_dir: Path | None, task: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """(description, ((question, CoT answer), ...)) of the published prompt file."""
    if data_dir is None:
        raise need_data_dir("bbh", "BBH (its items and published prompts)")
    path = Path(data_dir) / "bbh" / "cot-prompts" / f"{task}.txt"
    text = path.read_text(encoding="utf-8")
    if "-----\n" not in text:
        raise ValueError(f"{path}: no '-----' line after the canary")
    body = text.split("-----\n", 1)[1]
    start = body.find("Q: ")
    description = body[:start].strip()
    shots = re.findall(r"(?ms)^Q: (.*?)\nA: (.*?)(?=\n\nQ: |\Z)", body[start:])
    if not shots:
        raise ValueError(f"{path}: no 'Q: ... A: ...' exemplars found")
    return description, tuple((q, a.strip()) for q, a in shots)


def options(question: str) -> list[tuple[str, str]]:
    """The item's options as (label, text): ("(A)", "12/14/1937") for "(A) ..." lines, ("Yes", "Yes") for "- Yes"."""
    if "Options:" not in question:
        return []
    found = []
    for line in question.split("Options:", 1)[1].strip().split("\n"):
        line = line.strip()
        m = re.match(r"^\(([A-Z])\)\s*(.*)$", line)
        if m:
            found.append((f"({m.group(1)})", m.group(2).strip()))
        elif line.startswith("- "):
            found.append((line[2:].strip(), line[2:].strip()))
    return found


def choices(task: str, question: str) -> tuple[str, ...]:
    """Continuations for rank scoring (direct mode); () for free-form subtasks."""
    fmt = FORMATS[task]
    if isinstance(fmt, tuple):
        return tuple(" " + label for label in fmt)
    if fmt == "letter":
        return tuple(" " + label for label, _ in options(question))
    return ()


# --- prompts ---------------------------------------------------------------------------------------------

def items(data_dir: Path | None, task: str, mode: str, opts: EvalOptions) -> list[EvalItem]:
    _check(task)
    if opts.zero_shot_cot and mode == "cot":
        mode = "zs_cot"
    description, published = cot_prompt(data_dir, task)
    source = str(Path(data_dir) / "bbh" / "cot-prompts" / f"{task}.txt")
    if mode == "cot":
        suffix, shots = "A: Let's think step by step.", take_shots(published, opts.shots_or(SHOTS), source)
    elif mode == "direct":
        suffix = "A:"
        shots = [(q, answer_phrase(a)) for q, a in take_shots(published, opts.shots_or(SHOTS), source)]
    elif mode == "zs_cot":
        suffix, shots = "A: Let's think step by step.", []
    else:
        raise ValueError(f"bbh has no mode {mode!r} (direct, cot, zs_cot)")
    # each exemplar as (its plain text, its user part: the question and the item's answer prefix; fewshot.py)
    exemplars = [(f"Q: {q}\nA: {a}\n\n", f"Q: {q}\n{suffix}") for q, a in shots]
    prefix, parts = split(description + "\n\n", exemplars, suffix)
    rows = examples(data_dir, task)
    if opts.limit is not None:
        rows = rows[: opts.limit]
    return [
        EvalItem(benchmark="bbh", subtask=task, mode=mode, item_id=str(i), prefix=prefix,
                 query=f"Q: {question}\n{suffix}", target=target,
                 choices=choices(task, question) if mode == "direct" else (), chance=CHANCE[task],
                 shots=len(exemplars), parts=parts)
        for i, (question, target) in enumerate(rows)
    ]


# --- answers ---------------------------------------------------------------------------------------------
#
# The authors' rule, the score that enters every table and the normalized average (metric "accuracy"):
#   Suzgun et al. 2022 (suzgunmirac/BIG-Bench-Hard) score exact match of the answer after "the answer is"
#   with the target; lm-evaluation-harness implements it as lm_eval/tasks/bbh/cot_fewshot/
#   _cot_fewshot_template_yaml, filter "get-answer": regex "(?<=the answer is )(.*)(?=.)" (the rest of the
#   line, less its final character, the period), take_first, then exact_match against the target.
#   So: the first "the answer is" (case-insensitive), everything after it to the end of its sentence (a period
#   followed by a space) or line, cleaned of formatting only (markdown emphasis, code ticks, surrounding quotes,
#   one trailing period, runs of spaces), compared WHOLE with the target. (lm-eval reads to the end of the line,
#   so "(A). More text" on the same line is wrong there; here the sentence "(A)." is the answer.)
#   Two deliberate departures from lm-eval's regex, both only where it finds no answer at all: the phrase is
#   matched in any case ("The answer is (A)." at a sentence start; lm-eval's lookbehind is case-sensitive and
#   scores it as no answer), and an optional ":" after it is skipped. Neither can credit a hedged answer.
#   "(A) or (B)", "(A) and (B)", "Yes or No", "(A) 12/14/1937", "A", "yes" (target "Yes") are all wrong.
#   No phrase in a CoT output: no answer. Direct mode without the phrase takes the output's first line (the
#   direct prompt ends "A:", so the answer is the continuation itself).
# The lenient reading, reported beside it and never averaged (metric "accuracy_lenient"): the first answer in
#   the subtask's target format at the start of the same text (`canonical`): a letter "(A)"/"A."/"A", an
#   option's text, a label in any case, the first number, the bracket characters, the words. It credits
#   hedged answers ("(A) or (B)" counts as (A)); it was flanlab's only score before benchmark version 2.

_PHRASE = re.compile(r"\bthe answer is\b\s*:?\s*(.*)", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=\.)\s")  # "(A). Because ..." -> "(A)."
_QUOTES = "\"'“”‘’"


def clean(text: str) -> str:
    """Strip markdown emphasis, code ticks, quotes and one trailing period; squeeze runs of whitespace."""
    text = text.strip().replace("**", "").replace("__", "").replace("`", "").strip()
    text = text.strip(_QUOTES).strip()
    if text.endswith("."):  # the period may close the sentence after a quote: '"valid".' -> 'valid'
        text = text[:-1].rstrip().strip(_QUOTES).strip()
    return " ".join(text.split())


def answer_phrase(text: str) -> str:
    """The cleaned text after the first "the answer is" (to the end of its sentence or line), or "" when absent."""
    m = _PHRASE.search(text)
    return clean(_SENTENCE_END.split(m.group(1).split("\n")[0], maxsplit=1)[0]) if m else ""


def canonical(answer: str, fmt, question: str = "") -> str:
    """The lenient reading: the first answer in a subtask's target format (see FORMATS) at the start of
    `answer`; unrecognised answers come back cleaned."""
    answer = clean(answer)
    if fmt == "letter":
        m = re.match(r"^\(([A-R])\)", answer) or re.match(r"^([A-R])(?:[.):]|$)", answer)
        if m:
            return f"({m.group(1)})"
        for label, text in options(question):  # the option's text instead of its letter
            if text and answer.lower() == text.lower():
                return label
        return answer
    if isinstance(fmt, tuple):
        m = re.match(r"^\(?([A-Za-z]+)", answer)
        word = m.group(1).lower() if m else ""
        return next((label for label in fmt if label.lower() == word), answer)
    if fmt == "number":
        m = re.search(r"-?\d+(?:\.\d+)?", answer.replace(",", ""))
        return (m.group(0).removesuffix(".0") if m else answer)
    if fmt == "dyck":
        return " ".join(re.findall(r"[\[\]{}()<>]", answer))
    if fmt == "words":
        return " ".join(w.strip(".,;:") for w in answer.replace(",", " ").split() if w.strip(".,;:"))
    return answer


def extract_answer(output: str, mode: str) -> str:
    """Shared with synthetic.py: the whole cleaned answer after "the answer is"; direct mode falls back to the
    output's first non-empty line. "" when there is none. Scored whole (strict) and by `canonical` (lenient)."""
    found = answer_phrase(output)
    if not found and mode == "direct":
        found = clean(next((line for line in output.strip().split("\n") if line.strip()), ""))
    return found


def _question(item: EvalItem) -> str:
    return item.query.removeprefix("Q: ").rsplit("\nA:", 1)[0]


def extract(output: str, item: EvalItem) -> str:
    return extract_answer(output, item.mode)


def score(extracted: str, item: EvalItem) -> dict[str, float]:
    """accuracy: the authors' exact match of the whole answer; accuracy_lenient: `canonical` (never averaged)."""
    fmt = FORMATS[item.subtask]
    question = _question(item)
    lenient_target = canonical(item.target, fmt, question) if fmt in ("dyck", "words", "number") else item.target
    return {"accuracy": exact_match(extracted, clean(item.target)),
            "accuracy_lenient": exact_match(canonical(extracted, fmt, question) if extracted else "", lenient_target)}


BENCHMARK = Benchmark(
    name="bbh",
    # 3: a quoted answer closed by a period ('"valid".') is unquoted (it kept the closing quote and scored 0);
    # 2: accuracy is the authors' exact match of the whole answer; the old reading is accuracy_lenient
    version="3",
    description="BIG-Bench Hard: 27 subtasks, published 3-shot prompts; CoT as published, direct without rationales",
    modes=("direct", "cot"),
    metric="accuracy",
    scorings=("generate", "rank"),
    subtasks=subtasks,
    items=items,
    extract=extract,
    score=score,
    max_new_tokens={"direct": 96, "cot": 384, "zs_cot": 384},  # published CoT exemplars: 95% <= 325 tokens (SmolLM2)
    stop=("\n\nQ:",),
    data_files=data_files,
    chance=chance,
    aggregation=AGGREGATION,
)
