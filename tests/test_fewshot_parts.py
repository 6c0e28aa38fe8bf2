"""The few-shot prompts in parts (EvalItem.parts, flanlab/eval/fewshot.py) for --fewshot-as-multiturn: every
benchmark and mode gives them, they rebuild the plain prompt byte for byte, and the plain prompts are those of
before the parts existed (their digests were taken from commit bc9a5a4's code, so the default path and the resume
cache keys of existing runs are unchanged). A prompt change that is meant bumps the benchmark's version and
updates DIGESTS. The synthetic suite needs no data; the real benchmarks skip, saying why, without FLANLAB_DATA_DIR."""

from __future__ import annotations

import hashlib
import json

import pytest

from flanlab.eval.benchmarks import bbh, mgsm, mmlu, synthetic, tydiqa
from flanlab.eval.chat import ChatOptions, messages
from flanlab.eval.fewshot import PromptParts, split
from flanlab.eval.spec import EvalItem, EvalOptions

# (mode, options) of every prompt shape: the benchmark's own shots, zero-shot CoT, zero shots, one shot
CASES = [("direct", {}), ("cot", {}), ("cot", {"zero_shot_cot": True}), ("direct", {"shots": 0}), ("cot", {"shots": 1})]
LIMITS = {"synthetic": 5, "bbh": 3, "mmlu": 3, "mgsm": 3, "tydiqa": None}  # tydiqa whole: its exemplar item too

# sha256 (first 16 hex digits) of the plain prompts as commit bc9a5a4 built them (see digest())
DIGESTS = {
    "synthetic/direct/{}": "f891afe724660ba5",
    "synthetic/cot/{}": "f43d69d0437e4f15",
    'synthetic/cot/{"zero_shot_cot": true}': "9109f8a7fc79eb8f",
    'synthetic/direct/{"shots": 0}': "ded570ecab44ec91",
    'synthetic/cot/{"shots": 1}': "ef8e638de8834f92",
    "bbh/direct/{}": "691d1a07f80c883f",
    "bbh/cot/{}": "f376ac306ec56145",
    'bbh/cot/{"zero_shot_cot": true}': "7a316f7e16d02db1",
    'bbh/direct/{"shots": 0}': "7258f3264a1c5e94",
    'bbh/cot/{"shots": 1}': "a82dafaf316d7175",
    "mmlu/direct/{}": "c88ba94cac3420da",
    "mmlu/cot/{}": "f34592697d156a4b",
    'mmlu/cot/{"zero_shot_cot": true}': "4927947554c13eb0",
    'mmlu/direct/{"shots": 0}': "d1d384f41753ad15",
    'mmlu/cot/{"shots": 1}': "39ba7b6d2cf6f642",
    "mgsm/direct/{}": "b1edc91aa4498371",
    "mgsm/cot/{}": "1dbc86b8618c5a96",
    'mgsm/cot/{"zero_shot_cot": true}': "4fd319cd61656024",
    'mgsm/direct/{"shots": 0}': "d224abec7cbbc010",
    'mgsm/cot/{"shots": 1}': "51083b7c853232c8",
    "tydiqa/direct/{}": "37a3f43c1b01457b",
    'tydiqa/direct/{"shots": 0}': "0bd62135fd0ffb69",
}


def _cases(bench) -> list[tuple[str, dict]]:
    return [(mode, kw) for mode, kw in CASES
            if mode in bench.modes and not (bench.name == "tydiqa" and kw.get("shots") not in (None, 0))]


def _check_parts(items: list[EvalItem]) -> None:
    """Every item has parts that rebuild its plain prompt exactly, in the shape --fewshot-as-multiturn renders."""
    assert items
    for it in items:
        where = f"{it.benchmark}/{it.subtask}/{it.mode}/{it.item_id}"
        assert it.parts is not None, f"{where}: no parts"
        assert it.parts.text == it.prefix, f"{where}: the parts do not rebuild the prefix"
        assert it.parts.text + it.query == it.prompt
        assert len(it.parts.shots) == it.shots, where
        assert it.query.endswith(it.parts.answer_prefix), where  # the last user turn has the exemplars' shape
        for user, answer in it.parts.shots:
            assert user.endswith(it.parts.answer_prefix) and answer.strip(), where
        turns = messages(it, ChatOptions(apply_chat_template=True, fewshot_as_multiturn=True))
        roles = [t["role"] for t in turns]
        assert roles == (["system"] if it.parts.description.strip() else []) + ["user", "assistant"] * it.shots + ["user"]
        assert turns[-1]["content"] == it.query


