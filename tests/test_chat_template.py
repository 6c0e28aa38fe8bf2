"""Chat templates as an evaluation option (flanlab.eval.chat; `flanlab eval --apply-chat-template`): the rendered
prompt, the system instruction, few-shot prompts as turns (--fewshot-as-multiturn) and what it still refuses,
results.json and the resume cache, the prefix KV cache under a template, and a model without a template. The
module's lively tiny Llama (tests/conftest.py) with a simple template set here."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from flanlab.eval import runner
from flanlab.eval.chat import ChatOptions, common_text_prefix, render, templated_items
from flanlab.eval.fewshot import split
from flanlab.eval.benchmarks import synthetic
from flanlab.eval.engine import Engine
from flanlab.eval.metrics import exact_match
from flanlab.eval.spec import Benchmark, EvalItem, EvalOptions
from flanlab.fileio import read_jsonl

pytestmark = pytest.mark.usefixtures("one_thread")

TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")


def _items(data_dir, subtask: str, mode: str, options: EvalOptions) -> list[EvalItem]:
    shots = 1 if options.shots is None else options.shots
    prefix = "Add the numbers.\n\n" + ("Q: 1 + 1?\nA: 2\n\n" if shots else "")
    items = []
    for i in range(5):
        a, b = 3 + i, i + 2
        choices = tuple(f" {a + b + d}" for d in (0, 1, 2)) if mode == "direct" else ()
        items.append(EvalItem("sums", subtask, mode, str(i), prefix, f"Q: {a} + {b}?\nA:", str(a + b),
                              choices=choices, chance=100 / 3 if mode == "direct" else 0.0, shots=shots))
    return items


SUMS = Benchmark(
    name="sums", version="1", description="test sums", modes=("direct", "cot"), metric="accuracy",
    scorings=("generate", "rank"), subtasks=lambda data_dir: ["small"], items=_items,
    extract=lambda output, item: output.strip().split("\n")[0].strip(),
    score=lambda extracted, item: {"accuracy": exact_match(extracted, item.target)},
    max_new_tokens={"direct": 6, "cot": 10}, stop=("\n",),
)


def _parted_items(data_dir, subtask: str, mode: str, options: EvalOptions) -> list[EvalItem]:
    """SUMS's items with their prefix in parts (EvalItem.parts), as the real benchmarks give them: 2 exemplars."""
    k = 2 if options.shots is None else options.shots
    shots = [(f"Q: {a} + {b}?\nA: {a + b}\n\n", f"Q: {a} + {b}?\nA:") for a, b in ((1, 1), (2, 5))[:k]]
    prefix, parts = split("Add the numbers.\n\n", shots, "A:")
    return [replace(it, benchmark="parted", prefix=prefix, shots=k, parts=parts)
            for it in _items(data_dir, subtask, mode, options)]


PARTED = replace(SUMS, name="parted", items=_parted_items)


@pytest.fixture(scope="module")
def chat_llama(lively_tiny_llama):
    lively_tiny_llama.tokenizer.chat_template = TEMPLATE  # the module's own model (conftest): varied outputs
    return lively_tiny_llama


def run(lm, out, benchmark=SUMS, **kw):
    kw.setdefault("progress", False)
    return runner.evaluate(lm, benchmarks=[benchmark], out_dir=out, **kw)


def test_rendered_prompt_and_system_instruction(chat_llama):
    items = _items(None, "small", "cot", EvalOptions())
    plain = templated_items(items, chat_llama.tokenizer, ChatOptions())
    assert plain == items  # the default: the paper's plain prompts
    chat = templated_items(items, chat_llama.tokenizer, ChatOptions(apply_chat_template=True))
    for before, after in zip(items, chat):
        assert after.prompt == f"<|user|>\n{before.prompt}\n<|assistant|>\n"
        assert (after.item_id, after.target, after.shots) == (before.item_id, before.target, before.shots)
    # the group's shared prefix is a true text prefix of every rendered prompt, and not empty
    assert chat[0].prefix and all(it.prompt.startswith(chat[0].prefix) and it.query for it in chat)
    system = templated_items(items, chat_llama.tokenizer, ChatOptions(True, system_instruction="Be brief."))
    assert system[0].prompt == f"<|system|>\nBe brief.\n<|user|>\n{items[0].prompt}\n<|assistant|>\n"


