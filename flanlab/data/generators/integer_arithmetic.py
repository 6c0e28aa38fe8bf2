"""Add, subtract or multiply two whole numbers, with a place-value rationale.

The rationale splits the second number into its place values (347 = 300 + 40 + 7) and applies them one at a
time, the way one does it by hand.
"""

from __future__ import annotations

import random

from flanlab.data.generators.base import Family, between, pattern, pick

_TEMPLATES = {
    "+": ["What is {a} + {b}?", "Compute {a} + {b}.", "Add {a} and {b}.", "What is the sum of {a} and {b}?",
          "Find {a} plus {b}.", "Calculate {a} + {b}."],
    "-": ["What is {a} - {b}?", "Compute {a} - {b}.", "Subtract {b} from {a}.", "What is {a} minus {b}?",
          "Take {b} away from {a}. What is left?", "Calculate {a} - {b}."],
    "*": ["What is {a} * {b}?", "Compute {a} * {b}.", "Multiply {a} by {b}.", "What is the product of {a} and {b}?",
          "What is {a} times {b}?", "Calculate {a} * {b}."],
}
_PATTERNS = [(pattern(t, {"a": r"\d+", "b": r"\d+"}), op) for op, ts in _TEMPLATES.items() for t in ts]


def _apply(op: str, a: int, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


def _places(b: int) -> list[int]:
    """347 -> [300, 40, 7] (zeros left out)."""
    digits = str(b)
    return [int(d) * 10 ** (len(digits) - 1 - i) for i, d in enumerate(digits) if d != "0"] or [0]


def _rationale(op: str, a: int, b: int) -> str:
    parts = _places(b)
    if len(parts) == 1:
        return f"{b} is a single place value, so this is one step: {a} {op} {b} = {_apply(op, a, b)}."
    steps = [f"Split {b} by place value: {b} = {' + '.join(map(str, parts))}."]
    if op == "*":
        products = [a * p for p in parts]
        steps += [f"{a} * {p} = {q}." for p, q in zip(parts, products)]
        steps.append(f"Add the partial products: {' + '.join(map(str, products))} = {sum(products)}.")
    else:
        value = a
        for p in parts:
            steps.append(f"{value} {op} {p} = {_apply(op, value, p)}.")
            value = _apply(op, value, p)
    return " ".join(steps)


def _number(rng: random.Random, max_digits: int) -> int:
    digits = between(rng, 1, max_digits)
    return between(rng, 10 ** (digits - 1), 10 ** digits - 1)


def make(rng: random.Random) -> dict:
    op = pick(rng, "+-*")
    if op == "*":
        a, b = _number(rng, 3), _number(rng, 2)
    else:
        a, b = _number(rng, 4), _number(rng, 4)
    question = pick(rng, _TEMPLATES[op]).format(a=a, b=b)
    return {"question": question, "answer": str(_apply(op, a, b)), "rationale": _rationale(op, a, b)}


def check(record: dict) -> bool:
    for regex, op in _PATTERNS:
        m = regex.fullmatch(record["question"])
        if m:
            return str(_apply(op, int(m["a"]), int(m["b"]))) == record["answer"]
    return False


FAMILY = Family(
    name="integer_arithmetic",
    category="math",
    instruction="Calculate the result of the arithmetic operation.",
    make=make,
    check=check,
    chance=0.0,
    description="Addition and subtraction of up to 4-digit numbers, multiplication of 3-digit by 2-digit numbers",
    fields=("question", "answer", "rationale"),
)
