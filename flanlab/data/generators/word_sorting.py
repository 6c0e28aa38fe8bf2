"""Sort a list of words alphabetically (BBH-style, held out).

The question is one of a few lead-ins ending in a colon, then the words separated by spaces; the answer is
the same words in alphabetical order, separated by spaces.
"""

from __future__ import annotations

import random

from flanlab.data.generators.base import Family
from flanlab.data.generators.lexicon import WORDS

_LEADS = [
    "Put these words in alphabetical order:",
    "Arrange the following words alphabetically:",
    "Alphabetize this list of words:",
    "Order these words from A to Z:",
    "List these words in dictionary order:",
]


def make(rng: random.Random) -> dict:
    words = rng.sample(WORDS, rng.randint(4, 15))
    ordered = sorted(words)
    by_letter: dict[str, list[str]] = {}
    for w in ordered:
        by_letter.setdefault(w[0], []).append(w)
    groups = "; ".join(f"{letter}: {', '.join(ws)}" for letter, ws in by_letter.items())
    rationale = (
        f"Group the words by their first letter, in alphabetical order of that letter ({groups}), "
        f"comparing later letters within a group. In order: {' < '.join(ordered)}."
    )
    question = f"{rng.choice(_LEADS)} {' '.join(words)}"
    return {"question": question, "answer": " ".join(ordered), "rationale": rationale}


def check(record: dict) -> bool:
    words = record["question"].split(":", 1)[1].split()
    return " ".join(sorted(words)) == record["answer"]


FAMILY = Family(
    name="word_sorting",
    category="sorting",
    instruction="Sort the given words in alphabetical order and write them separated by spaces.",
    make=make,
    check=check,
    held_out=True,
    chance=0.0,
    description="Alphabetical sorting of 4 to 15 common English words",
    fields=("question", "answer", "rationale"),
)
