"""Packing is exact: per-example losses of a packed batch equal the same examples run unpacked (fp32)."""

from __future__ import annotations

import random

import pytest
import torch

from flanlab.train.data import tokenize_pairs
from flanlab.train.loss import SFTLoss
from flanlab.train.packing import IGNORE, collate, make_row, pack


def _pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    words = "alpha beta gamma delta kappa sigma omega red green blue seven eleven".split()
    pairs = []
    for _ in range(n):
        q = " ".join(rng.choice(words) for _ in range(rng.randint(1, 12)))
        a = " ".join(rng.choice(words) for _ in range(rng.randint(1, 5)))
        pairs.append((f"Question: {q}?", a))
    return pairs


def _per_example(loss_module, rows, kind, pad_id, packed):
    """{(row, segment): summed loss} -> listed in row-major example order."""
    batch = collate(rows, kind, pad_id, packed=packed)
    with torch.no_grad():
        losses, owner = loss_module(batch, per_token=True)
    sums: dict[int, float] = {}
    for value, key in zip(losses.tolist(), owner.tolist()):
        sums[key] = sums.get(key, 0.0) + value
    return [sums[k] for k in sorted(sums)]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("name", ["tiny-llama", "tiny-t5"])
def test_packed_losses_equal_unpacked(name, attn, request):
    lm = request.getfixturevalue(name.replace("-", "_"))
    kind = lm.kind
    lm.model.set_attn_implementation(attn)  # sdpa takes the boolean 4D mask, eager an additive float one
    torch.manual_seed(1)
    with torch.no_grad():  # the tiny models are random; make their outputs depend strongly on context
        for p in lm.model.parameters():
            p.mul_(3.0)
    data = tokenize_pairs(_pairs(24), lm.tokenizer, kind, max_input_len=64, max_target_len=24)
    start = getattr(lm.model.config, "decoder_start_token_id", None)
    capacity = (160,) if kind == "causal" else (128, 64)
    groups = pack(list(range(len(data))), data.lengths(), capacity, max_open=4)
    assert len(groups) < len(data) / 2, "the test needs several examples per packed row"
    packed_rows = [make_row(kind, [(data.first[i], data.second[i]) for i in g], start) for g in groups]
    single_rows = [make_row(kind, [(data.first[i], data.second[i])], start) for g in groups for i in g]

    loss = SFTLoss(lm.model, kind).eval()
    pad = lm.tokenizer.pad_token_id
    packed = _per_example(loss, packed_rows, kind, pad, packed=True)
    # unpacked reference: the ordinary padded-batch path of transformers, in a few batches
    unpacked = []
    for i in range(0, len(single_rows), 7):
        unpacked += _per_example(loss, single_rows[i : i + 7], kind, pad, packed=False)
    assert len(packed) == len(unpacked) == len(data)
    for a, b in zip(packed, unpacked):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-4)
    # and the losses are not trivially equal: examples differ
    assert len({round(v, 3) for v in unpacked}) > len(unpacked) // 2
    # restore the shared fixture
    with torch.no_grad():
        for p in lm.model.parameters():
            p.div_(3.0)
    lm.model.set_attn_implementation("sdpa")


def test_causal_fast_head_equals_model_forward(tiny_llama):
    """The head-only-at-targets path gives the model's own loss (transformers' labels= loss) exactly."""
    data = tokenize_pairs(_pairs(6, seed=3), tiny_llama.tokenizer, "causal", 64, 24)
    rows = [make_row("causal", [(a, b)]) for a, b in zip(data.first, data.second)]
    batch = collate(rows, "causal", tiny_llama.tokenizer.pad_token_id, packed=False)
    module = SFTLoss(tiny_llama.model, "causal").eval()
    assert module.fast_head
    with torch.no_grad():
        ours = module(batch) / (batch["labels"][:, 1:] != IGNORE).sum()
        theirs = tiny_llama.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                  labels=batch["labels"]).loss
    assert float(ours) == pytest.approx(float(theirs), rel=1e-6)


