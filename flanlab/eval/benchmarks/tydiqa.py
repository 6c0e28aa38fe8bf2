"""TyDiQA-GoldP (Clark et al. 2020): extractive QA given the gold passage, 1-shot, 9 languages of dev.

Data: <data dir>/tydiqa_goldp/<language>_tydiqa_dev.json (SQuAD 1.1 JSON, 5,077 questions in all). Without a
data dir: the hub's "google-research-datasets/tydiqa" (config secondary_task, split validation; the language
is the prefix of each id).

direct  One exemplar from the same language's dev items, then the item:
            Passage: {context}\nQuestion: {question}\nAnswer: {answer}\n\n
            Passage: {context}\nQuestion: {question}\nAnswer:
        The exemplar is fixed per language: the item with the shortest passage+question (ties by id); for that
        item itself the next shortest is used, so an item is never its own exemplar (its prefix then differs
        from the rest of the language's items). The train split, which the paper drew exemplars from, is not
        in the data dir.
Answers: the first line of the output. Metrics: exact match (main) and F1 of the official SQuAD v1.1 script
(metrics.squad_normalize: ASCII punctuation and English articles removed), max over the gold answers.
Languages: the Flan paper's 8 (arabic bengali finnish indonesian korean russian swahili telugu) averaged
(macro); English is run and reported with excluded_from_mean. Chance 0. Direct mode only, as in the paper.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from flanlab.eval.benchmarks.hub import load_hub
from flanlab.eval.fewshot import PromptParts, split
from flanlab.eval.metrics import squad_em, squad_f1
from flanlab.eval.spec import Aggregation, Benchmark, EvalItem, EvalOptions

LANGUAGES: tuple[str, ...] = (
    "arabic", "bengali", "finnish", "indonesian", "korean", "russian", "swahili", "telugu", "english",
)
SHOTS = 1
AGGREGATION = Aggregation(
    average="subtasks", excluded=("english",),
    note="macro over the 8 non-English languages (the Flan paper's TyDiQA); English reported, not averaged",
)


# --- data ------------------------------------------------------------------------------------------------

def subtasks(data_dir: Path | None) -> list[str]:
    return list(LANGUAGES)


def data_files(data_dir: Path | None) -> list[Path]:
    if data_dir is None:
        return []
    return [Path(data_dir) / "tydiqa_goldp" / f"{lang}_tydiqa_dev.json" for lang in LANGUAGES]


@functools.lru_cache(maxsize=16)
def questions(data_dir: Path | None, lang: str) -> tuple[tuple[str, str, str, tuple[str, ...]], ...]:
    """(id, context, question, gold answers) of one language, in file order."""
    if lang not in LANGUAGES:
        from flanlab.registry import lookup

        lookup(dict.fromkeys(LANGUAGES), lang, "TyDiQA language")
    if data_dir is None:
        ds = load_hub("tydiqa", "google-research-datasets/tydiqa", "secondary_task", "validation")
        return tuple((r["id"], r["context"], r["question"], tuple(r["answers"]["text"]))
                     for r in ds if r["id"].split("-", 1)[0] == lang)
    path = Path(data_dir) / "tydiqa_goldp" / f"{lang}_tydiqa_dev.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    rows = []
    try:
        for article in data["data"]:
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    golds = tuple(dict.fromkeys(a["text"] for a in qa["answers"]))  # unique, in order
                    rows.append((qa["id"], paragraph["context"], qa["question"], golds))
    except (KeyError, TypeError):
        raise ValueError(f"{path}: not SQuAD 1.1 JSON (data/paragraphs/qas/answers)") from None
    return tuple(rows)


def exemplar_ids(rows) -> tuple[str, str]:
    """The ids of the shortest and second-shortest items (passage + question length, ties by id)."""
    ranked = sorted(rows, key=lambda r: (len(r[1]) + len(r[2]), r[0]))
    return ranked[0][0], ranked[1][0]


# --- prompts ---------------------------------------------------------------------------------------------

def format_qa(context: str, question: str, answer: str | None = None) -> str:
    text = f"Passage: {context.strip()}\nQuestion: {question.strip()}\nAnswer:"
    return text if answer is None else f"{text} {answer}\n\n"


def items(data_dir: Path | None, lang: str, mode: str, options: EvalOptions) -> list[EvalItem]:
    if mode != "direct" or options.zero_shot_cot:
        raise ValueError(f"tydiqa has only the direct mode (asked for {mode!r}"
                         f"{', zero-shot CoT' if options.zero_shot_cot else ''})")
    rows = questions(data_dir, lang)
    k = options.shots_or(SHOTS)
    if k not in (0, 1):
        raise ValueError(f"tydiqa supports 0 or 1 shots, not {k}")
    if k == 1 and len(rows) < 2:
        source = (str(Path(data_dir) / "tydiqa_goldp" / f"{lang}_tydiqa_dev.json") if data_dir is not None
                  else f"hub dataset google-research-datasets/tydiqa (secondary_task, validation, {lang})")
        raise ValueError(f"{source}: {len(rows)} question(s), but the 1-shot prompt needs 2 (an item is never its "
                         f"own exemplar); pass --shots 0 to run 0-shot (results record the shots used)")
    by_id = {r[0]: r for r in rows}
    first, second = exemplar_ids(rows) if k == 1 else (None, None)

    def prefix_for(item_id: str) -> tuple[str, PromptParts | None]:
        """The item's prefix and its parts (fewshot.py): the exemplar as (its plain text, its user part)."""
        if k == 0:
            return split("", [], "Answer:")
        _, context, question, golds = by_id[second if item_id == first else first]
        return split("", [(format_qa(context, question, golds[0]), format_qa(context, question))], "Answer:")

    if options.limit is not None:
        rows = rows[: options.limit]
    built = []
    for item_id, context, question, golds in rows:
        prefix, parts = prefix_for(item_id)
        built.append(EvalItem(benchmark="tydiqa", subtask=lang, mode=mode, item_id=item_id, prefix=prefix,
                              query=format_qa(context, question), target=golds[0], aliases=golds[1:], chance=0.0,
                              shots=k, parts=parts))
    return built


