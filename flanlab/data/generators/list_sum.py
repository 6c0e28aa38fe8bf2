"""Add up a list of numbers, keeping a running total in the rationale."""

from __future__ import annotations

import random

from flanlab.data.generators.base import Family, between, pattern, pick

_TEMPLATES = ["What is the sum of {xs}?", "Add up these numbers: {xs}.", "What do {xs} add up to?",
              "Find the total of {xs}."]
_PATTERNS = [pattern(t, {"xs": r"\d+(?:, \d+)*(?:,? and \d+)"}) for t in _TEMPLATES]


def _numbers(text: str) -> list[int]:
    return [int(x) for x in text.replace(" and ", ", ").replace(",,", ",").split(", ")]


_HIGHS = (20, 99, 999)
_LAST_JOINS = (" and ", ", and ")


def make(rng: random.Random) -> dict:
    rand, high = rng.random, pick(rng, _HIGHS)
    xs = [1 + int(rand() * high) for _ in range(between(rng, 3, 7))]  # between(rng, 1, high), inlined
    listing = ", ".join(map(str, xs[:-1])) + pick(rng, _LAST_JOINS) + str(xs[-1])
    total, steps = xs[0], []
    for x in xs[1:]:
        steps.append(f"{total} + {x} = {total + x}.")
        total += x
    return {"question": pick(rng, _TEMPLATES).format(xs=listing), "answer": str(total), "rationale": " ".join(steps)}


def check(record: dict) -> bool:
    for regex in _PATTERNS:
        m = regex.fullmatch(record["question"])
        if m:
            return str(sum(_numbers(m["xs"]))) == record["answer"]
    return False


FAMILY = Family(
    name="list_sum",
    category="lists",
    instruction="Add the numbers together and give the total.",
    make=make,
    check=check,
    chance=0.0,
    description="Sums of 3 to 7 positive integers with a running-total rationale",
    fields=("question", "answer", "rationale"),
)
