"""MMLU (Hendrycks et al. 2021): 57 subjects, 4-way multiple choice; test items, 5-shot from dev.

Data: <data dir>/mmlu/data/{dev,test}/<subject>_{dev,test}.csv (no header: question, A, B, C, D, answer letter)
and mmlu/flan_cot_prompts.json (subject -> the Flan 5-shot CoT prompt). Without a data dir: the hub's
"cais/mmlu" (direct mode only: the CoT prompts are not on the hub).

direct  The original / lm-evaluation-harness prompt:
            The following are multiple choice questions (with answers) about {subject}.\n\n
            {question}\nA. ..\nB. ..\nC. ..\nD. ..\nAnswer: X\n\n      (x5, from dev)
            {question}\nA. ..\nB. ..\nC. ..\nD. ..\nAnswer:
        rank scoring: choices " A" " B" " C" " D"; generation: the first standalone letter A-D.
cot     The Flan CoT prompt for the subject as published (4-5 exemplars "Q: ..\n(A) .. (B) .. (C) .. (D) ..\n
        A: Let's think step by step. ... The answer is (X).\n\n"), then the item in the same shape ending
        "A: Let's think step by step."; extraction: the whole answer after "the answer is", which must be one
        letter ("(A) or (B)" is wrong; the rule and its source are beside `score`).
zs_cot  Only the header line, then the item as in cot.
Shots: direct 5 from dev, cot the published prompt's exemplars (4 or 5); --shots k takes the first k. A dev file
or prompt with fewer than asked is an error naming it (spec.take_shots); each item records its shots.

Target: the answer letter "A".."D". Chance 25. Aggregation: micro over all items (see AGGREGATION).
Quirks of flan_cot_prompts.json kept as published: two prompts start with a newline (stripped here),
college_chemistry's last exemplar has five options (A)-(E), formal_logic and human_aging have 4 exemplars.
"""

from __future__ import annotations

import csv
import functools
import json
import re
from pathlib import Path

from flanlab.eval.benchmarks.hub import load_hub, need_data_dir
from flanlab.eval.fewshot import split
from flanlab.eval.metrics import exact_match
from flanlab.eval.spec import Aggregation, Benchmark, EvalItem, EvalOptions, take_shots

SUBJECTS: tuple[str, ...] = (
    "abstract_algebra", "anatomy", "astronomy", "business_ethics", "clinical_knowledge", "college_biology",
    "college_chemistry", "college_computer_science", "college_mathematics", "college_medicine", "college_physics",
    "computer_security", "conceptual_physics", "econometrics", "electrical_engineering", "elementary_mathematics",
    "formal_logic", "global_facts", "high_school_biology", "high_school_chemistry", "high_school_computer_science",
    "high_school_european_history", "high_school_geography", "high_school_government_and_politics",
    "high_school_macroeconomics", "high_school_mathematics", "high_school_microeconomics", "high_school_physics",
    "high_school_psychology", "high_school_statistics", "high_school_us_history", "high_school_world_history",
    "human_aging", "human_sexuality", "international_law", "jurisprudence", "logical_fallacies", "machine_learning",
    "management", "marketing", "medical_genetics", "miscellaneous", "moral_disputes", "moral_scenarios", "nutrition",
    "philosophy", "prehistory", "professional_accounting", "professional_law", "professional_medicine",
    "professional_psychology", "public_relations", "security_studies", "sociology", "us_foreign_policy", "virology",
    "world_religions",
)
LETTERS = ("A", "B", "C", "D")
SHOTS = 5
CHANCE = 25.0
AGGREGATION = Aggregation(
    average="items",
    note="micro: mean over all items, as Hendrycks et al.'s evaluate.py and lm-evaluation-harness; "
         "the macro mean over subjects is reported as 'macro'",
)


# --- data ------------------------------------------------------------------------------------------------

def subtasks(data_dir: Path | None) -> list[str]:
    return list(SUBJECTS)


