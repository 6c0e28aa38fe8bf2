"""Classify a short generated news line by topic (six topics).

Lines are built from topic lexicons: two or three keywords of the chosen topic and, half the time, fewer
from a single other topic. `check` re-derives the topic as the one with the most keywords in the text.
"""

from __future__ import annotations

import random
import re

from flanlab.data.generators.base import Family, between, pick, sample

_TOPICS = {
    "sports": ["goalkeeper", "referee", "tournament", "stadium", "championship", "penalty kick", "coach",
               "marathon", "league table", "scoreboard", "relay race", "playoffs"],
    "science": ["laboratory", "molecule", "telescope", "experiment", "hypothesis", "microscope", "fossil",
                "genome", "particle", "galaxy", "chemist", "enzyme"],
    "business": ["shareholders", "revenue", "merger", "quarterly earnings", "investors", "profit margin",
                 "stock price", "supplier", "retailer", "dividend", "acquisition", "balance sheet"],
    "music": ["orchestra", "album", "guitarist", "concert hall", "melody", "chorus", "drummer", "symphony",
              "lyrics", "record label", "rehearsal", "soloist"],
    "cooking": ["recipe", "oven", "saucepan", "dough", "seasoning", "chef", "marinade", "pastry", "skillet",
                "broth", "spatula", "ingredients"],
    "technology": ["software", "processor", "smartphone", "algorithm", "database", "server", "browser",
                   "microchip", "cloud storage", "firmware", "laptop", "operating system"],
}
_FRAMES = {
    2: ["The story was about the {0} and the {1}.", "Everyone was talking about the {0} after the {1}.",
        "A new report looks at the {0} and what it means for the {1}.",
        "Readers asked many questions about the {0} and the {1}.",
        "This week's column is all about the {0}, with a note on the {1}."],
    3: ["A new report looks at the {0}, the {1} and the {2}.",
        "Today's headline mentions the {0}, while the second page covers the {1} and the {2}.",
        "The interview touched on the {0}, the {1} and, briefly, the {2}.",
        "The newsletter focused on the {0}, the {1} and the {2}.",
        "First the {0}, then the {1}, and finally the {2}: a busy day for the newsroom."],
    4: ["The piece covers the {0}, the {1}, the {2} and the {3}.",
        "From the {0} to the {1}, and from the {2} to the {3}, the weekly digest has it all."],
    5: ["The long read covers the {0}, the {1}, the {2}, the {3} and the {4}."],
}
_KEYWORD = {k: topic for topic, ks in _TOPICS.items() for k in ks}
_KEYWORD_RE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _KEYWORD), key=len, reverse=True)) + r")\b")


def _topic(text: str) -> str | None:
    counts: dict[str, int] = {}
    for m in _KEYWORD_RE.finditer(text):
        counts[_KEYWORD[m[1]]] = counts.get(_KEYWORD[m[1]], 0) + 1
    best = sorted(counts.values(), reverse=True)
    if not best or (len(best) > 1 and best[0] == best[1]):
        return None
    return max(counts, key=counts.get)


_TOPIC_NAMES = tuple(_TOPICS)
_OTHER_TOPICS = {topic: tuple(x for x in _TOPICS if x != topic) for topic in _TOPICS}


def make(rng: random.Random) -> dict:
    rand = rng.random
    topic = pick(rng, _TOPIC_NAMES)
    t = between(rng, 2, 3)
    words = sample(rng, _TOPICS[topic], t)
    if rand() < 0.5:
        other = pick(rng, _OTHER_TOPICS[topic])
        words += sample(rng, _TOPICS[other], between(rng, 1, t - 1))
    # words and options shuffled by random sort keys (uniform; cheaper than base.shuffle's Python loop)
    words.sort(key=lambda _: rand())
    text = pick(rng, _FRAMES[len(words)]).format(*words)
    return {"question": text, "answer": topic, "options": sorted(_TOPIC_NAMES, key=lambda _: rand())}


def check(record: dict) -> bool:
    return _topic(record["question"]) == record["answer"] and record["answer"] in record["options"]


FAMILY = Family(
    name="topic_classification",
    category="topic_classification",
    instruction="Choose the topic that the text is about.",
    make=make,
    check=check,
    chance=100 / 6,
    description="Generated news lines about sports, science, business, music, cooking or technology",
    fields=("question", "answer", "options"),
)
