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
_ACTIVITIES = ["mending a bicycle in the garage", "jogging along the river path", "having soup at a corner cafe",
               "painting a garden fence", "shopping for groceries at the market hall",
               "playing chess in the town square",
               "watering plants on the balcony", "photographing boats at the harbor", "queuing at the pharmacy",
               "reading on a bench by the lake", "walking a dog along the beach", "repairing a leaky roof",
               "giving a talk at the town hall", "helping a neighbor move boxes", "sketching ducks at the pond"]
_TIME = r"\d{1,2}(?:am|pm)"
_SIGHTINGS = [
    "{q} ran into {p} {act} from {a} until {b}.",
    "Between {a} and {b}, {q} noticed {p} {act}.",
    "{q} says {p} was {act} from {a} until {b}.",
]
_ASKS = ["In which window could {p} have made the trip to the {place}?",
         "When was {p} free to go to the {place}?",
         "Which time range fits {p}'s visit to the {place}?"]
_SLOTS = {"q": r"[A-Z][a-z]+", "p": r"[A-Z][a-z]+", "act": "|".join(re.escape(a) for a in _ACTIVITIES),
          "a": _TIME, "b": _TIME}
_SIGHTING_PATTERNS = [pattern(s, _SLOTS) for s in _SIGHTINGS]
_WAKE = re.compile(rf"[A-Z][a-z]+ got out of bed at ({_TIME})\.")
_CLOSE = re.compile(rf"The [a-z ]+ shuts its doors at ({_TIME})\.")


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
    opening = f"{person} made a trip to the {place} at some point today. {person} got out of bed at {_clock(wake)}."
    closing = [f"The {place} shuts its doors at {_clock(close)}.", rng.choice(_ASKS).format(p=person, place=place)]
    question = " ".join([opening] + facts + closing)
    answer = _range(*segments[free])
    others = rng.sample([_range(*s) for i, s in enumerate(segments) if i != free], 3)
    options = others + [answer]
    rng.shuffle(options)
    rationale = (f"{person} was up from {_clock(wake)} and the {place} shuts at {_clock(close)}. "
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
