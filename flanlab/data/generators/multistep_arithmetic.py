"""Evaluate a bracketed integer expression with +, - and * in several steps (BBH-style, held out).

Questions look like "(-3 + 4 * 2) - (7 * -1 + 5) =": two or three groups of two to four one-digit
numbers each, joined by outer operators. The rationale evaluates each group (products first), then the
outer expression.
"""

from __future__ import annotations

import random

from flanlab.data.generators.base import Family

_OPS = ("+", "-", "*")


def _reduce(tokens: list) -> tuple[int, str]:
    """Evaluate a flat [number, op, number, ...] list with * before + and -; return (value, steps text)."""
    terms, ops = [tokens[0]], []
    for op, num in zip(tokens[1::2], tokens[2::2]):
        if op == "*":
            terms[-1] = terms[-1] * num
        else:
            ops.append(op)
            terms.append(num)
    value = terms[0]
    for op, num in zip(ops, terms[1:]):
        value = value + num if op == "+" else value - num
    original = " ".join(str(t) for t in tokens)
    products = " ".join([str(terms[0])] + [f"{op} {num}" for op, num in zip(ops, terms[1:])])
    if "*" in tokens and ops:
        return value, f"{original} = {products} = {value}"
    return value, f"{original} = {value}"


def _tokenize(text: str) -> list:
    """'(-3 + 4) * 2' -> ['(', -3, '+', 4, ')', '*', 2]; a '-' glued to digits is a negative number."""
    out: list = []
    for tok in text.replace("(", " ( ").replace(")", " ) ").split():
        out.append(tok if tok in ("(", ")", "+", "-", "*") else int(tok))
    return out


def _evaluate(tokens: list) -> int:
    """Recursive descent over + - (lowest), * and parenthesized atoms. Never calls eval()."""
    pos = 0

    def expr() -> int:
        nonlocal pos
        value = term()
        while pos < len(tokens) and tokens[pos] in ("+", "-"):
            op = tokens[pos]
            pos += 1
            rhs = term()
            value = value + rhs if op == "+" else value - rhs
        return value

    def term() -> int:
        nonlocal pos
        value = atom()
        while pos < len(tokens) and tokens[pos] == "*":
            pos += 1
            value *= atom()
        return value

    def atom() -> int:
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            value = expr()
            if tokens[pos] != ")":
                raise ValueError("missing )")
            pos += 1
            return value
        if isinstance(tok, int):
            return tok
        raise ValueError(f"unexpected token {tok!r}")

    value = expr()
    if pos != len(tokens):
        raise ValueError("trailing tokens")
    return value


def make(rng: random.Random) -> dict:
    groups, texts, steps, values = [], [], [], []
    for _ in range(rng.choice((2, 2, 3))):
        size = rng.randint(2, 4)
        tokens: list = [rng.randint(-9, 9)]
        for _ in range(size - 1):
            tokens += [rng.choice(_OPS), rng.randint(-9, 9)]
        value, step = _reduce(tokens)
        groups.append(tokens)
        texts.append("(" + " ".join(str(t) for t in tokens) + ")")
        steps.append(step + ".")
        values.append(value)
    outer_ops = [rng.choice(_OPS) for _ in range(len(groups) - 1)]
    question = texts[0] + "".join(f" {op} {t}" for op, t in zip(outer_ops, texts[1:])) + " ="
    outer = [values[0]]
    for op, v in zip(outer_ops, values[1:]):
        outer += [op, v]
    answer, outer_step = _reduce(outer)
    rationale = (
        "Evaluate each bracket first, doing multiplication before addition and subtraction. "
        + " ".join(steps)
        + f" Then combine the results: {outer_step}."
    )
    return {"question": question, "answer": str(answer), "rationale": rationale}


def check(record: dict) -> bool:
    return str(_evaluate(_tokenize(record["question"].removesuffix(" =")))) == record["answer"]


FAMILY = Family(
    name="multistep_arithmetic",
    category="arithmetic",
    instruction="Compute the value of the arithmetic expression.",
    make=make,
    check=check,
    held_out=True,
    chance=0.0,
    description="Bracketed expressions of one-digit integers with +, - and *, evaluated in several steps",
    fields=("question", "answer", "rationale"),
)
