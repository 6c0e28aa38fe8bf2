"""The evaluation engine: EvalItems in, generations or option log-likelihoods out. It knows no benchmark.

Two operations, for causal (decoder-only) and seq2seq models alike:
  - `Engine.generate(items, settings)`: greedy by default, or k samples at a temperature (self-consistency);
    a row ends for good at EOS, at the first stop string (the output is cut there; tested incrementally, see
    StopStrings) or at max_new_tokens, and a batch stops as soon as every row has ended. `generate_detailed`
    also says, per output, how many tokens it took and how it ended. `Engine.answer(prompts)` runs free-standing
    prompts (`flanlab generate`, open-gen) through the model's chat template (rendered by flanlab.eval.chat, as
    eval's --apply-chat-template renders) on the same batching, prefix cache and decoding loop: there is one
    generation path (`_decode`), and one rule for which tokens end a row (`_eos_ids`).
  - `Engine.rank(items)`: the summed log-probability of each of `item.choices` as a continuation of the prompt
    (rank classification); the argmax of the summed log-prob is the prediction, as lm-evaluation-harness's
    `acc`. A length-normalized variant (log-prob per character of the choice, lm-eval's `acc_norm`) is
    reported beside it but not used for the argmax.

How it is fast:
  - `plan(items)` groups items by their few-shot prefix, sorts them by token length inside a group, lays the
    groups end to end and cuts batches (a batch may hold the end of one group and the start of the next).
    The plan depends only on the item list, so a distributed run (batches dealt round-robin over processes)
    computes exactly the batches of a single run.
  - Causal models: the KV cache of each EvalItem.prefix is computed once (the last PREFIX_STATES prefixes are
    kept); only the item's own tokens go through the model. Ranking copies it into the rows of every batch that
    uses it. Generation, on models with plain attention (flanlab.eval.prefix_attention), keeps it once per
    batch as a shared block that every row reads in one matrix product, and decodes rows of their own lengths
    where greedy rows draft tokens from their own text and check them in the same forward
    (flanlab.eval.speculative; outputs are the one-token-a-step outputs). Other models copy it, as ranking.
  - The batch's cache is allocated once with room for every token to come (flanlab.eval.kvcache's
    PreallocatedLayer): decoding writes in place instead of re-concatenating the whole cache at each step.
  - Rank classification, causal: one forward over the context per item; choices of one token (" A".." D")
    are read from the last position's logits; longer choices are teacher-forced in a second forward that
    continues from the context's cache, all choices of all items of the batch as rows.
    Seq2seq: the encoder runs once per item, the decoder once over all (item, choice) rows.

Tokenization and the prefix boundary. A causal prompt is encoded whole: [BOS if the tokenizer adds one] +
tokens(prompt) (rank: tokens(context) + tokens(context+choice)[len(context):], lm-eval's pairing, with the
context's trailing spaces moved to the choice). The prefix is encoded alone; BPE may merge across the
prefix/query boundary ("\\n\\n" + "Question" is not "\\n\\n" then "Question" for GPT-2-style tokenizers), so
for each row we take the longest common run of the prefix's tokens and the whole prompt's tokens and reuse
the cache of that run only (the boundary moves back to where the tokenizations agree; the few tokens after
it are recomputed with the query). Every row therefore sees exactly the token sequence of the plain path: no
item ever falls back, and nothing is tokenized differently because of the cache.

Padding. Causal rows are, as columns, [prefix cache | gap | left padding | query]: the gap (up to the longest
reused prefix of the batch) and the padding sit between each row's prefix and its query, masked out by a
per-row attention mask, with per-row position ids that continue the row's prefix positions, so that every
row's last token is at the same column and new tokens are appended in step. With no prefix this is ordinary
left padding (the plain path, `prefix_cache=False`). Models with sliding-window attention layers (e.g. Gemma 3)
never use the prefix cache nor preallocated layers: their cache layers drop old positions.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass

from flanlab.eval import prefix_attention
from flanlab.eval.kvcache import (
    SharedPrefixLayer, batch_cache, common_prefix_length, has_sliding_layers, shared_prefix_cache,
)
from flanlab.eval.spec import EvalItem
from flanlab.eval.speculative import DRAFT_TOKENS, decode_shared, take_token

# The engine's code revision: bump it with any change to this module, kvcache, prefix_attention or speculative that
# can move an output (which items share a batch, padding, kernels, the decoding loop, what ends a row). Settings
# cover levers, not code: runner.engine_settings records this beside them, so a resume cache (engine.json) or a
# finished scale cell computed by other engine code is refused instead of mixed with this code's outputs, also in
# development, where flanlab's version stays put. tests/test_engine_revision.py fails when those files change until
# the change is judged (bump this, or only record the files' new digest).
#   1: rows without a prefix are batched apart from the prefix groups (fa39116); the first recorded revision
REVISION = 1


@dataclass(frozen=True)
class GenerationSettings:
    """How to generate for one (benchmark, mode)."""

    max_new_tokens: int = 16
    stop: tuple[str, ...] = ()
    num_samples: int = 1  # k > 1: self-consistency, k samples per item
    temperature: float = 0.0  # 0: greedy; > 0: sampling at this temperature
    seed: int = 0


@dataclass(frozen=True)
class Generation:
    """One generated continuation."""

    text: str  # decoded, special tokens removed, cut before the first stop string
    new_tokens: int  # tokens the model produced for it, the EOS that ended it included
    stopped: str  # "eos", "stop" (a stop string appeared) or "max_new_tokens"


@dataclass(frozen=True)
class RankResult:
    """Rank classification of one item: one entry per choice."""

    logprobs: tuple[float, ...]  # summed log-probability of each choice's tokens
    num_tokens: tuple[int, ...]  # tokens per choice
    normalized: tuple[float, ...]  # log-probability per character of the choice (not used for the argmax)
    best: int  # argmax of logprobs (first one on ties)


def context_length(config) -> int | None:
    """The most positions a model reads, from its config (max_position_embeddings, n_positions or n_ctx, on the
    text config of a multimodal one), or None where it names none."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    for name in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = getattr(text, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def stable_seed(*parts) -> int:
    """A 63-bit seed from strings/ints that is the same in every process and every run."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to (not including) the earliest occurrence of any stop string."""
    cut = len(text)
    for s in stop:
        if s:
            i = text.find(s)
            if i != -1 and i < cut:
                cut = i
    return text[:cut]


