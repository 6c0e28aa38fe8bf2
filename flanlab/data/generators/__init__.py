"""Built-in synthetic task families: seeded, varied instances whose answers are computed, never looked up.

FAMILIES is the registry: name -> Family (see base.py). Each family lives in a small module of this package
and builds records (see flanlab/data/example.py): question, answer, and options (classification) or
rationale (reasoning); Family.fields says which. Each family's `check` recomputes the answer from the
question text alone. Families marked held_out are the ten BBH-style algorithmic tasks reserved for the
synthetic held-out evaluation suite; they never enter a training mixture. The training families are
topically distinct from them (no Boolean logic, word sorting, dates, navigation, ... on the training side).

A new family: a module with make(rng) -> record, check(record) -> bool and FAMILY = Family(...), imported
below and added to FAMILIES in name order; tests/test_generators.py then covers it.

`generate(family, n, seed, split)` is deterministic: the same arguments give the same records, and the
"train" and "eval" splits draw from disjoint seed streams.
"""

from __future__ import annotations

import itertools

from flanlab.data.generators import (
    anagram_check,
    arithmetic_word_problems,
    boolean_expressions,
    change_case,
    date_arithmetic,
    dyck_languages,
    integer_arithmetic,
    letter_concatenation,
    letter_counting,
    list_max_min,
    list_sum,
    logical_deduction,
    multistep_arithmetic,
    navigate,
    number_comparison,
    object_counting,
    odd_one_out,
    palindrome_check,
    parity,
    remove_duplicates,
    reverse_string,
    sentiment_classification,
    sequence_continuation,
    simple_algebra,
    sort_numbers,
    temporal_sequences,
    topic_classification,
    tracking_shuffled_objects,
    unit_conversion,
    word_sorting,
)
from flanlab.data.generators.base import Family, iter_records
from flanlab.registry import lookup

FAMILIES: dict[str, Family] = {
    "anagram_check": anagram_check.FAMILY,
    "arithmetic_word_problems": arithmetic_word_problems.FAMILY,
    "boolean_expressions": boolean_expressions.FAMILY,
    "change_case": change_case.FAMILY,
    "date_arithmetic": date_arithmetic.FAMILY,
    "dyck_languages": dyck_languages.FAMILY,
    "integer_arithmetic": integer_arithmetic.FAMILY,
    "letter_concatenation": letter_concatenation.FAMILY,
    "letter_counting": letter_counting.FAMILY,
    "list_max_min": list_max_min.FAMILY,
    "list_sum": list_sum.FAMILY,
    "logical_deduction": logical_deduction.FAMILY,
    "multistep_arithmetic": multistep_arithmetic.FAMILY,
    "navigate": navigate.FAMILY,
    "number_comparison": number_comparison.FAMILY,
    "object_counting": object_counting.FAMILY,
    "odd_one_out": odd_one_out.FAMILY,
    "palindrome_check": palindrome_check.FAMILY,
    "parity": parity.FAMILY,
    "remove_duplicates": remove_duplicates.FAMILY,
    "reverse_string": reverse_string.FAMILY,
    "sentiment_classification": sentiment_classification.FAMILY,
    "sequence_continuation": sequence_continuation.FAMILY,
    "simple_algebra": simple_algebra.FAMILY,
    "sort_numbers": sort_numbers.FAMILY,
    "temporal_sequences": temporal_sequences.FAMILY,
    "topic_classification": topic_classification.FAMILY,
    "tracking_shuffled_objects": tracking_shuffled_objects.FAMILY,
    "unit_conversion": unit_conversion.FAMILY,
    "word_sorting": word_sorting.FAMILY,
}


def get_family(name: str) -> Family:
    return lookup(FAMILIES, name, "task family")


def generate(family: Family | str, n: int, seed: int = 0, split: str = "train") -> list[dict]:
    """n records of a family; record i depends only on (family, seed, split, i)."""
    fam = get_family(family) if isinstance(family, str) else family
    return list(itertools.islice(iter_records(fam, seed, split), n))


def iter_generate(family: Family | str, seed: int = 0, split: str = "train", start: int = 0):
    """An endless stream of records (for large mixtures built in bounded memory): records start, start + 1, ..."""
    fam = get_family(family) if isinstance(family, str) else family
    return iter_records(fam, seed, split, start)
