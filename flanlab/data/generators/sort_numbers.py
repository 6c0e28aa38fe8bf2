"""Sort a list of integers in ascending or descending order."""

from __future__ import annotations

import random

from flanlab.data.generators.base import Family, between, pattern, pick

_TEMPLATES = {
    "asc": ["Sort these numbers from smallest to largest: {xs}.", "Arrange in ascending order: {xs}.",
            "Put the following numbers in increasing order: {xs}."],
    "desc": ["Sort these numbers from largest to smallest: {xs}.", "Arrange in descending order: {xs}.",
             "Put the following numbers in decreasing order: {xs}."],
}
_PATTERNS = [(pattern(t, {"xs": r"-?\d+(?:, -?\d+)*"}), order) for order, ts in _TEMPLATES.items() for t in ts]


def _sorted(order: str, xs: list[int]) -> str:
    return ", ".join(map(str, sorted(xs, reverse=order == "desc")))


_ORDERS = ("asc", "desc")
_RANGES = ((0, 99), (0, 999), (-50, 50), (-999, 999), (0, 9999))


def _distinct(rng: random.Random, low: int, high: int, k: int) -> list[int]:
    """k distinct integers of [low, high] in random order: the first k distinct ones of a stream of uniform draws
    (as base.sample draws few of many, without indexing a range)."""
    rand, span = rng.random, high - low + 1
    xs = [low + int(rand() * span) for _ in range(k)]
    if len(set(xs)) < k:  # a repeat: keep the first copies and draw on
        xs = list(dict.fromkeys(xs))
        while len(xs) < k:
            x = low + int(rand() * span)
            if x not in xs:
                xs.append(x)
    return xs


def make(rng: random.Random) -> dict:
    order = pick(rng, _ORDERS)
    low, high = pick(rng, _RANGES)
    xs = _distinct(rng, low, high, between(rng, 3, 10))
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
