"""Reverse the letters of a word or phrase, or the order of the words in a short list."""

from __future__ import annotations

import random
import string

from flanlab.data.generators.base import Family, distinct, pattern
from flanlab.data.generators.lexicon import WORDS

_LETTERS = ['Reverse the letters of "{s}".', 'Spell "{s}" backwards.', 'Write "{s}" in reverse, letter by letter.',
            'What is "{s}" written backwards?', 'Write the characters of "{s}" from last to first.']
_WORDS = ['Reverse the order of the words in "{s}".', 'Write the words of "{s}" from last to first.',
          'List the words of "{s}" in reverse order.']
_PATTERNS = [(pattern(t, {"s": r"[^\"]+"}), "letters") for t in _LETTERS] + [
    (pattern(t, {"s": r"[^\"]+"}), "words") for t in _WORDS]


def _reverse(mode: str, s: str) -> str:
    return s[::-1] if mode == "letters" else " ".join(reversed(s.split()))


_LETTER_PARTS = tuple(tuple(t.split("{s}")) for t in _LETTERS)  # the text before and after {s}
_WORD_PARTS = tuple(tuple(t.split("{s}")) for t in _WORDS)
_LOWERCASE = string.ascii_lowercase


def make(rng: random.Random) -> dict:
    rand = rng.random
    roll = rand()
    if roll < 0.65:
        if roll < 0.1:
            s = WORDS[int(rand() * len(WORDS))]
        elif roll < 0.35:
            s = " ".join(distinct(rand, WORDS, 2))
        else:
            s = "".join([_LOWERCASE[int(rand() * 26)] for _ in range(4 + int(rand() * 7))])
        before, after = _LETTER_PARTS[int(rand() * len(_LETTER_PARTS))]
        answer = s[::-1]
        if " " in s:
            kind, units = "characters (_ is the space)", s.replace(" ", "_")
            backwards = answer.replace(" ", "_")
        else:
            kind, units, backwards = "letters", s, answer
    else:
        words = distinct(rand, WORDS, 3 + int(rand() * 5))
        s = " ".join(words)
        before, after = _WORD_PARTS[int(rand() * len(_WORD_PARTS))]
        kind, units, backwards = "words", words, words[::-1]
        answer = " ".join(backwards)
    rationale = f"The {kind} in order: {', '.join(units)}. From last to first: {', '.join(backwards)}."
    return {"question": before + s + after, "answer": answer, "rationale": rationale}


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
