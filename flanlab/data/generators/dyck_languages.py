"""Complete a bracket sequence with the closing brackets it still needs (BBH-style, held out).

The input is a prefix of a well-nested sequence over ( ) [ ] { } < >; the answer is the closing brackets
of the brackets still open, innermost first, separated by spaces. The rationale walks the stack.
"""

from __future__ import annotations

import random

from flanlab.data.generators.base import Family

_PAIRS = {"(": ")", "[": "]", "{": "}", "<": ">"}
_CLOSERS = {v: k for k, v in _PAIRS.items()}
_LEADS = [
    "Close the open brackets of this sequence:",
    "Finish this bracket sequence so every bracket is closed:",
    "Complete the sequence with the missing closing brackets:",
    "Which closing brackets complete this sequence?",
]


def _open_stack(symbols: list[str]) -> list[str] | None:
    """The brackets still open after `symbols`, or None when a closer does not match."""
    stack: list[str] = []
    for s in symbols:
        if s in _PAIRS:
            stack.append(s)
        elif not stack or _PAIRS[stack.pop()] != s:
            return None
    return stack


def make(rng: random.Random) -> dict:
    length = rng.randint(3, 28)
    max_depth = rng.randint(2, 6)
    symbols: list[str] = []
    stack: list[str] = []
    trace = []
    for _ in range(length):
        if stack and (len(stack) >= max_depth or rng.random() < 0.4):
            symbols.append(_PAIRS[stack.pop()])
        else:
            stack.append(rng.choice("([{<"))
            symbols.append(stack[-1])
        trace.append(f"{symbols[-1]} leaves {' '.join(stack) or 'nothing'}")
    if not stack:  # the prefix must leave something open
        stack.append(rng.choice("([{<"))
        symbols.append(stack[-1])
        trace.append(f"{symbols[-1]} leaves {' '.join(stack) or 'nothing'}")
    answer = " ".join(_PAIRS[s] for s in reversed(stack))
    rationale = (
        "Read the symbols one at a time, pushing each opening bracket on a stack and popping it when its "
        f"closing bracket comes: {'; '.join(trace)}. Still open: {' '.join(stack)}. "
        f"Closing them from the innermost out gives {answer}."
    )
    return {"question": f"{rng.choice(_LEADS)} {' '.join(symbols)}", "answer": answer, "rationale": rationale}


def check(record: dict) -> bool:
    lead = next(lead for lead in _LEADS if record["question"].startswith(lead))
    stack = _open_stack(record["question"][len(lead):].split())
    if not stack:
        return False
    return " ".join(_PAIRS[s] for s in reversed(stack)) == record["answer"]


FAMILY = Family(
    name="dyck_languages",
    category="formal_languages",
    instruction="Write the closing brackets that complete the sequence so that every bracket is properly closed.",
    make=make,
    check=check,
    held_out=True,
    chance=0.0,
    description="Completing prefixes of nested sequences of four bracket types",
    fields=("question", "answer", "rationale"),
)