def digest(bench, data_dir, mode: str, options: EvalOptions) -> str:
    """The plain prompts (and ids, shots) of every subtask of one (benchmark, mode), hashed."""
    h = hashlib.sha256()
    for subtask in bench.subtasks(data_dir):
        for it in bench.items(data_dir, subtask, mode, options):
            h.update(json.dumps([it.subtask, it.mode, it.item_id, it.shots, it.prefix, it.query],
                                ensure_ascii=False).encode())
    return h.hexdigest()[:16]


def _check_benchmark(bench, data_dir) -> None:
    for mode, kw in _cases(bench):
        options = EvalOptions(limit=LIMITS[bench.name], **kw)
        for subtask in bench.subtasks(data_dir):
            _check_parts(bench.items(data_dir, subtask, mode, options))
        key = f"{bench.name}/{mode}/{json.dumps(kw, sort_keys=True)}"
        assert digest(bench, data_dir, mode, options) == DIGESTS[key], \
            f"{key}: the plain prompts changed (if meant: bump {bench.name}'s version and update DIGESTS)"


def test_synthetic_parts_rebuild_the_unchanged_plain_prompts():
    _check_benchmark(synthetic.BENCHMARK, None)


@pytest.mark.parametrize("bench", [bbh.BENCHMARK, mmlu.BENCHMARK, mgsm.BENCHMARK, tydiqa.BENCHMARK],
                         ids=lambda b: b.name)
def test_real_benchmark_parts_rebuild_the_unchanged_plain_prompts(bench, data_dir):
    _check_benchmark(bench, data_dir)


def test_bbh_cot_turns_are_lm_evals(data_dir):
    """As lm-eval's bbh cot_fewshot: the user turn ends "A: Let's think step by step.", the assistant turn is the
    rationale; the description goes to the system turn after the instruction."""
    item = bbh.items(data_dir, "date_understanding", "cot", EvalOptions(limit=1))[0]
    turns = messages(item, ChatOptions(True, True, system_instruction="Be brief."))
    assert turns[0] == {"role": "system", "content": "Be brief.\n\nInfer the date from context."}
    assert turns[1]["content"].startswith("Q: Today is Christmas Eve of 1937.")
    assert turns[1]["content"].endswith("\nA: Let's think step by step.")
    assert turns[2]["content"].startswith("If today is Christmas Eve of 1937")
    assert turns[2]["content"].endswith("So the answer is (D).")
    direct = bbh.items(data_dir, "date_understanding", "direct", EvalOptions(limit=1))[0]
    assert [t["content"] for t in messages(direct, ChatOptions(True, True))[1:3]] == \
        [turns[1]["content"].removesuffix(" Let's think step by step."), "(D)"]


def test_an_exemplar_of_another_shape_leaves_no_parts_and_multiturn_refuses_it():
    shots = [("Q: 1 + 1?\nA: 2\n\n", "Q: 1 + 1?\nA:"), ("Q: 2 + 2?\nSo 4\n\n", "Q: 2 + 2?\nA:")]
    prefix, parts = split("Add.\n\n", shots, "A:")
    assert prefix == "Add.\n\nQ: 1 + 1?\nA: 2\n\nQ: 2 + 2?\nSo 4\n\n" and parts is None  # the plain prompt unchanged
    prefix, parts = split("Add.\n\n", shots[:1], "A:")
    assert parts == PromptParts("Add.\n\n", (("Q: 1 + 1?\nA:", " 2\n\n"),), "A:") and parts.text == prefix
    item = EvalItem("adds", "one", "direct", "0", "Add.\n\nQ: 1 + 1?\nA: 2\n\nQ: 2 + 2?\nSo 4\n\n", "Q: 3 + 3?\nA:",
                    "6", shots=2, parts=None)
    with pytest.raises(ValueError, match="adds/one/direct prompts have 2 exemplars in one prefix text"):
        messages(item, ChatOptions(apply_chat_template=True, fewshot_as_multiturn=True))
    with pytest.raises(ValueError, match="does not end with the answer prefix"):
        PromptParts("", (("Q: 1?", " 1\n\n"),), "A:")