class StopStrings:
    """Whether the decoded text of a row's tokens contains a stop string, tested after every new token.

    Only the row's last tokens are decoded: at least `window` of them (enough for the longest stop string at
    one byte a token), more until their text is 4 characters longer than the longest stop string (special
    tokens decode to nothing), so that the first decoded token, which may decode differently alone (a split
    UTF-8 character, a dropped leading space), never decides. A stop string the newest token completes lies
    in that tail; one completed earlier ended the row then. Same answers as decoding the whole row each step
    (tests), at a cost that does not grow with the row's length."""

    def __init__(self, tokenizer, stop: Sequence[str]):
        self.tokenizer = tokenizer
        self.stop = tuple(s for s in stop if s)
        self.longest = max((len(s) for s in self.stop), default=0)
        self.window = 4 * max((len(s.encode("utf-8")) for s in self.stop), default=0) + 4

    def hit(self, ids: Sequence[int]) -> bool:
        if not self.stop:
            return False
        n = self.window
        while True:
            text = self.tokenizer.decode(ids[-n:], skip_special_tokens=True)
            if n >= len(ids) or len(text) >= self.longest + 4:
                return any(s in text for s in self.stop)
            n *= 2


class Engine:
    """Runs EvalItems through one loaded model (flanlab.models.LoadedModel).

    `forward_calls` counts model forward passes (tests use it to check that resumed runs redo nothing)."""

    MEMO_SIZE = 4096
    PREFIX_STATES = 8  # prefix KV caches kept at once
    # rows that have ended leave the decoding batch (one copy of its cache) once they are this share of it
    drop_fraction = 0.25

    def __init__(self, lm, batch_size: int = 8, prefix_cache: bool = True, templated: bool = False,
                 shared_attention: bool = True, draft_tokens: int | None = None):
        import torch

        self.lm = lm
        self.model = lm.model
        self.tokenizer = lm.tokenizer
        self.kind = lm.kind
        self.batch_size = max(1, int(batch_size))
        self.device = lm.device
        self.torch = torch
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        self.eos_ids = self._eos_ids()
        # templated: prompts are chat-template renderings (flanlab.eval.chat) that write their own special tokens
        self.bos = self._bos_prefix() if self.kind == "causal" and not templated else []
        sliding = has_sliding_layers(self.model.config)
        self.prefix_cache = bool(prefix_cache) and self.kind == "causal" and not sliding
        # transformers >= 5.x names the cache argument `cache` (`past_key_values` before); the cache object is
        # updated in place either way, so we keep our own reference to it
        params = inspect.signature(self.model.forward).parameters
        self.cache_kw = "cache" if "cache" in params else "past_key_values"
        self.forward_calls = 0
        # the most positions a causal model reads (its config's context length), None where it names none; inputs
        # longer than that lose their first tokens (fit_generation / fit_rank), as lm-evaluation-harness cuts them
        self.max_length = context_length(self.model.config) if self.kind == "causal" else None
        self._encoded: dict[str, list[int]] = {}
        self.preallocate = not sliding
        # generation batches read their shared prefix once a step (flanlab.eval.prefix_attention) where the model
        # is known to have plain attention; else the prefix's keys/values are copied into every row
        self.shared_attention = (bool(shared_attention) and self.prefix_cache and self.preallocate
                                 and prefix_attention.eligible(self.model))
        if self.shared_attention:
            prefix_attention.register()
        # greedy rows of shared-prefix batches draft up to this many tokens a step from their own text and check
        # them in the same forward (flanlab.eval.speculative; 0: one token a step)
        if draft_tokens is not None and int(draft_tokens) < 0:
            raise ValueError(f"Engine: draft_tokens must be 0 (no drafts) or more, got {draft_tokens}")
        self.draft_tokens = DRAFT_TOKENS if draft_tokens is None else int(draft_tokens)
        # prefix text -> (its ids, [(k, v) per layer]); the ids say which leading specials it was computed with
        self._prefix_kv: dict[str, tuple[list[int], list]] = {}

    # ------------------------------------------------------------------------------------------------------
    # tokenization

    def _eos_ids(self) -> set[int]:
        """The tokens that end a generated row, for every decoder and every caller: the tokenizer's EOS and the
        generation config's (Gemma's chat turns end with <end_of_turn>, which only the latter names)."""
        ids = set()
        if self.tokenizer.eos_token_id is not None:
            ids.add(int(self.tokenizer.eos_token_id))
        gen_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        if isinstance(gen_eos, int):
            ids.add(gen_eos)
        elif isinstance(gen_eos, (list, tuple)):
            ids.update(int(i) for i in gen_eos)
        return ids

    def _bos_prefix(self) -> list[int]:
        """[BOS] when the tokenizer puts one in front of its encodings by default (Llama, Gemma), else []."""
        bos = self.tokenizer.bos_token_id
        if bos is None:
            return []
        default = self.tokenizer("a", add_special_tokens=True)["input_ids"]
        return [int(bos)] if default and default[0] == bos else []

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` without special tokens (memoized: prompts are encoded by plan() and again later;
        the memo is emptied when it holds MEMO_SIZE texts, so a long run does not keep every prompt's ids)."""
        ids = self._encoded.get(text)
        if ids is None:
            ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            if len(self._encoded) >= self.MEMO_SIZE:
                self._encoded.clear()
            self._encoded[text] = ids
        return ids

    def prompt_ids(self, item: EvalItem) -> list[int]:
        """The model input for generation: causal [BOS] + tokens(prompt); seq2seq with the tokenizer's specials."""
        return self.text_ids(item.prompt)

    def text_ids(self, text: str) -> list[int]:
        if self.kind == "causal":
            return self.bos + self.encode(text)
        return list(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def uses_template(self, chat_template: bool = True) -> bool:
        """Whether free-standing prompts go through the chat template: asked for, and the tokenizer has one."""
        return bool(chat_template and getattr(self.tokenizer, "chat_template", None))

    def answer_items(self, prompts: Sequence[str], chat_template: bool = True) -> list[EvalItem]:
        """Free-standing prompts as EvalItems without exemplars. Through the template (see uses_template) they
        are rendered by flanlab.eval.chat.templated_items, as `flanlab eval --apply-chat-template` renders a
        zero-shot item: a user turn followed by the assistant's header; the rendered texts' common start (the
        template's system turn, say) becomes the items' shared prefix, whose KV cache is computed once."""
        items = [EvalItem("prompt", "", "answer", str(i), "", p, "", shots=0) for i, p in enumerate(prompts)]
        if not self.uses_template(chat_template):
            return items
        from flanlab.eval.chat import ChatOptions, templated_items

        return templated_items(items, self.tokenizer, ChatOptions(apply_chat_template=True))

    def answer_ids(self, text: str, templated: bool) -> list[int]:
        """The model input for a free-standing prompt's text (answer_items gives the text): a causal model reads
        a rendered template's tokens as they are; otherwise the tokenizer adds its own special tokens, as
        `tokenizer(text)` does (transformers' convention, which flanlab generate and open-gen always had; the
        benchmarks' items take lm-eval's instead, see text_ids: the two differ only for a tokenizer that adds
        more than a leading BOS, as ByT5 appends </s>)."""
        if templated and self.kind == "causal":
            return self.encode(text)
        return list(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def chat_ids(self, prompt: str, chat_template: bool = True) -> list[int]:
        """The model input of one free-standing prompt, as Engine.answer builds it."""
        item = self.answer_items([prompt], chat_template)[0]
        return self.answer_ids(item.prompt, self.uses_template(chat_template))

    def rank_ids(self, item: EvalItem) -> tuple[list[int], list[list[int]]]:
        """(context ids, one continuation id list per choice), paired as lm-evaluation-harness pairs them."""
        context = item.prompt
        n_spaces = len(context) - len(context.rstrip())
        moved, context = (context[len(context) - n_spaces:], context[: len(context) - n_spaces]) if n_spaces else ("", context)
        if self.kind == "causal":
            ctx = self.encode(context)
            conts = [self.encode(context + moved + c)[len(ctx):] for c in item.choices]
            return self.bos + ctx, conts
        ctx = list(self.tokenizer(context, add_special_tokens=True)["input_ids"])
        conts = [self.encode(moved + c) for c in item.choices]
        return ctx, conts

    # ------------------------------------------------------------------------------------------------------
    # inputs longer than the model's context

    def generation_room(self, max_new_tokens: int) -> int | None:
        """How many input tokens a causal row may keep so that max_new_tokens more still fit in the model's
        context (None: no known limit); refused where not even one input token would fit."""
        if self.max_length is None:
            return None
        room = self.max_length - max_new_tokens
        if room < 1:
            raise ValueError(f"max_new_tokens {max_new_tokens} leaves no room for a prompt in the model's context of "
                             f"{self.max_length} tokens")
        return room

    def fit_generation(self, ids: list[int], max_new_tokens: int) -> list[int]:
        """ids without the first tokens that do not fit (generation_room), as lm-evaluation-harness's
        generate_until cuts a context longer than max_length - max_gen_toks from the left."""
        room = self.generation_room(max_new_tokens)
        return ids if room is None or len(ids) <= room else ids[len(ids) - room:]

    def fit_rank(self, ctx: list[int], conts: list[list[int]]) -> list[int]:
        """The context without the first tokens that do not fit: the model reads the context and every choice
        token but the last, at most max_length positions (lm-evaluation-harness's loglikelihood rule, applied with
        the longest choice, since flanlab reads one context for all choices)."""
        if self.max_length is None:
            return ctx
        room = self.max_length + 1 - max((len(c) for c in conts), default=1)
        if room < 1:
            raise ValueError(f"a choice of {max(len(c) for c in conts)} tokens does not fit the model's context of "
                             f"{self.max_length} tokens")
        return ctx if len(ctx) <= room else ctx[len(ctx) - room:]

    def input_cut(self, item: EvalItem, op: str, max_new_tokens: int = 0) -> int:
        """How many of the item's first input tokens the model does not read (0: all fit). op "generate" or
        "rank"; what the runner records per item (samples.jsonl's prompt_cut) and counts per subtask."""
        if self.max_length is None:
            return 0
        if op == "rank":
            ctx, conts = self.rank_ids(item)
            return len(ctx) - len(self.fit_rank(ctx, conts))
        ids = self.prompt_ids(item)
        return len(ids) - len(self.fit_generation(ids, max_new_tokens))

    # ------------------------------------------------------------------------------------------------------
    # planning

    def plan(self, items: Sequence[EvalItem], rank: bool = False, max_new_tokens: int | None = None) -> list[list[int]]:
        """Batches of item indices: items grouped by prefix, longest first within a group, the groups laid end
        to end and cut every batch_size items (a batch may hold the tail of one group and the head of the next:
        rows carry their own prefix, see _causal_context); the items without a prefix after them, in batches of
        their own. Items whose input the model's context cuts (see input_cut; for generation when
        max_new_tokens is given) reuse no prefix: they are grouped as items without one, so that a long row
        does not pad a batch of short ones.

        The result depends only on `items` (and the batch size), never on which process runs it."""
        def length(item: EvalItem) -> int:
            if rank:
                ctx, conts = self.rank_ids(item)
                return len(ctx) + max((len(c) for c in conts), default=0)
            return len(self.prompt_ids(item))

        def prefix(item: EvalItem) -> str:
            if not rank and max_new_tokens is None:
                return item.prefix
            return "" if self.input_cut(item, "rank" if rank else "generate", max_new_tokens or 0) else item.prefix

        return self.batches([prefix(it) for it in items], [length(it) for it in items])

    def batches(self, prefixes: Sequence[str], lengths: Sequence[int]) -> list[list[int]]:
        """plan()'s rule on rows given by their prefix text and token length (Engine.answer uses it directly)."""
        groups: dict[str, list[int]] = {}
        for i, prefix in enumerate(prefixes):
            groups.setdefault(prefix, []).append(i)

        def longest_first(indices: list[int]) -> list[int]:
            return sorted(indices, key=lambda i: (-lengths[i], i))

        def in_batches(order: list[int]) -> list[list[int]]:
            return [order[j:j + self.batch_size] for j in range(0, len(order), self.batch_size)]

        # rows without a prefix (cut inputs, zero-shot prompts) are batched among themselves: in a batch of rows
        # that reuse a prefix, such a row's whole input pads every other row's tail (MGSM native CoT, two cut
        # 7.8k-token prompts beside six rows with 0.1-1k-token tails: 822 s for that batch)
        shared = [i for p, indices in groups.items() if p for i in longest_first(indices)]
        alone = longest_first(groups.get("", []))
        return in_batches(shared) + in_batches(alone)

    # ------------------------------------------------------------------------------------------------------
    # the shared-prefix KV cache (causal)

    def _prefix_state(self, prefix: str, lead: list[int]) -> tuple[list[int], list]:
        """(prefix ids = lead + tokens(prefix), per-layer (keys, values) of shape (1, heads, len, head_dim)),
        computed once per prefix (and lead: the benchmarks' BOS, or none after a chat template).

        The states of the last few prefixes are kept (a batch may span two or more groups)."""
        torch = self.torch
        ids = lead + self.encode(prefix)
        kept = self._prefix_kv.get(prefix)
        if kept is not None and kept[0] == ids:
            return kept
        kv = []
        if ids:
            from transformers import DynamicCache

            cache = DynamicCache(config=self.model.config)
            x = torch.tensor([ids], device=self.device)  # (1, Lp)
            with torch.inference_mode():
                self.model(input_ids=x, use_cache=True, logits_to_keep=1, **{self.cache_kw: cache})
            self.forward_calls += 1
            kv = [(layer.keys, layer.values) for layer in cache.layers]  # each (1, H, Lp, D)
        self._prefix_kv.pop(prefix, None)  # computed with another lead
        if len(self._prefix_kv) >= self.PREFIX_STATES:
            self._prefix_kv.pop(next(iter(self._prefix_kv)))  # the oldest
        self._prefix_kv[prefix] = (ids, kv)
        return ids, kv

    def _causal_context(self, prefixes: list[str], rows: list[list[int]], room: int = 0, lead: list[int] | None = None,
                        shared_block: bool = False):
        """Run the context rows (row r: the full token list of an item whose prefix text is prefixes[r]; a
        prefix is encoded as lead + tokens(prefix), lead being the engine's BOS unless given).

        Row r reuses the cache of the first s_r tokens of its prefix, s_r = the common run of the prefix's
        tokens and the row's (never the whole row: one token at least is run to get the next-token logits).
        Layout per row, as columns: [prefix cache s_r | zero gap up to S = max s_r | left pad | row[s_r:]],
        gap and pad masked out, position ids continuing from s_r. `room`: columns to reserve for tokens that
        will be appended (generation, continuations), so that appending writes in place.

        With `shared_block` (generation, where self.shared_attention) the prefixes are not copied into the rows:
        columns [shared block P | left pad | row[s_r:]], the shared block holding each prefix the batch uses
        once (its first max s_r tokens), row r's mask opening its own prefix's first s_r columns there (see
        flanlab.eval.prefix_attention).

        Returns (last-position logits (R, V), the cache, attention mask (R, T), next position per row (R,))."""
        torch = self.torch
        lead = self.bos if lead is None else lead
        states = [self._prefix_state(p, lead) if (self.prefix_cache and p) else ([], []) for p in prefixes]
        shared = [min(common_prefix_length(ids, r), len(r) - 1) if kv else 0 for (ids, kv), r in zip(states, rows)]
        n_rows, width_s = len(rows), max(shared)
        tails = [r[s:] for r, s in zip(rows, shared)]
        width = max(len(t) for t in tails)
        if shared_block and self.shared_attention:
            return self._shared_context(prefixes, states, shared, tails, room)
        input_ids = torch.full((n_rows, width), self.pad_id, dtype=torch.long)  # (R, W) left-padded tails
        mask = torch.zeros((n_rows, width_s + width), dtype=torch.long)  # (R, S+W)
        position_ids = torch.ones((n_rows, width), dtype=torch.long)  # (R, W); padding positions are masked
        for r, (tail, s) in enumerate(zip(tails, shared)):
            pad = width - len(tail)
            input_ids[r, pad:] = torch.tensor(tail)
            mask[r, :s] = 1
            mask[r, width_s + pad:] = 1
            position_ids[r, pad:] = torch.arange(s, s + len(tail))
        cache = batch_cache(self.model.config, states, shared, width_s, capacity=width_s + width + room,
                            preallocate=self.preallocate)
        out = self._forward(cache, input_ids, mask, position_ids)
        logits = out.logits[:, -1, :].float()  # (R, V)
        next_pos = torch.tensor([len(r) for r in rows], dtype=torch.long)  # (R,)
        return logits, cache, mask, next_pos

    def _shared_context(self, prefixes: list[str], states: list, shared: list[int], tails: list[list[int]], room: int):
        """_causal_context's shared-block layout (see there); same returns."""
        torch = self.torch
        used: dict[str, int] = {}  # prefix text -> the most of its tokens a row reuses
        kv_of: dict[str, list] = {}
        for p, (_, kv), s in zip(prefixes, states, shared):
            if s:
                used[p] = max(used.get(p, 0), s)
                kv_of[p] = kv
        offsets, blocks, width_p = {}, [], 0
        for p, n in used.items():
            offsets[p] = width_p
            blocks.append([(k[:, :, :n], v[:, :, :n]) for k, v in kv_of[p]])  # per layer (1, H, n, D)
            width_p += n
        n_rows, width = len(tails), max(len(t) for t in tails)
        input_ids = torch.full((n_rows, width), self.pad_id, dtype=torch.long)  # (R, W) left-padded tails
        mask = torch.zeros((n_rows, width_p + width), dtype=torch.long)  # (R, P+W)
        position_ids = torch.ones((n_rows, width), dtype=torch.long)  # (R, W); padding positions are masked
        for r, (tail, s, p) in enumerate(zip(tails, shared, prefixes)):
            pad = width - len(tail)
            input_ids[r, pad:] = torch.tensor(tail)
            if s:
                mask[r, offsets[p]:offsets[p] + s] = 1
            mask[r, width_p + pad:] = 1
            position_ids[r, pad:] = torch.arange(s, s + len(tail))
        param = next(self.model.parameters())
        cache = shared_prefix_cache(self.model.config, blocks, capacity=width + room, dtype=param.dtype,
                                    device=param.device)
        out = self._forward(cache, input_ids, mask, position_ids)
        logits = out.logits[:, -1, :].float()  # (R, V)
        next_pos = torch.tensor([s + len(t) for s, t in zip(shared, tails)], dtype=torch.long)  # (R,)
        return logits, cache, mask, next_pos

    def _forward(self, cache, input_ids, mask, position_ids, keep_logits: int | None = 1):
        """One causal forward on a batch cache (updated in place); through shared-prefix attention when the
        cache's layers hold a shared block. input_ids/position_ids (R, t), mask (R, cache columns + t) or a 4D
        mask (R, 1, t, columns); logits of the last `keep_logits` positions (None: all)."""
        dev, torch = self.device, self.torch
        inputs = dict(input_ids=input_ids.to(dev), attention_mask=mask.to(dev), position_ids=position_ids.to(dev),
                      use_cache=True, **{self.cache_kw: cache})
        if keep_logits:
            inputs["logits_to_keep"] = keep_logits
        with torch.inference_mode():
            if cache.layers and isinstance(cache.layers[0], SharedPrefixLayer):
                with prefix_attention.attention_as(self.model, prefix_attention.NAME):
                    out = self.model(**inputs, shared_prefix=prefix_attention.SharedPrefix(cache))
            else:
                out = self.model(**inputs)
        self.forward_calls += 1
        return out

    # ------------------------------------------------------------------------------------------------------
    # generation

    def generate(self, items: Sequence[EvalItem], settings: GenerationSettings) -> list[list[str]]:
        """For each item, `settings.num_samples` generations (cut at the first stop string)."""
        results: list[list[str] | None] = [None] * len(items)
        for batch in self.plan(items):
            for i, outs in zip(batch, self.generate_batch([items[i] for i in batch], settings)):
                results[i] = outs
        return results  # type: ignore[return-value]

    def generate_batch(self, items: Sequence[EvalItem], settings: GenerationSettings) -> list[list[str]]:
        """One batch (items sharing a prefix when the prefix cache is on; see plan())."""
        return [[g.text for g in gens] for gens in self.generate_detailed(items, settings)]

    def generate_detailed(self, items: Sequence[EvalItem], settings: GenerationSettings) -> list[list[Generation]]:
        """generate_batch, each output with its token count and how it stopped."""
        if not items:
            return []
        return self._decode(items, [self.prompt_ids(it) for it in items], settings, self.bos)

    def answer(self, prompts: Sequence[str], max_new_tokens: int, chat_template: bool = True) -> list[Generation]:
        """Greedy answers to free-standing prompts (`flanlab generate`, open-gen), in the order of `prompts`:
        rendered through the model's chat template where it has one and chat_template is on (answer_items),
        encoded as answer_ids says, batched as plan() batches (longest first; the rendered prompts' common
        start is one prefix, its KV cache computed once), decoded by the benchmarks' loop (_decode)."""
        templated = self.uses_template(chat_template)
        items = self.answer_items(prompts, chat_template)
        rows = [self.answer_ids(it.prompt, templated) for it in items]
        settings = GenerationSettings(max_new_tokens=max_new_tokens)
        lead = [] if templated else self.bos  # a plain prompt has no prefix: its lead is never used
        results: list[Generation | None] = [None] * len(items)
        for batch in self.batches([it.prefix for it in items], [len(r) for r in rows]):
            gens = self._decode([items[i] for i in batch], [rows[i] for i in batch], settings, lead)
            for i, g in zip(batch, gens):
                results[i] = g[0]
        return results  # type: ignore[return-value]

    def _decode(self, items: Sequence[EvalItem], rows: list[list[int]], settings: GenerationSettings,
                lead: list[int]) -> list[list[Generation]]:
        """The one generation path: item i's input ids rows[i] (its prefix text items[i].prefix, encoded as
        lead + tokens(prefix) for the prefix cache), settings.num_samples Generations per item."""
        k = settings.num_samples
        if self.kind == "causal":
            fitted = [self.fit_generation(r, settings.max_new_tokens) for r in rows]  # as many as the context holds
            rows_k = [r for r in fitted for _ in range(k)]  # k samples of an item: k rows
            # a row that lost its first tokens starts inside its prefix: it reuses none of the prefix's cache
            prefixes = [it.prefix if len(f) == len(r) else "" for it, r, f in zip(items, rows, fitted) for _ in range(k)]
            gens = self._generate_causal(rows_k, prefixes, settings, self._row_generators(items, settings), lead)
        else:
            seed = stable_seed(settings.seed, *(f"{it.benchmark}/{it.subtask}/{it.mode}/{it.item_id}" for it in items))
            gens = self._generate_seq2seq(rows, settings, seed)
        return [gens[i * k:(i + 1) * k] for i in range(len(items))]

    def _generation(self, ids: list[int], stopped: str, stop: Sequence[str]) -> Generation:
        """A row's output from its generated tokens (the EOS that ended it not among them, but counted)."""
        text = cut_at_stop(self.tokenizer.decode(ids, skip_special_tokens=True), stop)
        return Generation(text=text, new_tokens=len(ids) + (stopped == "eos"), stopped=stopped)

    def _row_generators(self, items: Sequence[EvalItem], settings: GenerationSettings):
        """One torch.Generator per row (item x sample), seeded from the item's identity and the sample index,
        so that a sampled output does not depend on which batch or process the item landed in."""
        if settings.temperature <= 0:
            return None
        gens = []
        for it in items:
            for j in range(settings.num_samples):
                g = self.torch.Generator(device="cpu")
                g.manual_seed(stable_seed(settings.seed, it.benchmark, it.subtask, it.mode, it.item_id, j))
                gens.append(g)
        return gens

    def _next_tokens(self, logits, settings: GenerationSettings, generators):
        """Greedy argmax, or one sample per row at the temperature. logits (R, V) -> (R,)."""
        torch = self.torch
        if settings.temperature <= 0:
            return logits.argmax(dim=-1)
        probs = torch.softmax(logits.float().cpu() / settings.temperature, dim=-1)  # (R, V)
        picks = [torch.multinomial(probs[r], 1, generator=g) for r, g in enumerate(generators)]  # R x (1,)
        return torch.cat(picks).to(logits.device)

    def _generate_causal(self, rows: list[list[int]], prefixes: list[str], settings: GenerationSettings,
                         generators, lead: list[int] | None = None) -> list[Generation]:
        """Greedy/sampled decoding of the rows (token lists; row r's prefix text is prefixes[r], "" for none)
        with the shared-prefix cache. A row ends at EOS, at a stop string or at max_new_tokens, and then stays
        ended: it is fed padding until it is dropped from the batch, and nothing it predicts is kept."""
        torch = self.torch
        logits, cache, mask, pos = self._causal_context(prefixes, rows, room=settings.max_new_tokens, lead=lead,
                                                        shared_block=True)
        stops = StopStrings(self.tokenizer, settings.stop)
        if cache.layers and isinstance(cache.layers[0], SharedPrefixLayer):  # rows of their own lengths, drafts
            ends = decode_shared(self, rows, logits, cache, mask, pos, settings, generators, stops)
            return [self._generation(g, s or "max_new_tokens", settings.stop) for g, s in ends]
        n_rows = len(rows)
        generated: list[list[int]] = [[] for _ in range(n_rows)]
        stopped: list[str | None] = [None] * n_rows
        active = list(range(n_rows))  # the rows still in the batch tensors, in tensor order
        dev = self.device
        for _ in range(settings.max_new_tokens):
            gens = [generators[r] for r in active] if generators else None
            nxt = self._next_tokens(logits, settings, gens)  # (A,)
            picked = nxt.tolist()  # one copy to the host per step (int(nxt[j]) on CUDA syncs once per row)
            for j, r in enumerate(active):
                if stopped[r] is not None:
                    continue  # ended at an earlier step; still in the tensors until dropped
                stopped[r] = take_token(picked[j], generated[r], self.eos_ids, stops, settings.max_new_tokens)
            if all(s is not None for s in stopped):
                break
            finished = [j for j, r in enumerate(active) if stopped[r] is not None]
            if finished and self.drop_fraction * len(active) <= len(finished):
                # enough rows have ended: drop them from the batch (one copy of the cache) so that the others
                # decode without them
                keep = torch.tensor([j for j, r in enumerate(active) if stopped[r] is None])  # (A',)
                cache.batch_select_indices(keep.to(dev))
                mask, pos, nxt = mask[keep], pos[keep], nxt[keep.to(nxt.device)]
                active = [active[j] for j in keep.tolist()]
            ended = torch.tensor([stopped[r] is not None for r in active], device=nxt.device)  # (A,)
            feed = torch.where(ended, torch.full_like(nxt, self.pad_id), nxt)  # (A,)
            mask = torch.cat([mask, torch.ones((len(active), 1), dtype=mask.dtype)], dim=1)  # (A, T+1)
            out = self._forward(cache, feed[:, None], mask, pos[:, None])
            logits = out.logits[:, -1, :].float()  # (A, V)
            pos = pos + 1
        return [self._generation(g, s or "max_new_tokens", settings.stop) for g, s in zip(generated, stopped)]

    def _generate_seq2seq(self, rows: list[list[int]], settings: GenerationSettings, seed: int | None) -> list[Generation]:
        """transformers' generate with a stop-string criterion, ending rows at the same tokens as the causal loop
        (_eos_ids); encoder inputs right-padded. Sampling draws from the global generator, seeded with `seed` for
        the batch (so a sample depends on the batch)."""
        torch = self.torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        stops, k = StopStrings(self.tokenizer, settings.stop), settings.num_samples

        class StopOnStrings(StoppingCriteria):
            """Per row: True once the decoded output contains a stop string."""

            def __call__(self, input_ids, scores, **kwargs):  # input_ids (R, t)
                return torch.tensor([stops.hit(ids) for ids in input_ids.tolist()], device=input_ids.device)

        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)  # (B, S) right-padded
        mask = torch.zeros((len(rows), width), dtype=torch.long)  # (B, S)
        for r, ids in enumerate(rows):
            input_ids[r, :len(ids)] = torch.tensor(ids)
            mask[r, :len(ids)] = 1
        sampling = settings.temperature > 0
        if sampling:
            torch.manual_seed(seed if seed is not None else settings.seed)
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device),
                max_new_tokens=settings.max_new_tokens, do_sample=sampling,
                temperature=settings.temperature if sampling else None, top_k=0 if sampling else None,
                top_p=None, num_return_sequences=k, pad_token_id=self.pad_id,
                eos_token_id=sorted(self.eos_ids) or None,
                stopping_criteria=StoppingCriteriaList([StopOnStrings()]) if stops.stop else None,
            )  # (B*k, t)
        self.forward_calls += 1
        start = self.model.config.decoder_start_token_id
        results = []
        for seq in out.tolist():
            if seq and seq[0] == start:
                seq = seq[1:]  # the decoder start token is not a generated token
            end = next((i for i, t in enumerate(seq) if t in self.eos_ids), None)
            kept = seq if end is None else seq[:end]
            stopped = "eos" if end is not None else ("stop" if stops.hit(kept) else "max_new_tokens")
            results.append(self._generation(kept, stopped, settings.stop))
        return results

    # ------------------------------------------------------------------------------------------------------
    # rank classification

    def rank(self, items: Sequence[EvalItem]) -> list[RankResult]:
        """Log-likelihood of every choice of every item."""
        results: list[RankResult | None] = [None] * len(items)
        for batch in self.plan(items, rank=True):
            for i, res in zip(batch, self.rank_batch([items[i] for i in batch])):
                results[i] = res
        return results  # type: ignore[return-value]

    def rank_batch(self, items: Sequence[EvalItem]) -> list[RankResult]:
        if not items:
            return []
        for it in items:
            if not it.choices:
                raise ValueError(f"rank: item {it.benchmark}/{it.subtask}/{it.item_id} has no choices")
        pairs = [self.rank_ids(it) for it in items]
        if self.kind == "causal":
            fitted = [(self.fit_rank(ctx, conts), conts) for ctx, conts in pairs]  # as much as the context holds
            # a context that lost its first tokens starts inside its prefix: it reuses none of the prefix's cache
            prefixes = [it.prefix if len(f) == len(ctx) else "" for it, (ctx, _), (f, _) in zip(items, pairs, fitted)]
            pairs = fitted
            scores = self._rank_causal(prefixes, pairs)
        else:
            scores = self._rank_seq2seq(pairs)
        results = []
        for it, (_, conts), lps in zip(items, pairs, scores):
            normalized = tuple(lp / max(1, len(c)) for lp, c in zip(lps, it.choices))
            best = max(range(len(lps)), key=lambda j: (lps[j], -j))
            results.append(RankResult(tuple(lps), tuple(len(c) for c in conts), normalized, best))
        return results

    def _rank_causal(self, prefixes: list[str], pairs) -> list[list[float]]:
        torch = self.torch
        contexts = [ctx for ctx, _ in pairs]
        room = max(max((len(c) for c in conts), default=1) for _, conts in pairs) - 1
        logits, cache, mask, pos = self._causal_context(prefixes, contexts, room=max(0, room))
        first = torch.log_softmax(logits, dim=-1).cpu()  # (B, V): log p(first continuation token | context)
        scores = [[float(first[b, c[0]]) if c else 0.0 for c in conts] for b, (_, conts) in enumerate(pairs)]
        # continuations of more than one token: teacher-force tokens 2.. in one more forward over (item, choice) rows
        rows = [(b, j) for b, (_, conts) in enumerate(pairs) for j, c in enumerate(conts) if len(c) > 1]
        if not rows:
            return scores
        width = max(len(pairs[b][1][j]) - 1 for b, j in rows)
        feed = torch.full((len(rows), width), self.pad_id, dtype=torch.long)  # (R, M) right-padded c[:-1]
        position_ids = torch.zeros((len(rows), width), dtype=torch.long)  # (R, M)
        for r, (b, j) in enumerate(rows):
            c = pairs[b][1][j]
            feed[r, :len(c) - 1] = torch.tensor(c[:-1])
            position_ids[r] = pos[b] + torch.arange(width)
        index = torch.tensor([b for b, _ in rows], device=self.device)  # (R,)
        cache.batch_select_indices(index)  # (B, ...) -> (R, ...)
        ext_mask = torch.cat([mask[index.cpu()], torch.ones((len(rows), width), dtype=mask.dtype)], dim=1)  # (R, T+M)
        out = self._forward(cache, feed, ext_mask, position_ids, keep_logits=None)
        logp = torch.log_softmax(out.logits.float(), dim=-1).cpu()  # (R, M, V): position t predicts c[t+1]
        for r, (b, j) in enumerate(rows):
            c = pairs[b][1][j]
            targets = torch.tensor(c[1:])  # (len-1,)
            scores[b][j] += float(logp[r, torch.arange(len(c) - 1), targets].double().sum())
        return scores

    def _rank_seq2seq(self, pairs) -> list[list[float]]:
        torch = self.torch
        contexts = [ctx for ctx, _ in pairs]
        width = max(len(c) for c in contexts)
        enc_ids = torch.full((len(contexts), width), self.pad_id, dtype=torch.long)  # (B, S) right-padded
        enc_mask = torch.zeros((len(contexts), width), dtype=torch.long)  # (B, S)
        for b, ctx in enumerate(contexts):
            enc_ids[b, :len(ctx)] = torch.tensor(ctx)
            enc_mask[b, :len(ctx)] = 1
        dev = self.device
        with torch.inference_mode():
            encoded = self.model.get_encoder()(input_ids=enc_ids.to(dev), attention_mask=enc_mask.to(dev))
        self.forward_calls += 1
        rows = [(b, j) for b, (_, conts) in enumerate(pairs) for j in range(len(conts))]
        start = self.model.config.decoder_start_token_id
        start = self.pad_id if start is None else start
        dec_width = max(1, max(len(pairs[b][1][j]) for b, j in rows))
        dec_in = torch.full((len(rows), dec_width), self.pad_id, dtype=torch.long)  # (R, M): start + c[:-1]
        dec_mask = torch.zeros((len(rows), dec_width), dtype=torch.long)  # (R, M)
        for r, (b, j) in enumerate(rows):
            c = pairs[b][1][j]
            shifted = [start] + c[:-1] if c else [start]
            dec_in[r, :len(shifted)] = torch.tensor(shifted)
            dec_mask[r, :len(shifted)] = 1
        index = torch.tensor([b for b, _ in rows], device=dev)  # (R,)
        from transformers.modeling_outputs import BaseModelOutput

        hidden = encoded.last_hidden_state.index_select(0, index)  # (R, S, d)
        with torch.inference_mode():
            out = self.model(
                encoder_outputs=BaseModelOutput(last_hidden_state=hidden), attention_mask=enc_mask.to(dev)[index],
                decoder_input_ids=dec_in.to(dev), decoder_attention_mask=dec_mask.to(dev), use_cache=False,
            )
        self.forward_calls += 1
        logp = torch.log_softmax(out.logits.float(), dim=-1).cpu()  # (R, M, V)
        scores = [[0.0] * len(conts) for _, conts in pairs]
        for r, (b, j) in enumerate(rows):
            c = pairs[b][1][j]
            if c:
                scores[b][j] = float(logp[r, torch.arange(len(c)), torch.tensor(c)].double().sum())
        return scores
