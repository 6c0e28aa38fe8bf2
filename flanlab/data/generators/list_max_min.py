"""Find the largest or the smallest number of a list."""

from __future__ import annotations

import random

from flanlab.data.generators.base import Family, between, pattern, pick

_TEMPLATES = {
    "max": ["What is the largest number in [{xs}]?", "Find the maximum of [{xs}].",
            "Which number in [{xs}] is the biggest?"],
    "min": ["What is the smallest number in [{xs}]?", "Find the minimum of [{xs}].",
            "Which number in [{xs}] is the lowest?"],
}
_PATTERNS = [(pattern(t, {"xs": r"-?\d+(?:, -?\d+)*"}), which) for which, ts in _TEMPLATES.items() for t in ts]


_WHICH = ("max", "min")
_RANGES = ((0, 99), (0, 999), (-100, 100), (-9999, 9999))


def make(rng: random.Random) -> dict:
    which = pick(rng, _WHICH)
    low, high = pick(rng, _RANGES)
    rand, span = rng.random, high - low + 1
    xs = [low + int(rand() * span) for _ in range(between(rng, 3, 12))]  # between(rng, low, high), inlined
    answer = max(xs) if which == "max" else min(xs)
    return {"question": pick(rng, _TEMPLATES[which]).format(xs=", ".join(map(str, xs))), "answer": str(answer)}


def check(record: dict) -> bool:
    for regex, which in _PATTERNS:
        m = regex.fullmatch(record["question"])
        if m:
            xs = [int(x) for x in m["xs"].split(", ")]
            return str(max(xs) if which == "max" else min(xs)) == record["answer"]
    return False


FAMILY = Family(
    name="list_max_min",
    category="lists",
    instruction="Give the number from the list that the question asks for.",
    make=make,
    check=check,
    chance=0.0,
    description="Maximum or minimum of 3 to 12 integers",
)