def data_files(data_dir: Path | None) -> list[Path]:
    if data_dir is None:
        return []
    root = Path(data_dir) / "mmlu"
    return ([root / "data" / split / f"{s}_{split}.csv" for split in ("dev", "test") for s in SUBJECTS]
            + [root / "flan_cot_prompts.json"])


@functools.lru_cache(maxsize=256)
def _rows(data_dir: Path | None, subject: str, split: str) -> tuple[tuple[str, tuple[str, ...], str], ...]:
    """(question, (A, B, C, D), answer letter) rows of one subject and split."""
    if data_dir is None:
        ds = load_hub("mmlu", "cais/mmlu", subject, split)
        rows = []
        for i, r in enumerate(ds):
            if not 0 <= int(r["answer"]) < len(LETTERS):
                raise ValueError(f"{_source(data_dir, subject, split)} row {i}: answer {r['answer']!r} is not 0-3")
            rows.append((r["question"], tuple(r["choices"]), LETTERS[int(r["answer"])]))
        return tuple(rows)
    path = Path(data_dir) / "mmlu" / "data" / split / f"{subject}_{split}.csv"
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        for lineno, row in enumerate(csv.reader(f), 1):
            if len(row) != 6:
                raise ValueError(f"{path}:{lineno}: expected 6 fields (question, A, B, C, D, answer letter), "
                                 f"found {len(row)}")
            answer = row[5].strip()
            if answer not in LETTERS:
                raise ValueError(f"{path}:{lineno}: answer {answer!r} is not one of {', '.join(LETTERS)}")
            rows.append((row[0], tuple(row[1:5]), answer))
    return tuple(rows)


def _source(data_dir: Path | None, subject: str, split: str) -> str:
    """Where _rows reads a subject's split from, for messages."""
    if data_dir is None:
        return f"hub dataset cais/mmlu ({subject}, {split} split)"
    return str(Path(data_dir) / "mmlu" / "data" / split / f"{subject}_{split}.csv")


@functools.lru_cache(maxsize=4)
def _cot_prompts(data_dir: Path | None) -> dict[str, str]:
    if data_dir is None:
        raise need_data_dir("mmlu", "the Flan CoT prompts (mmlu/flan_cot_prompts.json)")
    path = Path(data_dir) / "mmlu" / "flan_cot_prompts.json"
    prompts = json.loads(path.read_text(encoding="utf-8"))
    missing = [s for s in SUBJECTS if s not in prompts]
    if missing:
        raise ValueError(f"{path}: no prompt for {missing[:3]}")
    return prompts


def cot_exemplars(prompt: str) -> tuple[str, list[str]]:
    """A Flan CoT prompt -> (header line, ["Q: ...\\nA: Let's think step by step. ... The answer is (X).", ...])."""
    prompt = prompt.strip()
    header, _, body = prompt.partition("\n\n")
    return header, [("Q: " + block).strip() for block in re.split(r"(?:^|\n\n)Q: ", body) if block.strip()]


# --- prompts ---------------------------------------------------------------------------------------------

def header(subject: str) -> str:
    return f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"


def format_direct(question: str, options: tuple[str, ...], answer: str | None = None) -> str:
    text = question.strip() + "".join(f"\n{letter}. {opt}" for letter, opt in zip(LETTERS, options)) + "\nAnswer:"
    return text if answer is None else f"{text} {answer}\n\n"


COT_ANSWER = "A: Let's think step by step."  # the answer prefix of the CoT prompts (exemplars and items)


def format_cot_query(question: str, options: tuple[str, ...]) -> str:
    opts = " ".join(f"({letter}) {opt}" for letter, opt in zip(LETTERS, options))
    return f"Q: {question.strip()}\n{opts}\n{COT_ANSWER}"


def cot_user_part(exemplar: str) -> str:
    """A Flan CoT exemplar up to its answer prefix ("Q: ...\\nA: Let's think step by step."); "" without one."""
    cut = exemplar.find("\n" + COT_ANSWER)
    return exemplar[: cut + 1 + len(COT_ANSWER)] if cut >= 0 else ""


