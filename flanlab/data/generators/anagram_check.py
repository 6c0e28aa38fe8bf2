"""Decide whether two strings are anagrams of each other (same letters, same counts); Yes or No."""

from __future__ import annotations

import random
import string

from flanlab.data.generators.base import Family, between, pattern, pick, shuffle
from flanlab.data.generators.lexicon import WORDS

_TEMPLATES = ['Are "{a}" and "{b}" anagrams of each other?', 'Is "{b}" an anagram of "{a}"?',
              'Can the letters of "{a}" be rearranged to spell "{b}"?',
              'Is "{b}" a rearrangement of the letters of "{a}"?']
_PATTERNS = [pattern(t, {"a": "[a-z]+", "b": "[a-z]+"}) for t in _TEMPLATES]
_LONG_WORDS = [w for w in WORDS if len(w) >= 4]
_BY_LENGTH = {n: [w for w in WORDS if len(w) == n] for n in range(1, 11)}


def _shuffled(rng: random.Random, word: str) -> str:
    letters = list(word)
    for _ in range(10):
        shuffle(rng, letters)
        if "".join(letters) != word:
            break
    return "".join(letters)


def make(rng: random.Random) -> dict:
    a = pick(rng, _LONG_WORDS) if rng.random() < 0.6 else "".join(
        pick(rng, string.ascii_lowercase) for _ in range(between(rng, 4, 9)))
    b = _shuffled(rng, a)
    if rng.random() < 0.5:
        roll = rng.random()
        if roll < 0.4:  # one letter changed
            i = rng.randrange(len(b))
            b = b[:i] + pick(rng, [c for c in string.ascii_lowercase if c != b[i]]) + b[i + 1:]
        elif roll < 0.7:  # one letter dropped or doubled
            i = rng.randrange(len(b))
            b = b[:i] + b[i + 1:] if rng.random() < 0.5 else b[:i] + b[i] + b[i:]
        else:  # another word of the same length
            b = _shuffled(rng, pick(rng, _BY_LENGTH[len(a)] + [b + "s"]))
    same = sorted(a) == sorted(b)
    options = ["Yes", "No"]
    shuffle(rng, options)
    rationale = (f'Sorted letters of "{a}": {"".join(sorted(a))}. Sorted letters of "{b}": {"".join(sorted(b))}. '
                 + ("They are identical." if same else "They differ."))
    return {"question": pick(rng, _TEMPLATES).format(a=a, b=b), "answer": "Yes" if same else "No",
            "options": options, "rationale": rationale}


def check(record: dict) -> bool:
    for regex in _PATTERNS:
        m = regex.fullmatch(record["question"])
        if m:
            same = sorted(m["a"]) == sorted(m["b"])
            return ("Yes" if same else "No") == record["answer"] and record["answer"] in record["options"]
    return False


FAMILY = Family(
    name="anagram_check",
    category="strings",
    instruction="Answer Yes if the two strings are anagrams of each other, otherwise No.",
    make=make,
    check=check,
    chance=50.0,
    description="Shuffled words and letter strings versus near misses (changed, dropped or doubled letters)",
    fields=("question", "answer", "options", "rationale"),
)
