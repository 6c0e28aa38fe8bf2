"""Join the first or last letters of the words of a phrase (the classic last-letter concatenation task)."""

from __future__ import annotations

import random

from flanlab.data.generators.base import Family, between, pattern, pick, sample
from flanlab.data.generators.lexicon import NAMES, WORDS

_TEMPLATES = {
    "last": ['Take the last letter of each word in "{s}" and join them together.',
             'Concatenate the last letters of the words in "{s}".',
             'What do you get by joining the final letters of the words of "{s}"?'],
    "first": ['Take the first letter of each word in "{s}" and join them together.',
              'Concatenate the first letters of the words in "{s}".',
              'What do you get by joining the initial letters of the words of "{s}"?'],
}
_PATTERNS = [(pattern(t, {"s": r"[^\"]+"}), which) for which, ts in _TEMPLATES.items() for t in ts]


_WHICH = ("last", "first")
# the rationale sentence of each word, e.g. 'The last letter of "river" is "r".'
_STEPS = {"last": {w: f'The last letter of "{w}" is "{w[-1]}".' for w in NAMES + WORDS},
          "first": {w: f'The first letter of "{w}" is "{w[0]}".' for w in NAMES + WORDS}}


def _letters(which: str, s: str) -> list[str]:
    return [w[-1] if which == "last" else w[0] for w in s.split()]


def make(rng: random.Random) -> dict:
    which = pick(rng, _WHICH)
    n = between(rng, 2, 5)
    words = sample(rng, NAMES, n) if rng.random() < 0.4 else sample(rng, WORDS, n)
    s = " ".join(words)
    answer = "".join([w[-1] for w in words] if which == "last" else [w[0] for w in words])
    steps = " ".join(map(_STEPS[which].__getitem__, words))
    return {"question": pick(rng, _TEMPLATES[which]).format(s=s), "answer": answer,
            "rationale": f'{steps} Joined together: "{answer}".'}


def check(record: dict) -> bool:
    for regex, which in _PATTERNS:
        m = regex.fullmatch(record["question"])
        if m:
            return "".join(_letters(which, m["s"])) == record["answer"]
    return False


FAMILY = Family(
    name="letter_concatenation",
    category="strings",
    instruction="Join the requested letters of the words, in order, into one string.",
    make=make,
    check=check,
    chance=0.0,
    description="First- or last-letter concatenation over 2 to 5 names or words, with rationales",
    fields=("question", "answer", "rationale"),
)
