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


_WORD_COUNTS = (1, 2, 2, 3, 3, 4)
_MAX_LETTERS = max(_WORD_COUNTS) * max(map(len, WORDS))
_POSITIONS = tuple(str(i) for i in range(1, _MAX_LETTERS + 1))  # "1", "2", ...: letter i is _POSITIONS[i - 1]
_NUMBERED = tuple(f"{i}:" for i in _POSITIONS)  # "1:", "2:", ... the prefixes of the numbered letters
# s.translate(_ONLY_VOWELS) keeps the vowels of a phrase of WORDS (lowercase a-z) and deletes the rest
_ONLY_VOWELS = {ord(c): None for c in set(string.ascii_lowercase + " ") - set("aeiou")}


def _count(s: str, c: str | None) -> int:
    return sum(ch in "aeiou" for ch in s) if c is None else s.count(c)


def make(rng: random.Random) -> dict:
    s = " ".join(sample(rng, WORDS, pick(rng, _WORD_COUNTS)))
    if rng.random() < 0.6:
        letters = s.replace(" ", "")
        c = pick(rng, letters) if rng.random() < 0.8 else pick(rng, string.ascii_lowercase)
        question = pick(rng, _LETTER).format(c=c, s=s)
        nums = []  # the 1-based positions of c, as text
        i = letters.find(c)
        while i >= 0:
            nums.append(_POSITIONS[i])
            i = letters.find(c, i + 1)
        where = (f'"{c}" does not occur' if not nums else f'"{c}" is letter {nums[0]}' if len(nums) == 1
                 else f'"{c}" is letters {", ".join(nums[:-1])} and {nums[-1]}')
        rationale = f"Numbering the letters: {', '.join(map(str.__add__, _NUMBERED, letters))}. {where}."
        count = len(nums)
    else:
        question = pick(rng, _VOWELS).format(s=s)
        vowels = s.translate(_ONLY_VOWELS)
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
