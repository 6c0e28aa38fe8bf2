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
  - shared block: one matrix product per KV head, all rows' queries at once against the P prefix keys
    ((H_kv, R*G, D) @ (H_kv, D, P), G query heads per KV head): the prefix is read once a step, not R times;
  - rows' block: each row's queries against its own T keys ((R, H_kv, G, D) @ (R, H_kv, D, T));
  scores concatenated, masked, softmaxed together (fp32), and the two weighted sums of values added.
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
from dataclasses import dataclass

import torch

NAME = "flanlab_shared_prefix"
TWO_PART_MAX_QUERIES = 16  # forwards of at most this many tokens a row (decoding, drafts) take the two-part path
# model types whose attention modules are plain scaled-dot-product attention over (query, key, value, mask)
# with a `layer_idx`: no softcapping, no sinks, no ALiBi, no sliding windows (checked separately)
ELIGIBLE_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3"})


@dataclass(frozen=True)
class SharedPrefix:
    """What the attention function needs besides its arguments: the cache whose layers hold the shared blocks."""

    cache: object  # a transformers Cache whose layers are flanlab.eval.kvcache.SharedPrefixLayer


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
    n_kv, p, t = ks.shape[1], ks.shape[2], key.shape[2]
    g = n_heads // n_kv  # query heads per KV head (head h reads KV head h // g)
    scale = scaling if scaling is not None else dim ** -0.5
    q = query.reshape(n_rows, n_kv, g * q_len, dim)  # (R, Hkv, G*L, D)
    q_shared = q.transpose(0, 1).reshape(n_kv, n_rows * g * q_len, dim)  # (Hkv, R*G*L, D)
    s_shared = torch.bmm(q_shared, ks[0].transpose(1, 2))  # (Hkv, R*G*L, P)
    s_shared = s_shared.view(n_kv, n_rows, g * q_len, p).transpose(0, 1)  # (R, Hkv, G*L, P)
    s_rows = torch.matmul(q, key.transpose(-1, -2))  # (R, Hkv, G*L, T)
    scores = torch.cat([s_shared, s_rows], dim=-1).float() * scale  # (R, Hkv, G*L, P+T)
    scores = scores.view(n_rows, n_kv, g, q_len, p + t)  # (R, Hkv, G, L, P+T)
    if attention_mask is None and q_len > 1:  # SDPA's mask builder skipped a purely causal mask: make it
        cols = torch.arange(p + t, device=query.device)  # (P+T,)
        attention_mask = cols[None, :] <= (p + t - q_len + torch.arange(q_len, device=query.device))[:, None]
        attention_mask = attention_mask[None, None]  # (1, 1, L, P+T)
    if attention_mask is not None:
        mask = attention_mask[:, :, -q_len:, :].unsqueeze(2)  # (R, 1, 1, L, P+T): the queries' rows of the mask
        if mask.dtype == torch.bool:  # the float minimum, not -inf: a query that sees nothing (left padding)
            # gets finite weights, so no NaN reaches the keys/values its row writes at masked columns
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + mask.float()
    weights = torch.softmax(scores, dim=-1).to(query.dtype).view(n_rows, n_kv, g * q_len, p + t)  # (R, Hkv, G*L, P+T)
    w_shared = weights[..., :p].transpose(0, 1).reshape(n_kv, n_rows * g * q_len, p)  # (Hkv, R*G*L, P)
    out = torch.bmm(w_shared, vs[0]).view(n_kv, n_rows, g * q_len, dim).transpose(0, 1)  # (R, Hkv, G*L, D)
    out = out + torch.matmul(weights[..., p:], value)  # (R, Hkv, G*L, D)
    return out.reshape(n_rows, n_heads, q_len, dim).transpose(1, 2), None  # (R, L, Hq, D)
