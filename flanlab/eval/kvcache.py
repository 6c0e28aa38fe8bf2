"""The evaluation engine's batch KV cache (causal models): the layout flanlab.eval.engine runs its rows on.

  - `common_prefix_length`: how many leading tokens of a row's prefix encoding its whole-prompt encoding
    agrees with (the boundary up to which the prefix's cache is reused; see flanlab.eval.engine's docstring).
  - `PreallocatedLayer`: a cache layer allocated once with room for every token to come, written in place.
  - `batch_cache`: the cache of one batch, each row's reused prefix keys/values copied into its first columns.
  - `SharedPrefixLayer` / `shared_prefix_cache`: the cache of one batch whose rows read their prefixes from one
    shared block instead (flanlab.eval.prefix_attention computes attention on that layout).
  - `has_sliding_layers`: whether a model has sliding-window attention layers (their cache layers drop old
    positions, so neither the prefix cache nor preallocated layers are used for it).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers.cache_utils import DynamicLayer


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def has_sliding_layers(model_config) -> bool:
    from transformers import DynamicCache

    try:
        cache = DynamicCache(config=model_config)
    except Exception:  # noqa: BLE001 - a config the cache cannot read: take the plain path
        return True
    return any(getattr(layer, "is_sliding", False) for layer in cache.layers)


class PreallocatedLayer(DynamicLayer):
    """A transformers cache layer whose keys/values live in one buffer allocated for the whole batch.

    transformers' DynamicLayer appends with torch.cat, copying the whole cache at every decoding step (measured
    here: 60% of a SmolLM2 step at batch 16 with a 1000-token context). This layer writes new columns in place
    and hands attention a view of the filled part; it grows by concatenation only if its room runs out."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity = capacity
        self.length = 0
        self.buf_keys = self.buf_values = None

    def prefill(self, keys, values, length: int) -> None:
        """Start from buffers (R, H, C, D) whose first `length` columns are filled."""
        self.buf_keys, self.buf_values, self.length = keys, values, length
        self.device = keys.device
        self.is_initialized = True
        self.keys, self.values = keys[:, :, :length], values[:, :, :length]

    def update(self, key_states, value_states, *args, **kwargs):  # states (R, H, t, D)
        n = key_states.shape[-2]
        if self.buf_keys is None:
            shape = (*key_states.shape[:2], max(self.capacity, n), key_states.shape[3])
            self.prefill(key_states.new_zeros(shape), value_states.new_zeros(shape), 0)
        missing = self.length + n - self.buf_keys.shape[-2]
        if missing > 0:  # out of room: grow (does not happen when the capacity was computed right)
            extra = self.buf_keys.new_zeros((*self.buf_keys.shape[:2], missing, self.buf_keys.shape[3]))
            self.buf_keys = torch.cat([self.buf_keys, extra], dim=-2)
            self.buf_values = torch.cat([self.buf_values, extra], dim=-2)
        self.buf_keys[:, :, self.length:self.length + n] = key_states
        self.buf_values[:, :, self.length:self.length + n] = value_states
        self.length += n
        self.keys, self.values = self.buf_keys[:, :, :self.length], self.buf_values[:, :, :self.length]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.length + query_length, 0

    def batch_select_indices(self, indices) -> None:
        if self.buf_keys is not None:
            self.prefill(self.buf_keys[indices], self.buf_values[indices], self.length)

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError("PreallocatedLayer is only used for evaluation batches")


