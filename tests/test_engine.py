"""The evaluation engine: every fast path (prefix KV cache, batching, encoder-once ranking) against the plain one.

Tiny random models with their weights scaled up ("lively": varied outputs rather than one repeated byte),
the byte-level tiny models and, for BPE merges across the prefix/query boundary, a tiny Llama with the real
SmolLM2 tokenizer (skipped where the preset is not converted). One slow test on the real SmolLM2 preset.
"""

from __future__ import annotations

import pytest
import torch

from flanlab.eval.engine import Engine, GenerationSettings, cut_at_stop
from flanlab.eval.kvcache import common_prefix_length
from flanlab.eval.spec import EvalItem

TOL = 1e-4  # fp32


# tiny matmuls gain nothing from threads, and the CPU is shared with other test files
pytestmark = pytest.mark.usefixtures("one_thread")


def lively(name: str, scale: float = 4.0):
    from flanlab.models import load

    lm = load(name, device="cpu")
    with torch.no_grad():
        for p in lm.model.parameters():
            p.mul_(scale)
    return lm


@pytest.fixture(scope="module")
def llama():
    return lively("tiny-llama")


@pytest.fixture(scope="module")
def t5():
    return lively("tiny-t5", scale=1.0)  # log-probs of ordinary size for the 1e-4 comparison


@pytest.fixture(scope="module")
def t5_lively():
    return lively("tiny-t5", scale=3.0)  # varied generations


@pytest.fixture(scope="module")
def bpe_llama():
    """A tiny random Llama with the SmolLM2 BPE tokenizer, whose merges cross the prefix/query boundary."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from flanlab.models import PRESETS, LoadedModel, convert_gguf_preset, preset_available, preset_folder

    preset = PRESETS["smollm2-135m-instruct"]
    folder = preset_folder(preset)
    if not (folder / "tokenizer.json").is_file():  # a fresh cache: convert once (~25 s; the slow tests reuse it)
        ok, why = preset_available(preset)
        if not ok:
            pytest.skip(f"SmolLM2 preset not available: {why}")
        folder = convert_gguf_preset(preset, verbose=False)
    tok = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, pad_token_id=tok.pad_token_id,
                         eos_token_id=tok.eos_token_id, tie_word_embeddings=True, initializer_range=0.2)
    model = LlamaForCausalLM(config).eval()
    return LoadedModel(model=model, tokenizer=tok, kind="causal", name="tiny-bpe-llama", untrained=True)


PREFIX = "Answer the questions.\n\nQ: 1 + 1?\nA: 2\n\nQ: 2 + 2?\nA: 4\n\n"
QUERIES = ["Q: 3 + 3?\nA:", "Q: what is ten plus twenty, and a longer question?\nA:", "Q: x\nA:",
           "Q: hello there\nA:", "Question: an item whose start merges with the prefix's newlines\nA:"]


def make_items(choices=(" A", " B", " C"), mode="direct", prefix=PREFIX, queries=QUERIES):
    return [EvalItem("test", "sub", mode, str(i), prefix, q, "A", choices=choices) for i, q in enumerate(queries)]


def reference_logprobs(engine: Engine, item: EvalItem) -> list[float]:
    """Each choice scored by its own full forward over context + continuation, one row, no cache."""
    ctx, conts = engine.rank_ids(item)
    model = engine.model
    scores = []
    for c in conts:
        with torch.inference_mode():
            if engine.kind == "causal":
                logp = torch.log_softmax(model(input_ids=torch.tensor([ctx + c])).logits[0].float(), -1)  # (T, V)
                scores.append(sum(float(logp[len(ctx) - 1 + t, tok]) for t, tok in enumerate(c)))
            else:
                out = model(input_ids=torch.tensor([ctx]), labels=torch.tensor([c]))
                logp = torch.log_softmax(out.logits[0].float(), -1)  # (len(c), V)
                scores.append(sum(float(logp[t, tok]) for t, tok in enumerate(c)))
    return scores


def hf_greedy(lm, engine: Engine, item: EvalItem, settings: GenerationSettings) -> str:
    """transformers' own greedy generate on one unpadded prompt, cut at the stop strings."""
    ids = torch.tensor([engine.prompt_ids(item)])
    with torch.inference_mode():
        out = lm.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                max_new_tokens=settings.max_new_tokens, pad_token_id=engine.pad_id)
    new = out[0, ids.shape[1]:] if lm.kind == "causal" else out[0]
    return cut_at_stop(lm.tokenizer.decode(new, skip_special_tokens=True), settings.stop)


