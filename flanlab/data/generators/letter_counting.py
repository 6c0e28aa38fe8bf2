"""Count how often a letter occurs in a word or phrase, or how many vowels it has."""

from __future__ import annotations

import random
import string

from flanlab.data.generators.base import Family, pattern, pick, sample
from flanlab.data.generators.lexicon import WORDS

_LETTER = ['How many times does the letter "{c}" appear in "{s}"?', 'Count the occurrences of "{c}" in "{s}".',
           'In "{s}", how many "{c}"s are there?']
_VOWELS = ['How many vowels are in "{s}"?', 'Count the vowels (a, e, i, o, u) in "{s}".',
           'How many of the letters in "{s}" are vowels?']
_SLOTS = {"c": "[a-z]", "s": r"[^\"]+"}
_PATTERNS = [(pattern(t, _SLOTS), "letter") for t in _LETTER] + [(pattern(t, _SLOTS), "vowels") for t in _VOWELS]


def _count(s: str, c: str | None) -> int:
    return sum(ch in "aeiou" for ch in s) if c is None else s.count(c)


def make(rng: random.Random) -> dict:
    s = " ".join(sample(rng, WORDS, pick(rng, [1, 2, 2, 3, 3, 4])))
    if rng.random() < 0.6:
        c = pick(rng, s.replace(" ", "")) if rng.random() < 0.8 else pick(rng, string.ascii_lowercase)
        question = pick(rng, _LETTER).format(c=c, s=s)
        letters = s.replace(" ", "")
        positions = [i + 1 for i, ch in enumerate(letters) if ch == c]
        nums = [str(i) for i in positions]
        where = (f'"{c}" does not occur' if not nums else f'"{c}" is letter {nums[0]}' if len(nums) == 1
                 else f'"{c}" is letters {", ".join(nums[:-1])} and {nums[-1]}')
        rationale = f"Numbering the letters: {', '.join(f'{i + 1}:{ch}' for i, ch in enumerate(letters))}. {where}."
        count = len(positions)
    else:
        question = pick(rng, _VOWELS).format(s=s)
        vowels = [ch for ch in s if ch in "aeiou"]
        count = len(vowels)
        rationale = f"The vowels of \"{s}\", in order: {', '.join(vowels) or 'none'}. That is {count}."
    return {"question": question, "answer": str(count), "rationale": rationale}


def check(record: dict) -> bool:
    for regex, mode in _PATTERNS:
        m = regex.fullmatch(record["question"])
        if m:
            return str(_count(m["s"], m["c"] if mode == "letter" else None)) == record["answer"]
    return False


FAMILY = Family(
    name="letter_counting",
    category="strings",
    instruction="Count the letters asked for and answer with a number.",
    make=make,
    check=check,
    chance=0.0,
    description="Occurrences of one letter, or of vowels, in one to four words",
    fields=("question", "answer", "rationale"),
)
