"""Sort a list of integers in ascending or descending order."""

from __future__ import annotations

import random

from flanlab.data.generators.base import Family, between, pattern, pick, sample

_TEMPLATES = {
    "asc": ["Sort these numbers from smallest to largest: {xs}.", "Arrange in ascending order: {xs}.",
            "Put the following numbers in increasing order: {xs}."],
    "desc": ["Sort these numbers from largest to smallest: {xs}.", "Arrange in descending order: {xs}.",
             "Put the following numbers in decreasing order: {xs}."],
}
_PATTERNS = [(pattern(t, {"xs": r"-?\d+(?:, -?\d+)*"}), order) for order, ts in _TEMPLATES.items() for t in ts]


def _sorted(order: str, xs: list[int]) -> str:
    return ", ".join(map(str, sorted(xs, reverse=order == "desc")))


def make(rng: random.Random) -> dict:
    order = pick(rng, ["asc", "desc"])
    low, high = pick(rng, [(0, 99), (0, 999), (-50, 50), (-999, 999), (0, 9999)])
    xs = sample(rng, range(low, high + 1), between(rng, 3, 10))
    return {"question": pick(rng, _TEMPLATES[order]).format(xs=", ".join(map(str, xs))), "answer": _sorted(order, xs)}


def check(record: dict) -> bool:
    for regex, order in _PATTERNS:
        m = regex.fullmatch(record["question"])
        if m:
            return _sorted(order, [int(x) for x in m["xs"].split(", ")]) == record["answer"]
    return False


FAMILY = Family(
    name="sort_numbers",
    category="lists",
    instruction="Sort the numbers in the order asked and list them separated by commas.",
    make=make,
    check=check,
    chance=0.0,
    description="3 to 10 distinct integers (some negative), ascending or descending",
)
