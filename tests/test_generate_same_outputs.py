"""Issue 14: `flanlab generate` and open-gen run on the evaluation engine (Engine.answer), and give the outputs the
paths they replaced gave for the same prompts (greedy).

`old_generate_one` and `old_generate_batch` below are those paths, copied from flanlab/models.py and
flanlab/rate/opengen.py as they were before the engine took them over (commit 6c7880d^): transformers' own
`generate`, the prompt through `models.chat_prompt` (inlined here) where the tokenizer has a chat template, the
tokenizer's own special tokens on a plain prompt (ByT5, the tiny presets' tokenizer, appends </s>), EOS from
the generation config. They are the reference; the new functions must answer every prompt the same way: text,
token count and how it ended.

Models: the tiny-llama preset (built in code) with its weights scaled up so that greedy outputs vary (the preset
itself, with small weights, ends at once and would make the comparison vacuous), with and without a chat
template; a lively tiny T5; SmolLM2 (real tokenizer and chat template) where its preset is converted here.
"""

from __future__ import annotations

import pytest
import torch

from flanlab.eval.engine import Engine
from flanlab.models import LoadedModel, generate_one
from flanlab.rate.opengen import generate_batch

# tiny matmuls gain nothing from threads, and the CPU is shared with other test files
pytestmark = pytest.mark.usefixtures("one_thread")

PROMPTS = ["Hello there, how are you?", "Write a poem about the sea and the sky.", "2+2=?",
           "Explain why the sky is blue, in two sentences.", "Name three colours."]
TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")


# ----------------------------------------------------------------------------------------------------------
# the old paths, verbatim but for the inlined chat_prompt


def _old_chat_prompt(lm, prompt: str) -> str:
    template = getattr(lm.tokenizer, "chat_template", None)
    if not template:
        return prompt
    return lm.tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )


def old_generate_one(lm, prompt: str, max_new_tokens: int = 64, use_chat_template: bool = True) -> str:
    text = _old_chat_prompt(lm, prompt) if use_chat_template else prompt
    add_special = lm.kind == "seq2seq" or not use_chat_template or not getattr(lm.tokenizer, "chat_template", None)
    enc = lm.tokenizer(text, return_tensors="pt", add_special_tokens=add_special).to(lm.device)
    with torch.inference_mode():
        out = lm.model.generate(
            **enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=lm.tokenizer.pad_token_id
        )
    if lm.kind == "causal":
        out = out[:, enc["input_ids"].shape[1]:]
    return lm.tokenizer.decode(out[0], skip_special_tokens=True).strip()


def _old_eos_ids(lm) -> set[int]:
    eos = getattr(lm.model.generation_config, "eos_token_id", None)
    if eos is None:
        eos = lm.tokenizer.eos_token_id
    return set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}


def old_generate_batch(lm, prompts: list[str], max_new_tokens: int, use_chat_template: bool = True) -> list[dict]:
    tok = lm.tokenizer
    texts = [_old_chat_prompt(lm, p) if use_chat_template else p for p in prompts]
    add_special = lm.kind == "seq2seq" or not use_chat_template or not getattr(tok, "chat_template", None)
    old_side = tok.padding_side
    tok.padding_side = "left" if lm.kind == "causal" else "right"
    try:
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=add_special).to(lm.device)
    finally:
        tok.padding_side = old_side
    with torch.inference_mode():
        out = lm.model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
    if lm.kind == "causal":
        out = out[:, enc["input_ids"].shape[1]:]
    eos = _old_eos_ids(lm)
    results = []
    for seq in out.tolist():
        if lm.kind == "seq2seq" and seq and seq[0] == lm.model.config.decoder_start_token_id:
            seq = seq[1:]
        stop = next((i for i, t in enumerate(seq) if t in eos), None)
        kept = seq if stop is None else seq[: stop + 1]
        results.append({
            "answer": tok.decode(kept, skip_special_tokens=True).strip(),
            "new_tokens": len(kept),
            "stopped": "max_new_tokens" if stop is None else "eos",
        })
    return results


# ----------------------------------------------------------------------------------------------------------
# models


@pytest.fixture(scope="module")
def lively_llama() -> LoadedModel:
    """The tiny-llama preset, weights x4 (its own tokenizer instance: a test may give it a chat template)."""
    from flanlab.models import load

    lm = load("tiny-llama", device="cpu")
    with torch.no_grad():
        for p in lm.model.parameters():
            p.mul_(4.0)
    return lm


def with_template(lm: LoadedModel, template: str | None) -> LoadedModel:
    """The same weights behind a copy of the tokenizer with `template` as its chat template."""
    import copy

    tok = copy.deepcopy(lm.tokenizer)
    tok.chat_template = template
    return LoadedModel(model=lm.model, tokenizer=tok, kind=lm.kind, name=lm.name, untrained=lm.untrained)


def lively_t5() -> LoadedModel:
    from transformers import ByT5Tokenizer, T5Config, T5ForConditionalGeneration

    tok = ByT5Tokenizer()
    torch.manual_seed(0)
    config = T5Config(vocab_size=len(tok), d_model=64, d_kv=16, d_ff=128, num_layers=2, num_decoder_layers=2,
                      num_heads=4, dropout_rate=0.0, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                      decoder_start_token_id=tok.pad_token_id, initializer_factor=20.0)
    return LoadedModel(model=T5ForConditionalGeneration(config).eval(), tokenizer=tok, kind="seq2seq",
                       name="lively-t5", untrained=True)


