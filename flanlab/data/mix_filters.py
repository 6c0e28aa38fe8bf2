"""The filters a mixture's examples pass, each reporting what it removes into one explicit Removed record.

Record filters (their keep(record, report) -> keep?) run where a task's records are read: NotEmpty, InSplit (the
validation bucket, never reported: the other split uses those records), NotContaminated (13-gram overlap with a
benchmark item, flanlab/data/decontam.py). Example filters (keep(record, example) -> the example, possibly
cut, or None) run on each rendered example: RationaleShown (a chain-of-thought example shows its record's
rationale, which is checked only then), LengthLimit (drop or truncate), Dedup (exact duplicates of an example
already written, by a 64-bit digest kept in a DigestSet). The length measure (Lengths) is shared with rendering,
which prunes few-shot exemplars to fit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import xxhash

from flanlab.data.templates import FORMAT_GROUP, estimate_tokens

if TYPE_CHECKING:
    from flanlab.data.mix_config import MixtureConfig

EXAMPLES_KEPT = 3  # examples of each removal reason kept in stats.json
COT_FORMATS = frozenset(f for f, group in FORMAT_GROUP.items() if group == "cot")
Example4 = tuple[str, str, str, str]  # (inputs, targets, template id, format): a rendered example


def seed_of(*parts) -> int:
    """A 64-bit seed (or hash bucket) from any values, stable across runs and machines."""
    return int.from_bytes(hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest(), "little")


def digest(text: str) -> int:
    """A 64-bit digest of an example (exact-duplicate removal); xxh3 costs half of blake2b here."""
    return _xxh3(text.encode("utf-8"))


_xxh3 = xxhash.xxh3_64_intdigest


class DigestSet:
    """A set of 8-byte digests that stays small: the newest `flush_at` in a Python set (~78 bytes each), older
    ones in one sorted numpy array (8 bytes each). A miss in the set is looked up in the array only when a Bloom
    filter over the array's digests (two bits an element, 16 bits of filter an expected element, in a
    bytearray) says it may be there: most are answered in ~0.2 us instead of a ~4 us numpy search, which
    mixtures past a million examples pay on every example."""

    def __init__(self, flush_at: int = 1 << 20, capacity: int = 1 << 22):
        self.flush_at = flush_at
        self.recent: set[int] = set()
        self.frozen = None  # sorted np.uint64 array
        self.bloom_bits = min(1 << 30, max(1 << 23, 1 << (16 * capacity - 1).bit_length()))
        self.bloom: bytearray | None = None  # allocated at the first flush (small builds never need it)

    def __contains__(self, d: int) -> bool:
        return d in self.recent or (self.frozen is not None and self._in_frozen(d))

    def _in_frozen(self, d: int) -> bool:
        bloom, mask = self.bloom, self.bloom_bits - 1
        p, q = d & mask, (d >> 32) & mask
        if not (bloom[p >> 3] >> (p & 7)) & 1 or not (bloom[q >> 3] >> (q & 7)) & 1:
            return False
        import numpy as np

        i = int(np.searchsorted(self.frozen, np.uint64(d)))
        return i < len(self.frozen) and int(self.frozen[i]) == d

    def add(self, d: int) -> None:
        self.recent.add(d)
        if len(self.recent) >= self.flush_at:
            self._flush()

    def add_new(self, d: int) -> bool:
        """Add d and return True, or return False when d is already here (`d not in s` and `s.add(d)` in one call)."""
        if d in self.recent or (self.frozen is not None and self._in_frozen(d)):
            return False
        self.recent.add(d)
        if len(self.recent) >= self.flush_at:
            self._flush()
        return True

    def _flush(self) -> None:
        import numpy as np

        new = np.fromiter(self.recent, dtype=np.uint64, count=len(self.recent))
        if self.bloom is None:
            self.bloom = bytearray(self.bloom_bits >> 3)
        bits = np.frombuffer(self.bloom, dtype=np.uint8)  # a view: writes go to the bytearray
        mask = np.uint64(self.bloom_bits - 1)
        for pos in (new & mask, (new >> np.uint64(32)) & mask):
            np.bitwise_or.at(bits, pos >> np.uint64(3), np.left_shift(1, pos & np.uint64(7)).astype(np.uint8))
        self.frozen = np.sort(new if self.frozen is None else np.concatenate([self.frozen, new]))
        self.recent = set()

    def __len__(self) -> int:
        return len(self.recent) + (0 if self.frozen is None else len(self.frozen))


class Removed:
    """Counts of removed items by reason, with a few examples each."""

    def __init__(self):
        self.counts: dict[str, int] = {}
        self.by: dict[str, dict[str, int]] = {}
        self.examples: dict[str, list] = {}
        self.by_task: dict[str, dict[str, int]] = {}  # task -> reason -> count (says why a task fell short)

    def add(self, reason: str, task: str, text: str, detail: str = "") -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        mine = self.by_task.setdefault(task, {})
        mine[reason] = mine.get(reason, 0) + 1
        key = detail or task
        by = self.by.setdefault(reason, {})
        by[key] = by.get(key, 0) + 1
        ex = self.examples.setdefault(reason, [])
        if len(ex) < EXAMPLES_KEPT:
            ex.append({"task": task, **({"matched": detail} if detail else {}), "text": text[:300]})

    def to_dict(self) -> dict:
        return {r: {"count": n, "by": dict(sorted(self.by[r].items())), "examples": self.examples[r]}
                for r, n in sorted(self.counts.items())}


# --- lengths ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lengths:
    """How lengths are measured (count: text -> tokens; truncate: text, n -> its first n tokens) and the limits."""

    count: Callable[[str], int]
    truncate: Callable[[str, int], str]
    desc: str  # how lengths are measured, for stats.json
    max_input: int
    max_target: int

    @property
    def max_chars(self) -> tuple[int, int] | None:
        """(input, target) limits in characters when lengths are estimated: with len(text) // 4, "over n tokens" is
        "over 4n + 3 characters", checked without a call. None with a tokenizer."""
        if self.count is not estimate_tokens:
            return None
        return 4 * self.max_input + 3, 4 * self.max_target + 3


def lengths_for(cfg: MixtureConfig) -> Lengths:
    count, truncate, desc = _token_functions(cfg)
    return Lengths(count, truncate, desc, cfg.max_input_tokens, cfg.max_target_tokens)


def _token_functions(cfg: MixtureConfig) -> tuple[Callable[[str], int], Callable[[str, int], str], str]:
    """(count, truncate, description) for the configured length measure."""
    if not cfg.tokenizer:
        return estimate_tokens, (lambda text, n: text[: n * 4]), "estimate: len(text) // 4 characters per token"
    tok = _load_tokenizer(cfg.tokenizer)

    def count(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    def truncate(text: str, n: int) -> str:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        return text if len(ids) <= n else tok.decode(ids[:n])

    return count, truncate, f"tokenizer {cfg.tokenizer}"


def _load_tokenizer(name: str):
    """A flanlab model preset's tokenizer (tiny presets: ByT5's bytes), a local folder's, or a hub id's."""
    from flanlab.models import PRESETS, convert_gguf_preset, preset_folder

    if name in PRESETS:
        preset = PRESETS[name]
        if preset.untrained:
            from transformers import ByT5Tokenizer

            return ByT5Tokenizer()
        folder = preset_folder(preset)
        if not (folder / "config.json").is_file():
            folder = convert_gguf_preset(preset, verbose=False)
        name = str(folder)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name)


# --- decontamination ----------------------------------------------------------------------------------------------

_RATIONALE_HIT = "\x00rationale_hit"  # a record's memo: the benchmark its rationale overlaps, or None
_UNCHECKED = object()


class Decontaminator:
    """The benchmark (name) a record, a rationale or a pre-rendered row overlaps, or None; answers None for
    everything when `index` (a decontam.NgramIndex) is None, decontamination being off."""

    def __init__(self, index):
        self.index = index
        self.checked_texts: dict[int, str | None] = {}  # digest of a shared text (NIV2 definition) -> benchmark

    def record(self, rec: dict) -> str | None:
        """The benchmark a record overlaps. Its rationale is not looked at here: only chain-of-thought examples
        show it, so rationale() checks it when one is rendered (most examples never pay)."""
        idx = self.index
        if idx is None:
            return None
        options = rec.get("options")
        hit = idx.match_record(rec.get("question") or "", rec.get("answer") or "", " ".join(options) if options else "")
        if hit:
            return hit
        for key in ("definition", "positive_examples"):  # shared by every record of an NIV2 task: check once
            v = rec.get(key)
            if not v:
                continue
            text = v if isinstance(v, str) else "\n".join(f"{e.get('input', '')}\n{e.get('output', '')}" for e in v)
            d = digest(text)
            if d not in self.checked_texts:
                self.checked_texts[d] = idx.match(text)
            if self.checked_texts[d]:
                return self.checked_texts[d]
        return None

    def rationale(self, rec: dict) -> str | None:
        """The benchmark a record's rationale overlaps; checked once per record (the answer is kept in the record)."""
        if self.index is None:
            return None
        hit = rec.get(_RATIONALE_HIT, _UNCHECKED)
        if hit is _UNCHECKED:
            hit = rec[_RATIONALE_HIT] = self.index.match(rec.get("rationale") or "")
        return hit

    def row(self, rec: dict) -> str | None:
        """The benchmark a pre-rendered row (its inputs: the whole prompt, exemplars included; its targets) overlaps."""
        if self.index is None:
            return None
        return self.index.match_record(rec["inputs"], rec["targets"])


