"""Shared-prefix attention (flanlab.eval.prefix_attention): the rows of a generation batch read their common
prefix's keys/values from one block instead of a copy each. It must give the copied-cache path's outputs.

Tiny random models with weights scaled up (lively, see tests/test_engine.py), the real SmolLM2 tokenizer on a
tiny Llama for BPE merges across the prefix boundary, and the attention function against SDPA on random
tensors.
"""

from __future__ import annotations

import pytest
import torch

from flanlab.eval import kvcache, prefix_attention
from flanlab.eval.kvcache import common_prefix_length
from flanlab.eval.engine import Engine, GenerationSettings
from flanlab.eval.spec import EvalItem

pytestmark = pytest.mark.usefixtures("one_thread")

PREFIX = "Answer the questions.\n\nQ: 1 + 1?\nA: 2\n\nQ: 2 + 2?\nA: 4\n\n"
OTHER = "Other few-shot prefix, longer than the first one.\n\nQ: a\nA: b\n\n"
QUERIES = ["Q: 3 + 3?\nA:", "Q: what is ten plus twenty, and a longer question?\nA:", "Q: x\nA:",
           "Q: hello there\nA:", "Question: an item whose start merges with the prefix's newlines\nA:"]


def items(prefix=PREFIX, mode="cot"):
    return [EvalItem("test", "sub", mode, f"{prefix[:5]}{i}", prefix, q, "A") for i, q in enumerate(QUERIES)]


def spy_layouts(monkeypatch) -> list:
    """Record the cache layout of every generation batch ("shared" or "copied")."""
    seen = []
    real_shared, real_copied = kvcache.shared_prefix_cache, kvcache.batch_cache
    import flanlab.eval.engine as engine_module

    def shared(*a, **k):
        seen.append("shared")
        return real_shared(*a, **k)

    def copied(*a, **k):
        seen.append("copied")
        return real_copied(*a, **k)

    monkeypatch.setattr(engine_module, "shared_prefix_cache", shared)
    monkeypatch.setattr(engine_module, "batch_cache", copied)
    return seen


@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_shared_block_greedy_equals_copied_cache_and_plain(lively_tiny_llama, monkeypatch, batch_size):
    lm = lively_tiny_llama
    mixed = items() + items(OTHER) + items("")[:2]  # batches that span two prefixes, and rows without one
    settings = GenerationSettings(max_new_tokens=20, stop=("\n\n",))
    seen = spy_layouts(monkeypatch)
    shared = Engine(lm, batch_size=batch_size).generate(mixed, settings)
    assert "shared" in seen
    seen.clear()
    copied = Engine(lm, batch_size=batch_size, shared_attention=False).generate(mixed, settings)
    assert "shared" not in seen and "copied" in seen
    plain = Engine(lm, batch_size=batch_size, prefix_cache=False).generate(mixed, settings)
    assert shared == copied == plain
    assert len({o[0] for o in plain}) > 3  # outputs vary: the comparison means something
    assert lm.model.config._attn_implementation == "sdpa"  # switched back after every forward


def test_shared_block_sampling_equals_copied_cache(lively_tiny_llama):
    settings = GenerationSettings(max_new_tokens=12, num_samples=3, temperature=0.8, seed=5)
    its = items() + items(OTHER)
    assert Engine(lively_tiny_llama, batch_size=4).generate(its, settings) == \
        Engine(lively_tiny_llama, batch_size=4, shared_attention=False).generate(its, settings)


def test_rows_ending_early_leave_the_shared_batch_and_others_go_on(lively_tiny_llama):
    settings = GenerationSettings(max_new_tokens=30, stop=("Q",))
    engine = Engine(lively_tiny_llama, batch_size=5)
    engine.drop_fraction = 0.0  # drop every ended row at once
    ref = Engine(lively_tiny_llama, batch_size=5, prefix_cache=False)
    ref.drop_fraction = 2.0  # never
    assert engine.generate(items(), settings) == ref.generate(items(), settings)


