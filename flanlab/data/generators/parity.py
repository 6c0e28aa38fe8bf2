"""Decide whether a whole number is even or odd, from its last digit."""

from __future__ import annotations

import random

from flanlab.data.generators.base import Family, pattern

_TEMPLATES = {
    "which": ["Is {n} even or odd?", "Is the number {n} odd or even?"],
    "even": ["Is {n} an even number?", "Is {n} divisible by 2?"],
    "odd": ["Is {n} an odd number?", "Does {n} leave a remainder when divided by 2?"],
}
_PATTERNS = [(pattern(t, {"n": r"-?\d+"}), kind) for kind, ts in _TEMPLATES.items() for t in ts]


def _answer(kind: str, n: int) -> str:
    even = n % 2 == 0
    if kind == "which":
        return "even" if even else "odd"
    return "Yes" if even == (kind == "even") else "No"


# per kind, in _TEMPLATES order: its templates split around {n}, its two options, its answers for even and odd n
_KINDS = tuple((tuple(tuple(t.split("{n}")) for t in ts), ("even", "odd") if kind == "which" else ("Yes", "No"),
                _answer(kind, 0), _answer(kind, 1)) for kind, ts in _TEMPLATES.items())
# digits -> (smallest number of that many digits, how many there are)
_DIGITS = {d: (10 ** (d - 1), 9 * 10 ** (d - 1)) for d in range(1, 11)}


def make(rng: random.Random) -> dict:
    rand = rng.random
    low, span = _DIGITS[1 + int(rand() * 2) if rand() < 0.05 else 3 + int(rand() * 8)]
    n = (low + int(rand() * span)) * (-1 if rand() < 0.1 else 1)
    templates, (first, second), if_even, if_odd = _KINDS[int(rand() * 3)]
    options = [second, first] if rand() < 0.5 else [first, second]  # base.shuffle of two: one draw
    before, after = templates[int(rand() * len(templates))]
    s = str(n)
    if n % 2:
        answer, parity = if_odd, "odd"
    else:
        answer, parity = if_even, "even"
    return {"question": before + s + after, "answer": answer, "options": options,
            "rationale": f"The last digit of {s} is {s[-1]}, which is {parity}, so {s} is {parity}."}


def check(record: dict) -> bool:
    for regex, kind in _PATTERNS:
        m = regex.fullmatch(record["question"])
        if m:
            return _answer(kind, int(m["n"])) == record["answer"] and record["answer"] in record["options"]
    return False


FAMILY = Family(
    name="parity",
    category="number_properties",
    instruction="Decide whether the number is even or odd and choose the matching option.",
    make=make,
    check=check,
    chance=50.0,
    description="Even/odd questions about numbers of 1 to 10 digits (mostly 3 or more, so few repeats)",
    fields=("question", "answer", "options", "rationale"),
)