# --- record filters: keep(record, report) -> keep? ----------------------------------------------------------------


class NotEmpty:
    """Keeps a record with both its text and its target field; the others are removed as "empty"."""

    def __init__(self, task: str, text: str, target: str, removed: Removed):
        self.task, self.text, self.target, self.removed = task, text, target, removed

    def keep(self, rec: dict, report: bool) -> bool:
        if rec.get(self.text) and rec.get(self.target):
            return True
        if report:
            self.removed.add("empty", self.task, str(rec)[:200])
        return False


class InSplit:
    """Keeps the records of one split: a record is in the validation bucket when the hash of its task, text and
    target falls in the first `fraction` of the range. Never reported: the other split uses those records."""

    def __init__(self, task: str, text: str, target: str, split: str, fraction: float):
        self.task, self.text, self.target = task, text, target
        self.validation = split == "validation"
        self.bound = int(fraction * (1 << 64))

    def keep(self, rec: dict, report: bool) -> bool:
        return (seed_of(self.task, rec[self.text], rec[self.target]) < self.bound) == self.validation


class NotContaminated:
    """Keeps a record that `check` (a Decontaminator method) finds in no benchmark; the others are removed as
    "decontaminated", by benchmark."""

    def __init__(self, task: str, text: str, check: Callable[[dict], str | None], removed: Removed):
        self.task, self.text, self.check, self.removed = task, text, check, removed

    def keep(self, rec: dict, report: bool) -> bool:
        hit = self.check(rec)
        if not hit:
            return True
        if report:
            self.report(rec, hit)
        return False

    def report(self, rec: dict, hit: str) -> None:
        self.removed.add("decontaminated", self.task, rec.get(self.text, ""), hit)


