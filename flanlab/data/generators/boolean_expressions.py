"""Evaluate a Boolean expression of True/False with not/and/or and parentheses (BBH-style, held out)."""

from __future__ import annotations

import random

from flanlab.data.generators.base import Family


def _expr(rng: random.Random, depth: int, top: bool = False) -> str:
    if depth == 0 or (not top and rng.random() < 0.3):
        lit = rng.choice(["True", "False"])
        return f"not {lit}" if rng.random() < 0.3 else lit
    op = rng.choice(["and", "or"])
    left, right = _expr(rng, depth - 1), _expr(rng, depth - 1)
    text = f"{left} {op} {right}"
    return f"( {text} )" if rng.random() < 0.5 else text


def _evaluate(expr: str) -> bool:
    """A tiny recursive-descent evaluator: or < and < not < atom. Never calls eval()."""
    tokens = expr.replace("(", " ( ").replace(")", " ) ").split()
    pos = 0

    def parse_or():
        nonlocal pos
        value = parse_and()
        while pos < len(tokens) and tokens[pos] == "or":
            pos += 1
            rhs = parse_and()
            value = value or rhs
        return value

    def parse_and():
        nonlocal pos
        value = parse_not()
        while pos < len(tokens) and tokens[pos] == "and":
            pos += 1
            rhs = parse_not()
            value = value and rhs
        return value

    def parse_not():
        nonlocal pos
        if tokens[pos] == "not":
            pos += 1
            return not parse_not()
        return parse_atom()

    def parse_atom():
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            value = parse_or()
            pos += 1  # ")"
            return value
        return tok == "True"

    result = parse_or()
    if pos != len(tokens):
        raise ValueError(f"trailing tokens in {expr!r}")
    return result


def _steps(expr: str) -> list[str]:
    """The evaluation as steps: innermost brackets first, each flat part as 'part = value'."""
    tokens = expr.split()
    steps = []
    while "(" in tokens:
        close = tokens.index(")")
        open_ = close - 1 - tokens[close - 1::-1].index("(")
        inner = " ".join(tokens[open_ + 1:close])
        value = str(_evaluate(inner))
        steps.append(f"( {inner} ) = {value}.")
        tokens[open_:close + 1] = [value]
    flat = " ".join(tokens)
    if len(tokens) > 1:
        steps.append(f"{flat} = {_evaluate(flat)}.")
    return steps


def make(rng: random.Random) -> dict:
    expr = _expr(rng, depth=rng.randint(2, 3), top=True)
    while expr.count("True") + expr.count("False") < 4:  # short expressions repeat too often
        expr = _expr(rng, depth=rng.randint(2, 3), top=True)
    value = _evaluate(expr)
    rationale = "Work from the innermost brackets out; not binds first, then and, then or. " + " ".join(_steps(expr))
    options = ["True", "False"]
    rng.shuffle(options)
    return {"question": f"{expr} is", "answer": str(value), "options": options, "rationale": rationale}


def check(record: dict) -> bool:
    return str(_evaluate(record["question"].removesuffix(" is"))) == record["answer"]


FAMILY = Family(
    name="boolean_expressions",
    category="logic",
    instruction="Evaluate the Boolean expression and answer True or False.",
    make=make,
    check=check,
    held_out=True,
    chance=50.0,
    description="Boolean expressions over True/False with not, and, or and parentheses",
    fields=("question", "answer", "options", "rationale"),
)