def items(data_dir: Path | None, subject: str, mode: str, options: EvalOptions) -> list[EvalItem]:
    if subject not in SUBJECTS:
        from flanlab.registry import lookup

        lookup(dict.fromkeys(SUBJECTS), subject, "MMLU subject")
    if options.zero_shot_cot and mode == "cot":
        mode = "zs_cot"
    test = _rows(data_dir, subject, "test")
    if options.limit is not None:
        test = test[: options.limit]
    # each exemplar as (its plain text, its user part: up to the answer prefix the item's query ends with; fewshot.py)
    if mode == "direct":
        dev = take_shots(_rows(data_dir, subject, "dev"), options.shots_or(SHOTS), _source(data_dir, subject, "dev"))
        exemplars = [(format_direct(q, o, a), format_direct(q, o)) for q, o, a in dev]
        prefix, parts = split(header(subject), exemplars, "Answer:")
        query = format_direct
    elif mode == "cot":
        head, published = cot_exemplars(_cot_prompts(data_dir)[subject])
        source = f"{Path(data_dir) / 'mmlu' / 'flan_cot_prompts.json'} ({subject})"
        exemplars = [(e + "\n\n", cot_user_part(e))
                     for e in take_shots(published, options.shots_or(len(published)), source)]
        prefix, parts = split(head + "\n\n", exemplars, COT_ANSWER)
        query = format_cot_query
    elif mode == "zs_cot":
        exemplars, query = [], format_cot_query
        prefix, parts = split(header(subject), exemplars, COT_ANSWER)
    else:
        raise ValueError(f"mmlu has no mode {mode!r} (direct, cot, zs_cot)")
    choices = tuple(" " + letter for letter in LETTERS) if mode == "direct" else ()
    return [
        EvalItem(benchmark="mmlu", subtask=subject, mode=mode, item_id=str(i), prefix=prefix,
                 query=query(q, o), target=a, choices=choices, chance=CHANCE, shots=len(exemplars), parts=parts)
        for i, (q, o, a) in enumerate(test)
    ]


# --- answers ---------------------------------------------------------------------------------------------
#
# CoT modes, the rule of the Flan MMLU chain-of-thought evaluation as lm-evaluation-harness runs its prompts
# (lm_eval/tasks/mmlu/flan_cot_fewshot/_mmlu_flan_cot_fewshot_template_yaml: filter "get-answer", regex
# "(?<=The answer is )(.*)(?=.)", take_first; exact_match with ignore_case and ignore_punctuation against
# "(A)".."(D)"): the first "the answer is", everything after it to the end of its sentence (a period and a
# space) or line, with punctuation, case and spaces ignored, must be the target letter alone. "(A) or (B)", "(B) cat", "A and C" are wrong;
# no phrase, no answer. The Flan exemplars all end "The answer is (X).".
#   accuracy_lenient (reported, never averaged): the first letter right after the phrase, flanlab's reading
#   before version 2 ("(A) or (B)" counts as A).
# Direct mode (the prompt ends "Answer:"; rank scoring is the reference, lm-eval's acc): generation reads the
#   letter the continuation starts with, both metrics alike: " B", "(B)", "B.", "B) text", after an optional
#   "Answer:" label; when it starts with no letter (or with the article: "A cat is ..."), the letter right after
#   its first "answer is" ("The correct answer is B"). A letter joined to another ("A and B are both correct",
#   "A or B", "A, B", "A/B": a hedge) is no answer, and so is a letter only later in the text ("Both A and B",
#   "I think C"): scored as none, never as another letter. Version 3; before it the first standalone letter
#   anywhere, an article skipped, so "A and B are both correct" and "Answer: A and B" read B.

