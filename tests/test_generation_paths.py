"""One generation path: every fast path of the engine's decoding loop against the plain one, EOS and stop strings
ending a row for good, and `flanlab generate` / open-gen going through the same loop.

Tiny random Llama (byte-level ByT5 tokenizer) with its weights scaled up so that outputs vary ("lively"), seeded.
"""

from __future__ import annotations

import random

import pytest
import torch

from flanlab.eval.engine import Engine, GenerationSettings, StopStrings, cut_at_stop
from flanlab.eval.spec import EvalItem


# tiny matmuls gain nothing from threads, and the CPU is shared with other test files
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def llama(lively_tiny_llama):
    return lively_tiny_llama  # fresh for this module (conftest): the tests below may change it


PREFIX = "Answer the questions.\n\nQ: 1 + 1?\nA: 2\n\nQ: 2 + 2?\nA: 4\n\n"
QUERIES = ["Q: 3 + 3?\nA:", "Q: what is ten plus twenty, and a longer question?\nA:", "Q: x\nA:",
           "Q: hello there\nA:", "Q: a fifth one\nA:", "Q: and a sixth, rather longer than the others\nA:"]


def items_with(prefixes=(PREFIX, "Other prefix.\n\n", "")) -> list[EvalItem]:
    return [EvalItem("test", f"sub{j}", "cot", str(i), prefix, q, "A")
            for j, prefix in enumerate(prefixes) for i, q in enumerate(QUERIES)]


def hf_greedy(lm, engine: Engine, item: EvalItem, settings: GenerationSettings) -> str:
    """transformers' own greedy generate on one unpadded prompt, cut at the stop strings."""
    ids = torch.tensor([engine.prompt_ids(item)])
    with torch.inference_mode():
        out = lm.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                max_new_tokens=settings.max_new_tokens, pad_token_id=engine.pad_id)
    return cut_at_stop(lm.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True), settings.stop)


