"""Multi-step arithmetic word problems in the style of grade-school math, with worked rationales.

Each story template has slots for names, items and numbers, a `draw` that picks numbers for which the
answer is a whole number, and a `solve` that returns the answer and the reasoning steps. `check` reads
the numbers back out of the question with the template's regex and solves again.
"""

from __future__ import annotations

import random

from flanlab.data.generators.base import Family, between, pattern, pick
from flanlab.data.generators.lexicon import NAMES

_ITEMS = ["marbles", "stickers", "pencils", "stamps", "shells", "cookies", "cards", "beads", "apples", "crayons",
          "buttons", "coins"]
_FOODS = ["muffins", "loaves", "pies", "bagels", "cupcakes", "pretzels"]
_GIFTS = ["bicycle", "camera", "guitar", "watch", "backpack", "skateboard"]


def _t1(v):
    bc = v["b"] * v["c"]
    return v["a"] + bc, [f"{v['name']} buys {v['b']} * {v['c']} = {bc} {v['item']}.",
                         f"Together with the {v['a']} from before: {v['a']} + {bc} = {v['a'] + bc}."]


def _t2(v):
    cost = v["b"] * v["c"]
    left = v["a"] - cost
    return left + v["d"], [f"The {v['item']} cost {v['b']} * {v['c']} = {cost} dollars.",
                           f"After buying them: {v['a']} - {cost} = {left} dollars.",
                           f"After the chores: {left} + {v['d']} = {left + v['d']} dollars."]


def _t3(v):
    made = v["a"] * v["b"]
    return made - v["c"], [f"In {v['b']} days the bakery makes {v['a']} * {v['b']} = {made} {v['food']}.",
                           f"After selling {v['c']}: {made} - {v['c']} = {made - v['c']}."]


def _t4(v):
    return v["b"] // v["a"], [f"Each day covers {v['a']} pages, so the days needed are {v['b']} / {v['a']} = "
                              f"{v['b'] // v['a']}."]


def _t5(v):
    chairs = v["a"] * v["b"]
    return chairs - v["c"], [f"The hall has {v['a']} * {v['b']} = {chairs} chairs.",
                             f"{v['c']} are taken, so {chairs} - {v['c']} = {chairs - v['c']} are free."]


def _t6(v):
    day = v["a"] * v["b"]
    return day * v["c"], [f"In one day {v['name']} earns {v['a']} * {v['b']} = {day} dollars.",
                          f"In {v['c']} days: {day} * {v['c']} = {day * v['c']} dollars."]


def _t7(v):
    rest = v["a"] - v["c"]
    return rest // v["b"], [f"After keeping {v['c']}, {v['a']} - {v['c']} = {rest} {v['item']} are shared.",
                            f"Each of the {v['b']} friends gets {rest} / {v['b']} = {rest // v['b']}."]


def _t8(v):
    tue = v["m"] * v["b"]
    sold = v["b"] + tue
    return v["a"] - sold, [f"On Tuesday the shop sold {v['m']} * {v['b']} = {tue} {v['item']}.",
                           f"In total it sold {v['b']} + {tue} = {sold}.",
                           f"Left in stock: {v['a']} - {sold} = {v['a'] - sold}."]


def _t9(v):
    now = v["a"] + v["b"]
    return now + v["c"], [f"{v['name2']} is now {v['a']} + {v['b']} = {now} years old.",
                          f"In {v['c']} years: {now} + {v['c']} = {now + v['c']}."]


def _t10(v):
    first, second = v["a"] * v["b"], v["c"] * v["d"]
    return first + second, [f"First part: {v['a']} * {v['b']} = {first} kilometers.",
                            f"Second part: {v['c']} * {v['d']} = {second} kilometers.",
                            f"Total: {first} + {second} = {first + second} kilometers."]


def _t11(v):
    cost = v["a"] * v["b"]
    return v["c"] - cost, [f"The notebooks cost {v['a']} * {v['b']} = {cost} dollars.",
                           f"The change is {v['c']} - {cost} = {v['c'] - cost} dollars."]


def _t12(v):
    other = v["b"] + v["c"]
    return v["a"] - other, [f"Walking or biking: {v['b']} + {v['c']} = {other} students.",
                            f"By bus: {v['a']} - {other} = {v['a'] - other}."]


def _t13(v):
    saved = v["a"] * v["b"]
    return saved - v["c"], [f"In {v['b']} weeks {v['name']} saves {v['a']} * {v['b']} = {saved} dollars.",
                            f"After the {v['gift']}: {saved} - {v['c']} = {saved - v['c']} dollars."]


def _draw_t2(rng):
    b, c = between(rng, 2, 6), between(rng, 2, 15)
    return {"a": b * c + between(rng, 0, 60), "b": b, "c": c, "d": between(rng, 5, 40)}


def _draw_t4(rng):
    a = between(rng, 5, 40)
    return {"a": a, "b": a * between(rng, 2, 20)}


def _draw_t7(rng):
    b, c = between(rng, 2, 9), between(rng, 1, 20)
    return {"a": c + b * between(rng, 1, 15), "b": b, "c": c}


def _draw_t8(rng):
    b, m = between(rng, 2, 30), between(rng, 2, 4)
    return {"a": b * (1 + m) + between(rng, 0, 100), "b": b, "m": m}


def _draw_t11(rng):
    a, b = between(rng, 2, 8), between(rng, 1, 9)
    return {"a": a, "b": b, "c": pick(rng, [c for c in (10, 20, 50, 100) if c >= a * b])}


