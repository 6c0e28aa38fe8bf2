"""Deduce a fixed order of 3 to 5 objects from clues, then pick the true statement (BBH-style, held out).

Each theme orders its objects along one axis (a shelf or a wire from left to right, a swimming race from
first to last, prices from lowest to highest, vehicles by when they were built). Clues are drawn from the
hidden order and added until exactly one order fits, so the solution is unique by construction; `check`
re-derives it from the text by brute force over all orders and rejects the record unless exactly one fits.
"""

from __future__ import annotations

import itertools
import random

from flanlab.data.generators.base import Family

_THEMES = [
    {
        "intro": "{n} books stand in a row on a shelf: {listing}.", "item": "a {o}",
        "axis": ("far left", "far right"),
        "objects": ["cookbook", "diary", "dictionary", "novel", "biography", "comic book", "songbook", "textbook",
                    "storybook", "sketchbook"],
        "before": "The {a} stands left of the {b}.", "after": "The {a} stands right of the {b}.",
        "pos": "The {a} stands {where}.",
        "start": ["at the far left", "second from the left", "third from the left"],
        "end": ["at the far right", "second from the right", "third from the right"],
    },
    {
        "intro": "{n} birds sit in a row along a wire: {listing}.", "item": "a {o}", "axis": ("far left", "far right"),
        "objects": ["pigeon", "starling", "magpie", "wren", "finch", "sparrow", "swallow", "blackbird", "thrush"],
        "before": "The {a} sits left of the {b}.", "after": "The {a} sits right of the {b}.",
        "pos": "The {a} sits {where}.",
        "start": ["at the far left", "second from the left", "third from the left"],
        "end": ["at the far right", "second from the right", "third from the right"],
    },
    {
        "intro": "{n} swimmers raced one length of the pool: {listing}.", "item": "{o}", "axis": ("first", "last"),
        "objects": ["Ines", "Omar", "Priya", "Kenji", "Farah", "Hugo", "Tess", "Ravi", "Yara", "Victor"],
        "before": "{a} touched the wall before {b}.", "after": "{a} touched the wall after {b}.",
        "pos": "{a} touched the wall {where}.",
        "start": ["first", "second", "third"],
        "end": ["last", "second to last", "third to last"],
    },
    {
        "intro": "{n} kinds of fruit are on sale at a market stall: {listing}.", "item": "{o}",
        "axis": ("lowest price", "highest price"),
        "objects": ["figs", "cherries", "lychees", "apricots", "guavas", "papayas", "limes", "dates", "grapefruits"],
        "before": "The {a} cost less than the {b}.", "after": "The {a} cost more than the {b}.",
        "pos": "The {a} have the {where} price.",
        "start": ["lowest", "second-lowest", "third-lowest"],
        "end": ["highest", "second-highest", "third-highest"],
    },
    {
        "intro": "{n} vehicles are parked at a vintage show: {listing}.", "item": "a {o}",
        "axis": ("built first", "built last"),
        "objects": ["camper", "jeep", "roadster", "taxi", "coupe", "delivery van", "fire engine", "school bus",
                    "milk float"],
        "before": "The {a} was built before the {b}.", "after": "The {a} was built after the {b}.",
        "pos": "The {a} was built {where}.",
        "start": ["first", "second", "third"],
        "end": ["last", "second to last", "third to last"],
    },
]
_NUMBER = {3: "three", 4: "four", 5: "five"}
_NUMBER_VALUE = {v: k for k, v in _NUMBER.items()}


def _capital(s: str) -> str:
    return s[0].upper() + s[1:]


def _statements(theme: dict, objects: list[str]) -> dict[str, tuple]:
    """Every clue sentence the theme can say about these objects -> its constraint on the order:
    ("lt", a, b): a comes before b; ("at", a, k): a is at index k (0-based from the start)."""
    n = len(objects)
    out: dict[str, tuple] = {}
    for a, b in itertools.permutations(objects, 2):
        out[_capital(theme["before"].format(a=a, b=b))] = ("lt", a, b)
        out[_capital(theme["after"].format(a=a, b=b))] = ("lt", b, a)
    for a in objects:
        for k, where in enumerate(theme["start"][:n]):
            out[_capital(theme["pos"].format(a=a, where=where))] = ("at", a, k)
        for k, where in enumerate(theme["end"][:n]):
            out[_capital(theme["pos"].format(a=a, where=where))] = ("at", a, n - 1 - k)
    return out