# --- answers ---------------------------------------------------------------------------------------------

# The rule: TyDiQA-GoldP is SQuAD-format extractive QA scored by the official SQuAD v1.1 script
# (evaluate-v1.1.py, as the TyDi QA repository google-research-datasets/tydiqa directs for GoldP): exact match
# (main) and token F1 of the normalized answer, max over the gold answers (metrics.squad_em / squad_f1 reproduce
# it exactly). The prediction is the generated answer: the prompt ends "Answer:" and generation stops at the
# first newline, so it is the output's first non-empty line. A hedge ("Paris or Lyon"), a repeat ("Paris Paris")
# or extra words score 0 exact match and partial F1, as in the script; a truncated answer scores its overlap;
# an empty output scores 0 on both.

def extract(output: str, item: EvalItem) -> str:
    """The first non-empty line, stripped."""
    return next((line.strip() for line in output.strip().split("\n") if line.strip()), "")


def score(extracted: str, item: EvalItem) -> dict[str, float]:
    golds = (item.target,) + tuple(item.aliases)
    return {"exact_match": squad_em(extracted, golds), "f1": squad_f1(extracted, golds)}


def chance(lang: str) -> float:
    """0: extractive answers have no guessable set (needs no data)."""
    from flanlab.registry import lookup

    lookup(dict.fromkeys(LANGUAGES), lang, "TyDiQA language")
    return 0.0


BENCHMARK = Benchmark(
    name="tydiqa",
    version="2",  # 2: the official SQuAD v1.1 normalization (ASCII punctuation only; F1 0 when nothing is shared)
    description="TyDiQA-GoldP: extractive QA in 8 typologically diverse languages (+English), 1-shot",
    modes=("direct",),
    metric="exact_match",
    scorings=("generate",),
    subtasks=subtasks,
    items=items,
    extract=extract,
    score=score,
    max_new_tokens={"direct": 80},  # gold answers: 95% <= 77 tokens, median 10 (SmolLM2)
    stop=("\n",),
    data_files=data_files,
    chance=chance,
    aggregation=AGGREGATION,
)