def test_bpe_boundary_shared_block_equals_plain(monkeypatch):
    """BPE merges "\\n\\n" + "Question": rows reuse different lengths of the same prefix block."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from flanlab.models import PRESETS, LoadedModel, preset_folder

    folder = preset_folder(PRESETS["smollm2-135m-instruct"])
    if not (folder / "tokenizer.json").is_file():
        pytest.skip("SmolLM2 preset not converted here (tests/test_engine.py's bpe_llama converts it)")
    tok = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, pad_token_id=tok.pad_token_id,
                         eos_token_id=tok.eos_token_id, tie_word_embeddings=True, initializer_range=0.2)
    lm = LoadedModel(model=LlamaForCausalLM(config).eval(), tokenizer=tok, kind="causal", name="tiny-bpe-llama",
                     untrained=True)
    engine = Engine(lm, batch_size=5)
    p_ids = engine.bos + engine.encode(PREFIX)
    rows = items()[:3] + [EvalItem("test", "sub", "cot", "space", PREFIX, " a query after a space\nA:", "A")]
    reuse = {common_prefix_length(p_ids, engine.prompt_ids(it)) for it in rows}
    assert len(reuse) > 1, "the test needs rows that reuse different lengths of the prefix"
    settings = GenerationSettings(max_new_tokens=12)
    seen = spy_layouts(monkeypatch)
    assert engine.generate(rows, settings) == Engine(lm, batch_size=5, prefix_cache=False).generate(rows, settings)
    assert seen[0] == "shared"  # the cached engine (the plain one after it builds a copied, empty cache)


def attention_stubs(n_heads: int, n_kv: int, ks, vs):
    """(an attention module, a SharedPrefix) as transformers and the engine hand them to the attention function:
    layer 0 of a cache whose shared block is ks/vs (1, n_kv, P, D)."""

    class Module:
        layer_idx = 0
        num_key_value_groups = n_heads // n_kv
        is_causal = True

    class Layer:
        shared_keys, shared_values = ks, vs

    class Cache:
        layers = [Layer()]

    return Module(), prefix_attention.SharedPrefix(Cache())


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("n_heads,n_kv,q_len", [(4, 2, 1), (6, 6, 1), (8, 1, 1), (4, 2, 5), (9, 3, 7)])
def test_decoding_attention_equals_sdpa_on_the_concatenated_cache(n_heads, n_kv, q_len, fused, monkeypatch):
    """L queries a row (one: decoding; several: drafts) against [shared block | rows' columns] with a padding
    mask: the two-part attention equals SDPA over each row's concatenated keys, on the fused kernels (CPU fp32)
    and on the explicit path (other devices), including a row that sees none of the shared block and a mask
    that opens the whole block to every row."""
    g = torch.Generator().manual_seed(0)
    rows, p, t, d = 5, 11, 9, 16
    q = torch.randn(rows, n_heads, q_len, d, generator=g)
    ks, vs = torch.randn(1, n_kv, p, d, generator=g), torch.randn(1, n_kv, p, d, generator=g)
    kr, vr = torch.randn(rows, n_kv, t, d, generator=g), torch.randn(rows, n_kv, t, d, generator=g)
    mask = torch.rand(rows, 1, q_len, p + t, generator=g) > 0.3
    mask[:, :, :, -1] = True  # every query sees its row's newest token
    mask[1, :, :, :p] = False  # a row without a prefix
    open_block = mask.clone()
    open_block[:, :, :, :p] = True

    module, shared = attention_stubs(n_heads, n_kv, ks, vs)

    if not fused:  # the path of other devices and dtypes (and of PyTorch builds without the fused kernel)
        monkeypatch.setattr(prefix_attention, "FUSED_CPU", "no_such_op")
    for m in (mask, open_block):
        out, _ = prefix_attention.shared_prefix_attention(module, q, kr, vr, m, scaling=0.25, shared_prefix=shared)
        k = torch.cat([ks.expand(rows, -1, -1, -1), kr], 2).repeat_interleave(n_heads // n_kv, dim=1)
        v = torch.cat([vs.expand(rows, -1, -1, -1), vr], 2).repeat_interleave(n_heads // n_kv, dim=1)
        ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=0.25)  # (R, H, L, D)
        assert out.shape == (rows, q_len, n_heads, d)
        assert torch.allclose(out, ref.transpose(1, 2), atol=1e-5)


@pytest.mark.parametrize("q_len,limit", [(1, None), (4, None), (20, None), (20, 100)])
def test_rows_of_several_prefixes_read_only_their_own_span(q_len, limit, monkeypatch):
    """A batch spanning three prefix groups (the shared block holds them side by side): each row reads its own
    prefix's span, some a token less (BPE boundary), one row none. The fused path scores the rows of each span
    against that span only (one kernel call a span, no mask), and the result equals SDPA over each row's
    concatenated keys. Query tails longer than TWO_PART_MAX_QUERIES take the same path, and the SDPA path over
    the concatenated block where the fused masks would pass FUSED_MASK_LIMIT."""
    if limit:
        monkeypatch.setattr(prefix_attention, "FUSED_MASK_LIMIT", limit)
    g = torch.Generator().manual_seed(1)
    n_heads, n_kv, d, t = 6, 2, 16, 5
    spans = [(0, 7), (0, 6), (7, 12), (7, 12), (12, 20), (12, 19), None]  # per row: its columns of the block
    rows, p = len(spans), 20
    q = torch.randn(rows, n_heads, q_len, d, generator=g)
    ks, vs = torch.randn(1, n_kv, p, d, generator=g), torch.randn(1, n_kv, p, d, generator=g)
    kr, vr = torch.randn(rows, n_kv, t, d, generator=g), torch.randn(rows, n_kv, t, d, generator=g)
    mask = torch.zeros(rows, 1, q_len, p + t, dtype=torch.bool)
    for r, span in enumerate(spans):
        if span:
            mask[r, :, :, span[0]:span[1]] = True
        mask[r, :, :, p:] = torch.rand(q_len, t, generator=g) > 0.4
        mask[r, :, :, -1] = True

    module, shared = attention_stubs(n_heads, n_kv, ks, vs)

    calls = []
    flash = getattr(torch.ops.aten, prefix_attention.FUSED_CPU)

    class Ops:
        def __getattr__(self, name):
            assert name == prefix_attention.FUSED_CPU
            return lambda q, k, *a, **kw: calls.append(k.shape[2]) or flash(q, k, *a, **kw)

    masks = prefix_attention._fused_masks(mask, rows, n_heads // n_kv, q_len, p, t, torch.float32)
    if limit:
        assert masks is None
    else:
        assert [(s.start, s.end) for s in masks.segments] == [(0, 6), (0, 7), (7, 12), (12, 19), (12, 20)]
        assert all(s.mask is None for s in masks.segments)
    monkeypatch.setattr(prefix_attention.torch.ops, "aten", Ops())
    out, _ = prefix_attention.shared_prefix_attention(module, q, kr, vr, mask, scaling=0.3, shared_prefix=shared)
    assert sorted(calls) == ([] if limit else [5, 5, 6, 7, 7, 8])  # the rows' own columns, then each span
    k = torch.cat([ks.expand(rows, -1, -1, -1), kr], 2).repeat_interleave(n_heads // n_kv, dim=1)
    v = torch.cat([vs.expand(rows, -1, -1, -1), vr], 2).repeat_interleave(n_heads // n_kv, dim=1)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.3)  # (R, H, L, D)
    assert torch.allclose(out, ref.transpose(1, 2), atol=1e-5)


@pytest.mark.parametrize("q_len", [1, 3])
def test_no_mask_means_every_row_reads_all_and_is_derived_once(q_len, monkeypatch):
    """SDPA's mask builder hands the attention function None where nothing is masked (one query a row) or only
    causality is: the fused path reads the whole block (it raised KeyError for one query a row), equals SDPA over
    the concatenated keys, and derives its masks once per forward, not once per layer."""
    g = torch.Generator().manual_seed(2)
    n_heads, n_kv, rows, p, t, d = 4, 2, 2, 5, 4, 8
    q = torch.randn(rows, n_heads, q_len, d, generator=g)
    ks, vs = torch.randn(1, n_kv, p, d, generator=g), torch.randn(1, n_kv, p, d, generator=g)
    kr, vr = torch.randn(rows, n_kv, t, d, generator=g), torch.randn(rows, n_kv, t, d, generator=g)
    module, shared = attention_stubs(n_heads, n_kv, ks, vs)
    derived = []
    real = prefix_attention._fused_masks
    monkeypatch.setattr(prefix_attention, "_fused_masks", lambda *a: derived.append(1) or real(*a))
    for _ in range(2):  # two layers of one forward
        out, _ = prefix_attention.shared_prefix_attention(module, q, kr, vr, None, scaling=0.3, shared_prefix=shared)
    assert len(derived) == 1
    k = torch.cat([ks.expand(rows, -1, -1, -1), kr], 2).repeat_interleave(n_heads // n_kv, dim=1)
    v = torch.cat([vs.expand(rows, -1, -1, -1), vr], 2).repeat_interleave(n_heads // n_kv, dim=1)
    causal = torch.ones(q_len, p + t, dtype=torch.bool).tril(p + t - q_len)  # query l sees columns <= P+T-L+l
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=causal, scale=0.3)  # (R, H, L, D)
    assert torch.allclose(out, ref.transpose(1, 2), atol=1e-5)


def test_only_models_known_to_have_plain_attention_use_it(lively_tiny_llama, tiny_t5):
    assert Engine(lively_tiny_llama).shared_attention
    assert not Engine(lively_tiny_llama, prefix_cache=False).shared_attention
    assert not Engine(tiny_t5).shared_attention
    config = lively_tiny_llama.model.config
    before = config._attn_implementation
    try:
        config._attn_implementation = "eager"
        assert not Engine(lively_tiny_llama).shared_attention  # eager (or flash) attention chosen: left alone
    finally:
        config._attn_implementation = before


def test_attention_implementation_restored_after_a_failed_forward(lively_tiny_llama):
    engine = Engine(lively_tiny_llama, batch_size=2)

    class Boom(Exception):
        pass

    model = lively_tiny_llama.model
    real = model.forward

    def failing(*a, **k):
        if "shared_prefix" in k:
            raise Boom
        return real(*a, **k)

    model.forward = failing
    try:
        with pytest.raises(Boom):
            engine.generate(items()[:2], GenerationSettings(max_new_tokens=3))
    finally:
        del model.forward
    assert model.config._attn_implementation == "sdpa"


# ----------------------------------------------------------------------------------------------------------
# drafts checked in the same forward (flanlab.eval.speculative)


def test_prompt_lookup_takes_the_latest_earlier_occurrence_of_the_longest_ngram():
    from flanlab.eval.speculative import prompt_lookup

    assert prompt_lookup([1, 2, 3, 9, 9, 1, 2, 3, 7, 8, 1, 2, 3], k=2) == [7, 8]  # the latest of two
    assert prompt_lookup([9, 1, 2, 3, 4, 5, 2, 3, 6, 1, 2, 3], k=2) == [4, 5]  # the trigram before a later bigram
    assert prompt_lookup([2, 3, 6, 7, 1, 2, 3], k=2) == [6, 7]  # no earlier (1, 2, 3): the bigram (2, 3)
    assert prompt_lookup([1, 2, 3, 4], k=3) == []  # nothing repeats
    assert prompt_lookup([1, 2, 1, 2], k=0) == []
    assert prompt_lookup([4, 4, 4, 4], k=5) == [4]  # the occurrence just before the tail: one token follows it
    assert prompt_lookup([5, 8, 1, 2, 9, 2, 7, 5], k=2) == [8, 1]  # no earlier bigram: the last token alone
    assert prompt_lookup([1, 2, 3, 4, 5, 0, 2, 3, 4, 6, 1, 2, 3, 4], k=1) == [5]  # a 4-gram beats a later trigram
    assert prompt_lookup([1, 2, 3, 4, 5, 0, 2, 3, 4, 6, 1, 2, 3, 4], k=1, ngrams=(3, 2)) == [6]


def test_drafts_give_the_outputs_of_one_token_a_step_in_fewer_forwards(lively_tiny_llama, tiny_llama):
    """The lively model's outputs vary (drafts mostly wrong); the unscaled tiny model repeats itself, as real
    models' long CoT outputs often do (drafts right): same outputs either way, fewer forwards where they repeat."""
    its = items() + items(OTHER) + items("")
    settings = GenerationSettings(max_new_tokens=40, stop=("\n\n",))
    one = Engine(lively_tiny_llama, batch_size=4, draft_tokens=0)
    drafted = Engine(lively_tiny_llama, batch_size=4)
    assert drafted.generate(its, settings) == one.generate(its, settings) == \
        Engine(lively_tiny_llama, batch_size=4, prefix_cache=False).generate(its, settings)
    plain_steps, drafted = Engine(tiny_llama, batch_size=4, draft_tokens=0), Engine(tiny_llama, batch_size=4)
    repeated = plain_steps.generate(its, settings)
    assert drafted.generate(its, settings) == repeated
    assert any(len(o[0]) > 20 for o in repeated)
    assert drafted.forward_calls < 0.75 * plain_steps.forward_calls  # 86 against 162 when written
    for n in (1, 3, 10):  # any draft length, rows ending at max_new_tokens inside a draft
        short = GenerationSettings(max_new_tokens=7)
        assert Engine(lively_tiny_llama, batch_size=3, draft_tokens=n).generate(its, short) == \
            one.generate(its, short)


def test_drafts_end_rows_at_eos_and_max_new_tokens_as_one_token_a_step(lively_tiny_llama):
    from flanlab.eval.engine import Generation

    its = items() + items("")
    engine = Engine(lively_tiny_llama, batch_size=5)
    eos = next(iter(engine.eos_ids))
    free = Engine(lively_tiny_llama, batch_size=5, draft_tokens=0)
    outs = free.generate_detailed(its, GenerationSettings(max_new_tokens=16))
    # make a token the model often emits an end-of-sequence token: rows then end inside drafts
    ids = [engine.encode(o[0].text) for o in outs]
    common = max({t for row in ids for t in row[2:]}, key=lambda t: sum(row[2:].count(t) for row in ids))
    engine.eos_ids = free.eos_ids = {eos, common}
    settings = GenerationSettings(max_new_tokens=16)
    got, want = engine.generate_detailed(its, settings), free.generate_detailed(its, settings)
    assert got == want
    assert {g[0].stopped for g in got} >= {"eos"}
    assert all(isinstance(g[0], Generation) for g in got)


def test_a_negative_draft_length_is_refused(lively_tiny_llama):
    with pytest.raises(ValueError, match="draft_tokens"):
        Engine(lively_tiny_llama, draft_tokens=-1)
