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
two-part path. On the fused path the rows' query tails (the prefill after the prefix) take it too, and rows are
grouped by the span of the shared block they read, each group scored against its span alone: a batch that spans
prefix groups (MGSM's languages, BBH's subtasks) holds their prefixes side by side, and scoring every row
against all of them did several times the work of the model's layers (MGSM native CoT of 11 languages, 3
batches, 64 new tokens: 143.9 s -> 84.3 s, the tails' prefill 90.6 s -> 30.4 s). Elsewhere, or where the fused
masks would pass FUSED_MASK_LIMIT, a forward of more than TWO_PART_MAX_QUERIES tokens a row concatenates the
shared block in front of each row (one transient copy per layer) and runs SDPA on it.

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
FUSED_MASK_LIMIT = 1 << 25  # the most elements (128 MB in fp32) the fused path's masks of one forward may take
# model types whose attention modules are plain scaled-dot-product attention over (query, key, value, mask)
# with a `layer_idx`: no softcapping, no sinks, no ALiBi, no sliding windows (checked separately)
ELIGIBLE_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3"})


@dataclass(frozen=True)
class SharedPrefix:
    """What the attention function needs besides its arguments: the cache whose layers hold the shared blocks."""

    cache: object  # a transformers Cache whose layers are flanlab.eval.kvcache.SharedPrefixLayer
    memo: dict = field(default_factory=dict)  # what one forward's layers share: the fused path's masks, derived
    # once from the forward's mask (memo["source"]) as memo["masks"] (FusedMasks, or None: not the fused path)


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


def fused_kernel(device_type: str, dtype) -> bool:
    """Whether shared-prefix attention runs on the fused CPU kernel (FUSED_CPU) for tensors of this device type and
    dtype; else on the explicit path. The two round fp32 differently (runner.engine_settings records which)."""
    return device_type == "cpu" and dtype == torch.float32 and hasattr(torch.ops.aten, FUSED_CPU)


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
    n_kv = ks.shape[1]
    g = n_heads // n_kv  # query heads per KV head (head h reads KV head h // g)
    scale = scaling if scaling is not None else dim ** -0.5
    given = attention_mask
    if attention_mask is None and q_len > 1:  # SDPA's mask builder skipped a purely causal mask: make it
        width = ks.shape[2] + key.shape[2]
        cols = torch.arange(width, device=query.device)  # (P+T,)
        attention_mask = cols[None, :] <= (width - q_len + torch.arange(q_len, device=query.device))[:, None]
        attention_mask = attention_mask[None, None]  # (1, 1, L, P+T)
    if fused_kernel(query.device.type, query.dtype):
        memo = shared_prefix.memo  # every layer of a forward gets the same mask (`given`): derive its parts once
        if "masks" not in memo or memo["source"] is not given:
            memo["source"] = given
            memo["masks"] = _fused_masks(attention_mask, n_rows, g, q_len, ks.shape[2], key.shape[2], query.dtype)
        if memo["masks"] is not None:
            q = query.reshape(n_rows, n_kv, g * q_len, dim)  # (R, Hkv, G*L, D): head h = kv * G + i, query i * L + l
            out = _two_part_fused(q, ks, vs, key, value, memo["masks"], scale)  # (R, Hkv, G*L, D)
            return out.reshape(n_rows, n_heads, q_len, dim).transpose(1, 2), None  # (R, L, Hq, D)
    if q_len > TWO_PART_MAX_QUERIES:  # the rows' query tails: the shared block in front of every row, then SDPA
        k = torch.cat([ks.expand(n_rows, -1, -1, -1), key], dim=2)  # (R, Hkv, P+T, D)
        v = torch.cat([vs.expand(n_rows, -1, -1, -1), value], dim=2)  # (R, Hkv, P+T, D)
        return sdpa_attention_forward(module, query, k, v, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
    q = query.reshape(n_rows, n_kv, g * q_len, dim)  # (R, Hkv, G*L, D)
    out = _two_part_explicit(q, ks, vs, key, value, attention_mask, g, scale)
    return out.reshape(n_rows, n_heads, q_len, dim).transpose(1, 2), None  # (R, L, Hq, D)


@dataclass(frozen=True)
class Segment:
    """Rows of a batch that read the same span [start, end) of the shared block (their prefix's first tokens)."""

    rows: torch.Tensor | None  # (k,) row indices; None: all rows of the batch
    start: int
    end: int
    mask: torch.Tensor | None = None  # (1, 1, k*G*L, end-start) additive, only on the fallback (see _segments)


@dataclass(frozen=True)
class FusedMasks:
    """What the fused path derives once per forward from the forward's mask (every layer gets the same one)."""

    own: torch.Tensor | None  # (R, 1, G*L, T) additive; None: every query sees every own column
    segments: tuple[Segment, ...]  # the shared block's spans and the rows that read them


def _additive(mask, dtype):
    """A bool mask (True: seen) or an additive one as an additive mask whose masked entries are the float minimum,
    not -inf: a query that sees nothing keeps finite values and a log-sum-exp of about the float minimum, which
    weighs nothing when the two parts are merged."""
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, torch.finfo(dtype).min)
    return mask.to(dtype).clamp_min(torch.finfo(dtype).min)