def stop_strings_from(lm, items, settings) -> tuple[str, ...]:
    """Two stop strings of 1 and 2 characters that the model's free outputs contain (so rows end at different
    steps and some never do), found from an unstopped run."""
    free = Engine(lm, batch_size=8).generate(items, settings)
    texts = [o[0] for o in free if len(o[0]) > 6]
    assert texts, "the lively model should produce text"
    a = texts[0][len(texts[0]) // 2]
    b = texts[-1][-4:-2]
    return (a, b)


# ----------------------------------------------------------------------------------------------------------
# fast paths == plain path


def test_prefix_cache_batch_size_and_row_dropping_give_the_plain_outputs(llama):
    items = items_with()
    base = GenerationSettings(max_new_tokens=24)
    settings = GenerationSettings(max_new_tokens=24, stop=stop_strings_from(llama, items, base))
    plain = Engine(llama, batch_size=1, prefix_cache=False)
    reference = plain.generate(items, settings)
    assert reference == [[hf_greedy(llama, plain, it, settings)] for it in items]  # the plain path is transformers'
    assert len({o[0] for o in reference}) > 3  # varied outputs: not vacuous
    lengths = {len(o[0]) for o in reference}
    assert len(lengths) > 2  # rows end at different steps, so dropping happens mid-batch
    for prefix_cache in (False, True):
        for batch_size in (1, 4, 18):
            for drop in (0.0, 0.25, 2.0):  # drop at the first ended row, at a quarter, never
                engine = Engine(llama, batch_size=batch_size, prefix_cache=prefix_cache)
                engine.drop_fraction = drop
                assert engine.generate(items, settings) == reference, (prefix_cache, batch_size, drop)


def test_detailed_outputs_count_tokens_and_say_how_they_stopped(llama):
    items = items_with()[:6]
    settings = GenerationSettings(max_new_tokens=20)
    stop = stop_strings_from(llama, items, settings)[:1]
    engine = Engine(llama, batch_size=6)
    gens = [g[0] for g in engine.generate_detailed(items, GenerationSettings(max_new_tokens=20, stop=stop))]
    free = [g[0] for g in engine.generate_detailed(items, settings)]
    for g, f in zip(gens, free):
        assert g.text == cut_at_stop(f.text, stop)
        if g.stopped == "stop":
            assert stop[0] in f.text and g.new_tokens <= f.new_tokens
        assert g.stopped in ("eos", "stop", "max_new_tokens") and 1 <= g.new_tokens <= 20
    assert any(g.stopped == "stop" for g in gens)


# ----------------------------------------------------------------------------------------------------------
# EOS ends a row for good (the after-fine-tuning slowdown)


def force_eos_at(lm, call: int, row: int = 0):
    """Make the model put all its weight on EOS at its `call`-th forward (0: the prompt's), for one row of the
    batch tensors."""
    eos = lm.tokenizer.eos_token_id
    calls = {"n": 0}

    def hook(module, args, output):
        if calls["n"] == call:
            output = output.clone()
            output[row, ..., eos] = 1e4
        calls["n"] += 1
        return output

    return lm.model.lm_head.register_forward_hook(hook)


def test_eos_ends_a_row_even_when_stop_strings_are_set(llama):
    """A fine-tuned model ends its answers with EOS (its training targets do). The decoding loop used to forget
    a row's EOS as soon as stop strings were set, unless the row left the batch at once (a quarter of the
    batch had ended): the next step fed padding, kept whatever the model said after it and re-tested only the
    stop strings, so the row ran on to a stop string or max_new_tokens, its output holding the text after EOS.
    That made the demo's fine-tuned CoT items 3.5x slower than the base model's."""
    items = items_with(prefixes=("",))[:6]
    settings = GenerationSettings(max_new_tokens=30, stop=("\x00never",))  # a stop string that never appears
    engine = Engine(llama, batch_size=6, prefix_cache=False)
    free = [g[0] for g in engine.generate_detailed(items, settings)]
    assert all(g.new_tokens == 30 and g.stopped == "max_new_tokens" for g in free)  # no EOS: all run to the end
    handle = force_eos_at(llama, call=4, row=0)  # the prompt's forward, then steps 1..3: EOS is its 5th token
    try:
        gens = [g[0] for g in engine.generate_detailed(items, settings)]
    finally:
        handle.remove()
    for i, (g, f) in enumerate(zip(gens, free)):
        if i == 0:  # generate_detailed runs the items as one batch, in their order
            assert g.stopped == "eos" and g.new_tokens == 5  # four tokens, then EOS (counted)
            assert f.text.startswith(g.text) and len(g.text) < len(f.text)
        else:
            assert g == f  # the other rows are not disturbed


# ----------------------------------------------------------------------------------------------------------
# incremental stop strings


@pytest.mark.parametrize("tokenizer_name", ["byt5", "smollm2"])
def test_incremental_stop_test_equals_decoding_everything(tokenizer_name):
    """StopStrings decodes a row's last tokens only; it must say what decoding the whole row says, at every
    step, for stop strings split across tokens (byte-level: every byte a token; CJK: 3 bytes a character)."""
    if tokenizer_name == "byt5":
        from transformers import ByT5Tokenizer

        tok = ByT5Tokenizer()
    else:
        from transformers import AutoTokenizer

        from flanlab.models import PRESETS, preset_folder

        folder = preset_folder(PRESETS["smollm2-135m-instruct"])
        if not (folder / "tokenizer.json").is_file():
            pytest.skip("the SmolLM2 preset is not converted here (flanlab models)")
        tok = AutoTokenizer.from_pretrained(folder)
    stop = ("\n\nQ:", "\n问题:", "So the answer is")
    pieces = ["\n", "\n\n", "\n\nQ", "Q", ":", "\n问", "问题", "题:", "So the", "So", " the answer", " answer",
              " is", "é", "ü", " 42", ".", "Q:", "x"]
    rng = random.Random(0)
    checker = StopStrings(tok, stop)
    hits = 0
    for _ in range(60):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(5, 40)))
        ids = list(tok(text, add_special_tokens=False)["input_ids"])
        if tok.eos_token_id is not None and rng.random() < 0.3:  # a special token inside: decodes to nothing
            ids.insert(rng.randrange(len(ids) + 1), tok.eos_token_id)
        full = next((n for n in range(1, len(ids) + 1)
                     if any(s in tok.decode(ids[:n], skip_special_tokens=True) for s in stop)), None)
        incremental = next((n for n in range(1, len(ids) + 1) if checker.hit(ids[:n])), None)
        assert incremental == full, text
        hits += full is not None
    assert hits > 10  # many sequences do hold a stop string somewhere (and some do not)
    assert hits < 60