def _holds(constraint: tuple, order: tuple[str, ...]) -> bool:
    kind, a, b = constraint
    return order.index(a) < order.index(b) if kind == "lt" else order[b] == a


def make(rng: random.Random) -> dict:
    theme = rng.choice(_THEMES)
    n = rng.randint(3, 5)
    objects = rng.sample(theme["objects"], n)
    order = tuple(rng.sample(objects, n))
    statements = _statements(theme, objects)
    true_clues = [s for s, c in statements.items() if _holds(c, order)]
    rng.shuffle(true_clues)
    candidates = list(itertools.permutations(objects))
    notes = [f"There are {len(candidates)} possible orders."]
    clues: list[str] = []
    for clue in true_clues:
        kept = [p for p in candidates if _holds(statements[clue], p)]
        if len(kept) < len(candidates):
            clues.append(clue)
            candidates = kept
            notes.append(f'"{clue}" leaves {len(kept)}.')
            if len(kept) == 1:
                break
    stated = {statements[c][1:] for c in clues if statements[c][0] == "at"}
    positions = [k for k in range(n) if (order[k], k) not in stated] or list(range(n))
    asked = rng.choice(positions)
    sides = ([("start", asked)] if asked < 3 else []) + ([("end", n - 1 - asked)] if n - 1 - asked < 3 else [])
    side, k = rng.choice(sides)
    options = [_capital(theme["pos"].format(a=o, where=theme[side][k])) for o in objects]
    rng.shuffle(options)
    answer = _capital(theme["pos"].format(a=order[asked], where=theme[side][k]))
    rng.shuffle(clues)
    listing = [theme["item"].format(o=o) for o in objects]
    intro = _capital(theme["intro"].format(n=_NUMBER[n], listing=", ".join(listing[:-1]) + ", and " + listing[-1]))
    first, last = theme["axis"]
    notes.append(f"The only order left, from {first} to {last}, is: {', '.join(order)}.")
    return {
        "question": " ".join([intro] + clues + ["Which one of these statements holds?"]),
        "answer": answer,
        "options": options,
        "rationale": " ".join(notes),
    }


def check(record: dict) -> bool:
    text = record["question"]
    for theme in _THEMES:
        head, tail = theme["intro"].split("{n}")[0], theme["intro"].split("{listing}")[0].split("{n}")[1]
        for word, n in _NUMBER_VALUE.items():
            prefix = _capital(head + word + tail)
            if text.startswith(prefix):
                break
        else:
            continue
        listing_end = text.index(". ", len(prefix))
        items = text[len(prefix):listing_end].replace(", and ", ", ").split(", ")
        objects = [o for o in theme["objects"] if theme["item"].format(o=o) in items]
        if len(objects) != n:
            return False
        statements = _statements(theme, objects)
        body = text[listing_end + 2:].removesuffix(" Which one of these statements holds?")
        clues = [s + "." for s in body.rstrip(".").split(". ")]
        if any(c not in statements for c in clues):
            return False
        solutions = [p for p in itertools.permutations(objects) if all(_holds(statements[c], p) for c in clues)]
        if len(solutions) != 1:
            return False
        true_options = [o for o in record["options"] if _holds(statements[o], solutions[0])]
        return true_options == [record["answer"]]
    return False


FAMILY = Family(
    name="logical_deduction",
    category="deduction",
    instruction="Work out the order the clues describe and choose the one true statement.",
    make=make,
    check=check,
    held_out=True,
    chance=(100 / 3 + 100 / 4 + 100 / 5) / 3,  # 3, 4 or 5 options, equally likely
    description="Orders of 3 to 5 books, birds, swimmers, fruit prices or vehicle build dates; unique solutions",
    fields=("question", "answer", "options", "rationale"),
)
