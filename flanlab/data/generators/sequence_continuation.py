"""Continue a number sequence by one term: arithmetic, geometric, or with steadily changing differences.

The rationale names the rule; `check` finds the rule from the numbers alone.
"""

from __future__ import annotations

import random

from flanlab.data.generators.base import Family, pattern

_TEMPLATES = ["What number comes next in the sequence {xs}, ...?", "Continue the sequence: {xs}, ...",
              "Find the next term: {xs}, ...", "What is the next number after {xs}?"]
_PATTERNS = [pattern(t, {"xs": r"-?\d+(?:, -?\d+)+"}) for t in _TEMPLATES]


def _next(xs: list[int]) -> int | None:
    """The next term when xs is arithmetic (constant difference), geometric (constant whole ratio) or has a
    constant second difference, else None. With 4 or more terms at most one of the three rules fits."""
    diffs = [b - a for a, b in zip(xs, xs[1:])]
    if len(set(diffs)) == 1:
        return xs[-1] + diffs[0]
    if all(a != 0 and b % a == 0 for a, b in zip(xs, xs[1:])):
        ratios = {b // a for a, b in zip(xs, xs[1:])}
        if len(ratios) == 1:
            return xs[-1] * ratios.pop()
    second = {b - a for a, b in zip(diffs, diffs[1:])}
    if len(second) == 1:
        return xs[-1] + diffs[-1] + second.pop()
    return None


_TEMPLATE_PARTS = tuple(tuple(t.split("{xs}")) for t in _TEMPLATES)  # the text before and after {xs}


def make(rng: random.Random) -> dict:
    rand = rng.random
    kind = rand()
    if kind < 0.45:
        start = -50 + int(rand() * 151)
        diff = (-1 if rand() < 0.5 else 1) * (1 + int(rand() * 25))
        xs = list(range(start, start + (4 + int(rand() * 4)) * diff, diff))
        answer = xs[-1] + diff
        rationale = (f"The differences between consecutive terms are all {diff}, so each term adds {diff}: "
                     f"{xs[-1]} + {diff} = {answer}.")
    elif kind < 0.7:
        start = (1 + int(rand() * 50)) * (-1 if rand() >= 0.75 else 1)
        ratio = 2 + int(rand() * 4)
        xs = [start]
        for _ in range((4 + int(rand() * 2) if ratio > 3 else 4 + int(rand() * 3)) - 1):
            xs.append(xs[-1] * ratio)
        answer = xs[-1] * ratio
        rationale = (f"Each term is {ratio} times the one before ({xs[1]} / {xs[0]} = {ratio}), so the next is "
                     f"{xs[-1]} * {ratio} = {answer}.")
    else:  # the differences themselves grow by a constant step
        start, diff = -20 + int(rand() * 71), -10 + int(rand() * 26)
        step = (-1 if rand() < 0.5 else 1) * (1 + int(rand() * 6))
        diffs = list(range(diff, diff + (4 + int(rand() * 3)) * step, step))
        xs = [start]
        for d in diffs:
            xs.append(xs[-1] + d)
        last_diff = diffs[-1]
        answer = xs[-1] + last_diff + step
        rationale = (f"The differences are {', '.join(map(str, diffs))}; they change by {step} each time, so the "
                     f"next difference is {last_diff} + {step} = {last_diff + step} and the next term is "
                     f"{xs[-1]} + {last_diff + step} = {answer}.")
    before, after = _TEMPLATE_PARTS[int(rand() * len(_TEMPLATE_PARTS))]
    return {"question": before + ", ".join(map(str, xs)) + after, "answer": str(answer), "rationale": rationale}


def check(record: dict) -> bool:
    for regex in _PATTERNS:
        m = regex.fullmatch(record["question"])
        if m:
            return str(_next([int(x) for x in m["xs"].split(", ")])) == record["answer"]
    return False


FAMILY = Family(
    name="sequence_continuation",
    category="sequences",
    instruction="Find the rule of the number sequence and give the next term.",
    make=make,
    check=check,
    chance=0.0,
    description="Arithmetic progressions, geometric ones (ratios 2..5), and ones whose differences change steadily",
    fields=("question", "answer", "rationale"),
)
