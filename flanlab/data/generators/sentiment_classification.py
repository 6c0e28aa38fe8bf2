"""Classify a short generated review as positive or negative.

Reviews are built from small literal lexicons: the label is decided first, then more adjectives of that
polarity than of the other are used. `check` re-derives the label from the words alone: the sign of
(positive words - negative words).
"""

from __future__ import annotations

import random
import re

from flanlab.data.generators.base import Family, distinct

_POSITIVE = ["wonderful", "excellent", "delightful", "superb", "pleasant", "charming", "reliable", "brilliant",
             "enjoyable", "impressive", "lovely", "fantastic", "comfortable", "friendly"]
_NEGATIVE = ["terrible", "awful", "disappointing", "dreadful", "boring", "flimsy", "unpleasant", "mediocre",
             "frustrating", "clumsy", "dull", "noisy", "overpriced", "rude"]
_SUBJECTS = ["the hotel", "this blender", "the film", "the restaurant", "this phone", "the concert", "the tour",
             "this jacket", "the novel", "the service", "the coffee", "this laptop", "the museum", "the train ride",
             "this backpack", "the play", "the podcast", "the bakery"]
_INTENSIFIERS = ["", "", "really ", "quite ", "truly ", "rather "]
# {s}: subject; {agree}: adjectives of the label's polarity; {other}: the fewer opposite ones
_FRAMES_PURE = ["{S} was {agree}.", "I found {s} {agree}.", "Honestly, {s} was {agree}.",
                "My visit showed that {s} is {agree}.", "In short: {s} turned out {agree}."]
_FRAMES_MIXED = ["{S} was {agree}, although a bit {other}.", "Some say {s} is {other}, but I found it {agree}.",
                 "Apart from being {other} at times, {s} was {agree}.",
                 "{S} started out {other}, yet in the end it was {agree}."]
_WORD = re.compile(r"[a-z]+")


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _label(text: str) -> str:
    words = _WORD.findall(text.lower())
    score = sum(w in _POSITIVE for w in words) - sum(w in _NEGATIVE for w in words)
    return "positive" if score > 0 else "negative" if score < 0 else "tie"


# pick(rng, _POLARITY) -> (label, the label's words, the opposite words); subjects with their capitalized form
_POLARITY = (("positive", tuple(_POSITIVE), tuple(_NEGATIVE)), ("negative", tuple(_NEGATIVE), tuple(_POSITIVE)))
_SUBJECT_PAIRS = tuple((s, s[0].upper() + s[1:]) for s in _SUBJECTS)
# the frames with positional slots: .format(s, S, agree, other)
_PURE_AT, _MIXED_AT = (tuple(f.replace("{s}", "{0}").replace("{S}", "{1}").replace("{agree}", "{2}")
                             .replace("{other}", "{3}") for f in frames) for frames in (_FRAMES_PURE, _FRAMES_MIXED))


def make(rng: random.Random) -> dict:
    rand = rng.random
    label, agree_pool, other_pool = _POLARITY[int(rand() * 2)]
    k = 1 + int(rand() * 3)
    m = int(rand() * k)
    n = len(_INTENSIFIERS)
    agree = [_INTENSIFIERS[int(rand() * n)] + w for w in distinct(rand, agree_pool, k)]
    other = _join(distinct(rand, other_pool, m)) if m else ""
    s, capital = _SUBJECT_PAIRS[int(rand() * len(_SUBJECT_PAIRS))]
    frames = _MIXED_AT if m else _PURE_AT
    question = frames[int(rand() * len(frames))].format(s, capital, _join(agree), other)
    options = ["negative", "positive"] if rand() < 0.5 else ["positive", "negative"]  # base.shuffle of two: one draw
    return {"question": question, "answer": label, "options": options}


def check(record: dict) -> bool:
    return _label(record["question"]) == record["answer"] and record["answer"] in record["options"]


FAMILY = Family(
    name="sentiment_classification",
    category="sentiment",
    instruction="Decide whether the review expresses a positive or a negative opinion.",
    make=make,
    check=check,
    chance=50.0,
    description="Generated one-sentence reviews with a majority of positive or negative adjectives",
    fields=("question", "answer", "options"),
)