def _fused_masks(attention_mask, n_rows: int, g: int, q_len: int, p: int, t: int, dtype) -> FusedMasks | None:
    """The fused path's masks from the forward's mask (R or 1, 1, L', P+T), bool or additive; None where they
    would take more than FUSED_MASK_LIMIT elements (long query tails: the caller then takes the SDPA path).

    The shared block holds the batch's prefixes side by side (two or more where a batch spans prefix groups:
    MGSM's languages, BBH's subtasks), and each row reads a contiguous span of its own prefix's columns (up to
    where its tokenization agrees with the prefix's). Rows are grouped by their span, so that each group is scored
    against that span alone, with no mask, not against every column of the block: a batch of four MGSM
    languages held prefixes of up to 7,445 tokens side by side. No mask (a single query a row, nothing masked):
    every row reads the whole block."""
    if attention_mask is None:
        return FusedMasks(None, (Segment(None, 0, p),) if p else ())
    mask = attention_mask[:, :, -q_len:, :].expand(n_rows, 1, q_len, p + t)  # (R, 1, L, P+T): the queries' rows
    if n_rows * g * q_len * t > FUSED_MASK_LIMIT:
        return None
    rows = mask[..., p:]  # (R, 1, L, T)
    seen = rows if rows.dtype == torch.bool else rows == 0
    own = None
    if not bool(seen.all()):
        own = _additive(rows, dtype)[:, :, None].expand(n_rows, 1, g, q_len, t).reshape(n_rows, 1, g * q_len, t)
    if not p:
        return FusedMasks(own, ())
    segments = _segments(mask[..., :p], n_rows, g, q_len, dtype)
    return None if segments is None else FusedMasks(own, segments)


