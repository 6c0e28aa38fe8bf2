"""Convert a whole quantity between units of length, mass, volume or time, with a rationale.

Every unit is a whole multiple of its system's smallest unit, so each conversion is multiplying or dividing
by a whole factor; questions going to a larger unit use quantities that divide exactly.
"""

from __future__ import annotations

import random

from flanlab.data.generators.base import Family, pattern

# system -> [(singular, plural, size in the system's smallest unit)], smallest first
_SYSTEMS = {
    "metric length": [("millimeter", "millimeters", 1), ("centimeter", "centimeters", 10),
                      ("meter", "meters", 1000), ("kilometer", "kilometers", 1_000_000)],
    "imperial length": [("inch", "inches", 1), ("foot", "feet", 12), ("yard", "yards", 36),
                        ("mile", "miles", 63_360)],
    "metric mass": [("milligram", "milligrams", 1), ("gram", "grams", 1000), ("kilogram", "kilograms", 1_000_000)],
    "imperial mass": [("ounce", "ounces", 1), ("pound", "pounds", 16), ("stone", "stones", 224)],
    "volume": [("milliliter", "milliliters", 1), ("centiliter", "centiliters", 10), ("deciliter", "deciliters", 100),
               ("liter", "liters", 1000)],
    "time": [("millisecond", "milliseconds", 1), ("second", "seconds", 1000), ("minute", "minutes", 60_000),
             ("hour", "hours", 3_600_000), ("day", "days", 86_400_000), ("week", "weeks", 604_800_000)],
}
_UNITS = {name: (system, size) for system, units in _SYSTEMS.items() for s, p, size in units for name in (s, p)}
_TEMPLATES = ["How many {to} are in {v} {frm}?", "Convert {v} {frm} to {to}.", "{v} {frm} is how many {to}?",
              "Express {v} {frm} in {to}.", "What is {v} {frm} in {to}?"]
_UNIT_RE = "|".join(sorted(_UNITS, key=len, reverse=True))
_PATTERNS = [pattern(t, {"v": r"\d+", "frm": _UNIT_RE, "to": _UNIT_RE}) for t in _TEMPLATES]


def _convert(v: int, frm: str, to: str) -> int | None:
    (sys_a, size_a), (sys_b, size_b) = _UNITS[frm], _UNITS[to]
    if sys_a != sys_b or (v * size_a) % size_b:
        return None
    return v * size_a // size_b


def _pairs(units: list[tuple[str, str, int]]) -> tuple:
    """The unit pairs base.sample(rng, units, 2) returns, by its two draws: pairs[i][j] for draws i (of n) and j
    (of n - 1) is (units[n - 1] if j == i else units[j], units[i]), with a pair too far apart in size (e.g.
    milliseconds in a week: too big to be useful) as None."""
    n = len(units)
    pairs = []
    for i in range(n):
        row = []
        for j in range(n - 1):
            (s1, p1, size1), (s2, p2, size2) = units[n - 1] if j == i else units[j], units[i]
            row.append(None if max(size1, size2) // min(size1, size2) > 10_000_000 else
                       (s1, p1, size1, s2, p2, size2))
        pairs.append(tuple(row))
    return tuple(pairs)


_PAIRS = tuple(_pairs(units) for units in _SYSTEMS.values())
_TEMPLATES_AT = tuple(t.replace("{v}", "{0}").replace("{frm}", "{1}").replace("{to}", "{2}") for t in _TEMPLATES)


def make(rng: random.Random) -> dict:
    rand = rng.random
    pairs = _PAIRS[int(rand() * len(_PAIRS))]
    n = len(pairs)
    pair = pairs[int(rand() * n)][int(rand() * (n - 1))]
    while pair is None:
        pair = pairs[int(rand() * n)][int(rand() * (n - 1))]
    s1, p1, size1, s2, p2, size2 = pair
    if size1 > size2:  # larger to smaller: multiply
        factor = size1 // size2
        # big factors, small quantities
        v = 1 + int(rand() * (999 if factor <= 100 else 200 if factor <= 100_000 else 60))
        answer = v * factor
        why = f"1 {s1} = {factor} {p2}, so {v} {s1 if v == 1 else p1} = {v} * {factor} = {answer} {p2}."
    else:  # smaller to larger: divide
        factor = size2 // size1
        answer = 1 + int(rand() * (500 if factor <= 100 else 150 if factor <= 100_000 else 60))
        v = answer * factor
        why = f"1 {s2} = {factor} {p1}, so {v} {p1} = {v} / {factor} = {answer} {s2 if answer == 1 else p2}."
    question = _TEMPLATES_AT[int(rand() * len(_TEMPLATES_AT))].format(v, s1 if v == 1 else p1, p2)
    return {"question": question, "answer": str(answer), "rationale": why}


def check(record: dict) -> bool:
    for regex in _PATTERNS:
        m = regex.fullmatch(record["question"])
        if m:
            return str(_convert(int(m["v"]), m["frm"], m["to"])) == record["answer"]
    return False


FAMILY = Family(
    name="unit_conversion",
    category="units",
    instruction="Convert the quantity to the requested unit and give the number.",
    make=make,
    check=check,
    chance=0.0,
    description="Exact conversions within metric and imperial length and mass, volume and time",
    fields=("question", "answer", "rationale"),
)
