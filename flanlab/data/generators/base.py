"""The Family type shared by every synthetic task family, the seeding rule that makes them deterministic,
and `pattern`, the one helper families use to read their own question text back in `check`."""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    name: str
    category: str  # a short topic name shown by `flanlab tasks`
    instruction: str  # one sentence telling what to do, used by the templates
    make: Callable[[random.Random], dict]  # one record from a seeded RNG
    check: Callable[[dict], bool]  # recomputes the answer from the question alone; True when it matches
    held_out: bool = False  # BBH-style: for the held-out eval suite only, never trained on
    chance: float = 0.0  # random-guess accuracy in percent (for classification: 100 / number of options)
    description: str = ""
    # the fields every record of the family has (templates naming another field fail at load time)
    fields: tuple[str, ...] = ("question", "answer")


# Records come in blocks of BLOCK: block b is drawn in sequence from one RNG seeded by a hash of
# (family, seed, split, b). Seeding a random.Random costs more than drawing a whole record: seeding once per
# block instead of once per record took generation from 19 to 6.6 us a record (mix bench 13.1k -> 16.4k
# examples/s per core, measured 2026-11-25), and record i still depends only on
# (family, seed, split, i): make_record reaches it by drawing the records before it in its block.
BLOCK = 64


def block_seed(family: str, seed: int, split: str, block: int) -> int:
    """The RNG seed of a block of records: a hash, so splits and families draw from disjoint streams."""
    digest = hashlib.blake2b(f"{family}|{seed}|{split}|{block}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def iter_records(family: Family, seed: int, split: str, start: int = 0):
    """Records start, start + 1, ... of a family's stream, endlessly."""
    block, skip = divmod(start, BLOCK)
    make = family.make
    while True:
        rng = random.Random(block_seed(family.name, seed, split, block))
        for _ in range(skip):
            make(rng)
        for _ in range(BLOCK - skip):
            yield make(rng)
        block, skip = block + 1, 0


def make_record(family: Family, seed: int, split: str, index: int) -> dict:
    """Record `index` alone (draws the records before it in its block; use iter_records for many)."""
    return next(iter_records(family, seed, split, index))


def pattern(template: str, slots: dict[str, str]) -> re.Pattern:
    """A regex matching `template` (a str.format string) with each {slot} read by the regex slots[slot].

    A slot named twice must hold the same text both times (a backreference). Used by `check` functions to
    parse the question text they wrote, e.g. pattern("{a} plus {b}", {"a": r"\\d+", "b": r"\\d+"}).
    """
    parts = re.split(r"\{(\w+)\}", template)  # literal, slot, literal, slot, ..., literal
    seen: set[str] = set()
    out = []
    for i, part in enumerate(parts):
        if i % 2 == 0:
            out.append(re.escape(part))
        elif part in seen:
            out.append(f"(?P={part})")
        else:
            seen.add(part)
            out.append(f"(?P<{part}>{slots[part]})")
    return re.compile("".join(out))


# Fast draws for the training families (which feed mixtures at tens of thousands of records per second).
# random.Random's choice/randint/sample/shuffle do extra argument checking and cost 2-3x more; these use
# rng.random() only. Same rng, same results: deterministic like the rest.


def pick(rng: random.Random, seq):
    """One element of a non-empty sequence, uniformly."""
    return seq[int(rng.random() * len(seq))]


def between(rng: random.Random, low: int, high: int) -> int:
    """A uniform integer in [low, high], both ends included."""
    return low + int(rng.random() * (high - low + 1))


def shuffle(rng: random.Random, items: list) -> None:
    """Shuffle a list in place (Fisher-Yates)."""
    rand = rng.random
    for i in range(len(items) - 1, 0, -1):
        j = int(rand() * (i + 1))
        items[i], items[j] = items[j], items[i]


def sample(rng: random.Random, seq, k: int) -> list:
    """k distinct elements of seq (by position), in random order."""
    n = len(seq)
    if k > n:
        raise ValueError(f"cannot sample {k} of {n}")
    rand = rng.random
    if k * 4 <= n:  # few of many: draw positions until k distinct ones
        seen: set[int] = set()
        out = []
        while len(out) < k:
            i = int(rand() * n)
            if i not in seen:
                seen.add(i)
                out.append(seq[i])
        return out
    items = list(seq)
    for i in range(n - 1, n - 1 - k, -1):  # partial Fisher-Yates from the end
        j = int(rand() * (i + 1))
        items[i], items[j] = items[j], items[i]
    return items[n - k:]


def distinct(rand, pool, k: int) -> list:
    """k distinct elements of a pool without repeats, in random order, drawn as sample(rng, pool, k) draws them
    when k * 4 <= len(pool) (uniform draws, skipping repeats), from rand = rng.random; k >= 1."""
    n = len(pool)
    out = [pool[int(rand() * n)]]
    while len(out) < k:
        x = pool[int(rand() * n)]
        if x not in out:
            out.append(x)
    return out
