"""Track who holds what after a series of pairwise swaps among 3 to 5 people (BBH-style, held out).

Several themes (balls, dance partners, books, team positions, gifts) share one shape: an intro naming the
people, one sentence per starting holding, the swaps in order, then a cue ending the question ("At the
end, Alice has the"). The options are the objects in play.
"""

from __future__ import annotations

import random

from flanlab.data.generators.base import Family, pattern
from flanlab.data.generators.lexicon import NAMES

_THEMES = [
    {
        "intro": "{people} are playing catch, and each starts with one ball.",
        "hold": "{p} has the {o}.",
        "swap": "{a} and {b} trade balls.",
        "ask": "When the game is over, {p} has the",
        "objects": ["red ball", "blue ball", "green ball", "yellow ball", "white ball", "black ball",
                    "purple ball", "orange ball", "pink ball", "brown ball"],
    },
    {
        "intro": "{people} are at a barn dance, and each starts the tune with a partner.",
        "hold": "{p} is dancing with {o}.",
        "swap": "{a} and {b} switch partners.",
        "ask": "When the tune ends, {p} is dancing with",
        "objects": ["Arlo", "Beatrix", "Cosmo", "Delphine", "Ezra", "Flora", "Gideon", "Hazel", "Ignatius",
                    "Juniper"],
    },
    {
        "intro": "{people} each begin the term with a different novel.",
        "hold": "{p} is reading {o}.",
        "swap": "{a} and {b} exchange novels.",
        "ask": "By the end of the term, {p} is reading",
        "objects": ["The Copper Lantern", "Winter Orchard", "The Glass River", "Salt and Thunder", "The Last Ferry",
                    "A House of Kites", "The Quiet Comet", "Northern Tides", "The Paper Fox", "Ember Street"],
    },
    {
        "intro": "{people} play on a football team, each in a different position at kickoff.",
        "hold": "{p} plays {o}.",
        "swap": "{a} and {b} switch positions.",
        "ask": "At the final whistle, {p} is playing",
        "objects": ["goalkeeper", "striker", "left winger", "right winger", "center back", "fullback",
                    "sweeper", "attacking midfielder", "defensive midfielder"],
    },
    {
        "intro": "{people} are swapping gifts at a party, each holding one wrapped present.",
        "hold": "{p} holds the {o}.",
        "swap": "{a} and {b} swap presents.",
        "ask": "After all the swapping, {p} holds the",
        "objects": ["scarf", "teapot", "kite", "board game", "jigsaw puzzle", "toy train", "candle", "mug",
                    "notebook", "yo-yo"],
    },
]
_ORDER = ["First,", "Then,", "Next,", "After that,", "Later,"]
_PERSON = r"[A-Z][a-z]+"


def _obj_regex(theme: dict) -> str:
    return "|".join(sorted((o.replace("-", r"\-") for o in theme["objects"]), key=len, reverse=True))


_PATTERNS = [
    {
        "hold": pattern(t["hold"], {"p": _PERSON, "o": _obj_regex(t)}),
        "swap": pattern(t["swap"], {"a": _PERSON, "b": _PERSON}),
        "ask": pattern(t["ask"], {"p": _PERSON}),
    }
    for t in _THEMES
]


def _people_text(people: list[str]) -> str:
    return ", ".join(people[:-1]) + ", and " + people[-1]


def _state(holding: dict[str, str]) -> str:
    return ", ".join(f"{p}: {o}" for p, o in holding.items())


def make(rng: random.Random) -> dict:
    theme = rng.choice(_THEMES)
    n = rng.randint(3, 5)
    people = rng.sample(NAMES, n)
    objects = rng.sample(theme["objects"], n)
    holding = dict(zip(people, objects))
    parts = [theme["intro"].format(people=_people_text(people))]
    parts += [theme["hold"].format(p=p, o=o) for p, o in holding.items()]
    notes = [f"At the start: {_state(holding)}."]
    swaps = rng.randint(n, n + 2)
    for i in range(swaps):
        a, b = rng.sample(people, 2)
        holding[a], holding[b] = holding[b], holding[a]
        lead = "Finally," if i == swaps - 1 else _ORDER[min(i, len(_ORDER) - 1)]
        sentence = theme["swap"].format(a=a, b=b)
        parts.append(f"{lead} {sentence}")
        notes.append(f"After {a} and {b} swap: {_state(holding)}.")
    asked = rng.choice(people)
    parts.append(theme["ask"].format(p=asked))
    options = list(objects)
    rng.shuffle(options)
    notes.append(f"In the end {asked} has {holding[asked]}.")
    return {"question": " ".join(parts), "answer": holding[asked], "options": options, "rationale": " ".join(notes)}


def check(record: dict) -> bool:
    text = record["question"]
    for pats in _PATTERNS:
        ask = pats["ask"].search(text)
        if ask is None or ask.end() != len(text):
            continue
        holding = {m["p"]: m["o"] for m in pats["hold"].finditer(text)}
        for m in pats["swap"].finditer(text):
            holding[m["a"]], holding[m["b"]] = holding[m["b"]], holding[m["a"]]
        expected = holding[ask["p"]]
        return expected == record["answer"] and sorted(record["options"]) == sorted(holding.values())
    return False


FAMILY = Family(
    name="tracking_shuffled_objects",
    category="tracking",
    instruction="Follow the swaps and choose what the named person has at the end.",
    make=make,
    check=check,
    held_out=True,
    chance=(100 / 3 + 100 / 4 + 100 / 5) / 3,  # 3, 4 or 5 options, equally likely
    description="Pairwise swaps of balls, partners, books, positions or gifts among 3 to 5 people",
    fields=("question", "answer", "options", "rationale"),
)
