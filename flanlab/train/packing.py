"""Packing: several examples per sequence, with masks so that no example ever attends to another.

A *row* is what one sequence of a batch holds: one example (unpacked) or several (packed). Every token
carries a *segment id*: 1, 2, 3, ... for the row's examples in order, 0 for padding. The masks are built
from segment ids alone, on the model's device, by `causal_mask`, `bidirectional_mask` and `cross_mask`.

Causal (decoder-only) rows: [prompt_1 target_1 EOS | prompt_2 target_2 EOS | ... | pad]
  - attention: block-diagonal causal, a (batch, 1, L, L) mask; padding attends to padding only, so that
    no query row is fully masked (a fully masked row would make NaNs in SDPA);
  - position ids restart at 0 for each example (rotary embeddings see what they see unpacked);
  - labels: -100 on prompts and padding. The loss also ignores a prediction whose next token belongs to
    another segment, so an example never predicts the first token of the next one.
  transformers 5.x (checked with 5.24) passes a 4D mask through unchanged (masking_utils: "If the mask is already 4D, simply
  return as-is"); the SDPA path takes it as a boolean mask, the eager path as an additive float mask, which is
  why the mask's dtype is chosen from the model's attention implementation (`attention_mask_for`).

Seq2seq (T5) rows: encoder [inputs_1 | inputs_2 | ... | pad], decoder [start target_1[:-1] | start ... | pad]
  - encoder self-attention: block-diagonal (bidirectional inside an example);
  - decoder self-attention: block-diagonal causal; cross-attention: decoder tokens of example k see only
    the encoder tokens of example k;
  - T5's relative position bias depends only on the difference of two positions inside the row, and inside
    one example those differences are the same as unpacked (cross-attention has no position bias), so the
    masks alone make packed and unpacked computations identical (tested: tests/test_packing.py).
  - T5ForConditionalGeneration passes ONE `attention_mask` both to the encoder and to cross-attention, so a
    packed batch cannot go through a single call: flanlab.train.loss runs the encoder with the encoder mask,
    then the model with `encoder_outputs=` and the cross mask as `attention_mask` (no patching needed).

`pack` places examples first-fit into a bounded set of open rows, in the (shuffled) order given, so the
result is deterministic and nearly as dense as sorting by length without grouping similar lengths.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

IGNORE = -100  # label value ignored by the loss


@dataclass
class Row:
    """One sequence of a batch. Causal rows use input_ids/labels/segment_ids/position_ids; seq2seq rows use
    input_ids/segment_ids (encoder) and decoder_input_ids/labels/decoder_segment_ids (decoder)."""

    input_ids: list[int]
    segment_ids: list[int]
    labels: list[int]
    position_ids: list[int] | None = None  # causal
    decoder_input_ids: list[int] | None = None  # seq2seq
    decoder_segment_ids: list[int] | None = None  # seq2seq

    @property
    def examples(self) -> int:
        return max(self.segment_ids) if self.segment_ids else 0

    @property
    def tokens(self) -> int:
        """Non-padding tokens the model processes for this row (encoder + decoder for seq2seq)."""
        return len(self.input_ids) + len(self.decoder_input_ids or ())

    @property
    def target_tokens(self) -> int:
        return sum(1 for t in self.labels if t != IGNORE)


def pack(order: Sequence[int], lengths: Sequence[tuple[int, ...]], capacity: tuple[int, ...],
         max_open: int = 16) -> list[list[int]]:
    """Group example indices (taken in `order`) into rows whose summed lengths fit `capacity` in every dimension.

    First fit over at most `max_open` open rows; when one more would be needed, the oldest open row is closed.
    Rows are returned in the order they are closed (then the remaining open ones in creation order)."""
    closed: list[list[int]] = []
    open_rows: list[tuple[list[int], list[int]]] = []  # (members, used length per dimension)
    dims = range(len(capacity))
    for i in order:
        need = lengths[i]
        if any(need[d] > capacity[d] for d in dims):
            raise ValueError(f"example {i} has lengths {need}, more than the packed row capacity {capacity}")
        for members, used in open_rows:
            if all(used[d] + need[d] <= capacity[d] for d in dims):
                members.append(i)
                for d in dims:
                    used[d] += need[d]
                break
        else:
            open_rows.append(([i], list(need)))
            if len(open_rows) > max_open:
                closed.append(open_rows.pop(0)[0])
    closed.extend(members for members, _ in open_rows)
    return closed


def make_row(kind: str, examples: Sequence[tuple[list[int], list[int]]], decoder_start_id: int | None = None) -> Row:
    """Concatenate tokenized examples (prompt or encoder ids, target ids ending in EOS) into one row."""
    input_ids: list[int] = []
    segment_ids: list[int] = []
    labels: list[int] = []
    if kind == "causal":
        position_ids: list[int] = []
        for seg, (prompt, target) in enumerate(examples, 1):
            n = len(prompt) + len(target)
            input_ids += prompt + target
            labels += [IGNORE] * len(prompt) + target
            segment_ids += [seg] * n
            position_ids += list(range(n))
        return Row(input_ids=input_ids, segment_ids=segment_ids, labels=labels, position_ids=position_ids)
    if decoder_start_id is None:
        raise ValueError("a seq2seq row needs the model's decoder_start_token_id")
    decoder_input_ids: list[int] = []
    decoder_segment_ids: list[int] = []
    for seg, (source, target) in enumerate(examples, 1):
        input_ids += source
        segment_ids += [seg] * len(source)
        decoder_input_ids += [decoder_start_id] + target[:-1]  # teacher forcing: shifted right per example
        labels += target
        decoder_segment_ids += [seg] * len(target)
    return Row(input_ids=input_ids, segment_ids=segment_ids, labels=labels,
               decoder_input_ids=decoder_input_ids, decoder_segment_ids=decoder_segment_ids)


def _pad(seqs: list[list[int]], value: int):
    import torch

    width = max(len(s) for s in seqs)
    return torch.tensor([s + [value] * (width - len(s)) for s in seqs], dtype=torch.long)  # (B, width)


def collate(rows: Sequence[Row], kind: str, pad_id: int, packed: bool) -> dict:
    """Rows -> a batch of tensors, right-padded to the longest row.

    Unpacked batches carry 2D attention masks (the models' ordinary path); packed batches carry segment ids
    (and causal position ids) from which flanlab.train.loss builds the 4D masks on the model's device."""
    batch = {
        "packed": packed,
        "input_ids": _pad([r.input_ids for r in rows], pad_id),  # (B, L)
        "labels": _pad([r.labels for r in rows], IGNORE),  # (B, L) causal, (B, Ld) seq2seq
        "segment_ids": _pad([r.segment_ids for r in rows], 0),  # (B, L)
    }
    if kind == "causal":
        batch["position_ids"] = _pad([r.position_ids for r in rows], 0)  # (B, L)
        if not packed:
            batch["attention_mask"] = (batch["segment_ids"] > 0).long()  # (B, L)
        return batch
    batch["decoder_input_ids"] = _pad([r.decoder_input_ids for r in rows], pad_id)  # (B, Ld)
    batch["decoder_segment_ids"] = _pad([r.decoder_segment_ids for r in rows], 0)  # (B, Ld)
    if not packed:
        batch["attention_mask"] = (batch["segment_ids"] > 0).long()  # (B, L)
        batch["decoder_attention_mask"] = (batch["decoder_segment_ids"] > 0).long()  # (B, Ld)
    return batch


# ----------------------------------------------------------------------------------------------------------
# masks from segment ids (boolean: True = may attend)


def bidirectional_mask(seg):
    """(B, L) segment ids -> (B, 1, L, L): attend within the same segment (padding to padding)."""
    return seg[:, None, :, None] == seg[:, None, None, :]


def causal_mask(seg):
    """(B, L) segment ids -> (B, 1, L, L): attend to earlier-or-same positions of the same segment."""
    import torch

    n = seg.shape[1]
    lower = torch.ones(n, n, dtype=torch.bool, device=seg.device).tril()  # (L, L)
    return bidirectional_mask(seg) & lower[None, None]


def cross_mask(decoder_seg, encoder_seg):
    """(B, Ld), (B, Le) -> (B, 1, Ld, Le): decoder tokens attend to encoder tokens of the same segment."""
    return decoder_seg[:, None, :, None] == encoder_seg[:, None, None, :]


def attention_mask_for(model, allowed, dtype):
    """The packed block mask `allowed` (B, 1, Lq, Lk; True = may attend) in the form the model takes a custom mask.

    sdpa takes booleans (True = attend); eager adds the mask to the scores, so it gets 0 / dtype-min. A model
    that mixes full and sliding-window layers (Gemma 3: `layer_types`) gets one mask per layer type, the dict
    its forward accepts, the sliding one also limited to the window (key k seen from query q when q - k <
    sliding_window, as transformers' own sliding mask): a packed row longer than the window is then exact."""
    import torch

    impl = getattr(model.config, "_attn_implementation", "sdpa")
    if impl not in ("sdpa", "eager"):
        raise ValueError(
            f"packing needs an attention implementation that accepts a 4D mask (sdpa or eager); this model uses "
            f"{impl!r}. Set packing=false, or load the model with attn_implementation='sdpa'."
        )

    def form(mask):
        if impl == "eager":
            return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)
        return mask

    window = getattr(model.config, "sliding_window", None)
    layer_types = getattr(model.config, "layer_types", None) or ()
    if window and "sliding_attention" in layer_types:
        q = torch.arange(allowed.shape[-2], device=allowed.device)[:, None]  # (Lq, 1)
        k = torch.arange(allowed.shape[-1], device=allowed.device)[None, :]  # (1, Lk)
        return {"full_attention": form(allowed), "sliding_attention": form(allowed & (q - k < window))}
    return form(allowed)
