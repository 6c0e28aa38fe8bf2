"""The training loss as a module: a batch in, the SUMMED cross-entropy over target tokens out.

`SFTLoss(model, kind)` wraps a transformers model so that DDP / FSDP (accelerate) wrap one module whose
forward does everything, masks included. It returns a sum, not a mean: the loop divides by the number of
target tokens of the whole global batch, so gradients do not depend on how the batch is split into
micro-batches and processes (token-level mean over the global batch, as in a single big batch).

Causal models: the decoder stack runs over the whole row, but the output head (vocabulary projection) runs
only at the positions whose next token is a target: for SmolLM2 the head is ~20% of the forward FLOPs and
most tokens of an instruction example are prompt. This is exact (the same logits at those positions), done
for the architectures in FAST_HEAD_MODEL_TYPES, whose causal-LM head is a plain `lm_head(hidden)`; any
other causal model goes through its own forward and the logits are gathered afterwards.

Seq2seq models: every decoder position is a target (or padding), so the model's own forward is used;
packed batches run the encoder separately (see flanlab.train.packing for why).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from flanlab.train.packing import IGNORE, attention_mask_for, bidirectional_mask, causal_mask, cross_mask

# model_type -> the causal-LM forward is `logits = lm_head(base_model(...).last_hidden_state)`, nothing more
# (checked against transformers 5.x modeling_<type>.py). Gemma 3 adds a logit soft-cap when its config sets
# final_logit_softcapping (the 270m checkpoint does not): only then does it take the model's own forward.
FAST_HEAD_MODEL_TYPES = {"llama": True, "mistral": True, "qwen2": True, "qwen3": True, "gemma3_text": True}


def has_plain_head(config) -> bool:
    """True when the model's logits are exactly lm_head(last hidden state) (see FAST_HEAD_MODEL_TYPES)."""
    return FAST_HEAD_MODEL_TYPES.get(config.model_type, False) and getattr(config, "final_logit_softcapping", None) is None


class SFTLoss(nn.Module):
    def __init__(self, model, kind: str):
        super().__init__()
        self.model = model  # a transformers PreTrainedModel (LoRA layers injected in place, for LoRA)
        self.kind = kind
        self.fast_head = kind == "causal" and has_plain_head(model.config)

    def forward(self, batch: dict, per_token: bool = False):
        """Summed target-token loss (a scalar); with per_token=True, (losses (N,), example index (N,))."""
        if self.kind == "causal":
            losses, owner = self._causal(batch)
        else:
            losses, owner = self._seq2seq(batch)
        if per_token:
            return losses, owner
        return losses.sum()

    def _mask_dtype(self):
        return torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else self.model.dtype

    # --- causal ---------------------------------------------------------------------------------------------

    def _causal(self, batch: dict):
        seg = batch["segment_ids"]  # (B, L)
        labels = batch["labels"]  # (B, L)
        if batch["packed"]:
            inputs = {
                "attention_mask": attention_mask_for(self.model, causal_mask(seg), self._mask_dtype()),  # (B,1,L,L)
                "position_ids": batch["position_ids"],  # (B, L), restarting per example
            }
        else:
            inputs = {"attention_mask": batch["attention_mask"]}  # (B, L)
        # the prediction at position t is scored against token t+1, if that is a target of the same example
        next_labels = labels[:, 1:]  # (B, L-1)
        keep = (next_labels != IGNORE) & (seg[:, 1:] == seg[:, :-1])  # (B, L-1)
        if self.fast_head:
            hidden = self.model.base_model(input_ids=batch["input_ids"], use_cache=False, **inputs).last_hidden_state
            picked = hidden[:, :-1][keep]  # (N, H)
            logits = self.model.get_output_embeddings()(picked)  # (N, V)
        else:
            logits = self.model(input_ids=batch["input_ids"], use_cache=False, **inputs).logits[:, :-1][keep]  # (N, V)
        losses = F.cross_entropy(logits.float(), next_labels[keep], reduction="none")  # (N,)
        owner = self._owner(seg[:, 1:], keep)
        return losses, owner

    # --- seq2seq --------------------------------------------------------------------------------------------

    def _seq2seq(self, batch: dict):
        labels = batch["labels"]  # (B, Ld)
        dec_seg = batch["decoder_segment_ids"]  # (B, Ld)
        if batch["packed"]:
            enc_seg = batch["segment_ids"]  # (B, Le)
            dtype = self._mask_dtype()
            encoder_outputs = self.model.get_encoder()(
                input_ids=batch["input_ids"],
                attention_mask=attention_mask_for(self.model, bidirectional_mask(enc_seg), dtype),  # (B,1,Le,Le)
            )
            logits = self.model(
                encoder_outputs=encoder_outputs,
                attention_mask=attention_mask_for(self.model, cross_mask(dec_seg, enc_seg), dtype),  # (B,1,Ld,Le)
                decoder_input_ids=batch["decoder_input_ids"],
                decoder_attention_mask=attention_mask_for(self.model, causal_mask(dec_seg), dtype),  # (B,1,Ld,Ld)
                use_cache=False,
            ).logits  # (B, Ld, V)
        else:
            logits = self.model(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                decoder_input_ids=batch["decoder_input_ids"],
                decoder_attention_mask=batch["decoder_attention_mask"],
                use_cache=False,
            ).logits  # (B, Ld, V)
        keep = labels != IGNORE  # (B, Ld)
        losses = F.cross_entropy(logits[keep].float(), labels[keep], reduction="none")  # (N,)
        return losses, self._owner(dec_seg, keep)

    @staticmethod
    def _owner(seg, keep):
        """For each kept token, a global example index: row * 1000003 + segment (for per-example sums in tests)."""
        rows = torch.arange(seg.shape[0], device=seg.device)[:, None].expand_as(seg)  # (B, L)
        return (rows * 1_000_003 + seg)[keep]  # (N,)
