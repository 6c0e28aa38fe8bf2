"""Solve a one- or two-step linear equation in one unknown, with the steps done to both sides."""

from __future__ import annotations

import random
from fractions import Fraction

from flanlab.data.generators.base import Family, pattern

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
_WORDINGS_AT = tuple(w.replace("{v}", "{0}").replace("{eq}", "{1}") for w in _WORDINGS)  # .format(v, eq)


def make(rng: random.Random) -> dict:
    rand = rng.random
    form = int(rand() * 7)  # the index of the equation form in _FORMS; the branches below write it out
    v = _VARIABLES[int(rand() * 7)]
    x = -30 + int(rand() * 61)  # the solution (of the {v} / {a} form: x is b and the solution is a * x)
    a = 2 + int(rand() * 11) if form >= 3 else 1 + int(rand() * 50)  # a multiplies or divides v in forms 3 to 6
    b = 1 + int(rand() * 50)
    answer = x
    if form == 0:
        equation, steps = f"{v} + {a} = {x + a}", f"Subtract {a} from both sides: {v} = {x + a} - {a} = {x}."
    elif form == 1:
        equation, steps = f"{v} - {a} = {x - a}", f"Add {a} to both sides: {v} = {x - a} + {a} = {x}."
    elif form == 2:
        equation, steps = f"{a} + {v} = {x + a}", f"Subtract {a} from both sides: {v} = {x + a} - {a} = {x}."
    elif form == 3:
        equation, steps = f"{a}{v} = {a * x}", f"Divide both sides by {a}: {v} = {a * x} / {a} = {x}."
    elif form == 4:
        c = a * x + b
        equation = f"{a}{v} + {b} = {c}"
        steps = (f"Subtract {b} from both sides: {a}{v} = {c} - {b} = {a * x}. "
                 f"Divide both sides by {a}: {v} = {a * x} / {a} = {x}.")
    elif form == 5:
        c = a * x - b
        equation = f"{a}{v} - {b} = {c}"
        steps = (f"Add {b} to both sides: {a}{v} = {c} + {b} = {a * x}. "
                 f"Divide both sides by {a}: {v} = {a * x} / {a} = {x}.")
    else:
        answer = x * a
        equation, steps = f"{v} / {a} = {x}", f"Multiply both sides by {a}: {v} = {x} * {a} = {answer}."
    question = _WORDINGS_AT[int(rand() * len(_WORDINGS_AT))].format(v, equation)
    return {"question": question, "answer": str(answer), "rationale": steps}


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
