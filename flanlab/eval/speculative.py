"""The decoding loop of shared-prefix batches: rows of their own lengths, and greedy rows that draft tokens
from their own text and check them in the same forward (prompt-lookup decoding).

Where the time of chain-of-thought evaluation goes on a CPU: a small model's decoding step reads all its
weights whatever the batch (SmolLM2-135M on 2 cores: ~40 ms for one row, ~80 ms for eight), and many CoT
outputs run long by repeating themselves (a list restated, a rationale looping to max_new_tokens), often
copying spans of the few-shot exemplars. A row that has produced the tokens "a b c" before, followed by "d e f",
is likely to continue "a b c" with "d e f" again: the draft. One forward over [next token, d, e, f] gives the
model's own greedy choice after each of them; the draft tokens are kept up to the first one the model would
not have chosen, and the model's choice at that point is the next token. Every kept token is therefore the
model's greedy token: the output is the one plain greedy decoding gives (up to fp32 rounding: the logits of a
position computed among several queries rather than alone; the benches count identical outputs), in fewer
forwards when drafts are right, at the cost of a few more query positions when they are wrong.

Rows keep their own lengths (flanlab.eval.kvcache.RaggedLengths): a row that kept 4 tokens advances by 4
columns, one that kept 1 by 1; what a rejected draft wrote past a row's length is overwritten by its next
step. The attention mask is built here, 4D, for each step: row r's query j sees its prefix's span of the
shared block and its own columns [pad_r, length_r + j]. Sampled rows (self-consistency) draft nothing and
decode one token a step on the same layout.

A row ends at EOS, at a stop string or after max_new_tokens tokens, exactly as in the engine's copied-cache
loop (tests compare the two); ended rows are fed padding until enough of them have ended to drop them from the
batch (Engine.drop_fraction).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from flanlab.eval.kvcache import start_ragged

DRAFT_TOKENS = 6  # tokens a greedy row drafts per step at most
NGRAMS = (4, 3, 2, 1)  # the last n tokens looked up in the row's own text, longest first. The 1-gram fallback drafts
# the text after a numbered list's new item number ("9." -> what followed "8."); the 4-gram picks the right one of
# several occurrences in a looping rationale. Replaying the 40 greedy outputs of bench/generate_vs_lmeval.py
# --limit 8 against measured forward costs (rows x queries): (3, 2) 58.4 s of decoding, (4, 3, 2, 1) 52.0 s;
# draft lengths 3/6/8/10 and per-row adaptive lengths replayed no better than 6.


def prompt_lookup(seq: Sequence[int], k: int, ngrams: Sequence[int] = NGRAMS) -> list[int]:
    """The (at most k) tokens that followed the latest earlier occurrence of the last n tokens of `seq`, for the
    longest n of `ngrams` that occurs; [] when none does."""
    if k <= 0:
        return []
    size = len(seq)
    for n in ngrams:
        if size <= n:
            continue
        tail = list(seq[size - n:])
        first = tail[0]
        for i in range(size - n - 1, -1, -1):
            if seq[i] == first and list(seq[i:i + n]) == tail:
                return list(seq[i + n:i + n + k])
    return []


def take_token(tok: int, generated: list[int], eos_ids, stops, max_new_tokens: int) -> str | None:
    """The one rule for a row's next token (the model's choice), in both decoding loops: EOS ends the row and is
    not kept; otherwise the token is kept, and the row ends at a stop string or after max_new_tokens tokens.
    Returns how the row ended ("eos", "stop", "max_new_tokens") or None."""
    if tok in eos_ids:
        return "eos"
    generated.append(tok)
    if stops.hit(generated):
        return "stop"
    return "max_new_tokens" if len(generated) >= max_new_tokens else None


def decode_shared(engine, rows: list[list[int]], logits, cache, mask, pos, settings, generators, stops) -> list:
    """Decode the rows of a shared-prefix batch after its prefill (Engine._causal_context with shared_block):
    logits (R, V) at each row's last token, mask (R, P+W) of the prefill, pos (R,) each row's next position.
    Returns per row (generated tokens, how it stopped)."""
    n_rows, dev = len(rows), engine.device
    width_p = cache.layers[0].shared_length
    shared_mask = mask[:, :width_p].bool().to(dev)  # (R, P): the span of the shared block each row sees
    pad = (mask[:, width_p:] == 0).sum(dim=1).to(dev)  # (R,): left padding before each row's own tokens
    lengths = start_ragged(cache, n_rows)
    pos = pos.to(dev)
    draft_k = engine.draft_tokens if settings.temperature <= 0 else 0
    generated: list[list[int]] = [[] for _ in range(n_rows)]
    stopped: list[str | None] = [None] * n_rows
    active = list(range(n_rows))  # rows still in the tensors, in tensor order

    def take(r: int, tok: int) -> None:
        stopped[r] = take_token(tok, generated[r], engine.eos_ids, stops, settings.max_new_tokens)

    while True:
        gens = [generators[r] for r in active] if generators else None
        picked = engine._next_tokens(logits, settings, gens).tolist()  # (A,) the next token of each row
        for j, r in enumerate(active):
            if stopped[r] is None:
                take(r, picked[j])
        if all(s is not None for s in stopped):
            break
        finished = [j for j, r in enumerate(active) if stopped[r] is not None]
        if finished and engine.drop_fraction * len(active) <= len(finished):
            keep_list = [j for j, r in enumerate(active) if stopped[r] is None]
            keep = torch.tensor(keep_list, device=dev)  # (A',)
            cache.batch_select_indices(keep)
            lengths.set(lengths.lengths[keep])
            shared_mask, pad, pos = shared_mask[keep], pad[keep], pos[keep]
            picked = [picked[j] for j in keep_list]
            active = [active[j] for j in keep_list]
        drafts = [prompt_lookup(rows[r] + generated[r], min(draft_k, settings.max_new_tokens - len(generated[r])))
                  if stopped[r] is None else [] for r in active]
        n_q = 1 + max(len(d) for d in drafts)  # queries per row this step
        feed = torch.full((len(active), n_q), engine.pad_id, dtype=torch.long)  # (A, Q)
        for j, (r, d) in enumerate(zip(active, drafts)):
            if stopped[r] is None:
                feed[j, :1 + len(d)] = torch.tensor([picked[j]] + d)
        steps = torch.arange(n_q, device=dev)  # (Q,)
        end = lengths.longest + n_q  # own columns the forward sees
        cols = torch.arange(end, device=dev)  # (T,)
        last = lengths.lengths[:, None] + steps[None, :]  # (A, Q): the own column of each query
        own = (cols[None, None, :] >= pad[:, None, None]) & (cols[None, None, :] <= last[:, :, None])  # (A, Q, T)
        mask4 = torch.cat([shared_mask[:, None, :].expand(-1, n_q, -1), own], dim=2)[:, None]  # (A, 1, Q, P+T)
        positions = pos[:, None] + steps[None, :]  # (A, Q)
        out = engine._forward(cache, feed, mask4, positions, keep_logits=n_q)
        step_logits = out.logits.float()  # (A, Q, V)
        choice = step_logits.argmax(dim=-1).tolist() if draft_k else None  # (A, Q) the model's greedy tokens
        kept = []
        for j, (r, d) in enumerate(zip(active, drafts)):
            n = 0
            while n < len(d) and stopped[r] is None and choice[j][n] == d[n]:
                take(r, d[n])  # the draft token is the model's own greedy choice after the tokens before it
                n += 1
            kept.append(n)
        advance = torch.tensor(kept, device=dev) + 1  # (A,) columns each row keeps: its token + kept drafts
        lengths.set(lengths.lengths + advance)
        pos = pos + advance
        logits = step_logits[torch.arange(len(active), device=dev), advance - 1]  # (A, V) after each row's last kept
    return list(zip(generated, stopped))
