"""Rewrite a short phrase in uppercase, lowercase or title case."""

from __future__ import annotations

import random

from flanlab.data.generators.base import Family, between, pattern, pick, sample
from flanlab.data.generators.lexicon import WORDS

_TEMPLATES = {
    "upper": ['Convert "{s}" to uppercase.', 'Write "{s}" in capital letters.', 'Rewrite "{s}" in all caps.'],
    "lower": ['Convert "{s}" to lowercase.', 'Rewrite "{s}" in all lowercase letters.',
              'Write "{s}" using only small letters.'],
    "title": ['Capitalize the first letter of every word in "{s}".', 'Write "{s}" in title case.',
              'Rewrite "{s}" so that each word starts with a capital letter.'],
}
_MODES = tuple(_TEMPLATES)
_PATTERNS = [(pattern(t, {"s": r"[^\"]+"}), mode) for mode, ts in _TEMPLATES.items() for t in ts]


def _convert(mode: str, s: str) -> str:
    if mode == "upper":
        return s.upper()
    if mode == "lower":
        return s.lower()
    return " ".join([w[:1].upper() + w[1:].lower() for w in s.split(" ")])


def _mixed(rng: random.Random, word: str) -> str:
    rand = rng.random
    style = int(rand() * 3)
    if style == 0:
        return word.capitalize()
    if style == 1:
        return word.upper()
    return "".join([c.upper() if rand() < 0.5 else c for c in word])


def make(rng: random.Random) -> dict:
    mode = pick(rng, _MODES)
    words = sample(rng, WORDS, between(rng, 2, 5))
    if mode == "lower":
        words = [_mixed(rng, w) for w in words]
        if all(w.islower() for w in words):
            words[0] = words[0].upper()
    elif mode == "upper" and rng.random() < 0.3:
        rand = rng.random
        words = [_mixed(rng, w) if rand() < 0.5 else w for w in words]
    s = " ".join(words)
    return {"question": pick(rng, _TEMPLATES[mode]).format(s=s), "answer": _convert(mode, s)}


def check(record: dict) -> bool:
    for regex, mode in _PATTERNS:
        m = regex.fullmatch(record["question"])
        if m:
            return _convert(mode, m["s"]) == record["answer"]
    return False


FAMILY = Family(
    name="change_case",
    category="strings",
    instruction="Rewrite the text with the requested capitalization.",
    make=make,
    check=check,
    chance=0.0,
    description="Uppercase, lowercase and title case of phrases of 2 to 5 words",
)
