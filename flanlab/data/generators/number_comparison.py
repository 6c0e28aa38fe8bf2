"""Compare two numbers (integers or decimals such as 9.11 and 9.9): pick the larger or smaller, or say Yes/No."""

from __future__ import annotations

import random
from flanlab.data.generators.base import Family, between, pattern, pick, shuffle

_PICK = {"larger": ["Which is larger: {a} or {b}?", "Which number is greater, {a} or {b}?",
                    "Of {a} and {b}, which is bigger?"],
         "smaller": ["Which is smaller: {a} or {b}?", "Which number is less, {a} or {b}?",
                     "Of {a} and {b}, which is lower?"]}
_ASK = {"greater": ["Is {a} greater than {b}?", "Is {a} larger than {b}?"],
        "less": ["Is {a} less than {b}?", "Is {a} smaller than {b}?"]}
_NUM = r"-?\d+(?:\.\d+)?"
_PATTERNS = [(pattern(t, {"a": _NUM, "b": _NUM}), k) for d in (_PICK, _ASK) for k, ts in d.items() for t in ts]


def _number(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.35:
        return str(between(rng, -1000, 1000))
    places = between(rng, 1, 3)
    return f"{rng.uniform(-100, 100) if kind < 0.6 else rng.uniform(0, 20):.{places}f}"


def _pair(rng: random.Random) -> tuple[str, str]:
    a = _number(rng)
    if rng.random() < 0.4 and "." in a:  # same whole part, decimals differ in length (9.11 vs 9.9)
        whole = a.split(".")[0]
        b = f"{whole}.{between(rng, 1, 9) if len(a.split('.')[1]) > 1 else between(rng, 10, 99)}"
    else:
        b = _number(rng)
    return a, b


def _answer(kind: str, a: str, b: str) -> str:
    x, y = float(a), float(b)  # exact enough: distinct numbers here differ by at least 0.001
    if kind == "larger":
        return a if x > y else b
    if kind == "smaller":
        return a if x < y else b
    return "Yes" if (x > y if kind == "greater" else x < y) else "No"


def make(rng: random.Random) -> dict:
    a, b = _pair(rng)
    while float(a) == float(b):
        a, b = _pair(rng)
    if rng.random() < 0.5:
        kind = pick(rng, list(_PICK))
        question, options = pick(rng, _PICK[kind]).format(a=a, b=b), [a, b]
    else:
        kind = pick(rng, list(_ASK))
        question, options = pick(rng, _ASK[kind]).format(a=a, b=b), ["Yes", "No"]
    shuffle(rng, options)
    return {"question": question, "answer": _answer(kind, a, b), "options": options}


def check(record: dict) -> bool:
    for regex, kind in _PATTERNS:
        m = regex.fullmatch(record["question"])
        if m:
            return _answer(kind, m["a"], m["b"]) == record["answer"] and record["answer"] in record["options"]
    return False


FAMILY = Family(
    name="number_comparison",
    category="comparison",
    instruction="Compare the two numbers and choose the correct option.",
    make=make,
    check=check,
    chance=50.0,
    description="Integers and decimals, including equal whole parts with decimals of different lengths",
    fields=("question", "answer", "options"),
)
