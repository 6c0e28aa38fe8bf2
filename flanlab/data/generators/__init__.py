"""Built-in synthetic task families: seeded, varied instances whose answers are computed, never looked up.

FAMILIES is the registry: name -> Family (see base.py). Each family lives in a small module of this package
and builds records (see flanlab/data/example.py): question, answer, and options (classification) or
rationale (reasoning). Families marked held_out are BBH-style algorithmic tasks reserved for the synthetic
held-out evaluation suite; they never enter a training mixture.

`generate(family, n, seed, split)` is deterministic: the same arguments give the same records, and the
"train" and "eval" splits draw from disjoint seed streams.
"""

from __future__ import annotations

from flanlab.data.generators import (
    boolean_expressions,
    date_arithmetic,
    dyck_languages,
    logical_deduction,
    multistep_arithmetic,
    navigate,
    object_counting,
    temporal_sequences,
    tracking_shuffled_objects,
    word_sorting,
)
from flanlab.data.generators.base import Family, make_record
from flanlab.registry import lookup

FAMILIES: dict[str, Family] = {
    "boolean_expressions": boolean_expressions.FAMILY,
    "date_arithmetic": date_arithmetic.FAMILY,
    "dyck_languages": dyck_languages.FAMILY,
    "logical_deduction": logical_deduction.FAMILY,
    "multistep_arithmetic": multistep_arithmetic.FAMILY,
    "navigate": navigate.FAMILY,
    "object_counting": object_counting.FAMILY,
    "temporal_sequences": temporal_sequences.FAMILY,
    "tracking_shuffled_objects": tracking_shuffled_objects.FAMILY,
    "word_sorting": word_sorting.FAMILY,
}


def get_family(name: str) -> Family:
    return lookup(FAMILIES, name, "task family")


def generate(family: Family | str, n: int, seed: int = 0, split: str = "train") -> list[dict]:
    """n records of a family; record i depends only on (family, seed, split, i)."""
    fam = get_family(family) if isinstance(family, str) else family
    return [make_record(fam, seed, split, i) for i in range(n)]


def iter_generate(family: Family | str, seed: int = 0, split: str = "train", start: int = 0):
    """An endless stream of records (for large mixtures built in bounded memory)."""
    fam = get_family(family) if isinstance(family, str) else family
    i = start
    while True:
        yield make_record(fam, seed, split, i)
        i += 1
