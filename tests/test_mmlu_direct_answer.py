"""MMLU direct-mode generation: the answer is the letter the output starts with (after an optional "Answer:"
label), or, where it starts with none (or with the article "A"), the letter right after its first "answer is".
A hedge ("A and B are both correct") is no answer; so is a letter only later in the text. Before version 3 the
first standalone letter anywhere was taken, an article skipped: "A and B are both correct" read B."""

from __future__ import annotations

import pytest

from flanlab.eval.benchmarks import mmlu
from flanlab.eval.spec import EvalItem

TABLE = [  # output -> the letter read ("" = not answered)
    (" B", "B"), (" (C)", "C"), (" D. because", "D"), (" B) 42", "B"), (" C\n", "C"), ("\nB", "B"),
    (" Answer: C", "C"), (" answer: (D)", "D"), (" A is right", "A"), (" A. B is wrong", "A"), (" A, because", "A"),
    (" The correct answer is B.", "B"), (" The correct answer is: (D).", "D"), (" The answer is (B).", "B"),
    (" A cat is an animal; the correct answer is B", "B"),  # the article, then the stated answer
    # hedges: no answer, never the second letter
    (" A and B are both correct", ""), (" Answer: A and B...", ""), (" A or B", ""), (" A, B", ""), (" A/B", ""),
    (" (A) and (C)", ""), (" C & D", ""), (" The correct answer is A or B", ""),
    (" A and B; the correct answer is C", ""),
    # no letter at the start and no "answer is": not answered
    (" Both A and B", ""), (" I think it is C", ""), (" It is A.", ""), (" A cat is an animal, so B", ""),
    (" None of the above", ""), (" AB", ""), (" a", ""), ("", ""),
]


@pytest.mark.parametrize("output, letter", TABLE)
def test_direct_answer_table(output, letter):
    item = EvalItem("mmlu", "anatomy", "direct", "0", "", "", "B")
    assert mmlu.extract(output, item) == letter
    scores = mmlu.score(mmlu.extract(output, item), item)
    assert scores == {"accuracy": float(letter == "B"), "accuracy_lenient": float(letter == "B")}


def test_the_scoring_change_is_versioned():
    assert mmlu.BENCHMARK.version == "3"  # runs of version 2 are not paired with version 3 ones
