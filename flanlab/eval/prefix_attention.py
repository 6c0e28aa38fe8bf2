"""Shared-prefix attention: the rows of a generation batch read their common few-shot prefix's keys/values once.

All items of a BBH subtask (or an MGSM language) start with the same few-shot prefix, 600-1,500 tokens, against
100-200 tokens of their own. The engine computes that prefix's KV cache once (flanlab.eval.engine); before this
module, it then copied it into every row of the batch, and every decoding step read it once per row: at batch
32 attention took half of a SmolLM2 decoding step on CPU, almost all of it over the prefix columns.

Here the cache of a batch is laid out as columns [shared | rows' own]: the shared block (1, H_kv, P, D) holds
the prefixes of the batch's items side by side (one prefix usually; two where a batch spans two groups), the
rows' block (R, H_kv, T, D) holds each row's query tail and its generated tokens (SharedPrefixLayer). A row's
attention mask opens its own prefix's columns of the shared block (up to where its tokenization agrees with
the prefix's; see flanlab.eval.engine) and its own columns. The attention of a decoding step (one query a row)
is then computed in two parts that meet in one softmax:
  - shared block: all rows' queries at once against the P prefix keys, per KV head ((H_kv, R*G, D) against
    (H_kv, P, D), G query heads per KV head): the prefix is read once a step, not R times;
  - rows' block: each row's queries against its own T keys ((R, H_kv, G, D) against (R, H_kv, T, D)).
  On CPU in fp32 each part is one call of PyTorch's fused flash-attention kernel, which also returns the
  log-sum-exp of each query's scores; the two outputs are merged with weights exp(lse_part - max), as one
  softmax over [shared | own] would weigh them (measured on bench/generate_vs_lmeval.py's 40 items: decoding
  attention 13.7 s -> 10.3 s, the whole run 58.8 s -> 56.0 s). Elsewhere (GPU, bf16) the scores of both parts
  are concatenated, masked and softmaxed together in fp32 in plain tensor operations.
A decoding step that checks drafted tokens (flanlab.eval.speculative) has a few queries a row; they take the same
two-part path. A forward of more tokens a row (the query tails) concatenates the shared block in front of each
row (one transient copy per layer, as the old layout held for the whole batch) and runs SDPA on it.

It is exact attention in another order of summation: outputs equal the copied-cache path's to fp32 rounding
(tests compare greedy outputs with the prefix cache off, on/off, batch 1 vs N). Used only where it is known to
be plain attention: causal models of ELIGIBLE_MODEL_TYPES whose attention is "sdpa" and that have no
sliding-window layers; every other model keeps the copied-cache path.

How it plugs into transformers: the function is registered under NAME in transformers' AttentionInterface
(and SDPA's mask builder under NAME in AttentionMaskInterface) when first used (register(): explicit, no
import side effect); `attention_as(model, NAME)` switches the model's config to it for the engine's own forward
calls and back; the shared blocks reach the function through the forward's `shared_prefix` keyword, which
transformers passes down to every attention call (a SharedPrefix naming the cache whose layers hold them).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

NAME = "flanlab_shared_prefix"
TWO_PART_MAX_QUERIES = 16  # forwards of at most this many tokens a row (decoding, drafts) take the two-part path
# PyTorch's CPU flash-attention kernel, which returns each query's log-sum-exp with its output (a private op: where
# a PyTorch build lacks it, the explicit path is taken)
FUSED_CPU = "_scaled_dot_product_flash_attention_for_cpu"
# model types whose attention modules are plain scaled-dot-product attention over (query, key, value, mask)
# with a `layer_idx`: no softcapping, no sinks, no ALiBi, no sliding windows (checked separately)
ELIGIBLE_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3"})


@dataclass(frozen=True)
class SharedPrefix:
    """What the attention function needs besides its arguments: the cache whose layers hold the shared blocks."""

    cache: object  # a transformers Cache whose layers are flanlab.eval.kvcache.SharedPrefixLayer
    memo: dict = field(default_factory=dict)  # what one forward's layers share (the masks derived from its mask)


def eligible(model) -> bool:
    config = model.config
    return (getattr(config, "model_type", None) in ELIGIBLE_MODEL_TYPES
            and getattr(config, "_attn_implementation", None) == "sdpa"
            and not getattr(config, "is_encoder_decoder", False))


def register() -> None:
    """Make NAME known to transformers (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, shared_prefix_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)


