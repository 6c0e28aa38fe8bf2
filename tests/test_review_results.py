"""Silent wrong results found in review: each test failed on the code before its fix."""

from __future__ import annotations

import pytest

from flanlab.eval.benchmarks import bbh, synthetic
from flanlab.eval.spec import EvalItem


@pytest.mark.parametrize("output, answer", [
    ('So the answer is "valid".', "valid"),  # the period after the closing quote
    ("So the answer is '(A)'.", "(A)"),
    ("So the answer is “Yes”.", "Yes"),
    ('So the answer is "valid."', "valid"),  # the period inside (already read so)
    ("So the answer is valid.", "valid"),
])
def test_bbh_quoted_answer_followed_by_a_period_is_unquoted(output, answer):
    # clean() promises to remove surrounding quotes and one trailing period; with the period after the closing
    # quote the quote stayed ('valid"'), so a right answer scored 0 under the strict rule
    assert bbh.extract_answer(output, "cot") == answer
    item = EvalItem(benchmark="bbh", subtask="formal_fallacies", mode="cot", item_id="0", prefix="",
                    query="Q: Is the argument valid?\nOptions:\n- valid\n- invalid\nA: Let's think step by step.",
                    target=answer)
    assert bbh.score(bbh.extract(output, item), item)["accuracy"] == 1.0


def test_bbh_clean_still_strips_only_one_period():
    assert bbh.clean('"a..".') == "a.."  # the quoted text keeps its own periods
    assert bbh.clean("a..") == "a."


def test_synthetic_quoted_option_followed_by_a_period_is_the_option():
    item = EvalItem(benchmark="synthetic", subtask="x", mode="cot", item_id="0", prefix="",
                    query="Q: Which?\nOptions:\n- True\n- False\nA: Let's think step by step.", target="True")
    extracted = synthetic.extract('So the answer is "True".', item)
    assert extracted == "True"
    assert synthetic.score(extracted, item)["accuracy"] == 1.0