# ----------------------------------------------------------------------------------------------------------


def test_helpers():
    assert cut_at_stop("abc\n\nQ: next", ("\n\nQ:", "zz")) == "abc"
    assert cut_at_stop("a.b\n", ("\n", ".")) == "a"
    assert cut_at_stop("nothing", ("\n",)) == "nothing"
    assert common_prefix_length([1, 2, 3], [1, 2, 4, 5]) == 2
    assert common_prefix_length([], [1]) == 0


def test_plan_keeps_prefix_groups_together_and_covers_every_item(llama):
    items = make_items() + make_items(prefix="Other prefix.\n\n") + make_items(prefix="")
    engine = Engine(llama, batch_size=2)
    batches = engine.plan(items)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(items)))
    assert all(len(b) <= 2 for b in batches) and len(batches) == 8
    prefixes = [items[i].prefix for i in flat]
    assert prefixes == sorted(prefixes, key=[PREFIX, "Other prefix.\n\n", ""].index)  # groups stay contiguous
    assert engine.plan(items) == batches  # deterministic


def test_batches_mixing_prefixes_equal_plain(llama):
    items = make_items(choices=(" A", " B", " two tokens")) + make_items(prefix="Other prefix.\n\n")[:2] + \
        make_items(prefix="")[:2]
    settings = GenerationSettings(max_new_tokens=16, stop=("\n",))
    engine = Engine(llama, batch_size=4)
    assert any(len({items[i].prefix for i in b}) > 1 for b in engine.plan(items))
    assert engine.generate(items, settings) == Engine(llama, batch_size=4, prefix_cache=False).generate(items, settings)
    mixed_rank = [it for it in items if it.choices]
    ranked = Engine(llama, batch_size=4).rank(mixed_rank + [EvalItem("test", "s", "direct", "x", "Other prefix.\n\n",
                                                                     "Q: y\nA:", "A", choices=(" A", " B"))])
    ref = Engine(llama)
    for r, it in zip(ranked, mixed_rank):
        assert r.logprobs == pytest.approx(reference_logprobs(ref, it), abs=TOL)


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_causal_greedy_cached_equals_plain_and_transformers(llama, batch_size):
    items = make_items()
    settings = GenerationSettings(max_new_tokens=24, stop=("\n",))
    cached = Engine(llama, batch_size=batch_size, prefix_cache=True).generate(items, settings)
    plain = Engine(llama, batch_size=batch_size, prefix_cache=False).generate(items, settings)
    assert cached == plain
    engine = Engine(llama)
    assert [o[0] for o in plain] == [hf_greedy(llama, engine, it, settings) for it in items]
    assert len({o[0] for o in plain}) > 1  # the model is lively enough for the comparison to mean something


def test_causal_rank_cached_equals_plain_and_reference(llama):
    items = make_items(choices=(" A", " B", " yes, a longer choice", " no"))
    cached = Engine(llama, batch_size=3, prefix_cache=True).rank(items)
    plain = Engine(llama, batch_size=3, prefix_cache=False).rank(items)
    ref_engine = Engine(llama)
    for c, p, it in zip(cached, plain, items):
        ref = reference_logprobs(ref_engine, it)
        assert c.logprobs == pytest.approx(ref, abs=TOL)
        assert p.logprobs == pytest.approx(ref, abs=TOL)
        assert c.best == p.best == max(range(len(ref)), key=lambda j: ref[j])
        assert c.num_tokens == (2, 2, len(" yes, a longer choice"), 3)  # byte-level tokens


def test_single_token_choices_take_one_forward_per_batch(llama):
    items = make_items(choices=("A", "B", "C", "D"))  # one byte each
    engine = Engine(llama, batch_size=8, prefix_cache=True)
    engine.rank(items)
    assert engine.forward_calls == 2  # the prefix once, then all five contexts in one batch; no choice forward