class SharedPrefixLayer(PreallocatedLayer):
    """A PreallocatedLayer for the rows' own columns, behind a block of prefix keys/values that all rows share.

    Columns, as the attention mask and position bookkeeping see them: [shared block P | rows' own columns].
    shared_keys/shared_values (1, H, P, D) are read by flanlab.eval.prefix_attention, never copied per row;
    `update` and the returned keys/values concern the rows' own columns only."""

    def __init__(self, capacity: int, shared_keys, shared_values):
        super().__init__(capacity)
        self.shared_keys, self.shared_values = shared_keys, shared_values  # (1, H, P, D)
        self.shared_length = shared_keys.shape[-2]
        self.ragged: RaggedLengths | None = None  # set by start_ragged: each row then has its own length

    def get_seq_length(self) -> int:
        return self.shared_length + self.length

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.shared_length + self.length + query_length, 0

    def update(self, key_states, value_states, *args, **kwargs):  # states (R, H, n, D)
        if self.ragged is None:
            return super().update(key_states, value_states, *args, **kwargs)
        # ragged: row r's n new columns go to [lengths[r], lengths[r] + n); the returned view is as wide as the
        # longest row needs (the caller's 4D mask says which columns each query sees)
        n = key_states.shape[-2]
        end = self.ragged.longest + n
        self._room(end)
        cols = self.ragged.lengths[:, None] + torch.arange(n, device=key_states.device)  # (R, n)
        rows = torch.arange(key_states.shape[0], device=key_states.device)[:, None]  # (R, 1)
        self.buf_keys[rows, :, cols] = key_states.transpose(1, 2)  # (R, n, H, D) into (R, H, C, D)
        self.buf_values[rows, :, cols] = value_states.transpose(1, 2)
        self.length = end
        self.keys, self.values = self.buf_keys[:, :, :end], self.buf_values[:, :, :end]
        return self.keys, self.values

    def _room(self, end: int) -> None:
        """At least `end` columns, growing by half again at least (a few copies in a long generation)."""
        have = self.buf_keys.shape[-2]
        if end <= have:
            return
        extra = self.buf_keys.new_zeros((*self.buf_keys.shape[:2], max(end - have, have // 2), self.buf_keys.shape[3]))
        self.buf_keys = torch.cat([self.buf_keys, extra], dim=-2)
        self.buf_values = torch.cat([self.buf_values, extra], dim=-2)


class RaggedLengths:
    """The own-column count of each row of a ragged SharedPrefix cache, shared by all its layers: the decoding
    loop advances a row by the tokens it accepted, after the forward (so every layer writes at the same place)."""

    def __init__(self, lengths):
        self.lengths = lengths  # (R,) long
        self.longest = int(lengths.max()) if lengths.numel() else 0

    def set(self, lengths) -> None:
        self.lengths = lengths
        self.longest = int(lengths.max()) if lengths.numel() else 0


def start_ragged(cache, n_rows: int) -> RaggedLengths:
    """Switch a shared-prefix cache (after its common-timeline prefill) to per-row lengths, all equal to the
    columns filled so far."""
    layer0 = cache.layers[0]
    state = RaggedLengths(torch.full((n_rows,), layer0.length, dtype=torch.long, device=layer0.buf_keys.device))
    for layer in cache.layers:
        layer.ragged = state
    return state


def shared_prefix_cache(model_config, blocks: list[list], capacity: int, dtype=None, device=None):
    """A DynamicCache of SharedPrefixLayers: blocks[b] = per-layer (keys, values) of shape (1, H, Lb, D), laid
    side by side as the shared block (P = sum of Lb columns; no blocks: P = 0, in the model's dtype/device);
    each row's own columns have room for `capacity`."""
    from transformers import DynamicCache

    cache = DynamicCache(config=model_config)
    n_kv = getattr(model_config, "num_key_value_heads", None) or model_config.num_attention_heads
    head_dim = getattr(model_config, "head_dim", None) or model_config.hidden_size // model_config.num_attention_heads
    layers = []
    for li in range(len(cache.layers)):
        if blocks:
            keys = torch.cat([kv[li][0] for kv in blocks], dim=2)  # (1, H, P, D)
            values = torch.cat([kv[li][1] for kv in blocks], dim=2)  # (1, H, P, D)
        else:  # no row has a prefix: an empty block (P = 0), the rows' own columns only
            keys = values = torch.zeros((1, n_kv, 0, head_dim), dtype=dtype, device=device)
        layers.append(SharedPrefixLayer(capacity, keys, values))
    cache.layers = layers
    return cache


def batch_cache(model_config, states, shared: list[int], width_s: int, capacity: int, preallocate: bool):
    """A transformers DynamicCache whose layers hold row r's prefix keys/values in columns [0, shared[r]).

    states[r]: (prefix ids, per-layer (keys, values) of shape (1, H, Lp, D)), or ([], []) for a row without one.
    Its layers are PreallocatedLayers (room for `capacity` columns) when `preallocate` (off for models with
    sliding-window layers; the prefix cache is then off too and the cache starts empty)."""
    from transformers import DynamicCache

    n_layers = len(DynamicCache(config=model_config).layers)
    prefilled = []  # per layer: (keys, values) of shape (R, H, C, D), columns [0, width_s) filled
    if width_s:
        for li in range(n_layers):
            k0, v0 = next((kv[li] for _, kv in states if kv))  # shapes (1, H, Lp, D) of some row's prefix
            keys = k0.new_zeros((len(shared), k0.shape[1], capacity, k0.shape[3]))  # (R, H, C, D)
            values = v0.new_zeros((len(shared), v0.shape[1], capacity, v0.shape[3]))  # (R, H, C, D)
            for r, ((_, kv), s) in enumerate(zip(states, shared)):
                if s:
                    keys[r, :, :s] = kv[li][0][0, :, :s]
                    values[r, :, :s] = kv[li][1][0, :, :s]
            prefilled.append((keys, values))
    if not preallocate:
        data = [(k[:, :, :width_s], v[:, :, :width_s]) for k, v in prefilled] or None
        return DynamicCache(ddp_cache_data=data, config=model_config)
    cache = DynamicCache(config=model_config)
    layers = []
    for li in range(n_layers):
        layer = PreallocatedLayer(capacity)
        if prefilled:
            layer.prefill(*prefilled[li], width_s)
        layers.append(layer)
    cache.layers = layers
    return cache
