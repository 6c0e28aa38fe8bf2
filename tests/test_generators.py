"""The built-in synthetic task families: deterministic, verifiable, varied, and well formed."""

from __future__ import annotations

import functools
import random
import statistics

import pytest

from flanlab.data.generators import FAMILIES, generate, get_family, iter_generate
from flanlab.data.generators.base import between, pattern, pick, sample, shuffle
from flanlab.registry import UnknownNameError

NAMES = list(FAMILIES)
BBH_STYLE = {
    "boolean_expressions", "multistep_arithmetic", "word_sorting", "object_counting", "dyck_languages",
    "date_arithmetic", "navigate", "tracking_shuffled_objects", "logical_deduction", "temporal_sequences",
}


@functools.lru_cache(maxsize=None)
def records(name: str, n: int = 300, seed: int = 0, split: str = "train") -> tuple[dict, ...]:
    return tuple(generate(name, n, seed=seed, split=split))


def corrupt(record: dict, rng: random.Random) -> str:
    """A wrong answer: another option, a nearby number, or an edited string."""
    answer = record["answer"]
    if record.get("options"):
        return rng.choice([o for o in record["options"] if o != answer])
    try:
        return str(int(answer) + rng.choice([-2, -1, 1, 2, 10]))
    except ValueError:
        pass
    for candidate in (answer[::-1], answer + answer[-1], answer[:-1]):
        if candidate and candidate != answer:
            return candidate
    raise AssertionError(f"cannot corrupt {answer!r}")


def test_registry_is_sorted_and_named():
    assert NAMES == sorted(NAMES)
    for name, fam in FAMILIES.items():
        assert fam.name == name


def test_family_counts():
    held_out = {n for n, f in FAMILIES.items() if f.held_out}
    assert held_out == BBH_STYLE
    assert len(FAMILIES) - len(held_out) >= 14
    assert len(FAMILIES) >= 24


def test_training_topics_are_distinct_from_held_out():
    held = {f.category for f in FAMILIES.values() if f.held_out}
    train = {f.category for f in FAMILIES.values() if not f.held_out}
    assert not held & train


def test_pattern_reads_slots_and_repeats():
    regex = pattern("{name} has {a} pens. {name} buys {b}.", {"name": "[A-Z][a-z]+", "a": r"\d+", "b": r"\d+"})
    m = regex.fullmatch("Ana has 3 pens. Ana buys 12.")
    assert m and (m["name"], m["a"], m["b"]) == ("Ana", "3", "12")
    assert regex.fullmatch("Ana has 3 pens. Bob buys 12.") is None  # a repeated slot must repeat its text
    assert pattern("a.b {x}", {"x": "x"}).fullmatch("aXb x") is None  # literal text is escaped


def test_fast_draws():
    rng = random.Random(0)
    values = [between(rng, -2, 3) for _ in range(3000)]
    assert set(values) == {-2, -1, 0, 1, 2, 3}
    assert {pick(rng, "abc") for _ in range(300)} == {"a", "b", "c"}
    for n, k in ((100, 3), (6, 5), (5, 5), (1, 1)):
        s = sample(rng, list(range(n)), k)
        assert len(s) == k and len(set(s)) == k and set(s) <= set(range(n))
    with pytest.raises(ValueError):
        sample(rng, [1, 2], 3)
    items = list(range(10))
    shuffle(rng, items)
    assert sorted(items) == list(range(10)) and items != list(range(10))
    firsts = [sample(rng, "abcd", 4)[0] for _ in range(2000)]  # every element can come first, about equally
    assert all(400 < firsts.count(c) < 600 for c in "abcd")


def test_unknown_family_suggests():
    with pytest.raises(UnknownNameError, match="Did you mean 'boolean_expressions'"):
        get_family("boolean_expresions")


def test_iter_generate_matches_generate():
    stream = iter_generate("navigate", seed=5, start=3)
    assert [next(stream) for _ in range(4)] == generate("navigate", 7, seed=5)[3:]


