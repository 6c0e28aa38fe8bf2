"""Add, subtract or multiply two whole numbers, with a place-value rationale.

The rationale splits the second number into its place values (347 = 300 + 40 + 7) and applies them one at a
time, the way one does it by hand.
"""

from __future__ import annotations

import functools
import random

from flanlab.data.generators.base import Family, pattern, pick

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


@functools.cache  # b has at most 10,000 values: each split is worked out once
def _split(b: int) -> tuple[tuple[int, ...], str]:
    """b's place values and the rationale sentence splitting b into them."""
    parts = _places(b)
    return tuple(parts), f"Split {b} by place value: {b} = {' + '.join(map(str, parts))}."


def _rationale(op: str, a: int, b: int, result: int) -> str:
    parts, split = _split(b)
    if len(parts) == 1:
        return f"{b} is a single place value, so this is one step: {a} {op} {b} = {result}."
    steps = [split]
    if op == "*":
        products = [a * p for p in parts]
        steps += [f"{a} * {p} = {q}." for p, q in zip(parts, products)]
        steps.append(f"Add the partial products: {' + '.join(map(str, products))} = {result}.")
    else:
        sign = 1 if op == "+" else -1
        value = a
        for p in parts:
            after = value + sign * p
            steps.append(f"{value} {op} {p} = {after}.")
            value = after
    return " ".join(steps)


# (lowest number, how many numbers) of each digit count: 1-digit, 2-digit, ...
_DIGIT_RANGES = tuple((10 ** (d - 1), 9 * 10 ** (d - 1)) for d in range(1, 5))


def _number(rng: random.Random, max_digits: int) -> int:
    """A number of 1 to max_digits digits: the digit count uniform, then the number uniform among those."""
    low, count = _DIGIT_RANGES[int(rng.random() * max_digits)]
    return low + int(rng.random() * count)


def make(rng: random.Random) -> dict:
    op = pick(rng, "+-*")
    if op == "*":
        a, b = _number(rng, 3), _number(rng, 2)
    else:
        a, b = _number(rng, 4), _number(rng, 4)
    result = a + b if op == "+" else a - b if op == "-" else a * b
    return {"question": pick(rng, _TEMPLATES[op]).format(a=a, b=b), "answer": str(result),
            "rationale": _rationale(op, a, b, result)}


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
