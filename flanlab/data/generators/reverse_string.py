"""Reverse the letters of a word or phrase, or the order of the words in a short list."""

from __future__ import annotations

import random
import string

from flanlab.data.generators.base import Family, between, pattern, pick, sample
from flanlab.data.generators.lexicon import WORDS

_LETTERS = ['Reverse the letters of "{s}".', 'Spell "{s}" backwards.', 'Write "{s}" in reverse, letter by letter.',
            'What is "{s}" written backwards?', 'Write the characters of "{s}" from last to first.']
_WORDS = ['Reverse the order of the words in "{s}".', 'Write the words of "{s}" from last to first.',
          'List the words of "{s}" in reverse order.']
_PATTERNS = [(pattern(t, {"s": r"[^\"]+"}), "letters") for t in _LETTERS] + [
    (pattern(t, {"s": r"[^\"]+"}), "words") for t in _WORDS]


def _reverse(mode: str, s: str) -> str:
    return s[::-1] if mode == "letters" else " ".join(reversed(s.split()))


def make(rng: random.Random) -> dict:
    roll = rng.random()
    if roll < 0.65:
        mode = "letters"
        if roll < 0.1:
            s = pick(rng, WORDS)
        elif roll < 0.35:
            s = " ".join(sample(rng, WORDS, 2))
        else:
            s = "".join(pick(rng, string.ascii_lowercase) for _ in range(between(rng, 4, 10)))
        template = pick(rng, _LETTERS)
        units = list(s.replace(" ", "_"))
        kind, joined = "characters (_ is the space)" if " " in s else "letters", ", ".join(units)
    else:
        mode = "words"
        s = " ".join(sample(rng, WORDS, between(rng, 3, 7)))
        template = pick(rng, _WORDS)
        units, kind = s.split(), "words"
        joined = ", ".join(units)
    answer = _reverse(mode, s)
    rationale = f"The {kind} in order: {joined}. From last to first: {', '.join(reversed(units))}."
    return {"question": template.format(s=s), "answer": answer, "rationale": rationale}


def check(record: dict) -> bool:
    for regex, mode in _PATTERNS:
        m = regex.fullmatch(record["question"])
        if m:
            return _reverse(mode, m["s"]) == record["answer"]
    return False


FAMILY = Family(
    name="reverse_string",
    category="strings",
    instruction="Reverse the given text as asked: its letters, or the order of its words.",
    make=make,
    check=check,
    chance=0.0,
    description="Reversing words, two-word phrases, random letter strings, and the order of word lists",
    fields=("question", "answer", "rationale"),
)
