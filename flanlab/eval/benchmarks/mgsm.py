"""MGSM (Shi et al. 2022): 250 GSM8K problems in English and 10 translations, 8-shot with native exemplars.

Data: <data dir>/mgsm/mgsm_<lang>.tsv (no header: question, numeric answer) and mgsm/exemplars.json
({lang: {"1".."8": {"q": "Question: ...", "a": "Step-by-Step Answer: ... The answer is 11."}}}, the MGSM
repository's exemplars.py as JSON). Without a data dir: the hub's "juletxara/mgsm" (test split; the 8 train
rows are the same exemplars).

cot     8 native exemplars "{q}\n{a}\n\n" (question and "Step-by-Step Answer:" in the item's language), then
        "{question prefix}{question}\n{answer prefix}"  (the MGSM paper's native-exemplar CoT setting).
direct  The same 8 questions with only the final number: "{q}\n{direct prefix} 11\n\n"; the item ends
        "{direct prefix}" (e.g. "Antwort:").
zs_cot  No exemplars: "{question prefix}{question}\n{answer prefix} Let's think step by step."

Answers: the number after the language's "the answer is" phrase (ANSWER_PHRASES, or the English one); with no
phrase, no answer in CoT, the first number in direct mode (the rule and its source are beside `extract`);
thousands separators and decimals handled
(metrics.parse_number, plus the languages' own digit grouping: THOUSANDS_SEPARATORS); compared numerically.
Languages: the Flan paper's MGSM is "math word problems manually translated into 10 languages": bn de es fr ja
ru sw te th zh are averaged (macro); English is run and reported with excluded_from_mean. Chance 0.
"""

from __future__ import annotations

import csv
import functools
import json
import re
from pathlib import Path

from flanlab.eval.benchmarks.hub import load_hub
from flanlab.eval.fewshot import split
from flanlab.eval.metrics import find_numbers, numeric_match, parse_number
from flanlab.eval.spec import Aggregation, Benchmark, EvalItem, EvalOptions, take_shots

LANGUAGES: tuple[str, ...] = ("bn", "de", "es", "fr", "ja", "ru", "sw", "te", "th", "zh", "en")
SHOTS = 8
AGGREGATION = Aggregation(
    average="subtasks", excluded=("en",),
    note="macro over the 10 translated languages (the Flan paper's MGSM); English reported, not averaged",
)

# lang -> (question prefix, CoT answer prefix, direct answer prefix), as written in the native exemplars.
PREFIXES: dict[str, tuple[str, str, str]] = {
    "bn": ("প্রশ্ন: ", "ধাপে ধাপে উত্তর:", "উত্তর:"),
    "de": ("Frage: ", "Schritt-für-Schritt-Antwort:", "Antwort:"),
    "en": ("Question: ", "Step-by-Step Answer:", "Answer:"),
    "es": ("Pregunta: ", "Respuesta paso a paso:", "Respuesta:"),
    "fr": ("Question : ", "Réponse étape par étape :", "Réponse :"),
    "ja": ("問題：", "ステップごとの答え：", "答え："),
    "ru": ("Задача: ", "Пошаговое решение:", "Ответ:"),
    "sw": ("Swali: ", "Jibu la Hatua kwa Hatua:", "Jibu:"),
    "te": ("ప్రశ్న: ", "దశలవారీగా సమాధానం:", "సమాధానం:"),
    "th": ("โจทย์: ", "คำตอบทีละขั้นตอน:", "คำตอบ:"),
    "zh": ("问题：", "逐步解答：", "答案："),
}
# lang -> the phrases that introduce the final answer in its exemplars ("The answer is" is accepted everywhere).
ANSWER_PHRASES: dict[str, tuple[str, ...]] = {
    "bn": ("উত্তর হল",),
    "de": ("Die Antwort lautet", "Die Antwort ist"),
    "en": ("The answer is",),
    "es": ("La respuesta es",),
    "fr": ("La réponse est",),
    "ja": ("答えは",),
    "ru": ("Ответ —",),
    "sw": ("Jibu ni",),
    "te": ("సమాధానం",),
    "th": ("คำตอบคือ",),
    "zh": ("答案是",),
}


# --- data ------------------------------------------------------------------------------------------------

def subtasks(data_dir: Path | None) -> list[str]:
    return list(LANGUAGES)


def data_files(data_dir: Path | None) -> list[Path]:
    if data_dir is None:
        return []
    root = Path(data_dir) / "mgsm"
    return [root / f"mgsm_{lang}.tsv" for lang in LANGUAGES] + [root / "exemplars.json"]


