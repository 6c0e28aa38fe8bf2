"""Decide whether a string reads the same forwards and backwards; Yes or No."""

from __future__ import annotations

import random
import string

from flanlab.data.generators.base import Family, between, pattern, pick, shuffle
from flanlab.data.generators.lexicon import WORDS

_PALINDROMES = ["level", "radar", "civic", "kayak", "refer", "madam", "rotor", "noon", "stats", "tenet", "racecar",
                "deified", "repaper", "reviver", "solos"]
_TEMPLATES = ['Is "{s}" a palindrome?', 'Does "{s}" read the same forwards and backwards?',
              'Is the string "{s}" unchanged when reversed?', 'Is "{s}" spelled the same backwards?']
_PATTERNS = [pattern(t, {"s": "[a-z0-9]+"}) for t in _TEMPLATES]


def _random(rng: random.Random, n: int, alphabet: str) -> str:
    return "".join(pick(rng, alphabet) for _ in range(n))


def make(rng: random.Random) -> dict:
    alphabet = string.digits if rng.random() < 0.3 else string.ascii_lowercase
    if rng.random() < 0.5:
        if rng.random() < 0.04:
            s = pick(rng, _PALINDROMES)
        else:
            half = _random(rng, between(rng, 3, 6), alphabet)
            s = half + _random(rng, between(rng, 0, 1), alphabet) + half[::-1]
    else:
        roll = rng.random()
        if roll < 0.4:  # a near miss: one character of a palindrome changed
            half = _random(rng, between(rng, 3, 6), alphabet)
            s = list(half + half[::-1])
            i = rng.randrange(len(s))
            s[i] = pick(rng, [c for c in alphabet if c != s[i]])
            s = "".join(s)
        elif roll < 0.7 and alphabet == string.ascii_lowercase:
            s = pick(rng, WORDS) + (pick(rng, WORDS) if rng.random() < 0.7 else "")
        else:
            s = _random(rng, between(rng, 3, 10), alphabet)
        if s == s[::-1]:
            s = s + ("x" if s[0] != "x" else "y")
    same = s == s[::-1]
    options = ["Yes", "No"]
    shuffle(rng, options)
    rationale = f'Reversed, "{s}" reads "{s[::-1]}". ' + ("That is the same string." if same else "That is different.")
    return {"question": pick(rng, _TEMPLATES).format(s=s), "answer": "Yes" if same else "No", "options": options,
            "rationale": rationale}


def check(record: dict) -> bool:
    for regex in _PATTERNS:
        m = regex.fullmatch(record["question"])
        if m:
            same = m["s"] == m["s"][::-1]
            return ("Yes" if same else "No") == record["answer"] and record["answer"] in record["options"]
    return False


FAMILY = Family(
    name="palindrome_check",
    category="strings",
    instruction="Answer Yes if the string reads the same forwards and backwards, otherwise No.",
    make=make,
    check=check,
    chance=50.0,
    description="Palindromic letter and digit strings versus near misses, words and random strings",
    fields=("question", "answer", "options", "rationale"),
)
