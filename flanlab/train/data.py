"""Training data: read (inputs, targets) pairs, tokenize them, and deal them out as global batches by step.

Where the pairs come from: a folder written by `flanlab mix` (shards train-*.jsonl or train-*.parquet, and
optionally validation.jsonl / validation-*.jsonl|parquet), or one JSONL / Parquet file. Only the fields
`inputs` and `targets` are used; a row lacking either, or holding a non-string, fails naming file and line.

How an example becomes tokens (the model's chat template is NOT used: plain text, like the eval prompts):
  causal   prompt = inputs + separator (unless inputs already end in whitespace), tokenized as the eval
           engine tokenizes a prompt (with a BOS if the tokenizer adds one, never a trailing EOS); then the
           target's tokens + EOS. Loss on the target tokens (and EOS) only.
  seq2seq  encoder: tokens(inputs) with the tokenizer's EOS; decoder labels: tokens(targets) + EOS.
Lengths: inputs keep their last max_input_len tokens (BOS kept), targets their first max_target_len - 1 plus EOS.

Order: epoch e visits the examples in a permutation drawn from (seed, e); with packing each epoch's order is
then packed into rows (flanlab.train.packing). The stream of rows is the concatenation of the epochs, and the
global batch of step s is rows [s * batch_size, (s + 1) * batch_size). Everything is a function of
(seed, step), so resuming at a step needs no saved iterator: the data position is the step itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flanlab.fileio import read_jsonl_numbered
from flanlab.train.packing import Row, make_row, pack


@dataclass
class TokenizedData:
    """Tokenized examples: `first[i]` is the prompt (causal) or encoder input (seq2seq), `second[i]` the target."""

    kind: str  # "causal" | "seq2seq"
    first: list[list[int]]
    second: list[list[int]]
    truncated_inputs: int = 0
    truncated_targets: int = 0

    def __len__(self) -> int:
        return len(self.first)

    def lengths(self) -> list[tuple[int, ...]]:
        """Per example: (tokens,) for causal, (encoder tokens, decoder tokens) for seq2seq."""
        if self.kind == "causal":
            return [(len(a) + len(b),) for a, b in zip(self.first, self.second)]
        return [(len(a), len(b)) for a, b in zip(self.first, self.second)]


# ----------------------------------------------------------------------------------------------------------
# files


def find_data_files(data: str | Path) -> tuple[list[Path], list[Path]]:
    """(train files, validation files) of a mixture folder or a single file."""
    path = Path(data).expanduser()
    if path.is_file():
        if path.suffix not in (".jsonl", ".parquet"):
            raise ValueError(f"{path}: training data must be a .jsonl or .parquet file, or a `flanlab mix` folder")
        return [path], []
    if not path.is_dir():
        raise FileNotFoundError(f"training data not found: {path} (build a mixture with `flanlab mix CONFIG -o DIR`)")

    def shards(prefix: str) -> list[Path]:
        # A mixture may be written in both formats with the same rows: read one of them, Parquet first.
        parquet = sorted(path.glob(f"{prefix}*.parquet"))
        return parquet or sorted(path.glob(f"{prefix}*.jsonl"))

    train = shards("train")
    if not train:
        found = ", ".join(sorted(p.name for p in path.iterdir())[:8]) or "nothing"
        raise FileNotFoundError(f"{path}: no train-*.jsonl or train-*.parquet shards (found: {found})")
    return train, shards("validation")


def data_fingerprint(files: list[Path]) -> str:
    """Names, sizes and modification times of the data files: a cheap check that a resumed run reads the same data."""
    digest = hashlib.sha256()
    for f in files:
        stat = f.stat()
        digest.update(f"{f.resolve()}\x1f{stat.st_size}\x1f{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _check_pair(row, where: str) -> tuple[str, str]:
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected an object with 'inputs' and 'targets', got {type(row).__name__}")
    for key in ("inputs", "targets"):
        if key not in row:
            raise ValueError(f"{where}: missing field {key!r} (fields: {', '.join(row) or 'none'})")
        if not isinstance(row[key], str):
            raise ValueError(f"{where}: field {key!r} must be a string, got {type(row[key]).__name__}")
    return row["inputs"], row["targets"]


def read_pairs(files: list[Path], limit: int | None = None) -> list[tuple[str, str]]:
    """(inputs, targets) of every row of the files, in file order; errors name file and line (or row)."""
    pairs: list[tuple[str, str]] = []
    for path in files:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path, columns=["inputs", "targets"])
            for i, row in enumerate(table.to_pylist()):
                pairs.append(_check_pair(row, f"{path}: row {i}"))
                if limit is not None and len(pairs) >= limit:
                    return pairs
            continue
        for lineno, row in read_jsonl_numbered(path):
            pairs.append(_check_pair(row, f"{path}:{lineno}"))
            if limit is not None and len(pairs) >= limit:
                return pairs
    return pairs


# ----------------------------------------------------------------------------------------------------------
# tokenization


def _batched_ids(tokenizer, texts: list[str], add_special_tokens: bool, chunk: int = 1024) -> list[list[int]]:
    out: list[list[int]] = []
    for i in range(0, len(texts), chunk):
        out.extend(tokenizer(texts[i : i + chunk], add_special_tokens=add_special_tokens)["input_ids"])
    return out


def tokenize_pairs(
    pairs: list[tuple[str, str]], tokenizer, kind: str, max_input_len: int, max_target_len: int, separator: str = "\n"
) -> TokenizedData:
    """Tokenize and truncate (inputs, targets) pairs for a causal or seq2seq model (see the module docstring)."""
    eos = tokenizer.eos_token_id
    bos = tokenizer.bos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no EOS token: targets could never end")
    if kind == "causal":
        prompts = [x if not x or x[-1].isspace() else x + separator for x, _ in pairs]
        firsts = _batched_ids(tokenizer, prompts, add_special_tokens=True)
        firsts = [ids[:-1] if ids and ids[-1] == eos else ids for ids in firsts]  # e.g. ByT5 appends </s>
        seconds = _batched_ids(tokenizer, [y for _, y in pairs], add_special_tokens=False)
    else:
        firsts = _batched_ids(tokenizer, [x for x, _ in pairs], add_special_tokens=True)
        seconds = _batched_ids(tokenizer, [y for _, y in pairs], add_special_tokens=False)
    data = TokenizedData(kind=kind, first=[], second=[])
    for ids, target in zip(firsts, seconds):
        if target and target[-1] == eos:
            target = target[:-1]
        if len(ids) > max_input_len:
            data.truncated_inputs += 1
            keep_bos = kind == "causal" and bos is not None and ids[0] == bos
            ids = ([bos] if keep_bos else []) + ids[len(ids) - max_input_len + keep_bos :]
        if len(target) > max_target_len - 1:
            data.truncated_targets += 1
            target = target[: max_target_len - 1]
        data.first.append(list(ids))
        data.second.append(list(target) + [eos])
    return data


# ----------------------------------------------------------------------------------------------------------
# rows and global batches


class RowStream:
    """The deterministic, endless stream of training rows; `global_batch(step)` is a pure function of step."""

    def __init__(self, data: TokenizedData, *, packing: bool, pack_len: int, pack_target_len: int, seed: int,
                 decoder_start_id: int | None = None):
        if len(data) == 0:
            raise ValueError("no training examples")
        self.data = data
        self.packing = packing
        self.capacity = (pack_len,) if data.kind == "causal" else (pack_len, pack_target_len)
        self.seed = seed
        self.decoder_start_id = decoder_start_id
        self._lengths = data.lengths()
        self._epoch_rows: dict[int, list[list[int]]] = {}  # epoch -> rows as lists of example indices
        self._epoch_starts = [0]  # first global row index of each epoch computed so far

    def epoch_rows(self, epoch: int) -> list[list[int]]:
        """Rows of one epoch, each a list of example indices; the last two epochs used are cached."""
        if epoch not in self._epoch_rows:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.data)).tolist()
            rows = pack(order, self._lengths, self.capacity) if self.packing else [[i] for i in order]
            self._epoch_rows[epoch] = rows
            for old in [e for e in self._epoch_rows if e < epoch - 1]:
                del self._epoch_rows[old]
        return self._epoch_rows[epoch]

    def _locate(self, row_index: int) -> tuple[int, int]:
        """(epoch, row within the epoch) of a global row index."""
        while self._epoch_starts[-1] <= row_index:
            epoch = len(self._epoch_starts) - 1
            self._epoch_starts.append(self._epoch_starts[-1] + len(self.epoch_rows(epoch)))
        epoch = int(np.searchsorted(self._epoch_starts, row_index, side="right")) - 1
        return epoch, row_index - self._epoch_starts[epoch]

    def position(self, step: int, batch_size: int) -> dict:
        """Where the data stream stands after `step` optimizer steps (stored in checkpoints)."""
        epoch, row = self._locate(step * batch_size)
        return {"step": step, "rows_consumed": step * batch_size, "epoch": epoch, "row_in_epoch": row}

    def global_batch(self, step: int, batch_size: int) -> list[Row]:
        """The batch_size rows of optimizer step `step` (0-based), identical in every process."""
        rows = []
        for index in range(step * batch_size, (step + 1) * batch_size):
            epoch, r = self._locate(index)
            members = self.epoch_rows(epoch)[r]
            rows.append(make_row(self.data.kind, [(self.data.first[i], self.data.second[i]) for i in members],
                                 self.decoder_start_id))
        return rows


def eval_rows(data: TokenizedData, decoder_start_id: int | None = None) -> list[Row]:
    """Validation rows: one example each, in file order (held-out loss is computed unpacked)."""
    return [make_row(data.kind, [(a, b)], decoder_start_id) for a, b in zip(data.first, data.second)]