def test_bpe_boundary_cached_equals_plain(bpe_llama):
    """BPE merges "\\n\\n" + "Question" differently from "\\n\\n" alone: the cache must be cut before it."""
    tok = bpe_llama.tokenizer
    engine = Engine(bpe_llama, batch_size=4)
    p_ids = engine.bos + engine.encode(PREFIX)
    merged = [common_prefix_length(p_ids, engine.prompt_ids(it)) < len(p_ids) for it in make_items()]
    assert any(merged), "the test needs an item whose tokens merge across the boundary"
    items = make_items(choices=(" A", " B", " maybe so"))
    settings = GenerationSettings(max_new_tokens=12, stop=("\n",))
    assert Engine(bpe_llama, batch_size=4).generate(items, settings) == \
        Engine(bpe_llama, batch_size=4, prefix_cache=False).generate(items, settings)
    cached = Engine(bpe_llama, batch_size=4).rank(items)
    for c, it in zip(cached, items):
        assert c.logprobs == pytest.approx(reference_logprobs(engine, it), abs=TOL)
    assert tok is not None


def test_stop_strings_cut_output_and_end_the_batch_early(llama):
    items = make_items()[:1]
    free_engine = Engine(llama)
    free = free_engine.generate(items, GenerationSettings(max_new_tokens=40))[0][0]
    stop_char = free[len(free) // 2]  # a character the model emits half-way through its free output
    engine = Engine(llama)
    out = engine.generate(items, GenerationSettings(max_new_tokens=40, stop=(stop_char,)))[0][0]
    assert out == free[: free.index(stop_char)]
    assert engine.forward_calls < free_engine.forward_calls  # it stopped there instead of running on


def test_sampling_is_seeded_per_item_not_per_batch(llama):
    items = make_items()
    settings = GenerationSettings(max_new_tokens=10, num_samples=3, temperature=1.0, seed=7)
    a = Engine(llama, batch_size=1).generate(items, settings)
    b = Engine(llama, batch_size=8).generate(items, settings)
    assert a == b
    assert all(len(s) == 3 for s in a)
    assert any(len(set(s)) > 1 for s in a)  # samples differ
    c = Engine(llama, batch_size=8).generate(items, GenerationSettings(max_new_tokens=10, num_samples=3, temperature=1.0, seed=8))
    assert c != a


def test_seq2seq_rank_encoder_once_equals_reference(t5):
    items = make_items(choices=(" A", " B", " a longer option"))
    engine = Engine(t5, batch_size=4)
    assert not engine.prefix_cache
    results = engine.rank(items)
    for r, it in zip(results, items):
        assert r.logprobs == pytest.approx(reference_logprobs(engine, it), abs=TOL)
    assert engine.forward_calls == 2 * 2  # two batches: encoder once + decoder once over all (item, choice) rows


def test_seq2seq_generation_batched_equals_transformers(t5_lively):
    items = make_items()
    settings = GenerationSettings(max_new_tokens=16, stop=("\n",))
    batched = Engine(t5_lively, batch_size=8).generate(items, settings)
    engine = Engine(t5_lively)
    assert [o[0] for o in batched] == [hf_greedy(t5_lively, engine, it, settings) for it in items]
    assert len({o[0] for o in batched}) > 1


@pytest.mark.slow
def test_smollm2_cached_equals_plain(smollm2):
    """The real model on MMLU-shaped prompts: prefix cache vs plain path, log-likelihoods and greedy outputs."""
    prefix = ("The following are multiple choice questions (with answers) about astronomy.\n\n"
              "What is the closest star to Earth?\nA. Sirius\nB. The Sun\nC. Proxima Centauri\nD. Vega\nAnswer: B\n\n"
              "Which planet is known as the red planet?\nA. Venus\nB. Jupiter\nC. Mars\nD. Saturn\nAnswer: C\n\n")
    queries = ["How many moons does Mars have?\nA. 0\nB. 1\nC. 2\nD. 3\nAnswer:",
               "Which is the largest planet?\nA. Jupiter\nB. Earth\nC. Mars\nD. Mercury\nAnswer:",
               "What is a light-year a unit of?\nA. time\nB. distance\nC. speed\nD. brightness\nAnswer:"]
    items = make_items(choices=(" A", " B", " C", " D"), prefix=prefix, queries=queries)
    cached = Engine(smollm2, batch_size=3).rank(items)
    plain = Engine(smollm2, batch_size=3, prefix_cache=False).rank(items)
    for c, p in zip(cached, plain):
        assert c.logprobs == pytest.approx(p.logprobs, abs=TOL)
        assert c.best == p.best
    settings = GenerationSettings(max_new_tokens=6, stop=("\n",))
    assert Engine(smollm2, batch_size=3).generate(items, settings) == \
        Engine(smollm2, batch_size=3, prefix_cache=False).generate(items, settings)
