"""Decide whether a string reads the same forwards and backwards; Yes or No."""

from __future__ import annotations

import random
import string

from flanlab.data.generators.base import Family, pattern
from flanlab.data.generators.lexicon import WORDS

_PALINDROMES = ["level", "radar", "civic", "kayak", "refer", "madam", "rotor", "noon", "stats", "tenet", "racecar",
                "deified", "repaper", "reviver", "solos"]
_TEMPLATES = ['Is "{s}" a palindrome?', 'Does "{s}" read the same forwards and backwards?',
              'Is the string "{s}" unchanged when reversed?', 'Is "{s}" spelled the same backwards?']
_PATTERNS = [pattern(t, {"s": "[a-z0-9]+"}) for t in _TEMPLATES]


_TEMPLATE_PARTS = tuple(tuple(t.split("{s}")) for t in _TEMPLATES)  # the text before and after {s}
_LETTERS, _DIGITS = string.ascii_lowercase, string.digits


def _random(rand, n: int, alphabet: str) -> str:
    k = len(alphabet)
    return "".join([alphabet[int(rand() * k)] for _ in range(n)])


def make(rng: random.Random) -> dict:
    rand = rng.random
    alphabet = _DIGITS if rand() < 0.3 else _LETTERS
    if rand() < 0.5:
        if rand() < 0.04:
            s = _PALINDROMES[int(rand() * len(_PALINDROMES))]
        else:
            half = _random(rand, 3 + int(rand() * 4), alphabet)
            middle = alphabet[int(rand() * len(alphabet))] if rand() >= 0.5 else ""  # 0 or 1 characters
            s = half + middle + half[::-1]
    else:
        roll = rand()
        if roll < 0.4:  # a near miss: one character of a palindrome changed
            half = _random(rand, 3 + int(rand() * 4), alphabet)
            s = half + half[::-1]
            i = rng.randrange(len(s))
            j = int(rand() * (len(alphabet) - 1))  # the j-th character of the alphabet other than s[i]
            s = s[:i] + alphabet[j + (j >= alphabet.index(s[i]))] + s[i + 1:]
        elif roll < 0.7 and alphabet is _LETTERS:
            s = WORDS[int(rand() * len(WORDS))]
            if rand() < 0.7:
                s += WORDS[int(rand() * len(WORDS))]
        else:
            s = _random(rand, 3 + int(rand() * 8), alphabet)
        if s == s[::-1]:
            s = s + ("x" if s[0] != "x" else "y")
    backwards = s[::-1]
    if rand() < 0.5:  # base.shuffle of two: one draw
        options = ["No", "Yes"]
    else:
        options = ["Yes", "No"]
    before, after = _TEMPLATE_PARTS[int(rand() * len(_TEMPLATE_PARTS))]
    if s == backwards:
        answer, verdict = "Yes", "That is the same string."
    else:
        answer, verdict = "No", "That is different."
    return {"question": before + s + after, "answer": answer, "options": options,
            "rationale": f'Reversed, "{s}" reads "{backwards}". {verdict}'}


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
