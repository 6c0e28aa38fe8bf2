"""Follow walking instructions and tell whether they lead back to the start (BBH-style, held out).

Two kinds of instructions: with turns ("Turn 90 degrees left. Walk 3 paces.") or facing one way throughout
("Keep facing the same way the whole time. Sidestep 2 paces to the left."). Half the instances return to
the start by construction.
"""

from __future__ import annotations

import random
import re

from flanlab.data.generators.base import Family, pattern

_HEADINGS = ["north", "east", "south", "west"]  # index = quarter turns clockwise from the start
_VECTORS = [(0, 1), (1, 0), (0, -1), (-1, 0)]
_FIXED_START = "Keep facing the same way the whole time."
_TURNS = {"Turn 90 degrees right.": 1, "Turn to face the opposite way.": 2, "Turn 90 degrees left.": 3}
# turn mode: "Walk N paces."; fixed mode: one phrasing per direction relative to the fixed facing
_FIXED = {"Walk {n} ahead.": 0, "Sidestep {n} to the right.": 1, "Back up {n}.": 2, "Sidestep {n} to the left.": 3}
_FIXED_PATTERNS = [(pattern(t, {"n": r"\d+ paces?"}), d) for t, d in _FIXED.items()]
_WALK = re.compile(r"Walk (\d+) paces?\.")
_FRAMES = [
    "From a fixed starting spot, carry out these moves: {steps} Are you standing on the starting spot again?",
    "Begin at some point and do the following. {steps} Do you finish exactly where you began?",
    "{steps} Once all of these moves are done, is your position the same as at the beginning?",
    "A walker follows this list of moves: {steps} Does the walker end up back at the starting spot?",
]
_FRAME_PATTERNS = [pattern(f, {"steps": r"[A-Z].*\."}) for f in _FRAMES]


def _paces(n: int) -> str:
    return "1 pace" if n == 1 else f"{n} paces"


def _moves(rng: random.Random, back_home: bool) -> list[tuple[int, int]]:
    """(absolute heading, paces) moves; when back_home their displacement is zero, else it is not."""
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
    fixed = sentences[0] == _FIXED_START
    notes = ["Put the start at (0, 0), facing north" + (" throughout." if fixed else ".")]
    for s in sentences[1:] if fixed else sentences:
        if s in _TURNS:
            heading = (heading + _TURNS[s]) % 4
            notes.append(f"{s[:-1]}: now facing {_HEADINGS[heading]}.")
            continue
        if fixed:
            m, direction = next((m, d) for m, d in ((r.fullmatch(s), d) for r, d in _FIXED_PATTERNS) if m)
            n, h = int(m["n"].split()[0]), direction
        else:
            n, h = int(_WALK.fullmatch(s)[1]), heading
        x, y = x + _VECTORS[h][0] * n, y + _VECTORS[h][1] * n
        notes.append(f"{s[:-1]} ({_HEADINGS[h]}): at ({x}, {y}).")
    return (x, y), notes


def make(rng: random.Random) -> dict:
    back_home = rng.random() < 0.5
    moves = _moves(rng, back_home)
    if rng.random() < 0.5:
        phrasing = {d: t for t, d in _FIXED.items()}
        sentences = [_FIXED_START] + [phrasing[h].format(n=_paces(n)) for h, n in moves]
    else:
        sentences, heading = [], 0
        turn_names = {v: k for k, v in _TURNS.items()}
        for h, n in moves:
            if (h - heading) % 4:
                sentences.append(turn_names[(h - heading) % 4])
            heading = h
            sentences.append(f"Walk {_paces(n)}.")
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
    description="Walks with turns or with a fixed facing; does the walk return to the start",
    fields=("question", "answer", "options", "rationale"),
)
