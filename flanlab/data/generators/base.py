"""The Family type shared by every synthetic task family, and the seeding rule that makes them deterministic."""

from __future__ import annotations

import hashlib
import random
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


def record_seed(family: str, seed: int, split: str, index: int) -> int:
    """The RNG seed of record `index`: a hash, so splits and families draw from disjoint streams."""
    digest = hashlib.blake2b(f"{family}|{seed}|{split}|{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def make_record(family: Family, seed: int, split: str, index: int) -> dict:
    return family.make(random.Random(record_seed(family.name, seed, split, index)))