def _check(lang: str) -> None:
    if lang not in PREFIXES:
        from flanlab.registry import lookup

        lookup(PREFIXES, lang, "MGSM language")


@functools.lru_cache(maxsize=32)
def problems(data_dir: Path | None, lang: str) -> tuple[tuple[str, str], ...]:
    """(question, answer number as text) of one language, in file order."""
    if data_dir is None:
        ds = load_hub("mgsm", "juletxara/mgsm", lang, "test")
        return tuple((r["question"], str(r["answer_number"])) for r in ds)
    path = Path(data_dir) / "mgsm" / f"mgsm_{lang}.tsv"
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        for lineno, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if len(row) != 2 or parse_number(row[1]) is None:
                raise ValueError(f"{path}:{lineno}: expected 'question<TAB>number'")
            rows.append((row[0], row[1].strip()))
    return tuple(rows)


@functools.lru_cache(maxsize=32)
def exemplars(data_dir: Path | None, lang: str) -> tuple[tuple[str, str], ...]:
    """The 8 native (q, a) exemplars: q starts with the question prefix, a with the CoT answer prefix."""
    if data_dir is None:
        ds = load_hub("mgsm", "juletxara/mgsm", lang, "train")
        return tuple((r["question"], r["answer"]) for r in ds)
    path = Path(data_dir) / "mgsm" / "exemplars.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    if lang not in data:
        raise ValueError(f"{path}: no exemplars for language {lang!r}")
    shots = data[lang]
    return tuple((shots[k]["q"], shots[k]["a"]) for k in sorted(shots, key=int))


# --- prompts ---------------------------------------------------------------------------------------------

def items(data_dir: Path | None, lang: str, mode: str, options: EvalOptions) -> list[EvalItem]:
    _check(lang)
    if options.zero_shot_cot and mode == "cot":
        mode = "zs_cot"
    q_prefix, cot_prefix, direct_prefix = PREFIXES[lang]
    source = (f"{Path(data_dir) / 'mgsm' / 'exemplars.json'} ({lang})" if data_dir is not None
              else f"hub dataset juletxara/mgsm ({lang}, train split)")
    if mode == "cot":  # a native answer starts with the CoT answer prefix: "Schritt-für-Schritt-Antwort: ..."
        shots = take_shots(exemplars(data_dir, lang), options.shots_or(SHOTS), source)
        suffix = cot_prefix
    elif mode == "direct":
        shots = [(q, f"{direct_prefix} {extract_number(a, lang, 'cot')}")
                 for q, a in take_shots(exemplars(data_dir, lang), options.shots_or(SHOTS), source)]
        suffix = direct_prefix
    elif mode == "zs_cot":
        suffix, shots = cot_prefix + " Let's think step by step.", []
    else:
        raise ValueError(f"mgsm has no mode {mode!r} (direct, cot, zs_cot)")
    # each exemplar as (its plain text, its user part: the question and the item's answer prefix; fewshot.py)
    prefix, parts = split("", [(f"{q}\n{a}\n\n", f"{q}\n{suffix}") for q, a in shots], suffix)
    rows = problems(data_dir, lang)
    if options.limit is not None:
        rows = rows[: options.limit]
    return [
        EvalItem(benchmark="mgsm", subtask=lang, mode=mode, item_id=str(i), prefix=prefix,
                 query=f"{q_prefix}{question}\n{suffix}", target=answer, chance=0.0, shots=len(shots), parts=parts)
        for i, (question, answer) in enumerate(rows)
    ]


# --- answers ---------------------------------------------------------------------------------------------

def _canonical(token: str) -> str:
    value = parse_number(token)
    if value is None:
        return ""
    return str(int(value)) if value == int(value) else repr(value)


# Thousands separators beyond metrics.parse_number's (comma, thin and no-break spaces), per language, as the
# MGSM questions themselves write them (counted in the data files): German groups with a full stop
# ("80.000" = 80000, decimal comma), Spanish with a full stop or a space, French and Russian with a space
# ("80 000"). Only a run of whole 3-digit groups is joined ("1.234,5" -> "1234,5"; "2.50" stays a decimal).
THOUSANDS_SEPARATORS: dict[str, str] = {"de": ".", "es": ". ", "fr": " ", "ru": " "}


def join_thousands(text: str, lang: str) -> str:
    """text with the language's digit groups joined: "Die Antwort ist 80.000." -> "Die Antwort ist 80000."."""
    seps = THOUSANDS_SEPARATORS.get(lang)
    if not seps:
        return text
    group = re.compile(r"(?<![\d.,])\d{1,3}(?:[" + re.escape(seps) + r"]\d{3})+(?![\d]|\.\d)")
    return group.sub(lambda m: re.sub(r"\D", "", m.group(0)), text)


