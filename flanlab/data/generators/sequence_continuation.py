"""Continue a number sequence by one term: arithmetic, geometric, or with steadily changing differences.

The rationale names the rule; `check` finds the rule from the numbers alone.
"""

from __future__ import annotations

import random

from flanlab.data.generators.base import Family, between, pattern, pick

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


def make(rng: random.Random) -> dict:
    kind = rng.random()
    if kind < 0.45:
        start, diff = between(rng, -50, 100), pick(rng, [-1, 1]) * between(rng, 1, 25)
        xs = [start + i * diff for i in range(between(rng, 4, 7))]
        answer = xs[-1] + diff
        rationale = (f"The differences between consecutive terms are all {diff}, so each term adds {diff}: "
                     f"{xs[-1]} + {diff} = {answer}.")
    elif kind < 0.7:
        start, ratio = between(rng, 1, 50) * pick(rng, [1, 1, 1, -1]), between(rng, 2, 5)
        xs = [start * ratio ** i for i in range(between(rng, 4, 5 if ratio > 3 else 6))]
        answer = xs[-1] * ratio
        rationale = (f"Each term is {ratio} times the one before ({xs[1]} / {xs[0]} = {ratio}), so the next is "
                     f"{xs[-1]} * {ratio} = {answer}.")
    else:  # the differences themselves grow by a constant step
        start, diff, step = between(rng, -20, 50), between(rng, -10, 15), pick(rng, [-1, 1]) * between(rng, 1, 6)
        xs = [start]
        for i in range(between(rng, 5, 7) - 1):
            xs.append(xs[-1] + diff + i * step)
        last_diff = xs[-1] - xs[-2]
        answer = xs[-1] + last_diff + step
        diffs = ", ".join(str(b - a) for a, b in zip(xs, xs[1:]))
        rationale = (f"The differences are {diffs}; they change by {step} each time, so the next difference is "
                     f"{last_diff} + {step} = {last_diff + step} and the next term is {xs[-1]} + {last_diff + step} "
                     f"= {answer}.")
    question = pick(rng, _TEMPLATES).format(xs=", ".join(map(str, xs)))
    return {"question": question, "answer": str(answer), "rationale": rationale}


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