class AllOf:
    """A chain of record filters: a record is kept when every one keeps it (the first that drops it reports)."""

    def __init__(self, filters: list):
        self.filters = [f.keep for f in filters]

    def keep(self, rec: dict, report: bool) -> bool:
        for keep in self.filters:
            if not keep(rec, report):
                return False
        return True


# --- example filters: keep(record, example) -> example or None ----------------------------------------------------


class RationaleShown:
    """For chain-of-thought examples (COT_FORMATS), which show their record's rationale: drops one whose rationale
    overlaps a benchmark (as the query: its exemplars are checked when they are picked); the record still serves
    its direct examples, which do not show it."""

    def __init__(self, task: str, decontam: Decontaminator, removed: Removed):
        self.task, self.decontam, self.removed = task, decontam, removed

    def keep(self, rec: dict, ex: Example4) -> Example4 | None:
        hit = self.decontam.rationale(rec)
        if hit:
            self.removed.add("decontaminated", self.task, rec["question"], hit)
            return None
        return ex


class LengthLimit:
    """An example whose inputs or targets are over the limits is dropped ("too_long") or, with overlong
    "truncate", cut to them ("truncated", kept)."""

    def __init__(self, task: str, lengths: Lengths, overlong: str, removed: Removed):
        self.task, self.lengths, self.removed = task, lengths, removed
        self.drop = overlong == "drop"
        self.max_chars = lengths.max_chars

    def keep(self, rec: dict, ex: Example4) -> Example4 | None:
        inputs, targets = ex[0], ex[1]
        max_chars, lengths = self.max_chars, self.lengths
        if max_chars:
            if len(inputs) <= max_chars[0] and len(targets) <= max_chars[1]:
                return ex
        elif lengths.count(inputs) <= lengths.max_input and lengths.count(targets) <= lengths.max_target:
            return ex
        if self.drop:
            self.removed.add("too_long", self.task, inputs)
            return None
        self.removed.add("truncated", self.task, inputs)
        return lengths.truncate(inputs, lengths.max_input), lengths.truncate(targets, lengths.max_target), ex[2], ex[3]


class Dedup:
    """Drops an example equal (inputs and targets) to one already written in this build ("duplicate")."""

    def __init__(self, task: str, seen: DigestSet, removed: Removed):
        self.task, self.seen, self.removed = task, seen, removed

    def keep(self, rec: dict, ex: Example4) -> Example4 | None:
        if self.seen.add_new(_xxh3(f"{ex[0]}\x00{ex[1]}".encode("utf-8"))):  # digest(), inlined: once an example
            return ex
        self.removed.add("duplicate", self.task, ex[0])
        return None