def test_multiturn_only_without_exemplars(chat_llama):
    options = ChatOptions(apply_chat_template=True, fewshot_as_multiturn=True)
    zero = _items(None, "small", "cot", EvalOptions(shots=0))
    single = ChatOptions(apply_chat_template=True)
    assert [render(chat_llama.tokenizer, it, options) for it in zero] == \
        [render(chat_llama.tokenizer, it, single) for it in zero]
    with pytest.raises(ValueError, match="fewshot-as-multiturn: sums/small/cot prompts have 1 exemplars"):
        templated_items(_items(None, "small", "cot", EvalOptions()), chat_llama.tokenizer, options)
    unknown = [EvalItem("b", "s", "cot", "0", "Q: 1?\nA: 1\n\n", "Q: 2?\nA:", "2")]  # shots None, a prefix
    with pytest.raises(ValueError, match="unknown number of exemplars"):
        templated_items(unknown, chat_llama.tokenizer, options)
    for bad in ({"fewshot_as_multiturn": True}, {"system_instruction": "x"}):
        with pytest.raises(ValueError, match="need --apply-chat-template"):
            ChatOptions(**bad)


def test_multiturn_refused_before_any_work(chat_llama, tmp_path, monkeypatch):
    def no_engine(*args, **kwargs):
        raise AssertionError("the engine was built")

    monkeypatch.setattr(Engine, "__init__", no_engine)
    with pytest.raises(ValueError, match="fewshot-as-multiturn"):
        run(chat_llama, tmp_path / "mt", apply_chat_template=True, fewshot_as_multiturn=True)


