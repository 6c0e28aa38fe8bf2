"""Compare two numbers (integers or decimals such as 9.11 and 9.9): pick the larger or smaller, or say Yes/No."""

from __future__ import annotations

import random

from flanlab.data.generators.base import Family, pattern

_PICK = {"larger": ["Which is larger: {a} or {b}?", "Which number is greater, {a} or {b}?",
                    "Of {a} and {b}, which is bigger?"],
         "smaller": ["Which is smaller: {a} or {b}?", "Which number is less, {a} or {b}?",
                     "Of {a} and {b}, which is lower?"]}
_ASK = {"greater": ["Is {a} greater than {b}?", "Is {a} larger than {b}?"],
        "less": ["Is {a} less than {b}?", "Is {a} smaller than {b}?"]}
_NUM = r"-?\d+(?:\.\d+)?"
_PATTERNS = [(pattern(t, {"a": _NUM, "b": _NUM}), k) for d in (_PICK, _ASK) for k, ts in d.items() for t in ts]


def _answer(kind: str, a: str, b: str) -> str:
    x, y = float(a), float(b)  # exact enough: distinct numbers here differ by at least 0.001
    if kind == "larger":
        return a if x > y else b
    if kind == "smaller":
        return a if x < y else b
    return "Yes" if (x > y if kind == "greater" else x < y) else "No"


def _parts(template: str) -> tuple[str, str, str]:
    """The text before {a}, between {a} and {b}, and after {b} of a template."""
    before, rest = template.split("{a}")
    return (before, *rest.split("{b}"))


_PICK_PARTS = tuple(tuple(map(_parts, ts)) for ts in _PICK.values())  # larger, smaller
_ASK_PARTS = tuple(tuple(map(_parts, ts)) for ts in _ASK.values())  # greater, less
_PLACES = ("%.1f", "%.2f", "%.3f")  # "%.2f" % x is f"{x:.2f}"


def _number(rand) -> str:
    kind = rand()
    if kind < 0.35:
        return str(-1000 + int(rand() * 2001))
    places = _PLACES[int(rand() * 3)]
    return places % (-100 + 200 * rand() if kind < 0.6 else 20 * rand())  # random.uniform(-100, 100) or (0, 20)


def make(rng: random.Random) -> dict:
    rand = rng.random
    while True:
        a = _number(rand)
        if rand() < 0.4 and "." in a:  # same whole part, decimals differ in length (9.11 vs 9.9)
            whole, decimals = a.split(".")
            b = f"{whole}.{1 + int(rand() * 9) if len(decimals) > 1 else 10 + int(rand() * 90)}"
        else:
            b = _number(rand)
        x, y = float(a), float(b)  # exact enough: distinct numbers here differ by at least 0.001
        if x != y:
            break
    if rand() < 0.5:
        first = rand() < 0.5  # larger (else smaller)
        templates = _PICK_PARTS[not first]
        options = [a, b]
        answer = a if (x > y) == first else b
    else:
        first = rand() < 0.5  # greater (else less)
        templates = _ASK_PARTS[not first]
        options = ["Yes", "No"]
        answer = "Yes" if (x > y) == first else "No"
    before, middle, after = templates[int(rand() * len(templates))]
    if rand() < 0.5:  # base.shuffle of two: one draw
        options.reverse()
    return {"question": before + a + middle + b + after, "answer": answer, "options": options}


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
