"""Date understanding: work out a date relative to a described day (BBH-style, held out).

A context sentence fixes today ("Yesterday was March 4, 2011."), a query asks for a date relative to today
("What is the date one week from today, in MM/DD/YYYY?"); six options in MM/DD/YYYY, one of them right.
"""

from __future__ import annotations

import datetime as dt
import random

from flanlab.data.generators.base import Family, pattern
from flanlab.data.generators.lexicon import NAMES

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]
_DAY = dt.timedelta(days=1)


def _shift_months(d: dt.date, months: int) -> dt.date | None:
    """The same day of the month `months` later, or None when that day does not exist."""
    m = d.month - 1 + months
    try:
        return d.replace(year=d.year + m // 12, month=m % 12 + 1)
    except ValueError:
        return None


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _fmt(d: dt.date) -> str:
    return f"{d.month:02d}/{d.day:02d}/{d.year}"


def _words(d: dt.date) -> str:
    return f"{_MONTHS[d.month - 1]} {d.day}, {d.year}"


def _parse_date(text: str) -> dt.date:
    if "/" in text:
        month, day, year = (int(x) for x in text.split("/"))
        return dt.date(year, month, day)
    month_name, day, year = text.replace(",", "").split()
    return dt.date(int(year), _MONTHS.index(month_name) + 1, int(day))


# context sentence -> (how today follows from it, rationale wording); slots: d (date), k (days), name, n (age)
_ANCHORS = [
    ("Today is {d}.", lambda d, k, n: d, "Today is {today}."),
    ("Yesterday was {d}.", lambda d, k, n: d + _DAY, "Yesterday was {d}, so today is one day later: {today}."),
    ("Tomorrow will be {d}.", lambda d, k, n: d - _DAY, "Tomorrow is {d}, so today is one day earlier: {today}."),
    ("{k} days ago it was {d}.", lambda d, k, n: d + k * _DAY,
     "{k} days ago it was {d}, so today is {k} days later: {today}."),
    ("In {k} days it will be {d}.", lambda d, k, n: d - k * _DAY,
     "In {k} days it will be {d}, so today is {k} days earlier: {today}."),
    ("{name} was born on {d}, and today is {name}'s {n} birthday.",
     lambda d, k, n: d.replace(year=d.year + int(n[:-2])),
     "{name} was born on {d}; the {n} birthday falls {n_int} years later, so today is {today}."),
]
# query -> (target date from today and j (days), or None when undefined; rationale wording)
_QUERIES = [
    ("What is the date today, in MM/DD/YYYY?", lambda t, j: t, "The date today is {target}."),
    ("What is the date tomorrow, in MM/DD/YYYY?", lambda t, j: t + _DAY, "Tomorrow is one day later: {target}."),
    ("What was the date yesterday, in MM/DD/YYYY?", lambda t, j: t - _DAY,
     "Yesterday was one day earlier: {target}."),
    ("What is the date {j} days from today, in MM/DD/YYYY?", lambda t, j: t + j * _DAY,
     "Adding {j} days gives {target}."),
    ("What was the date {j} days ago, in MM/DD/YYYY?", lambda t, j: t - j * _DAY,
     "Going back {j} days gives {target}."),
    ("What is the date one week from today, in MM/DD/YYYY?", lambda t, j: t + 7 * _DAY,
     "One week is 7 days; 7 days later is {target}."),
    ("What was the date one week ago, in MM/DD/YYYY?", lambda t, j: t - 7 * _DAY,
     "One week is 7 days; 7 days earlier is {target}."),
    ("What is the date one month from today, in MM/DD/YYYY?", lambda t, j: _shift_months(t, 1),
     "One month later, same day of the month: {target}."),
    ("What was the date one month ago, in MM/DD/YYYY?", lambda t, j: _shift_months(t, -1),
     "One month earlier, same day of the month: {target}."),
    ("What was the date one year ago today, in MM/DD/YYYY?", lambda t, j: _shift_months(t, -12),
     "One year earlier, same month and day: {target}."),
    ("What will the date be one year from today, in MM/DD/YYYY?", lambda t, j: _shift_months(t, 12),
     "One year later, same month and day: {target}."),
]
_SLOTS = {"d": r"\d\d/\d\d/\d{4}|[A-Z][a-z]+ \d{1,2}, \d{4}", "k": r"\d+", "j": r"\d+", "name": r"[A-Z][a-z]+",
          "n": r"\d+(?:st|nd|rd|th)"}
_QUESTION = [(pattern(a + " " + q, _SLOTS), af, qf) for a, af, _ in _ANCHORS for q, qf, _ in _QUERIES]


def _distractors(answer: dt.date, today: dt.date, anchor: dt.date, rng: random.Random) -> list[str]:
    candidates = [answer + _DAY, answer - _DAY, answer + 7 * _DAY, answer - 7 * _DAY, today, anchor,
                  _shift_months(answer, 1), _shift_months(answer, -1), _shift_months(answer, 12),
                  _shift_months(answer, -12), answer + 10 * _DAY, answer - 10 * _DAY]
    if answer.day <= 12 and answer.day != answer.month:
        candidates.append(answer.replace(month=answer.day, day=answer.month))
    out = sorted({_fmt(c) for c in candidates if c is not None} - {_fmt(answer)})
    return rng.sample(out, 5)


def make(rng: random.Random) -> dict:
    while True:
        anchor_t, anchor_f, anchor_why = rng.choice(_ANCHORS)
        query_t, query_f, query_why = rng.choice(_QUERIES)
        d = dt.date(rng.randint(1950, 2030), 1, 1) + rng.randint(0, 364) * _DAY
        k, j, n = rng.randint(2, 40), rng.randint(2, 40), _ordinal(rng.randint(2, 60))
        name = rng.choice(NAMES)
        if d.month == 2 and d.day > 28 and "born" in anchor_t:
            continue
        today = anchor_f(d, k, n)
        target = query_f(today, j)
        if target is not None:
            break
    d_text = _fmt(d) if rng.random() < 0.5 else _words(d)
    question = anchor_t.format(d=d_text, k=k, name=name, n=n) + " " + query_t.format(j=j)
    rationale = (anchor_why.format(d=d_text, k=k, name=name, n=n, n_int=n[:-2], today=_fmt(today)) + " "
                 + query_why.format(j=j, target=_fmt(target)))
    options = _distractors(target, today, d, rng) + [_fmt(target)]
    rng.shuffle(options)
    return {"question": question, "answer": _fmt(target), "options": options, "rationale": rationale}


def check(record: dict) -> bool:
    for regex, anchor_f, query_f in _QUESTION:
        m = regex.fullmatch(record["question"])
        if m:
            slots = m.groupdict()
            today = anchor_f(_parse_date(slots["d"]), int(slots.get("k") or 0), slots.get("n"))
            target = query_f(today, int(slots.get("j") or 0))
            return target is not None and _fmt(target) == record["answer"] and record["answer"] in record["options"]
    return False


FAMILY = Family(
    name="date_arithmetic",
    category="dates",
    instruction="Work out the asked date and choose it among the options, written as MM/DD/YYYY.",
    make=make,
    check=check,
    held_out=True,
    chance=100 / 6,
    description="Dates relative to a described today (days, weeks, months, years, birthdays), six options",
    fields=("question", "answer", "options", "rationale"),
)
