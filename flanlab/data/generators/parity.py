"""Decide whether a whole number is even or odd, from its last digit."""

from __future__ import annotations

import random

from flanlab.data.generators.base import Family, between, pattern, pick, shuffle

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


def make(rng: random.Random) -> dict:
    digits = between(rng, 1, 2) if rng.random() < 0.05 else between(rng, 3, 10)
    n = between(rng, 10 ** (digits - 1), 10 ** digits - 1) * (-1 if rng.random() < 0.1 else 1)
    kind = pick(rng, list(_TEMPLATES))
    options = ["even", "odd"] if kind == "which" else ["Yes", "No"]
    shuffle(rng, options)
    last = str(abs(n))[-1]
    rationale = f"The last digit of {n} is {last}, which is {'even' if int(last) % 2 == 0 else 'odd'}, " \
                f"so {n} is {'even' if n % 2 == 0 else 'odd'}."
    return {"question": pick(rng, _TEMPLATES[kind]).format(n=n), "answer": _answer(kind, n), "options": options,
            "rationale": rationale}


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