_PHRASE = re.compile(r"\bthe answer is\b(.*)", re.IGNORECASE)
_FIRST_LETTER = re.compile(r"^\s*:?\s*\(?\s*([A-J])\s*\)?(?![A-Za-z])")
_ARTICLE_AFTER = re.compile(r"\s+(?!is\b)[a-z]")  # "A cat": the article, not option A ("A is right" is option A)
_DIRECT_START = re.compile(r"\s*(?:(?i:answer)\s*:\s*)?(\(?)([A-D])\)?(?![A-Za-z0-9])")  # " B", "Answer: (B)"
_ANSWER_IS = re.compile(r"\banswer is\s*:?\s*", re.IGNORECASE)  # "The correct answer is B"
_JOINED = re.compile(r"\s*(?:,|/|&|\band\b|\bor\b)\s*\(?[A-D](?![A-Za-z0-9])")  # "A and B", "(A) or (B)", "A, B"


def phrase_answer(output: str) -> str | None:
    """The rest of the sentence (or line) after the first "the answer is", or None when the phrase is absent."""
    m = _PHRASE.search(output)
    return re.split(r"(?<=\.)\s", m.group(1).split("\n")[0], maxsplit=1)[0] if m else None


def strict_letter(answer: str) -> str:
    """The letter when the answer, punctuation and spaces ignored, is one letter A-J alone; else ""."""
    bare = "".join(ch for ch in answer if ch.isalnum())
    return bare.upper() if len(bare) == 1 and bare.upper() in "ABCDEFGHIJ" else ""


def _stated(text: str, pos: int) -> str | None:
    """The option letter `text` states at `pos` (see the rule above); "" for a hedge ("A and B"); None when it
    states none there (no letter, or the article "A")."""
    m = _DIRECT_START.match(text, pos)
    if not m:
        return None
    if _JOINED.match(text, m.end()):
        return ""
    return None if m.group(2) == "A" and not m.group(1) and _ARTICLE_AFTER.match(text, m.end()) else m.group(2)


def _direct_letter(output: str) -> str:
    """Direct mode without "the answer is": the letter the output starts with, else the one right after its first
    "answer is"; "" when neither states one letter alone."""
    found = _stated(output, 0)
    if found is None:
        m = _ANSWER_IS.search(output)
        found = _stated(output, m.end()) if m else None
    return found or ""


def extract(output: str, item: EvalItem) -> str:
    """The letter when the rest of the line after "the answer is" is one letter alone, else that text as written
    (scored by `score`); direct mode without the phrase: the letter it starts with (" B", "(B)", "B. text"), or
    after "answer is"; none for a hedge ("A and B") or the article "A" (see the rule above)."""
    found = phrase_answer(output)
    if found is not None:
        found = " ".join(found.split()).rstrip(".").strip()
        return strict_letter(found) or found  # "(C)" -> "C", so that self-consistency votes count it once
    return _direct_letter(output) if item.mode == "direct" else ""


def score(extracted: str, item: EvalItem) -> dict[str, float]:
    """accuracy: the whole answer is the target letter (see the rule above); accuracy_lenient: its first letter."""
    first = _FIRST_LETTER.match(extracted)
    return {"accuracy": exact_match(strict_letter(extracted), item.target),
            "accuracy_lenient": exact_match(first.group(1).upper() if first else "", item.target)}


def chance(subject: str) -> float:
    """25: four options in every MMLU item (needs no data)."""
    from flanlab.registry import lookup

    lookup(dict.fromkeys(SUBJECTS), subject, "MMLU subject")
    return 25.0


BENCHMARK = Benchmark(
    name="mmlu",
    # 3: a direct generated answer is the letter it starts with (or after "answer is"); a hedge ("A and B") or
    #    the article "A" is none (it read B, a letter further on); 2: CoT scored on the whole answer after "the
    #    answer is" (hedges wrong); old reading accuracy_lenient
    version="3",
    description="MMLU: 57 subjects, test split, 5-shot from dev; direct (letter) and Flan CoT prompts",
    modes=("direct", "cot"),
    metric="accuracy",
    scorings=("generate", "rank"),
    subtasks=subtasks,
    items=items,
    extract=extract,
    score=score,
    max_new_tokens={"direct": 8, "cot": 256, "zs_cot": 256},  # Flan CoT exemplars: 95% <= 161 tokens (SmolLM2)
    stop=("\n\n",),
    data_files=data_files,
    chance=chance,
    aggregation=AGGREGATION,
)
