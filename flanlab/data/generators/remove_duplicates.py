"""Remove repeated items from a list, keeping the first occurrence of each in its place."""

from __future__ import annotations

import random

from flanlab.data.generators.base import Family, between, pick, sample
from flanlab.data.generators.lexicon import WORDS

_LEADS = ["Remove the duplicates from this list, keeping the first occurrence of each item:",
          "Delete every repeated item from the list (keep the first copy):",
          "List each item once, in order of first appearance:"]
_NUMBER_POOLS = tuple(tuple(str(x) for x in range(n)) for n in (10, 30, 100))  # the numbers 0..n-1, as text


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def make(rng: random.Random) -> dict:
    if rng.random() < 0.5:
        pool = sample(rng, pick(rng, _NUMBER_POOLS), between(rng, 3, 7))
    else:
        pool = sample(rng, WORDS, between(rng, 3, 6))
    rand, size = rng.random, len(pool)
    extra = [pool[int(rand() * size)] for _ in range(between(rng, 1, 6))]
    items = pool + extra
    items.sort(key=lambda _: rand())  # a uniform shuffle (random sort keys cost less than base.shuffle)
    unique = _unique(items)
    answer = ", ".join(unique)
    # the pool's items are distinct, so the repeated items are exactly the extra copies
    extra_set = set(extra)
    repeats = ", ".join([x for x in unique if x in extra_set])
    return {"question": f"{pick(rng, _LEADS)} {', '.join(items)}", "answer": answer,
            "rationale": f"Repeated: {repeats}. Keeping only the first copy of each leaves {answer}."}


def check(record: dict) -> bool:
    lead = next(lead for lead in _LEADS if record["question"].startswith(lead))
    items = record["question"][len(lead):].strip().split(", ")
    return ", ".join(_unique(items)) == record["answer"]


FAMILY = Family(
    name="remove_duplicates",
    category="lists",
    instruction="Remove the repeated items from the list and keep the rest in their original order.",
    make=make,
    check=check,
    chance=0.0,
    description="Lists of numbers or words with repeats, deduplicated in order",
    fields=("question", "answer", "rationale"),
)
