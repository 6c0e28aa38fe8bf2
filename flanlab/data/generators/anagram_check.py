"""Decide whether two strings are anagrams of each other (same letters, same counts); Yes or No."""

from __future__ import annotations

import random
import string

from flanlab.data.generators.base import Family, between, pattern, pick
from flanlab.data.generators.lexicon import WORDS

_TEMPLATES = ['Are "{a}" and "{b}" anagrams of each other?', 'Is "{b}" an anagram of "{a}"?',
              'Can the letters of "{a}" be rearranged to spell "{b}"?',
              'Is "{b}" a rearrangement of the letters of "{a}"?']
_PATTERNS = [pattern(t, {"a": "[a-z]+", "b": "[a-z]+"}) for t in _TEMPLATES]
_LONG_WORDS = [w for w in WORDS if len(w) >= 4]
_BY_LENGTH = {n: [w for w in WORDS if len(w) == n] for n in range(1, 11)}
_LETTERS = string.ascii_lowercase
_OTHER_LETTERS = {c: _LETTERS.replace(c, "") for c in _LETTERS}  # the 25 letters other than c


def _shuffled(rng: random.Random, word: str) -> str:
    """The letters of word in a random order other than word's own (when there is one within 10 tries).

    Sorting by independent uniform keys gives a uniform permutation, and costs less than a Python-level
    Fisher-Yates loop."""
    rand = rng.random
    for _ in range(10):
        out = "".join(sorted(word, key=lambda _: rand()))
        if out != word:
            break
    return out


def make(rng: random.Random) -> dict:
    rand = rng.random
    if rand() < 0.6:
        a = pick(rng, _LONG_WORDS)
    else:
        a = "".join([_LETTERS[int(rand() * 26)] for _ in range(between(rng, 4, 9))])
    b = _shuffled(rng, a)
    if rand() < 0.5:
        roll = rand()
        if roll < 0.4:  # one letter changed
            i = int(rand() * len(b))
            b = b[:i] + pick(rng, _OTHER_LETTERS[b[i]]) + b[i + 1:]
        elif roll < 0.7:  # one letter dropped or doubled
            i = int(rand() * len(b))
            b = b[:i] + b[i + 1:] if rand() < 0.5 else b[:i] + b[i] + b[i:]
        else:  # another word of the same length, or b with an "s" added
            same_length = _BY_LENGTH[len(a)]
            j = int(rand() * (len(same_length) + 1))
            b = _shuffled(rng, same_length[j] if j < len(same_length) else b + "s")
    sorted_a, sorted_b = "".join(sorted(a)), "".join(sorted(b))
    answer = "Yes" if sorted_a == sorted_b else "No"
    options = ["No", "Yes"] if rand() < 0.5 else ["Yes", "No"]
    rationale = (f'Sorted letters of "{a}": {sorted_a}. Sorted letters of "{b}": {sorted_b}. '
                 + ("They are identical." if answer == "Yes" else "They differ."))
    return {"question": pick(rng, _TEMPLATES).format(a=a, b=b), "answer": answer, "options": options,
            "rationale": rationale}


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
