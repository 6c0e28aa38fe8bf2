"""Find the word that does not belong with the other three (four options, category lexicons)."""

from __future__ import annotations

import random

from flanlab.data.generators.base import Family, pattern, pick, sample

_CATEGORIES = {
    "colors": ["crimson", "turquoise", "magenta", "beige", "lavender", "scarlet", "indigo", "maroon", "ochre", "ivory"],
    "vehicles": ["bicycle", "tram", "scooter", "ferry", "helicopter", "minivan", "canoe", "motorbike", "glider",
                 "subway"],
    "countries": ["Peru", "Norway", "Kenya", "Vietnam", "Canada", "Portugal", "Egypt", "Chile", "Finland", "Nepal"],
    "tools": ["hammer", "wrench", "screwdriver", "chisel", "pliers", "saw", "drill", "sander", "trowel", "crowbar"],
    "sports": ["tennis", "hockey", "rugby", "cricket", "badminton", "volleyball", "fencing", "rowing", "archery",
               "judo"],
    "birds": ["pelican", "owl", "parrot", "swallow", "heron", "penguin", "flamingo", "woodpecker", "seagull", "eagle"],
    "trees": ["oak", "maple", "birch", "willow", "cedar", "pine", "elm", "spruce", "cypress", "poplar"],
    "metals": ["iron", "copper", "zinc", "nickel", "tin", "aluminum", "lead", "tungsten", "platinum", "cobalt"],
    "clothing": ["sweater", "scarf", "trousers", "blouse", "overcoat", "sock", "vest", "skirt", "hoodie", "apron"],
    "occupations": ["plumber", "nurse", "lawyer", "carpenter", "pilot", "dentist", "baker", "architect", "librarian",
                    "electrician"],
}
_WORD_CATEGORY = {w: c for c, ws in _CATEGORIES.items() for w in ws}
_TEMPLATES = ["Which word does not belong with the others: {w}?", "Find the odd one out: {w}.",
              "Three of these go together and one does not. Which one is the odd one out? {w}"]
_PATTERNS = [pattern(t, {"w": r"[A-Za-z]+(?:, [A-Za-z]+){3}"}) for t in _TEMPLATES]


def _odd(words: list[str]) -> str | None:
    cats = [_WORD_CATEGORY[w] for w in words]
    odd = [w for w, c in zip(words, cats) if cats.count(c) == 1]
    return odd[0] if len(odd) == 1 and len(set(cats)) == 2 else None


_CATEGORY_NAMES = tuple(_CATEGORIES)


def make(rng: random.Random) -> dict:
    rand = rng.random
    group, other = sample(rng, _CATEGORY_NAMES, 2)
    words = sample(rng, _CATEGORIES[group], 3)
    odd = pick(rng, _CATEGORIES[other])
    # shown words and options shuffled by random sort keys (uniform; cheaper than base.shuffle's Python loop)
    shown = sorted([*words, odd], key=lambda _: rand())
    options = sorted(shown, key=lambda _: rand())
    rationale = f"{words[0]}, {words[1]} and {words[2]} are all {group}; {odd} is not (it belongs with {other})."
    return {"question": pick(rng, _TEMPLATES).format(w=", ".join(shown)), "answer": odd, "options": options,
            "rationale": rationale}


def check(record: dict) -> bool:
    for regex in _PATTERNS:
        m = regex.fullmatch(record["question"])
        if m:
            words = m["w"].split(", ")
            return _odd(words) == record["answer"] and sorted(words) == sorted(record["options"])
    return False


FAMILY = Family(
    name="odd_one_out",
    category="categorization",
    instruction="Pick the word that does not belong to the same category as the others.",
    make=make,
    check=check,
    chance=25.0,
    description="Three words of one category (colors, tools, trees, metals, ...) and one of another",
    fields=("question", "answer", "options", "rationale"),
)