def _segments(block, n_rows: int, g: int, q_len: int, dtype) -> tuple[Segment, ...] | None:
    """block (R, 1, L, P) bool or additive -> one Segment per distinct span [start, end) that rows read (rows that
    read none are in no segment). Where a row's seen columns are not one contiguous run, or differ between its
    queries (not a layout the engine makes), one segment over the whole block with the full mask, or None if
    that mask would exceed FUSED_MASK_LIMIT."""
    p = block.shape[-1]
    seen_all = block if block.dtype == torch.bool else block == 0  # (R, 1, L, P)
    seen = seen_all[:, 0, -1, :]  # (R, P): the columns each row's last query sees
    counts = seen.sum(dim=1)  # (R,)
    starts = torch.where(counts > 0, seen.int().argmax(dim=1), torch.zeros_like(counts))  # (R,) first seen column
    cols = torch.arange(p, device=block.device)  # (P,)
    span = (cols[None, :] >= starts[:, None]) & (cols[None, :] < (starts + counts)[:, None])  # (R, P)
    if not (bool((span == seen).all()) and bool((seen_all == seen_all[:, :, -1:, :]).all())):
        if n_rows * g * q_len * p > FUSED_MASK_LIMIT:
            return None
        full = _additive(block, dtype)[:, :, None].expand(n_rows, 1, g, q_len, p).reshape(1, 1, n_rows * g * q_len, p)
        return (Segment(None, 0, p, full),)
    spans: dict[tuple[int, int], list[int]] = {}
    for r, (start, count) in enumerate(zip(starts.tolist(), counts.tolist())):
        if count:
            spans.setdefault((start, start + count), []).append(r)
    return tuple(Segment(None if len(rows) == n_rows else torch.tensor(rows, device=block.device), start, end)
                 for (start, end), rows in sorted(spans.items()))


def _two_part_fused(q, ks, vs, key, value, masks: FusedMasks, scale: float):
    """Two-part attention on fused kernels (fp32 on CPU): PyTorch's flash-attention kernel once over the rows'
    own columns and once for each segment of the shared block (its rows' queries as one sequence per KV head,
    against its span), each call returning its log-sum-exp; the results merged as one softmax would weigh them.
    q (R, Hkv, G*L, D), ks/vs (1, Hkv, P, D), key/value (R, Hkv, T, D). Returns (R, Hkv, G*L, D)."""
    n_rows, n_kv, gl, dim = q.shape
    flash = getattr(torch.ops.aten, FUSED_CPU)
    out_rows, lse_rows = flash(q, key, value, 0.0, False, attn_mask=masks.own, scale=scale)[:2]  # (R, Hkv, GL, D), (R, Hkv, GL)
    if not masks.segments:
        return out_rows
    if len(masks.segments) == 1 and masks.segments[0].rows is None:  # every row reads the same span
        out_s, lse_s = _segment_attention(flash, q, ks, vs, masks.segments[0], scale)
    else:  # rows that read no segment (no prefix) keep a log-sum-exp of the float minimum: weight 0
        out_s = torch.zeros_like(q)  # (R, Hkv, GL, D)
        lse_s = torch.full((n_rows, n_kv, gl), torch.finfo(q.dtype).min, dtype=lse_rows.dtype, device=q.device)
        for seg in masks.segments:
            out_s[seg.rows], lse_s[seg.rows] = _segment_attention(flash, q[seg.rows], ks, vs, seg, scale)
    top = torch.maximum(lse_s, lse_rows)  # (R, Hkv, GL)
    w_s, w_rows = torch.exp(lse_s - top)[..., None], torch.exp(lse_rows - top)[..., None]  # (R, Hkv, GL, 1)
    return (out_s * w_s + out_rows * w_rows) / (w_s + w_rows)  # (R, Hkv, GL, D)


def _segment_attention(flash, q, ks, vs, seg: Segment, scale: float):
    """The segment's rows' queries q (k, Hkv, G*L, D) against columns [start, end) of the shared block, as one
    sequence per KV head. Returns (output (k, Hkv, G*L, D), log-sum-exp (k, Hkv, G*L))."""
    k, n_kv, gl, dim = q.shape
    q_seq = q.transpose(0, 1).reshape(1, n_kv, k * gl, dim)  # (1, Hkv, k*G*L, D)
    span_k, span_v = ks[:, :, seg.start:seg.end], vs[:, :, seg.start:seg.end]  # (1, Hkv, S, D)
    out, lse = flash(q_seq, span_k, span_v, 0.0, False, attn_mask=seg.mask, scale=scale)[:2]  # (1, Hkv, k*GL, D)
    return out.view(n_kv, k, gl, dim).transpose(0, 1), lse.view(n_kv, k, gl).transpose(0, 1)


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
