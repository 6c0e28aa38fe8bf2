"""Solve a one- or two-step linear equation in one unknown, with the steps done to both sides."""

from __future__ import annotations

import random
from fractions import Fraction

from flanlab.data.generators.base import Family, between, pattern, pick

_VARIABLES = "xynkmtz"
# equation form -> its solution from the numbers a, b, c (used by check; make draws the solution first)
_FORMS = {
    "{v} + {a} = {b}": lambda a, b, c: b - a,
    "{v} - {a} = {b}": lambda a, b, c: b + a,
    "{a} + {v} = {b}": lambda a, b, c: b - a,
    "{a}{v} = {b}": lambda a, b, c: Fraction(b, a),
    "{a}{v} + {b} = {c}": lambda a, b, c: Fraction(c - b, a),
    "{a}{v} - {b} = {c}": lambda a, b, c: Fraction(c + b, a),
    "{v} / {a} = {b}": lambda a, b, c: a * b,
}
_WORDINGS = ["Solve for {v}: {eq}.", "Find {v} if {eq}.", "What value of {v} satisfies {eq}?",
             "If {eq}, what is {v}?"]
_SLOTS = {"v": f"[{_VARIABLES}]", "a": r"-?\d+", "b": r"-?\d+", "c": r"-?\d+"}
_PATTERNS = [(pattern(w.replace("{eq}", form), _SLOTS), solve) for form, solve in _FORMS.items() for w in _WORDINGS]


def _draw(form: str, x: int, rng: random.Random) -> tuple[dict, list[str]]:
    """Numbers for `form` whose solution is x, and the solving steps (v is filled in later)."""
    a = between(rng, 2, 12) if "{a}{v}" in form or "/" in form else between(rng, 1, 50)
    b = between(rng, 1, 50)
    if form == "{v} + {a} = {b}" or form == "{a} + {v} = {b}":
        b = x + a
        return {"a": a, "b": b}, [f"Subtract {a} from both sides: {{v}} = {b} - {a} = {x}."]
    if form == "{v} - {a} = {b}":
        b = x - a
        return {"a": a, "b": b}, [f"Add {a} to both sides: {{v}} = {b} + {a} = {x}."]
    if form == "{a}{v} = {b}":
        return {"a": a, "b": a * x}, [f"Divide both sides by {a}: {{v}} = {a * x} / {a} = {x}."]
    if form == "{a}{v} + {b} = {c}":
        c = a * x + b
        return {"a": a, "b": b, "c": c}, [f"Subtract {b} from both sides: {a}{{v}} = {c} - {b} = {a * x}.",
                                          f"Divide both sides by {a}: {{v}} = {a * x} / {a} = {x}."]
    if form == "{a}{v} - {b} = {c}":
        c = a * x - b
        return {"a": a, "b": b, "c": c}, [f"Add {b} to both sides: {a}{{v}} = {c} + {b} = {a * x}.",
                                          f"Divide both sides by {a}: {{v}} = {a * x} / {a} = {x}."]
    # {v} / {a} = {b}: b is x, so the solution is a * x
    return {"a": a, "b": x}, [f"Multiply both sides by {a}: {{v}} = {x} * {a} = {x * a}."]


def make(rng: random.Random) -> dict:
    form = pick(rng, list(_FORMS))
    v = pick(rng, _VARIABLES)
    numbers, steps = _draw(form, between(rng, -30, 30), rng)
    answer = _FORMS[form](numbers["a"], numbers["b"], numbers.get("c", 0))
    equation = form.format(v=v, **numbers)
    question = pick(rng, _WORDINGS).format(v=v, eq=equation)
    return {"question": question, "answer": str(answer), "rationale": " ".join(s.format(v=v) for s in steps)}


def check(record: dict) -> bool:
    for regex, solve in _PATTERNS:
        m = regex.fullmatch(record["question"])
        if m:
            value = solve(int(m["a"]), int(m["b"]), int(m.groupdict().get("c") or 0))
            return str(value) == record["answer"]
    return False


FAMILY = Family(
    name="simple_algebra",
    category="algebra",
    instruction="Solve the equation for the unknown and give its value.",
    make=make,
    check=check,
    chance=0.0,
    description="Linear equations x + a = b, ax = b, ax + b = c, x / a = b and similar, integer solutions",
    fields=("question", "answer", "rationale"),
)