def test_pack_respects_capacity_and_keeps_every_example():
    lengths = [(n,) for n in [5, 9, 3, 7, 10, 1, 4, 8, 2, 6] * 5]
    rows = pack(list(range(len(lengths))), lengths, (12,), max_open=3)
    assert sorted(i for r in rows for i in r) == list(range(len(lengths)))
    assert all(sum(lengths[i][0] for i in r) <= 12 for r in rows)
    with pytest.raises(ValueError, match="capacity"):
        pack([0], [(13,)], (12,))


def test_rows_never_predict_across_examples(tiny_llama):
    """A causal packed row: labels of prompts are ignored and position ids restart per example."""
    row = make_row("causal", [([5, 6, 7], [8, 1]), ([9], [10, 11, 1])])
    assert row.labels == [IGNORE, IGNORE, IGNORE, 8, 1, IGNORE, 10, 11, 1]
    assert row.position_ids == [0, 1, 2, 3, 4, 0, 1, 2, 3]
    assert row.segment_ids == [1, 1, 1, 1, 1, 2, 2, 2, 2]
    s2s = make_row("seq2seq", [([5, 6, 1], [8, 1]), ([9, 1], [10, 11, 1])], decoder_start_id=0)
    assert s2s.decoder_input_ids == [0, 8, 0, 10, 11]
    assert s2s.labels == [8, 1, 10, 11, 1]
    assert s2s.decoder_segment_ids == [1, 1, 2, 2, 2]


def _tiny_gemma3(softcap=None, sliding_window=8):
    """An UNTRAINED random Gemma 3 text model built in code (2 layers: one sliding-window, one full attention)."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    config = Gemma3TextConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=sliding_window,
                              layer_types=["sliding_attention", "full_attention"], final_logit_softcapping=softcap,
                              pad_token_id=0, bos_token_id=2, eos_token_id=1)
    return Gemma3ForCausalLM(config).eval()


def test_gemma3_fast_head_equals_model_forward(tiny_llama):
    """Gemma 3 (the gemma3-270m preset's architecture) takes the head-only-at-targets path and gives the model's own
    loss; with a logit soft-cap configured it falls back to the model's forward."""
    from flanlab.train.loss import has_plain_head

    model = _tiny_gemma3()
    assert has_plain_head(model.config) and not has_plain_head(_tiny_gemma3(softcap=30.0).config)
    data = tokenize_pairs(_pairs(6, seed=4), tiny_llama.tokenizer, "causal", 64, 24)  # byte ids < 300
    rows = [make_row("causal", [(a, b)]) for a, b in zip(data.first, data.second)]
    batch = collate(rows, "causal", 0, packed=False)
    module = SFTLoss(model, "causal").eval()
    assert module.fast_head
    with torch.no_grad():
        ours = module(batch) / (batch["labels"][:, 1:] != IGNORE).sum()
        theirs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
    assert float(ours) == pytest.approx(float(theirs), rel=1e-5)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_gemma3_packed_losses_equal_unpacked(attn, tiny_llama):
    """Packing is exact for Gemma 3 too, whose sliding-window layers get the packed block mask (rows longer
    than the window, so the window matters)."""
    model = _tiny_gemma3(sliding_window=16)
    model.set_attn_implementation(attn)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    data = tokenize_pairs(_pairs(16, seed=5), tiny_llama.tokenizer, "causal", 64, 24)
    groups = pack(list(range(len(data))), data.lengths(), (160,), max_open=4)
    assert len(groups) < len(data) / 2
    packed_rows = [make_row("causal", [(data.first[i], data.second[i]) for i in g]) for g in groups]
    single_rows = [make_row("causal", [(data.first[i], data.second[i])]) for g in groups for i in g]
    loss = SFTLoss(model, "causal").eval()
    packed = _per_example(loss, packed_rows, "causal", 0, packed=True)
    unpacked = []
    for i in range(0, len(single_rows), 5):
        unpacked += _per_example(loss, single_rows[i : i + 5], "causal", 0, packed=False)
    assert len(packed) == len(unpacked) == len(data)
    for a, b in zip(packed, unpacked):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-4)
