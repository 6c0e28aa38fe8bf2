"""Follow walking instructions and tell whether they lead back to the start (BBH-style, held out).

Two kinds of instructions: with turns ("Turn left. Take 3 steps.") or facing one way throughout
("Always face forward. Take 2 steps left."). Half the instances return to the start by construction.
"""

from __future__ import annotations

import random

from flanlab.data.generators.base import Family, pattern

_HEADINGS = ["north", "east", "south", "west"]  # index = quarter turns clockwise from the start
_VECTORS = [(0, 1), (1, 0), (0, -1), (-1, 0)]
_TURNS = {"Turn right.": 1, "Turn around.": 2, "Turn left.": 3}
_FIXED = {"forward": 0, "right": 1, "backward": 2, "left": 3}
_FRAMES = [
    ("Follow these instructions from your starting point: {steps} Are you back at the starting point?"),
    ("Start somewhere and do this: {steps} Do you end where you started?"),
    ("{steps} After these moves, are you at your starting position again?"),
    ("You follow these directions: {steps} Have you returned to where you began?"),
]
_FRAME_PATTERNS = [pattern(f, {"steps": r"[A-Z].*\."}) for f in _FRAMES]


def _steps(n: int) -> str:
    return "1 step" if n == 1 else f"{n} steps"


def _moves(rng: random.Random, back_home: bool) -> list[tuple[int, int]]:
    """(absolute heading, steps) moves; when back_home their displacement is zero, else it is not."""
    moves = [(rng.randrange(4), rng.randint(1, 10)) for _ in range(rng.randint(1, 5 if back_home else 7))]
    x = sum(_VECTORS[h][0] * n for h, n in moves)
    y = sum(_VECTORS[h][1] * n for h, n in moves)
    if back_home:
        for amount, heading in ((x, 3 if x > 0 else 1), (y, 2 if y > 0 else 0)):
            amount = abs(amount)
            if amount > 1 and rng.random() < 0.5:
                part = rng.randint(1, amount - 1)
                moves += [(heading, part), (heading, amount - part)]
            elif amount:
                moves.append((heading, amount))
        rng.shuffle(moves)
    elif x == 0 and y == 0:
        moves[0] = (moves[0][0], moves[0][1] + 1)
    return moves


def _walk(sentences: list[str]) -> tuple[tuple[int, int], list[str]]:
    """Simulate the instruction sentences; return the final position and the rationale steps."""
    x = y = heading = 0
    fixed = sentences[0] == "Always face forward."
    notes = ["Put the start at (0, 0), facing north" + (" throughout." if fixed else ".")]
    for s in sentences[1:] if fixed else sentences:
        if s in _TURNS:
            heading = (heading + _TURNS[s]) % 4
            notes.append(f"{s[:-1]}: now facing {_HEADINGS[heading]}.")
            continue
        words = s.rstrip(".").split()  # Take N step(s) [direction]
        n = int(words[1])
        h = (heading + _FIXED[words[3]]) % 4 if fixed else heading
        x, y = x + _VECTORS[h][0] * n, y + _VECTORS[h][1] * n
        notes.append(f"{s[:-1]} ({_HEADINGS[h]}): at ({x}, {y}).")
    return (x, y), notes


def make(rng: random.Random) -> dict:
    back_home = rng.random() < 0.5
    moves = _moves(rng, back_home)
    if rng.random() < 0.5:
        names = {v: k for k, v in _FIXED.items()}
        sentences = ["Always face forward."] + [f"Take {_steps(n)} {names[h]}." for h, n in moves]
    else:
        sentences, heading = [], 0
        turn_names = {v: k for k, v in _TURNS.items()}
        for h, n in moves:
            if (h - heading) % 4:
                sentences.append(turn_names[(h - heading) % 4])
            heading = h
            sentences.append(f"Take {_steps(n)}.")
    (x, y), notes = _walk(sentences)
    end = "which is the starting point." if (x, y) == (0, 0) else "which is not the starting point."
    options = ["Yes", "No"]
    rng.shuffle(options)
    return {
        "question": rng.choice(_FRAMES).format(steps=" ".join(sentences)),
        "answer": "Yes" if back_home else "No",
        "options": options,
        "rationale": " ".join(notes) + f" The walk ends at ({x}, {y}), {end}",
    }


def check(record: dict) -> bool:
    steps = next(m["steps"] for m in (r.fullmatch(record["question"]) for r in _FRAME_PATTERNS) if m)
    sentences = [s + "." for s in steps.rstrip(".").split(". ")]
    (x, y), _ = _walk(sentences)
    return ("Yes" if (x, y) == (0, 0) else "No") == record["answer"] and record["answer"] in record["options"]


FAMILY = Family(
    name="navigate",
    category="spatial",
    instruction="Follow the movement instructions and answer Yes if they end at the starting point, otherwise No.",
    make=make,
    check=check,
    held_out=True,
    chance=50.0,
    description="Walks with turns or fixed facing; does the walk return to the start",
    fields=("question", "answer", "options", "rationale"),
)
