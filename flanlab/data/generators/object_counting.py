"""Count the things of one kind in a list of possessions (BBH-style, held out).

"The inventory lists a violin, two apples, a chair, and three flutes. What is the total number of musical
instruments?" The items come from a few small category lexicons; the answer is the total count of the asked category.
"""

from __future__ import annotations

import random

from flanlab.data.generators.base import Family

# category -> [(singular, plural)]; every noun belongs to exactly one category
_ITEMS = {
    "fruits": [("apple", "apples"), ("banana", "bananas"), ("peach", "peaches"), ("plum", "plums"),
               ("grape", "grapes"), ("lemon", "lemons"), ("mango", "mangoes"), ("orange", "oranges"),
               ("strawberry", "strawberries"), ("pear", "pears"), ("blackberry", "blackberries")],
    "vegetables": [("carrot", "carrots"), ("onion", "onions"), ("potato", "potatoes"), ("cabbage", "cabbages"),
                   ("yam", "yams"), ("cucumber", "cucumbers"), ("leek", "leeks"),
                   ("radish", "radishes"), ("eggplant", "eggplants"), ("turnip", "turnips")],
    "musical instruments": [("violin", "violins"), ("flute", "flutes"), ("trumpet", "trumpets"),
                            ("drum", "drums"), ("piano", "pianos"), ("clarinet", "clarinets"),
                            ("trombone", "trombones"), ("accordion", "accordions"), ("cello", "cellos")],
    "animals": [("dog", "dogs"), ("cat", "cats"), ("rabbit", "rabbits"), ("goat", "goats"), ("cow", "cows"),
                ("pig", "pigs"), ("duck", "ducks"), ("snail", "snails"), ("frog", "frogs"), ("donkey", "donkeys")],
    "pieces of furniture": [("chair", "chairs"), ("table", "tables"), ("bed", "beds"), ("couch", "couches"),
                            ("lamp", "lamps"), ("bookcase", "bookcases"), ("stool", "stools"), ("desk", "desks")],
}
_NOUN_CATEGORY = {noun: cat for cat, pairs in _ITEMS.items() for pair in pairs for noun in pair}
_COUNT_WORDS = ["a", "two", "three", "four", "five"]
_COUNT_VALUE = {"a": 1, "an": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_OPENERS = ["The inventory lists", "My list of belongings shows", "Our household owns", "Among my possessions are"]
_ASKS = ["What is the total number of {cat}?", "Altogether, how many {cat} are listed?",
         "Adding them up, how many {cat} are there?"]


def _phrase(count: int, pair: tuple[str, str]) -> str:
    if count > 1:
        return f"{_COUNT_WORDS[count - 1]} {pair[1]}"
    return ("an " if pair[0][0] in "aeiou" else "a ") + pair[0]


def make(rng: random.Random) -> dict:
    target = rng.choice(list(_ITEMS))
    n_target = rng.randint(1, min(5, len(_ITEMS[target])))
    chosen = [(target, pair) for pair in rng.sample(_ITEMS[target], n_target)]
    pool = [(cat, pair) for cat, pairs in _ITEMS.items() if cat != target for pair in pairs]
    chosen += rng.sample(pool, rng.randint(max(0, 3 - n_target), 6))
    rng.shuffle(chosen)
    counts = [1 if rng.random() < 0.55 else rng.randint(2, 5) for _ in chosen]
    phrases = [_phrase(c, pair) for c, (_, pair) in zip(counts, chosen)]
    listing = ", ".join(phrases[:-1]) + ", and " + phrases[-1]
    question = f"{rng.choice(_OPENERS)} {listing}. " + rng.choice(_ASKS).format(cat=target)
    hits = [(p, c) for p, c, (cat, _) in zip(phrases, counts, chosen) if cat == target]
    total = sum(c for _, c in hits)
    rationale = (
        f"The {target} in the list are: " + ", ".join(f"{p} ({c})" for p, c in hits) + ". "
        + (f"{' + '.join(str(c) for _, c in hits)} = {total}." if len(hits) > 1 else f"That makes {total}.")
    )
    return {"question": question, "answer": str(total), "rationale": rationale}


def check(record: dict) -> bool:
    statement, ask = record["question"].rsplit(". ", 1)
    target = next(cat for cat in _ITEMS if f" {cat}" in ask)
    opener = next(o for o in _OPENERS if statement.startswith(o + " "))
    total = 0
    for item in statement[len(opener) + 1:].split(", "):
        words = item.removeprefix("and ").split(" ", 1)
        if _NOUN_CATEGORY[words[1]] == target:
            total += _COUNT_VALUE[words[0]]
    return str(total) == record["answer"]


FAMILY = Family(
    name="object_counting",
    category="counting",
    instruction="Count how many things of the asked kind are in the list and answer with a number.",
    make=make,
    check=check,
    held_out=True,
    chance=0.0,
    description="Counting the fruits, vegetables, instruments, animals or furniture among listed possessions",
    fields=("question", "answer", "rationale"),
)