def test_results_record_it_and_plain_cache_is_not_served(chat_llama, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    plain = run(chat_llama, tmp_path / "plain", cache_dir=cache)
    assert plain["settings"]["apply_chat_template"] is False and plain["settings"]["system_instruction"] is None

    calls = {"n": 0}
    real_rank, real_gen = Engine.rank_batch, Engine.generate_batch

    def counting(real):
        def wrapper(self, items, *args):
            calls["n"] += 1
            assert all(it.prompt.startswith("<|system|>\nBe brief.\n<|user|>\n") for it in items)
            return real(self, items, *args)
        return wrapper

    monkeypatch.setattr(Engine, "rank_batch", counting(real_rank))
    monkeypatch.setattr(Engine, "generate_batch", counting(real_gen))
    chat = run(chat_llama, tmp_path / "chat", cache_dir=cache, apply_chat_template=True,
               system_instruction="Be brief.")
    assert calls["n"] > 0  # nothing of the plain run was served to the templated one
    on_disk = json.loads((tmp_path / "chat" / "results.json").read_text())
    assert on_disk["settings"]["apply_chat_template"] is True
    assert on_disk["settings"]["fewshot_as_multiturn"] is False
    assert on_disk["settings"]["system_instruction"] == "Be brief."
    samples = list(read_jsonl(tmp_path / "chat" / "samples.jsonl"))
    assert all(r["chat_prompt"] == f"<|system|>\nBe brief.\n<|user|>\n{r['prompt']}\n<|assistant|>\n" for r in samples)
    assert not any("chat_prompt" in r for r in read_jsonl(tmp_path / "plain" / "samples.jsonl"))
    # the same templated run again is served whole from the cache
    calls["n"] = 0
    again = run(chat_llama, tmp_path / "chat2", cache_dir=cache, apply_chat_template=True,
                system_instruction="Be brief.")
    assert calls["n"] == 0
    assert again["benchmarks"] == chat["benchmarks"]


def test_prefix_cache_on_and_off_agree_under_the_template(chat_llama, tmp_path):
    rows = {}
    for on in (True, False):
        run(chat_llama, tmp_path / str(on), cache_dir=False, prefix_cache=on, batch_size=2, apply_chat_template=True)
        rows[on] = list(read_jsonl(tmp_path / str(on) / "samples.jsonl"))
    assert len(rows[True]) == 10
    for a, b in zip(rows[True], rows[False]):
        assert a["output"] == b["output"]
        if "logprobs" in a:
            assert a["logprobs"] == pytest.approx(b["logprobs"], abs=1e-4)


def test_prefix_cache_is_reused_under_the_template(chat_llama):
    engine = Engine(chat_llama, batch_size=4, prefix_cache=True, templated=True)
    items = templated_items(_items(None, "small", "cot", EvalOptions()), chat_llama.tokenizer,
                            ChatOptions(apply_chat_template=True))
    engine.generate_batch(items[:4], runner.generation_settings(SUMS, "cot", 1, 0.7, 0))
    assert items[0].prefix in engine._prefix_kv  # the rendered prefix's KV was computed and kept


def test_common_text_prefix_keeps_a_query():
    assert common_text_prefix(["abcX", "abcY"]) == "abc"
    assert common_text_prefix(["same", "same"]) == "sam"


def test_model_without_a_template_is_one_clear_error(chat_llama, tmp_path, monkeypatch):
    lm = chat_llama
    monkeypatch.setattr(lm.tokenizer, "chat_template", None)
    with pytest.raises(ValueError, match="has no chat template"):
        run(lm, tmp_path / "none", apply_chat_template=True)
    assert not (tmp_path / "none" / "results.json").exists()


def test_cli_flags_reach_evaluate(monkeypatch):
    from flanlab.cli import build_parser
    from flanlab.commands import eval as eval_command

    seen = {}
    monkeypatch.setattr(runner, "evaluate", lambda model, config, **kw: seen.update(vars(config)) or {})
    monkeypatch.setattr(runner, "summary_text", lambda results: "")
    args = build_parser("eval").parse_args(["eval", "--model", "m", "--benchmark", "sums", "-o", "out",
                                      "--apply-chat-template", "--system-instruction", "Be brief."])
    eval_command.run(args)
    assert seen["apply_chat_template"] is True and seen["system_instruction"] == "Be brief."
    assert seen["fewshot_as_multiturn"] is False


def test_templated_engine_adds_no_bos_of_its_own(chat_llama, monkeypatch):
    monkeypatch.setattr(Engine, "_bos_prefix", lambda self: [7])  # a tokenizer that puts BOS in front
    assert Engine(chat_llama).bos == [7]
    templated = Engine(chat_llama, templated=True)  # the template writes its own special tokens
    assert templated.bos == [] and templated.text_ids("ab") == templated.encode("ab")


# ----------------------------------------------------------------------------------------------------------
# few-shot prompts as turns (--fewshot-as-multiturn) from EvalItem.parts

MULTITURN = ChatOptions(apply_chat_template=True, fewshot_as_multiturn=True)


def test_multiturn_renders_each_exemplar_as_a_turn_pair(chat_llama):
    items = _parted_items(None, "small", "direct", EvalOptions())
    assert items[0].prompt == "Add the numbers.\n\nQ: 1 + 1?\nA: 2\n\nQ: 2 + 5?\nA: 7\n\nQ: 3 + 2?\nA:"
    turns = ("<|user|>\nQ: 1 + 1?\nA:\n<|assistant|>\n2\n<|user|>\nQ: 2 + 5?\nA:\n<|assistant|>\n7\n"
             "<|user|>\nQ: 3 + 2?\nA:\n<|assistant|>\n")
    assert render(chat_llama.tokenizer, items[0], MULTITURN) == "<|system|>\nAdd the numbers.\n" + turns
    system = ChatOptions(True, True, system_instruction="Be brief.")
    assert render(chat_llama.tokenizer, items[0], system) == "<|system|>\nBe brief.\n\nAdd the numbers.\n" + turns
    zero = _parted_items(None, "small", "direct", EvalOptions(shots=0))[0]  # the description still goes first
    assert render(chat_llama.tokenizer, zero, MULTITURN) == "<|system|>\nAdd the numbers.\n<|user|>\nQ: 3 + 2?\nA:\n<|assistant|>\n"
    # the single-turn form is unchanged: the whole plain prompt in one user turn
    assert render(chat_llama.tokenizer, items[0], ChatOptions(True)) == f"<|user|>\n{items[0].prompt}\n<|assistant|>\n"
    # rank choices open the assistant's turn as the exemplars' answers do: without the plain prompt's space
    assert items[0].choices == (" 5", " 6", " 7")
    for options in (MULTITURN, ChatOptions(True)):
        assert templated_items(items, chat_llama.tokenizer, options)[0].choices == ("5", "6", "7")


def test_multiturn_results_and_cache_are_its_own(chat_llama, tmp_path, monkeypatch):
    """results.json records the option, samples show the turns the model read, and single-turn and multi-turn
    templated runs never serve each other's outputs (the key holds the option even where the texts coincide)."""
    cache = tmp_path / "cache"
    calls = {"n": 0}
    real_rank, real_gen = Engine.rank_batch, Engine.generate_batch

    def counting(real):
        def wrapper(self, items, *args):
            calls["n"] += len(items)
            return real(self, items, *args)
        return wrapper

    monkeypatch.setattr(Engine, "rank_batch", counting(real_rank))
    monkeypatch.setattr(Engine, "generate_batch", counting(real_gen))
    run(chat_llama, tmp_path / "single", PARTED, cache_dir=cache, apply_chat_template=True)
    assert calls["n"] == 10
    multi = run(chat_llama, tmp_path / "multi", PARTED, cache_dir=cache, apply_chat_template=True,
                fewshot_as_multiturn=True)
    assert calls["n"] == 20  # nothing served from the single-turn run
    assert multi["settings"]["fewshot_as_multiturn"] is True and multi["settings"]["apply_chat_template"] is True
    on_disk = json.loads((tmp_path / "multi" / "results.json").read_text())
    assert on_disk["settings"]["fewshot_as_multiturn"] is True
    samples = list(read_jsonl(tmp_path / "multi" / "samples.jsonl"))
    assert len(samples) == 10 and all(r["chat_prompt"].count("<|assistant|>\n") == 3 for r in samples)
    assert all(r["prompt"].startswith("Add the numbers.\n\nQ: 1 + 1?") for r in samples)  # the plain prompt, scored
    run(chat_llama, tmp_path / "multi2", PARTED, cache_dir=cache, apply_chat_template=True, fewshot_as_multiturn=True)
    assert calls["n"] == 20  # the same multi-turn run again: served whole
    # zero-shot prompts without parts render the same text in both forms; the key still keeps them apart
    run(chat_llama, tmp_path / "zero-single", cache_dir=cache, apply_chat_template=True, shots=0)
    assert calls["n"] == 30
    run(chat_llama, tmp_path / "zero-multi", cache_dir=cache, apply_chat_template=True, fewshot_as_multiturn=True,
        shots=0)
    assert calls["n"] == 40
    prompts = [[r["chat_prompt"] for r in read_jsonl(tmp_path / name / "samples.jsonl")]
               for name in ("zero-single", "zero-multi")]
    assert prompts[0] == prompts[1]


def test_prefix_cache_on_and_off_agree_under_multiturn(chat_llama, tmp_path):
    """Greedy outputs (and rank log-likelihoods) are the same with the prefix KV cache on and off, on the parted
    sums and on two real synthetic families (direct and CoT, their exemplars as turns)."""
    two_families = replace(synthetic.BENCHMARK, subtasks=lambda data_dir: synthetic.subtasks(None)[:2],
                           max_new_tokens={"direct": 8, "cot": 12, "zs_cot": 12})
    for bench, limit in ((PARTED, None), (two_families, 3)):
        rows = {}
        for on in (True, False):
            out = tmp_path / f"{bench.name}-{on}"
            run(chat_llama, out, bench, cache_dir=False, prefix_cache=on, batch_size=2, limit=limit,
                apply_chat_template=True, fewshot_as_multiturn=True)
            rows[on] = list(read_jsonl(out / "samples.jsonl"))
        assert len(rows[True]) == len(rows[False]) > 0
        assert all(r["chat_prompt"].count("<|assistant|>\n") > 1 for r in rows[True])  # exemplar turns were there
        for a, b in zip(rows[True], rows[False]):
            assert a["chat_prompt"] == b["chat_prompt"] and a["output"] == b["output"]
            if "logprobs" in a:
                assert a["logprobs"] == pytest.approx(b["logprobs"], abs=1e-4)


def test_multiturn_prefix_covers_the_exemplar_turns(chat_llama):
    engine = Engine(chat_llama, batch_size=4, prefix_cache=True, templated=True)
    items = templated_items(_parted_items(None, "small", "cot", EvalOptions()), chat_llama.tokenizer, MULTITURN)
    assert all(it.parts is None for it in items)  # the rendered items' prefix is no longer the parts' text
    prefix = items[0].prefix
    assert prefix.endswith("<|assistant|>\n7\n<|user|>\nQ: ") and all(it.prompt.startswith(prefix) for it in items)
    engine.generate_batch(items[:4], runner.generation_settings(SUMS, "cot", 1, 0.7, 0))
    assert prefix in engine._prefix_kv  # computed once and kept for the group


def test_a_template_refusing_the_messages_is_one_clear_error(chat_llama, monkeypatch):
    no_system = ("{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not "
                 "supported') }}{% endif %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}")
    monkeypatch.setattr(chat_llama.tokenizer, "chat_template", no_system)
    item = _parted_items(None, "small", "direct", EvalOptions())[0]
    with pytest.raises(ValueError, match=r"refuses the messages of parted/small/direct \(system, user, assistant, "
                                         r"user, assistant, user\): System role not supported"):
        render(chat_llama.tokenizer, item, MULTITURN)
    assert render(chat_llama.tokenizer, item, ChatOptions(True)).startswith("<|user|>\nAdd the numbers.")
