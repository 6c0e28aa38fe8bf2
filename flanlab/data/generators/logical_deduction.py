"""Deduce a fixed order of 3 to 5 objects from clues, then pick the true statement (BBH-style, held out).

Each theme orders its objects along one axis (a shelf from left to right, a race from first to last, prices
from cheapest to dearest, vehicles from oldest to newest). Clues are drawn from the hidden order and added
until exactly one order fits, so the solution is unique by construction; `check` re-derives it from the
text by brute force over all orders and rejects the record unless exactly one order fits.
"""

from __future__ import annotations

import itertools
import random

from flanlab.data.generators.base import Family

_THEMES = [
    {
        "intro": "On a shelf, there are {n} books: {listing}.", "item": "a {o}", "axis": ("leftmost", "rightmost"),
        "objects": ["red book", "blue book", "green book", "gray book", "brown book", "black book", "white book",
                    "purple book", "yellow book", "pink book"],
        "before": "The {a} is to the left of the {b}.", "after": "The {a} is to the right of the {b}.",
        "pos": "The {a} is the {where}.",
        "start": ["leftmost", "second from the left", "third from the left"],
        "end": ["rightmost", "second from the right", "third from the right"],
    },
    {
        "intro": "On a branch, there are {n} birds: {listing}.", "item": "a {o}", "axis": ("leftmost", "rightmost"),
        "objects": ["robin", "crow", "hawk", "sparrow", "finch", "blue jay", "cardinal", "hummingbird", "raven"],
        "before": "The {a} is to the left of the {b}.", "after": "The {a} is to the right of the {b}.",
        "pos": "The {a} is the {where}.",
        "start": ["leftmost", "second from the left", "third from the left"],
        "end": ["rightmost", "second from the right", "third from the right"],
    },
    {
        "intro": "{n} runners took part in a race: {listing}.", "item": "{o}", "axis": ("first", "last"),
        "objects": ["Ana", "Ben", "Carla", "Diego", "Emma", "Felix", "Grace", "Hugo", "Ines", "Jamal"],
        "before": "{a} finished before {b}.", "after": "{a} finished after {b}.",
        "pos": "{a} finished {where}.",
        "start": ["first", "second", "third"],
        "end": ["last", "second-to-last", "third-to-last"],
    },
    {
        "intro": "A market stall sells {n} fruits: {listing}.", "item": "{o}", "axis": ("cheapest", "most expensive"),
        "objects": ["apples", "pears", "kiwis", "plums", "mangoes", "figs", "cherries", "peaches", "loquats"],
        "before": "The {a} are cheaper than the {b}.", "after": "The {a} are more expensive than the {b}.",
        "pos": "The {a} are the {where}.",
        "start": ["cheapest", "second-cheapest", "third-cheapest"],
        "end": ["most expensive", "second-most expensive", "third-most expensive"],
    },
    {
        "intro": "At a car show, there are {n} vehicles: {listing}.", "item": "a {o}", "axis": ("oldest", "newest"),
        "objects": ["sedan", "truck", "van", "bus", "tractor", "motorcycle", "limousine", "pickup", "hatchback"],
        "before": "The {a} is older than the {b}.", "after": "The {a} is newer than the {b}.",
        "pos": "The {a} is the {where}.",
        "start": ["oldest", "second-oldest", "third-oldest"],
        "end": ["newest", "second-newest", "third-newest"],
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
        "question": " ".join([intro] + clues + ["Which statement is true?"]),
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
        body = text[listing_end + 2:].removesuffix(" Which statement is true?")
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
    description="Orders of 3 to 5 books, birds, runners, fruit prices or vehicle ages from clues; unique solutions",
    fields=("question", "answer", "options", "rationale"),
)