def assert_same_as_old(lm: LoadedModel, prompts: list[str], max_new_tokens: int, use_chat_template: bool) -> list:
    """The new paths against the old ones: generate_one per prompt, generate_batch over all of them (its own
    engine, and one engine of batch 2 reused, as open-gen reuses one), Engine.answer at batch 1 and 3."""
    old_one = [old_generate_one(lm, p, max_new_tokens, use_chat_template) for p in prompts]
    old_batch = old_generate_batch(lm, prompts, max_new_tokens, use_chat_template)
    assert [r["answer"] for r in old_batch] == old_one  # the reference agrees with itself
    assert [generate_one(lm, p, max_new_tokens, use_chat_template) for p in prompts] == old_one
    assert generate_batch(lm, prompts, max_new_tokens, use_chat_template) == old_batch
    engine = Engine(lm, batch_size=2)
    assert generate_batch(lm, prompts, max_new_tokens, use_chat_template, engine) == old_batch
    templated = use_chat_template and bool(lm.tokenizer.chat_template)
    for batch_size in (1, 3):
        engine = Engine(lm, batch_size=batch_size)
        gens = engine.answer(prompts, max_new_tokens, chat_template=use_chat_template)
        assert [(g.text.strip(), g.new_tokens, g.stopped) for g in gens] == \
               [(r["answer"], r["new_tokens"], r["stopped"]) for r in old_batch]
        # the rendered prompts' common start (the template's head) went through the prefix KV cache
        assert bool(engine._prefix_kv) == (templated and lm.kind == "causal")
    return old_batch


# ----------------------------------------------------------------------------------------------------------
# the tests


@pytest.mark.parametrize("template", [None, TEMPLATE], ids=["plain", "chat-template"])
@pytest.mark.parametrize("use_chat_template", [True, False], ids=["template-on", "template-off"])
def test_tiny_llama_answers_as_the_old_path(lively_llama, template, use_chat_template):
    lm = with_template(lively_llama, template)
    old = assert_same_as_old(lm, PROMPTS, 16, use_chat_template)
    assert len({r["answer"] for r in old}) == len(PROMPTS)  # varied outputs: the comparison is not vacuous
    assert all(r["answer"] for r in old)


def test_tiny_llama_eos_ends_answers_as_the_old_path(lively_llama):
    """Rows that end at EOS, mid-batch, while the others run on: the old path kept the EOS in new_tokens."""
    lm = with_template(lively_llama, None)
    eos = lm.tokenizer.eos_token_id
    calls = {"n": 0}

    def hook(module, args, output):  # the 4th forward of every path puts all weight on EOS for one batch row
        calls["n"] += 1
        if calls["n"] == 4:
            output = output.clone()
            output[0, ..., eos] = 1e4
        return output

    prompts = sorted(PROMPTS[:3], key=len, reverse=True)  # the engine's batch order too: row 0 is the same
    free = old_generate_batch(lm, prompts, 12)
    handle = lm.model.lm_head.register_forward_hook(hook)
    try:
        old = [old_generate_one(lm, p, 12) for p in prompts[:1]]
        calls["n"] = 0
        new = [generate_one(lm, p, 12) for p in prompts[:1]]
        calls["n"] = 0
        old_batch = old_generate_batch(lm, prompts, 12)
        calls["n"] = 0
        new_batch = Engine(lm, batch_size=3).answer(prompts, 12)
    finally:
        handle.remove()
    assert new == old
    assert any(r["stopped"] == "eos" for r in old_batch) and old_batch != free  # the hook did end a row
    assert [(g.text.strip(), g.new_tokens, g.stopped) for g in new_batch] == \
           [(r["answer"], r["new_tokens"], r["stopped"]) for r in old_batch]


@pytest.mark.parametrize("use_chat_template", [True, False], ids=["template-on", "template-off"])
def test_seq2seq_answers_as_the_old_path(use_chat_template):
    lm = lively_t5()
    old = assert_same_as_old(with_template(lm, TEMPLATE), PROMPTS[:3], 12, use_chat_template)
    assert sum(len(r["answer"]) for r in old) > 0


def test_smollm2_answers_as_the_old_path():
    """A real tokenizer and chat template (a system turn every prompt shares, so the prefix cache is used)."""
    from flanlab.models import PRESETS, load, preset_folder

    if not (preset_folder(PRESETS["smollm2-135m-instruct"]) / "config.json").is_file():
        pytest.skip("the SmolLM2 preset is not converted here (run `flanlab models` / make demo once)")
    lm = load("smollm2-135m-instruct", device="cpu", verbose=False)
    prompts = ["What is the capital of France?", "Give one word that rhymes with cat.", "What is 2 + 3?"]
    old = assert_same_as_old(lm, prompts, 12, True)
    assert all(r["answer"] for r in old)


def test_every_preset_ends_rows_at_the_tokens_the_old_paths_ended_them_at():
    """The engine ends a row at the tokenizer's EOS and the generation config's (Engine._eos_ids); the old paths
    at the generation config's only. Where the tokenizer's EOS is among those (every preset here), the two sets
    are the same, so the answers above cannot part at an EOS."""
    from transformers import AutoTokenizer, GenerationConfig

    from flanlab.models import PRESETS, load, preset_folder

    checked = 0
    for name, preset in PRESETS.items():
        if preset.untrained:
            lm = load(name, device="cpu")
            tokenizer_eos, config_eos = lm.tokenizer.eos_token_id, lm.model.generation_config.eos_token_id
        else:
            folder = preset_folder(preset)
            if not (folder / "generation_config.json").is_file():
                continue  # not converted here (the conftest's private cache, or not installed)
            tokenizer_eos = AutoTokenizer.from_pretrained(folder).eos_token_id
            config_eos = GenerationConfig.from_pretrained(folder).eos_token_id
        config_eos = set(config_eos if isinstance(config_eos, (list, tuple)) else [config_eos]) - {None}
        assert config_eos and tokenizer_eos in config_eos, (name, tokenizer_eos, config_eos)
        checked += 1
    assert checked >= 2