# The rule (Shi et al. 2022 prompt every exemplar to end "The answer is N." in the item's language; the reference
# implementation is lm-evaluation-harness lm_eval/tasks/mgsm/native_cot/ (cot_yaml and mgsm_native_cot_<lang>.yaml):
# filter "get-answer", regex "<native phrase> (\-?[0-9\.\,]+)" ("The answer is", "Die Antwort lautet", ...),
# take_first, then exact match of that number with the target):
#   cot / zs_cot  the number right after the FIRST answer phrase (the language's or the English one; a currency
#                 sign, colon or dash may stand between, "is $18"). A hedge "The answer is 11 or 12" reads 11,
#                 as the reference regex does; a repeated phrase reads the first. No phrase: no answer (the
#                 reference's "[invalid]"); flanlab before benchmark version 3 took the output's last number.
#   direct        the prompt ends with the language's answer prefix, so the continuation is the answer: the
#                 number after a phrase if one is written, else the first number of the continuation.
# Numbers are compared as numbers (metrics.numeric_match; "1,000" == "1000", the languages' digit grouping).

# A minus written as typographers do: U+2212 MINUS SIGN anywhere before a digit, an en dash (U+2013) only where it
# is glued to the digit after a space or the start ("is –5"); "Ответ – 11", a dash between spaces, stays a separator.
TYPOGRAPHIC_MINUS = re.compile(r"\u2212(?=\d)|(?:(?<=\s)|^)\u2013(?=\d)")


def phrase_number(output: str, lang: str) -> str:
    """The number right after the first answer phrase of the language (or the English one), or ""."""
    output = TYPOGRAPHIC_MINUS.sub("-", join_thousands(output, lang))
    phrases = ANSWER_PHRASES.get(lang, ()) + ("The answer is",)
    found = []
    for phrase in phrases:
        # a number right after the phrase, only spaces/punctuation between ("答えは11です", "Ответ — 11", "is $18")
        m = re.search(re.escape(phrase) + r"[^\w\n-]{0,6}?(-?\d[\d,.\u202f\u00a0]*\d|-?\d)", output, re.IGNORECASE)
        if m:
            found.append((m.start(), m.group(1)))
    return _canonical(min(found)[1].rstrip(".,")) if found else ""


def extract_number(output: str, lang: str, mode: str) -> str:
    """The phrase's number, else the output's last number (mode "cot") or first number ("direct"), as a plain
    number string ("1,000.0" -> "1000"), or "" when there is no number. The exemplars' answers are read with it;
    items are scored by `extract` (the rule above)."""
    found = phrase_number(output, lang)
    if found:
        return found
    numbers = find_numbers(TYPOGRAPHIC_MINUS.sub("-", join_thousands(output, lang)))
    if not numbers:
        return ""
    return _canonical(numbers[0] if mode == "direct" else numbers[-1])


def extract(output: str, item: EvalItem) -> str:
    if item.mode == "direct":
        return extract_number(output, item.subtask, "direct")
    return phrase_number(output, item.subtask)


def score(extracted: str, item: EvalItem) -> dict[str, float]:
    return {"accuracy": numeric_match(extracted, item.target)}


def chance(lang: str) -> float:
    """0: a free-form number has no guessable set (needs no data)."""
    _check(lang)
    return 0.0


BENCHMARK = Benchmark(
    name="mgsm",
    # 4: a typographic minus (U+2212, an en dash glued to the number) is a minus: "is –5" read 5 before
    # 3: CoT answers only after the answer phrase (the reference rule), no last-number fallback;
    # 2: German/Spanish/French/Russian digit grouping ("80.000", "80 000") read as thousands
    version="4",
    description="MGSM: 250 grade-school math problems in 10 languages (+English), 8-shot native CoT exemplars",
    modes=("direct", "cot"),
    metric="accuracy",
    scorings=("generate",),
    subtasks=subtasks,
    items=items,
    extract=extract,
    score=score,
    max_new_tokens={"direct": 16, "cot": 448, "zs_cot": 448},  # native CoT exemplars: 95% <= 419 tokens (SmolLM2)
    stop=("\n\n",) + tuple("\n" + prefixes[0].strip() for prefixes in PREFIXES.values()),
    data_files=data_files,
    chance=chance,
    aggregation=AGGREGATION,
)