def test_a_stop_string_split_across_tokens_ends_generation_where_the_plain_decode_would(llama):
    items = items_with(prefixes=(PREFIX,))
    free = Engine(llama, batch_size=6).generate(items, GenerationSettings(max_new_tokens=24))
    sample = next(o[0] for o in free if len(o[0]) > 8)
    stop = (sample[3:6],)  # three bytes: three tokens of the byte-level tokenizer
    settings = GenerationSettings(max_new_tokens=24, stop=stop)
    outs = Engine(llama, batch_size=6).generate(items, settings)
    assert outs == [[cut_at_stop(o[0], stop)] for o in free]
    assert any(len(o[0]) < len(f[0]) for o, f in zip(outs, free))


# ----------------------------------------------------------------------------------------------------------
# flanlab generate and open-gen use the engine


def test_generate_one_open_gen_and_the_cli_go_through_the_engine(llama, monkeypatch, capsys):
    from flanlab import cli
    from flanlab.models import generate_one
    from flanlab.rate.opengen import generate_batch

    prompts = ["Hello there, how are you?", "Write a poem about the sea.", "2+2=?"]
    expected = Engine(llama, batch_size=3).answer(prompts, max_new_tokens=12)
    assert len({g.text for g in expected}) > 1
    calls = []
    real = Engine._generate_causal

    def counting(self, rows, *args, **kwargs):
        calls.append(len(rows))
        return real(self, rows, *args, **kwargs)

    monkeypatch.setattr(Engine, "_generate_causal", counting)
    assert [generate_one(llama, p, max_new_tokens=12) for p in prompts] == [g.text.strip() for g in expected]
    assert calls == [1, 1, 1]
    batch = generate_batch(llama, prompts, max_new_tokens=12)
    assert [b["answer"] for b in batch] == [g.text.strip() for g in expected]
    assert [(b["new_tokens"], b["stopped"]) for b in batch] == [(g.new_tokens, g.stopped) for g in expected]
    assert calls[3:] == [3]
    calls.clear()
    assert cli.main(["generate", "--model", "tiny-llama", "--max-new-tokens", "5", "hello"]) == 0
    assert calls == [1]
    assert "UNTRAINED" in capsys.readouterr().out


def test_answer_uses_the_chat_template_and_batching_does_not_change_answers(llama):
    from flanlab.models import LoadedModel

    tok = llama.tokenizer
    tok.chat_template = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</s>{% endfor %}<assistant>"
    try:
        lm = LoadedModel(model=llama.model, tokenizer=tok, kind="causal", name="chat-tiny", untrained=True)
        engine = Engine(lm, batch_size=1)
        ids = engine.chat_ids("hi")
        assert tok.decode(ids) == "<user>hi</s><assistant>"  # the template's text, its special token kept once
        # a plain free-standing prompt takes the tokenizer's own specials (ByT5 appends </s>), as flanlab generate
        # and open-gen always fed it (issue 14: their outputs stay what they were; tests/test_generate_same_outputs.py)
        assert engine.chat_ids("hi", chat_template=False) == list(tok("hi")["input_ids"])
        prompts = ["hi", "a longer prompt than the first", "mid length"]
        one = Engine(lm, batch_size=1).answer(prompts, 10)
        assert Engine(lm, batch_size=3).answer(prompts, 10) == one
        assert Engine(lm, batch_size=3).answer(prompts, 10, chat_template=False) != one
    finally:
        tok.chat_template = None
