"""Find the only free time slot in which someone could have made a visit (BBH-style, held out).

A person's day from waking up to the place's closing hour is covered by sightings except for one slot; the
question asks when the visit could have happened. Four options, each a time range of the day.
"""

from __future__ import annotations

import random
import re

from flanlab.data.generators.base import Family, pattern
from flanlab.data.generators.lexicon import NAMES

_PLACES = ["museum", "library", "bakery", "gym", "park", "post office", "art studio", "swimming pool",
           "bookstore", "cinema", "zoo", "botanical garden", "bank", "flower market", "bowling alley"]
_ACTIVITIES = ["buying groceries at the supermarket", "jogging by the river", "waiting at the train station",
               "having lunch at a cafe", "fixing a bicycle in the garage", "painting a fence",
               "working at the office", "sitting in a dentist's waiting room", "playing chess in the square",
               "watering plants on the balcony", "taking photos at the harbor", "queuing at the pharmacy",
               "reading on a bench by the lake", "walking a dog along the beach", "repairing a roof"]
_TIME = r"\d{1,2}(?:am|pm)"
_SIGHTINGS = [
    "{q} saw {p} {act} from {a} to {b}.",
    "From {a} to {b}, {q} saw {p} {act}.",
    "{q} spotted {p} {act} between {a} and {b}.",
]
_ASKS = ["Between what times could {p} have gone to the {place}?",
         "During which time could {p} have visited the {place}?",
         "When could {p} have been at the {place}?"]
_SLOTS = {"q": r"[A-Z][a-z]+", "p": r"[A-Z][a-z]+", "act": "|".join(re.escape(a) for a in _ACTIVITIES),
          "a": _TIME, "b": _TIME}
_SIGHTING_PATTERNS = [pattern(s, _SLOTS) for s in _SIGHTINGS]
_WAKE = re.compile(rf"[A-Z][a-z]+ woke up at ({_TIME})\.")
_CLOSE = re.compile(rf"The [a-z ]+ closes at ({_TIME})\.")


def _clock(h: int) -> str:
    return f"{h}am" if h < 12 else "12pm" if h == 12 else f"{h - 12}pm"


def _hour(text: str) -> int:
    h = int(text[:-2])
    return h + 12 if text.endswith("pm") and h != 12 else h


def _range(a: int, b: int) -> str:
    return f"{_clock(a)} to {_clock(b)}"


def make(rng: random.Random) -> dict:
    person, *witnesses = rng.sample(NAMES, 4)
    place = rng.choice(_PLACES)
    wake = rng.randint(5, 10)
    bounds = [wake]
    for _ in range(rng.randint(4, 6)):
        if bounds[-1] + 1 > 22:
            break
        bounds.append(min(22, bounds[-1] + rng.randint(1, 3)))
    segments = list(zip(bounds, bounds[1:]))
    if len(segments) < 4:  # late risers with long segments: start again one hour per segment
        segments = [(wake + i, wake + i + 1) for i in range(4)]
    free = rng.randrange(len(segments))
    close = segments[-1][1]
    acts = rng.sample(_ACTIVITIES, len(segments) - 1)
    facts, notes = [], []
    for (a, b), act in zip([s for i, s in enumerate(segments) if i != free], acts):
        sighting = rng.choice(_SIGHTINGS)
        facts.append(sighting.format(q=rng.choice(witnesses), p=person, act=act, a=_clock(a), b=_clock(b)))
        notes.append(f"{_range(a, b)}: {act}")
    if rng.random() < 0.5:
        rng.shuffle(facts)
    question = " ".join([f"Today, {person} went to the {place}. {person} woke up at {_clock(wake)}."] + facts
                        + [f"The {place} closes at {_clock(close)}.", rng.choice(_ASKS).format(p=person, place=place)])
    answer = _range(*segments[free])
    others = rng.sample([_range(*s) for i, s in enumerate(segments) if i != free], 3)
    options = others + [answer]
    rng.shuffle(options)
    rationale = (f"{person} was awake from {_clock(wake)} and the {place} closes at {_clock(close)}. "
                 f"Accounted-for times: {'; '.join(notes)}. The only time left unaccounted for is {answer}.")
    return {"question": question, "answer": answer, "options": options, "rationale": rationale}


def check(record: dict) -> bool:
    text = record["question"]
    wake, close = _hour(_WAKE.search(text)[1]), _hour(_CLOSE.search(text)[1])
    busy = set()
    for regex in _SIGHTING_PATTERNS:
        for m in regex.finditer(text):
            busy.update(range(_hour(m["a"]), _hour(m["b"])))
    free = [h for h in range(wake, close) if h not in busy]
    if not free or free[-1] - free[0] != len(free) - 1:  # exactly one contiguous free slot
        return False
    return _range(free[0], free[-1] + 1) == record["answer"] and record["answer"] in record["options"]


FAMILY = Family(
    name="temporal_sequences",
    category="temporal",
    instruction="Use the sightings to find when the visit could have happened and choose that time range.",
    make=make,
    check=check,
    held_out=True,
    chance=25.0,
    description="One free slot in a day of sightings between waking up and a closing hour; four options",
    fields=("question", "answer", "options", "rationale"),
)