def _draw_t12(rng):
    b, c = between(rng, 1, 15), between(rng, 1, 15)
    return {"a": b + c + between(rng, 0, 25), "b": b, "c": c}


def _draw_t13(rng):
    a, b = between(rng, 3, 25), between(rng, 2, 12)
    return {"a": a, "b": b, "c": between(rng, 1, a * b)}


# (question template, number drawer, solver)
_TEMPLATES = [
    ("{name} has {a} {item}. {name} buys {b} packs of {item} with {c} in each pack. "
     "How many {item} does {name} have now?",
     lambda r: {"a": between(r, 1, 60), "b": between(r, 2, 9), "c": between(r, 2, 12)}, _t1),
    ("{name} has {a} dollars, buys {b} {item} for {c} dollars each, and then earns {d} dollars doing chores. "
     "How many dollars does {name} have now?", _draw_t2, _t2),
    ("A bakery makes {a} {food} every day. After {b} days it has sold {c} of them. How many {food} are left?",
     lambda r: (lambda a, b: {"a": a, "b": b, "c": between(r, 0, a * b)})(between(r, 10, 80), between(r, 2, 7)), _t3),
    ("{name} reads {a} pages every day. The book has {b} pages. How many days does {name} need to finish it?",
     _draw_t4, _t4),
    ("A hall has {a} rows of chairs with {b} chairs in each row. {c} people are already seated, one per chair. "
     "How many chairs are still free?",
     lambda r: (lambda a, b: {"a": a, "b": b, "c": between(r, 1, a * b)})(between(r, 3, 30), between(r, 4, 20)), _t5),
    ("{name} earns {a} dollars an hour and works {b} hours a day. How many dollars does {name} earn in {c} days?",
     lambda r: {"a": between(r, 8, 40), "b": between(r, 2, 10), "c": between(r, 2, 7)}, _t6),
    ("{name} has {a} {item}, keeps {c} of them, and shares the rest equally among {b} friends. "
     "How many {item} does each friend get?", _draw_t7, _t7),
    ("A shop had {a} {item} in stock. It sold {b} on Monday and {m} times as many on Tuesday. "
     "How many {item} are left?", _draw_t8, _t8),
    ("{name} is {a} years old. {name2} is {b} years older than {name}. How old will {name2} be in {c} years?",
     lambda r: {"a": between(r, 3, 50), "b": between(r, 1, 30), "c": between(r, 1, 20)}, _t9),
    ("A train travels at {a} kilometers per hour for {b} hours and then at {c} kilometers per hour for {d} hours. "
     "How many kilometers does it travel in total?",
     lambda r: {"a": between(r, 30, 120), "b": between(r, 1, 5), "c": between(r, 30, 120), "d": between(r, 1, 5)},
     _t10),
    ("{name} buys {a} notebooks that cost {b} dollars each and pays with a {c}-dollar bill. "
     "How much change does {name} get, in dollars?", _draw_t11, _t11),
    ("There are {a} students in a class. {b} of them walk to school, {c} ride bikes, and the rest take the bus. "
     "How many students take the bus?", _draw_t12, _t12),
    ("{name} saves {a} dollars every week. After {b} weeks, {name} spends {c} dollars on a {gift}. "
     "How many dollars does {name} have left?", _draw_t13, _t13),
]
_NAME = r"[A-Z][a-z]+"
_SLOTS = {"name": _NAME, "name2": _NAME, "item": "|".join(_ITEMS), "food": "|".join(_FOODS),
          "gift": "|".join(_GIFTS), **{k: r"\d+" for k in "abcdm"}}
_PATTERNS = [(pattern(text, _SLOTS), solve) for text, _, solve in _TEMPLATES]


_WORD_SLOTS = {"item": _ITEMS, "food": _FOODS, "gift": _GIFTS}
# _TEMPLATES with, for each, the word slots its text names and how many people it names (0, 1 or 2): make
# draws only those
_MAKERS = [(text, draw, solve, tuple(k for k in _WORD_SLOTS if f"{{{k}}}" in text),
            2 if "{name2}" in text else 1 if "{name}" in text else 0) for text, draw, solve in _TEMPLATES]


def make(rng: random.Random) -> dict:
    text, draw, solve, word_slots, people = pick(rng, _MAKERS)
    values = draw(rng)
    for slot in word_slots:
        values[slot] = pick(rng, _WORD_SLOTS[slot])
    if people:
        n = len(NAMES)
        first = int(rng.random() * n)
        values["name"] = NAMES[first]
        if people == 2:  # another name: one of the n - 1 others, uniformly
            second = int(rng.random() * (n - 1))
            values["name2"] = NAMES[second + (second >= first)]
    answer, steps = solve(values)
    return {"question": text.format_map(values), "answer": str(answer), "rationale": " ".join(steps)}


def check(record: dict) -> bool:
    for regex, solve in _PATTERNS:
        m = regex.fullmatch(record["question"])
        if m:
            values = {k: int(v) if v.isdigit() else v for k, v in m.groupdict().items()}
            return str(solve(values)[0]) == record["answer"]
    return False


FAMILY = Family(
    name="arithmetic_word_problems",
    category="word_problems",
    instruction="Solve the math word problem and give the final number.",
    make=make,
    check=check,
    chance=0.0,
    description="Two- and three-step word problems from 13 story templates, with worked rationales",
    fields=("question", "answer", "rationale"),
)