def test_record_i_is_the_same_however_it_is_reached():
    """Records are drawn in seeded blocks of BLOCK; starting mid-block or across a block boundary, or asking
    for one record alone, gives the same record as the stream from 0."""
    from flanlab.data.generators.base import BLOCK, make_record

    n = 2 * BLOCK + 5
    whole = generate("navigate", n, seed=5)
    for start in (1, BLOCK - 1, BLOCK, BLOCK + 3):
        stream = iter_generate("navigate", seed=5, start=start)
        assert [next(stream) for _ in range(n - start)] == whole[start:]
    assert make_record(FAMILIES["navigate"], 5, "train", BLOCK + 1) == whole[BLOCK + 1]
    assert len({r["question"] for r in whole}) > n * 0.9  # blocks do not repeat each other


@pytest.mark.parametrize("name", NAMES)
def test_metadata(name):
    fam = FAMILIES[name]
    assert fam.category and fam.category == fam.category.strip()
    assert fam.instruction.strip() and fam.instruction.endswith(".")
    assert fam.description.strip()
    assert {"question", "answer"} <= set(fam.fields) <= {"question", "answer", "options", "rationale"}
    if fam.held_out:
        assert "rationale" in fam.fields  # CoT exemplars for the held-out suite


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_and_seeded(name):
    assert generate(name, 40, seed=3) == generate(name, 40, seed=3)
    assert generate(name, 40, seed=3) != generate(name, 40, seed=4)


@pytest.mark.parametrize("name", NAMES)
def test_train_and_eval_splits_differ(name):
    train = {r["question"] for r in records(name)}
    held = [r["question"] for r in records(name, split="eval")]
    shared = sum(q in train for q in held)
    assert shared < 0.05 * len(held), f"{shared} of {len(held)} eval questions also in train"


@pytest.mark.parametrize("name", NAMES)
def test_records_are_well_formed_and_check(name):
    fam = FAMILIES[name]
    for r in records(name):
        assert set(r) == set(fam.fields), r
        assert isinstance(r["question"], str) and r["question"].strip()
        assert isinstance(r["answer"], str) and r["answer"].strip()
        assert fam.check(r), r


@pytest.mark.parametrize("name", NAMES)
def test_check_rejects_a_wrong_answer(name):
    fam = FAMILIES[name]
    rng = random.Random(0)
    for r in records(name):
        bad = dict(r, answer=corrupt(r, rng))
        assert not fam.check(bad), bad


@pytest.mark.parametrize("name", NAMES)
def test_options(name):
    fam = FAMILIES[name]
    if "options" not in fam.fields:
        assert fam.chance == 0.0
        return
    sizes = []
    for r in records(name):
        opts = r["options"]
        assert all(isinstance(o, str) and o.strip() for o in opts)
        assert len(opts) >= 2 and len(set(opts)) == len(opts), opts
        assert r["answer"] in opts
        sizes.append(len(opts))
    # chance is 100 / number of options (its expectation when that number varies)
    assert fam.chance == pytest.approx(statistics.mean(100 / k for k in sizes), abs=1.5)


@pytest.mark.parametrize("name", NAMES)
def test_options_order_is_shuffled(name):
    if "options" not in FAMILIES[name].fields:
        return
    positions = {r["options"].index(r["answer"]) for r in records(name)}
    assert len(positions) > 1, "the answer always sits at the same option position"


@pytest.mark.parametrize("name", NAMES)
def test_rationale(name):
    if "rationale" not in FAMILIES[name].fields:
        return
    for r in records(name):
        assert isinstance(r["rationale"], str) and len(r["rationale"]) > 10
        assert "answer is" not in r["rationale"].lower(), r["rationale"]


@pytest.mark.parametrize("name", NAMES)
def test_few_duplicate_questions(name):
    questions = [r["question"] for r in records(name, 2000)]
    duplicates = len(questions) - len(set(questions))
    assert duplicates < 0.05 * len(questions), f"{duplicates} duplicate questions in 2000"