@contextmanager
def attention_as(model, name: str):
    """The model's attention implementation set to `name` inside the block, restored after it."""
    config = model.config
    before = config._attn_implementation
    config._attn_implementation = name
    try:
        yield
    finally:
        config._attn_implementation = before


def shared_prefix_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None,
                            shared_prefix: SharedPrefix | None = None, **kwargs):
    """transformers' attention-function signature; query (R, Hq, L, D), key/value (R, Hkv, T, D) = the rows'
    own columns, attention_mask (R, 1, L, P+T) bool (SDPA's, or the decoding loop's own 4D mask) or None.
    Returns ((R, L, Hq, D), None)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if shared_prefix is None:  # a forward without shared blocks: plain SDPA
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    layer = shared_prefix.cache.layers[module.layer_idx]
    ks, vs = layer.shared_keys, layer.shared_values  # (1, Hkv, P, D); P may be 0 (rows without a prefix)
    n_rows, n_heads, q_len, dim = query.shape
    if q_len > TWO_PART_MAX_QUERIES and ks.shape[2] == 0:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    if q_len > TWO_PART_MAX_QUERIES:  # the rows' query tails: the shared block in front of every row, then SDPA
        k = torch.cat([ks.expand(n_rows, -1, -1, -1), key], dim=2)  # (R, Hkv, P+T, D)
        v = torch.cat([vs.expand(n_rows, -1, -1, -1), value], dim=2)  # (R, Hkv, P+T, D)
        return sdpa_attention_forward(module, query, k, v, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
    n_kv = ks.shape[1]
    g = n_heads // n_kv  # query heads per KV head (head h reads KV head h // g)
    scale = scaling if scaling is not None else dim ** -0.5
    q = query.reshape(n_rows, n_kv, g * q_len, dim)  # (R, Hkv, G*L, D): head h = kv * G + i, query i * L + l
    if attention_mask is None and q_len > 1:  # SDPA's mask builder skipped a purely causal mask: make it
        width = ks.shape[2] + key.shape[2]
        cols = torch.arange(width, device=query.device)  # (P+T,)
        attention_mask = cols[None, :] <= (width - q_len + torch.arange(q_len, device=query.device))[:, None]
        attention_mask = attention_mask[None, None]  # (1, 1, L, P+T)
    if query.device.type == "cpu" and query.dtype == torch.float32 and hasattr(torch.ops.aten, FUSED_CPU):
        out = _two_part_fused(q, ks, vs, key, value, attention_mask, g, scale, shared_prefix.memo)
    else:
        out = _two_part_explicit(q, ks, vs, key, value, attention_mask, g, scale)
    return out.reshape(n_rows, n_heads, q_len, dim).transpose(1, 2), None  # (R, L, Hq, D)


def _float_masks(attention_mask, n_rows: int, g: int, q_len: int, p: int, dtype):
    """The (shared, own) additive masks of the fused path from the bool/additive mask (R or 1, 1, L', P+T):
    shared (1, 1, R*G*L, P) or None where every query sees the whole block, own (R, 1, G*L, T) or None; a masked
    column gets the float minimum, not -inf (a query that sees nothing keeps finite values and a log-sum-exp of
    about the float minimum, which weighs nothing when the two parts are merged)."""
    if attention_mask is None:
        return None, None
    mask = attention_mask[:, :, -q_len:, :]  # (R|1, 1, L, P+T): the queries' rows of the mask
    if mask.dtype == torch.bool:
        add = torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, torch.finfo(dtype).min)
    else:
        add = mask.to(dtype).clamp_min(torch.finfo(dtype).min)
    add = add.expand(n_rows, 1, q_len, add.shape[-1])  # (R, 1, L, P+T)
    shared = own = None
    if p:
        block = add[..., :p]  # (R, 1, L, P)
        if bool((block != 0).any()):
            shared = block[:, :, None].expand(n_rows, 1, g, q_len, p).reshape(1, 1, n_rows * g * q_len, p)
    rows = add[..., p:]  # (R, 1, L, T)
    if bool((rows != 0).any()):
        own = rows[:, :, None].expand(n_rows, 1, g, q_len, rows.shape[-1]).reshape(n_rows, 1, g * q_len, -1)
    return shared, own


def _two_part_fused(q, ks, vs, key, value, attention_mask, g: int, scale: float, memo: dict):
    """Two-part attention on fused kernels (fp32 on CPU): PyTorch's flash-attention kernel once over the shared
    block (all rows' queries as one sequence per KV head) and once over the rows' own columns, each returning its
    log-sum-exp; the two results merged as one softmax would weigh them. q (R, Hkv, G*L, D), ks/vs (1, Hkv, P, D),
    key/value (R, Hkv, T, D). Returns (R, Hkv, G*L, D)."""
    n_rows, n_kv, gl, dim = q.shape
    p, q_len = ks.shape[2], gl // g
    flash = getattr(torch.ops.aten, FUSED_CPU)
    masks = memo.get("masks")  # the same mask reaches every layer of a forward: derive its parts once
    if masks is None or masks[0] is not attention_mask:
        masks = (attention_mask, *_float_masks(attention_mask, n_rows, g, q_len, p, q.dtype))
        memo["masks"] = masks
    m_shared, m_own = masks[1], masks[2]
    out_rows, lse_rows = flash(q, key, value, 0.0, False, attn_mask=m_own, scale=scale)[:2]  # (R, Hkv, GL, D), (R, Hkv, GL)
    if p == 0:
        return out_rows
    q_shared = q.transpose(0, 1).reshape(1, n_kv, n_rows * gl, dim)  # (1, Hkv, R*G*L, D)
    out_s, lse_s = flash(q_shared, ks, vs, 0.0, False, attn_mask=m_shared, scale=scale)[:2]  # (1, Hkv, R*GL, D)
    out_s = out_s.view(n_kv, n_rows, gl, dim).transpose(0, 1)  # (R, Hkv, GL, D)
    lse_s = lse_s.view(n_kv, n_rows, gl).transpose(0, 1)  # (R, Hkv, GL)
    top = torch.maximum(lse_s, lse_rows)  # (R, Hkv, GL)
    w_s, w_rows = torch.exp(lse_s - top)[..., None], torch.exp(lse_rows - top)[..., None]  # (R, Hkv, GL, 1)
    return (out_s * w_s + out_rows * w_rows) / (w_s + w_rows)  # (R, Hkv, GL, D)


def _two_part_explicit(q, ks, vs, key, value, attention_mask, g: int, scale: float):
    """Two-part attention in plain tensor operations (any device and dtype): scores against both parts,
    concatenated, masked and softmaxed together in fp32. Shapes as _two_part_fused."""
    n_rows, n_kv, gl, dim = q.shape
    p, t, q_len = ks.shape[2], key.shape[2], gl // g
    q_shared = q.transpose(0, 1).reshape(n_kv, n_rows * gl, dim)  # (Hkv, R*G*L, D)
    s_shared = torch.bmm(q_shared, ks[0].transpose(1, 2))  # (Hkv, R*G*L, P)
    s_shared = s_shared.view(n_kv, n_rows, gl, p).transpose(0, 1)  # (R, Hkv, G*L, P)
    s_rows = torch.matmul(q, key.transpose(-1, -2))  # (R, Hkv, G*L, T)
    scores = torch.cat([s_shared, s_rows], dim=-1).float() * scale  # (R, Hkv, G*L, P+T)
    scores = scores.view(n_rows, n_kv, g, q_len, p + t)  # (R, Hkv, G, L, P+T)
    if attention_mask is not None:
        mask = attention_mask[:, :, -q_len:, :].unsqueeze(2)  # (R, 1, 1, L, P+T): the queries' rows of the mask
        if mask.dtype == torch.bool:  # the float minimum, not -inf: a query that sees nothing (left padding)
            # gets finite weights, so no NaN reaches the keys/values its row writes at masked columns
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + mask.float()
    weights = torch.softmax(scores, dim=-1).to(q.dtype).view(n_rows, n_kv, gl, p + t)  # (R, Hkv, G*L, P+T)
    w_shared = weights[..., :p].transpose(0, 1).reshape(n_kv, n_rows * gl, p)  # (Hkv, R*G*L, P)
    out = torch.bmm(w_shared, vs[0]).view(n_kv, n_rows, gl, dim).transpose(0, 1)  # (R, Hkv, G*L, D)
    return out + torch.matmul(weights[..., p:], value)  # (R, Hkv, G*L, D)
