"""Flan-style mixtures: tasks rendered through templates, mixed examples-proportionally with caps, held-out data
kept out, written as deterministic shards in bounded memory.

A mixture config (MixtureConfig, from YAML) lists submixtures, each with a rate and the tasks it draws from
(catalog source kinds, task names or patterns, files, Flan collection submixes, or another mixture YAML nested
under it). The build:

  1. plan: resolve every submixture's tasks (held-out tasks excluded by name and reported), give each task
     the weight min(size, cap) — examples-proportional with a per-task cap, as in the paper (FLAN 30k, T0 20k,
     NIV2 5k, CoT 100k) — within its submixture; the submixtures share the mixture by their rates. A synthetic
     family is an endless stream, so its size is the submixture's `synthetic_size`. Each task then gets an
     exact number of examples (largest-remainder rounding of size x share). Templates are checked here,
     before anything is read.
  2. stream: one iterator per task (its records, through a small seeded shuffle buffer that also supplies
     few-shot exemplars; a finite task repeats with fresh template draws once it runs out; a pre-rendered Flan
     collection task draws each row's format by the format weights, then that format's next row), merged by
     deterministic stratified interleaving: the k-th example of a task with n examples gets the key
     (k + u)/n, u uniform in [0, 1) from the task's seeded RNG, and a heap emits keys in order. Only the
     buffers and one 8-byte digest per written example (exact-duplicate removal; DigestSet keeps all but the
     newest million in a sorted numpy array, 8 bytes each) stay in memory.
  3. filter: records sharing a 13-gram with a benchmark item, or equal to a short benchmark item, are dropped
     (flanlab/data/decontam.py); a rationale, which only chain-of-thought examples show, is checked when one
     shows it (a CoT example, or a CoT exemplar, whose rationale overlaps is dropped); rendered examples that
     duplicate one already written are dropped and the task draws again; over-long inputs are pruned (fewer
     exemplars), then dropped or truncated. All removals are counted by reason with a few examples.
  4. write: train-00000-of-0000N.jsonl (and/or .parquet) shards with fields inputs, targets, task, category,
     template_id, format, source; validation.jsonl (held-apart records: a hash bucket of each finite task's
     records, the "validation" stream of each synthetic family); stats.json — all into a temporary folder
     renamed into place at the end (flanlab.fileio.atomic_dir). Same config and seed: byte-identical files.
"""

from __future__ import annotations

import bisect
import dataclasses
import fnmatch
import hashlib
import heapq
import itertools
import json
import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import xxhash

from flanlab.config import ConfigError, Count, Count0, NonEmpty, Range, Seed, Text, Weight, load_config
from flanlab.data import catalog
from flanlab.data.example import Example
from flanlab.data.flan_collection import FlanCollectionSpec, check_spec, spec_tasks
from flanlab.data.templates import (
    FEW_SHOT_FORMATS, FORMAT_GROUP, FORMATS, OPTION_STYLES, TEMPLATE_SETS, TRIGGERS, ZERO_SHOT_OF, Template,
    TemplateSet, estimate_tokens, load_template_file, render_few_shot, render_niv2_examples,
)
from flanlab.registry import did_you_mean
from flanlab.runlock import locks_folder

OUTPUT_FIELDS = ("inputs", "targets", "task", "category", "template_id", "format", "source")
DEFAULT_FORMATS = {"zs_opt": 1.0, "zs_noopt": 1.0, "fs_opt": 1.0, "fs_noopt": 1.0, "cot_zs": 0.5, "cot_fs": 0.5}
MAX_RETRIES = 64  # consecutive duplicates / over-long drops before a task counts as exhausted
EXAMPLES_KEPT = 3  # examples of each removal reason kept in stats.json
VALIDATION_OVERSAMPLE = 3


# --- config ----------------------------------------------------------------------------------------------------


@dataclass
class FileSpec:
    """A task read from a table file (or a Hugging Face dataset with format: hf)."""

    name: Text
    path: Text  # relative paths are relative to the config file
    # jsonl | json | csv | tsv | parquet (flanlab.data.sources.TABLE_FORMATS) | hf (default: from the suffix)
    format: Literal["jsonl", "json", "csv", "tsv", "parquet", "hf"] | None = None
    fields: dict[str, str] = field(default_factory=dict)  # canonical field -> column, e.g. {question: prompt}
    category: str = "file"
    instruction: str = ""  # given: the task uses the instruction templates
    split: str = "train"  # hf only
    data_files: str | None = None  # hf only: files for a packaged builder (path: json / csv / parquet)


@dataclass
class SubmixtureConfig:
    name: Text
    rate: Weight = 1.0  # share of the mixture (rates are normalised over the submixtures that have tasks)
    sources: list[str] = field(default_factory=list)  # catalog source kinds: synthetic, flan_cot, gsm8k, niv2
    tasks: list[str] = field(default_factory=list)  # task names or shell patterns ("task1*")
    exclude: list[str] = field(default_factory=list)  # names or patterns left out
    files: list[FileSpec] = field(default_factory=list)
    flan_collection: list[FlanCollectionSpec] = field(default_factory=list)  # Flan 2022 submixes (pre-rendered rows)
    mixture: Text | None = None  # another mixture YAML nested here (its submixtures share this one's rate)
    cap: Count | None = None  # per-task cap on the examples-proportional weight
    synthetic_size: Count = 10000  # nominal size of each synthetic family (an endless stream)
    max_tasks: Count | None = None  # keep the first N tasks of this submixture (catalog order)
    formats: dict[str, Weight] | None = None  # format weights for this submixture (default: the mixture's); for
    # pre-rendered (Flan collection) tasks they pick which rows: a format of weight 0 is left out, the others are
    # drawn in proportion to their weights among the formats a task has rows of


@dataclass
class MixtureConfig:
    name: Text = "mixture"
    seed: Seed = 0
    size: Count | None = None  # examples to write; null: as many as fit without repeating any task's records
    submixtures: list[SubmixtureConfig] = field(default_factory=list)
    formats: dict[str, Weight] = field(default_factory=lambda: dict(DEFAULT_FORMATS))  # format -> weight
    max_tasks: Count | None = None  # keep the first N tasks over all submixtures, in config then catalog order
    # few-shot formats take 1..fewshot exemplars (NIV2: its positive examples); none: weight 0 for the fs formats
    fewshot: Count = 3
    max_input_tokens: Count = 1024
    max_target_tokens: Count = 256
    overlong: Literal["drop", "truncate"] = "drop"  # what happens to an input still too long with no exemplars
    tokenizer: Text | None = None  # count tokens with this tokenizer; null: the estimate len(text) // 4
    validation_size: Count0 = 0  # examples in validation.jsonl (records held apart from training)
    # share of each finite task's records held apart when validation_size > 0
    validation_fraction: Annotated[float, Range(gt=0, lt=1)] = 0.05
    dedup: bool = True
    decontaminate: bool = True
    ngram: Count = 13  # decontamination: records sharing an n-gram of this many words with a benchmark item
    shuffle_buffer: Count = 32  # records buffered per task (shuffling and few-shot exemplars)
    record_cache_mb: Count0 = 128  # finite tasks' records kept in memory after their first epoch, in all (0: re-read)
    shard_size: Count = 100_000  # examples per shard
    # jsonl and/or parquet
    output: Annotated[list[Literal["jsonl", "parquet"]], NonEmpty()] = field(default_factory=lambda: ["jsonl"])
    template_file: Text | None = None  # YAML replacing built-in template sets (see templates.load_template_file)
    source_path: str = field(default="", init=False, repr=False)  # the YAML it was read from (set by the loader)


def load_mixture_config(path, overrides: list[str] | None = None) -> MixtureConfig:
    """YAML (+ key=value overrides) -> MixtureConfig, checked: formats, output kinds, nested files, templates."""
    cfg = load_config(MixtureConfig, path, overrides)
    cfg.source_path = str(path)
    _check_config(cfg, str(path))
    return cfg


def _check_config(cfg: MixtureConfig, where: str) -> None:
    if not cfg.submixtures:
        raise ConfigError(f"{where}: no submixtures")
    for fmts, at in [(cfg.formats, "formats")] + [(s.formats, f"submixtures.{s.name}.formats") for s in cfg.submixtures if s.formats]:
        for fmt, w in fmts.items():
            if fmt not in FORMATS:
                raise ConfigError(f"{where}: {at}: unknown format {fmt!r}.{did_you_mean(fmt, FORMATS)} Formats: {', '.join(FORMATS)}")
        if not any(w > 0 for w in fmts.values()):
            raise ConfigError(f"{where}: {at}: every weight is 0")
    names = [s.name for s in cfg.submixtures]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: submixture names repeat: {names}")
    if not any(s.rate > 0 for s in cfg.submixtures):
        raise ConfigError(f"{where}: submixtures: every rate is 0")
    for s in cfg.submixtures:
        if s.mixture and (s.sources or s.tasks or s.files or s.flan_collection):
            raise ConfigError(f"{where}: submixtures.{s.name}: a nested mixture cannot also list sources, tasks, "
                              "files or flan_collection")
        if not (s.mixture or s.sources or s.tasks or s.files or s.flan_collection):
            raise ConfigError(f"{where}: submixtures.{s.name}: names no sources, tasks, files, flan_collection or mixture")
        for i, spec in enumerate(s.flan_collection):
            check_spec(spec, f"{where}: submixtures.{s.name}.flan_collection[{i}]")
        for src in s.sources:
            if src not in catalog.CATALOG_SOURCES:
                raise ConfigError(f"{where}: submixtures.{s.name}.sources: unknown source {src!r}."
                                  f"{did_you_mean(src, catalog.CATALOG_SOURCES)} Known: {', '.join(catalog.CATALOG_SOURCES)}")
    if cfg.template_file:
        load_template_file(_resolve(cfg, cfg.template_file))


def _resolve(cfg: MixtureConfig, path: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_absolute() and cfg.source_path:
        p = Path(cfg.source_path).parent / p
    return p


# --- plan -----------------------------------------------------------------------------------------------------


@dataclass
class PlannedTask:
    task: catalog.Task
    submixture: str
    size: int  # records available (synthetic: the nominal size)
    weight: float  # min(size, cap)
    share: float  # expected proportion of the mixture
    formats: dict[str, tuple[float, list]]  # format -> (weight, usable templates)
    count: int = 0  # examples to write
    val_count: int = 0
    key: str = ""  # the stream's name: the task name, or "submixture:task" for its second and later submixtures
    json_task: str = field(default="", repr=False)  # encoded constant fields (see _json_line)
    json_tail: dict = field(default_factory=dict, repr=False)


@dataclass
class Plan:
    config: MixtureConfig
    data_dir: Path | None
    tasks: list[PlannedTask]
    submixtures: dict[str, dict]  # leaf name -> {rate_configured, rate, tasks, cap}
    size: int
    excluded: list[dict]  # {name, reason}
    warnings: list[str]
    template_sets: dict[str, TemplateSet]
    requested_tasks: int | None = None


@dataclass
class _Leaf:
    name: str
    rate: float
    sub: SubmixtureConfig
    cfg: MixtureConfig  # the config file it comes from (for relative paths)


def _leaves(cfg: MixtureConfig, prefix: str = "", scale: float = 1.0, stack: tuple | None = None) -> list[_Leaf]:
    """Flatten nested mixtures: a submixture naming another YAML is replaced by that YAML's submixtures,
    their rates normalised and multiplied by its own. `stack`: the YAML files above (default: cfg's own)."""
    if stack is None:
        stack = (Path(cfg.source_path).resolve(),) if cfg.source_path else ()
    total = sum(s.rate for s in cfg.submixtures) or 1.0
    out = []
    for s in cfg.submixtures:
        rate = scale * s.rate / total
        name = prefix + s.name
        if s.mixture:
            path = _resolve(cfg, s.mixture).resolve()
            if path in stack:
                raise ConfigError(f"{cfg.source_path}: submixtures.{s.name}: nesting cycle through {path}")
            child = load_mixture_config(path)
            out += _leaves(child, name + "/", rate, stack + (path,))
        else:
            out.append(_Leaf(name, rate, s, cfg))
    return out


def _select(leaf: _Leaf, catalog_tasks: Callable[[str], list], all_names: dict, excluded: list, warnings: list,
            data_dir) -> list[catalog.Task]:
    s = leaf.sub
    chosen: list[catalog.Task] = []
    for src in s.sources:
        found = catalog_tasks(src)
        if not found:
            warnings.append(f"submixture {leaf.name}: source {src!r} has no tasks here"
                            + (" (no data dir)" if data_dir is None else f" (nothing under {data_dir})"))
        chosen += found
    for pattern in s.tasks:
        if any(c in pattern for c in "*?["):
            hits = [t for name, t in all_names.items() if fnmatch.fnmatchcase(name, pattern)]
            if not hits:
                warnings.append(f"submixture {leaf.name}: pattern {pattern!r} matches no task here")
            chosen += hits
        elif pattern in all_names:
            t = all_names[pattern]
            if t.held_out:
                raise ConfigError(f"submixture {leaf.name}: task {pattern!r} is held out ({t.held_out}) "
                                  "and can never be mixed into training")
            chosen.append(t)
        else:
            where = "" if data_dir else " (no data dir: pass --data-dir for real tasks)"
            raise ConfigError(f"submixture {leaf.name}: unknown task {pattern!r}.{did_you_mean(pattern, all_names)}{where}")
    for f in s.files:
        path = f.path if f.format == "hf" else _resolve(leaf.cfg, f.path)
        data_files = str(_resolve(leaf.cfg, f.data_files)) if f.data_files else None
        chosen.append(catalog.file_task(f.name, path, fields=f.fields or None, format=f.format, category=f.category,
                                        instruction=f.instruction, hf_split=f.split, hf_data_files=data_files))
    for spec in s.flan_collection:
        chosen += spec_tasks(spec, lambda p: _resolve(leaf.cfg, p), data_dir)
    kept = []
    for t in chosen:
        if any(fnmatch.fnmatchcase(t.name, p) for p in s.exclude):
            continue
        if t.held_out:
            excluded.append({"name": t.name, "submixture": leaf.name, "reason": t.held_out})
            continue
        kept.append(t)
    if s.max_tasks is not None:
        kept = kept[: s.max_tasks]
    return kept


def _largest_remainder(total: int, shares: list[float]) -> list[int]:
    """Integers summing to `total` (when shares sum to 1), each within 1 of total * share; ties by order."""
    raw = [total * p for p in shares]
    counts = [int(x) for x in raw]
    left = total - sum(counts)
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: max(0, left)]:
        counts[i] += 1
    return counts


def plan_mixture(config: MixtureConfig, data_dir=None) -> Plan:
    """Resolve tasks, weights, shares, exact example counts and templates; fails before reading any record."""
    from flanlab.settings import data_dir as resolve_data_dir

    _check_config(config, config.source_path or "mixture config")  # also for configs built in code
    d = resolve_data_dir(data_dir)
    sets = load_template_file(_resolve(config, config.template_file)) if config.template_file else TEMPLATE_SETS
    cache: dict[str, list] = {}

    def catalog_tasks(src: str) -> list:
        if src not in cache:
            cache[src] = catalog.discover(src, d)
        return cache[src]

    all_names = {t.name: t for src in catalog.CATALOG_SOURCES for t in catalog_tasks(src)}
    excluded: list[dict] = []
    warnings: list[str] = []
    leaves = _leaves(config)
    # A task may serve several submixtures (e.g. a synthetic family directly and in a nested CoT mixture):
    # each pair is its own stream; a later one reads records disjoint from the first's where it can (synthetic).
    selected: list[tuple[_Leaf, catalog.Task]] = []
    for leaf in leaves:
        names_here: set[str] = set()
        for t in _select(leaf, catalog_tasks, all_names, excluded, warnings, d):
            if t.name not in names_here:
                names_here.add(t.name)
                selected.append((leaf, t))
    # the NIV2 metadata's other tasks are not here, but say which of them the name rule would exclude
    niv2_leaves = [leaf.name for leaf in leaves if "niv2" in leaf.sub.sources]
    meta = d / "niv2" / "task_metadata.json" if d is not None else None
    if niv2_leaves and meta is not None and meta.is_file():
        here = {t.name for t in catalog_tasks("niv2")}
        for name in json.loads(meta.read_text(encoding="utf-8")):
            reason = catalog.held_out_reason(name)
            if reason and name not in here:
                excluded.append({"name": name, "submixture": niv2_leaves[0], "reason": reason + "; not in the data dir either"})
    requested = config.max_tasks
    if requested is not None:
        order = list(dict.fromkeys(t.name for _, t in selected))
        if len(order) < requested:
            warnings.append(f"max_tasks is {requested} but only {len(order)} tasks are available here: using all {len(order)}")
        keep = set(order[:requested])
        selected = [(leaf, t) for leaf, t in selected if t.name in keep]
    first_leaf: dict[str, str] = {}
    for leaf, t in selected:
        first_leaf.setdefault(t.name, leaf.name)

    planned: list[PlannedTask] = []
    no_format: dict[str, list[str]] = {}
    for leaf, t in selected:
        weights = leaf.sub.formats or config.formats
        usable = t.formats(sets)
        fmts = {f: (w, usable[f]) for f, w in weights.items() if w > 0 and f in usable}
        if not fmts:
            no_format.setdefault(leaf.name, []).append(t.name)
            continue
        size = t.count if t.count is not None else leaf.sub.synthetic_size
        if t.prerendered is not None:  # pre-rendered rows: only those of the formats this submixture draws
            size = sum(t.prerendered[f] for f in fmts)
        if size <= 0:
            warnings.append(f"task {t.name} has no records: left out")
            continue
        weight = float(min(size, leaf.sub.cap) if leaf.sub.cap else size)
        key = t.name if first_leaf[t.name] == leaf.name else f"{leaf.name}:{t.name}"
        planned.append(PlannedTask(task=t, submixture=leaf.name, size=size, weight=weight, share=0.0, formats=fmts, key=key))
    shared = sorted({p.task.name for p in planned if p.key != p.task.name})
    if shared:
        warnings.append(f"{len(shared)} task(s) serve more than one submixture (one stream each): {', '.join(shared[:10])}"
                        + (", ..." if len(shared) > 10 else ""))
    for leaf in leaves:
        if leaf.name in no_format:
            names = no_format[leaf.name]
            wanted = ", ".join(f for f, w in (leaf.sub.formats or config.formats).items() if w > 0)
            warnings.append(f"submixture {leaf.name}: {len(names)} task(s) have none of the formats {wanted} "
                            f"and are left out: {', '.join(names)}")

    subs: dict[str, dict] = {}
    for leaf in leaves:
        members = [p for p in planned if p.submixture == leaf.name]
        subs[leaf.name] = {"rate_configured": leaf.rate, "rate": 0.0, "tasks": len(members), "cap": leaf.sub.cap,
                           "weight": sum(p.weight for p in members)}
        if not members:
            warnings.append(f"submixture {leaf.name} has no tasks here: its rate {leaf.rate:.4g} goes to the others")
    live = {n: s for n, s in subs.items() if s["tasks"] and s["rate_configured"] > 0}
    if not live:
        raise ValueError(f"{config.source_path or 'mixture'}: no trainable tasks here"
                         + ("" if d else " (no data dir; the synthetic source needs no data)") + "; " + "; ".join(warnings))
    total_rate = sum(s["rate_configured"] for s in live.values())
    for name, s in live.items():
        s["rate"] = s["rate_configured"] / total_rate
    for p in planned:
        s = subs[p.submixture]
        p.share = s["rate"] * p.weight / s["weight"] if s["rate"] else 0.0
    planned = [p for p in planned if p.share > 0]

    if config.size is not None:
        size = config.size
    else:  # the largest size at which no task needs more records than its (capped) weight
        size = int(min(s["weight"] / s["rate"] for s in live.values()))
    counts = _largest_remainder(size, [p.share for p in planned])
    # validation is planned at VALIDATION_OVERSAMPLE x its size and cut at its size: small finite tasks often
    # hold no record in the validation bucket, and the others fill their slots
    val = _largest_remainder(config.validation_size * VALIDATION_OVERSAMPLE, [p.share for p in planned])
    for p, c, v in zip(planned, counts, val):
        p.count, p.val_count = c, v
    excluded = list({e["name"]: e for e in reversed(excluded)}.values())[::-1]  # once per task, first mention
    return Plan(config=config, data_dir=d, tasks=planned, submixtures=subs, size=size, excluded=excluded,
                warnings=warnings, template_sets=sets, requested_tasks=requested)


# --- streaming ------------------------------------------------------------------------------------------------


def _seed(*parts) -> int:
    return int.from_bytes(hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest(), "little")


def _digest(text: str) -> int:
    """A 64-bit digest of an example (exact-duplicate removal); xxh3 costs half of blake2b here."""
    return xxhash.xxh3_64_intdigest(text.encode("utf-8"))


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


class _Removed:
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


def _record_bytes(rec: dict) -> int:
    """A record's memory, roughly: its own strings plus ~200 bytes of dict (texts shared by every record of a
    task, such as an NIV2 definition, are counted each time: an overestimate)."""
    return 200 + sum(len(v) for v in rec.values() if isinstance(v, str))


_RATIONALE_HIT = "\x00rationale_hit"  # a record's memo: the benchmark its rationale overlaps, or None
_UNCHECKED = object()


class _Context:
    """What every task stream shares: settings, the decontamination index, the removal counters."""

    def __init__(self, plan: Plan, index, count_tokens: Callable[[str], int], truncate: Callable, length_desc: str):
        self.plan = plan
        self.cfg = plan.config
        self.index = index  # decontam.NgramIndex, or None when decontamination is off
        self.removed = _Removed()
        self.count_tokens = count_tokens
        self.truncate = truncate
        self.length_desc = length_desc  # how lengths are measured, for stats.json
        # with the estimate len(text) // 4, "over n tokens" is "over 4n + 3 characters": checked without a call
        self.max_chars = ((4 * self.cfg.max_input_tokens + 3, 4 * self.cfg.max_target_tokens + 3)
                          if count_tokens is estimate_tokens else None)
        self.checked_texts: dict[int, str | None] = {}  # digest of a shared text (NIV2 definition) -> benchmark
        self.cache_left = self.cfg.record_cache_mb << 20  # bytes (estimated) finite tasks may still keep in memory
        self.shortfall: dict[str, int] = {}  # stream -> examples planned but not produced (set by _interleave)

    def contaminated(self, rec: dict) -> str | None:
        """The benchmark a record overlaps, or None. Its rationale is not looked at here: only chain-of-thought
        examples show it, so rationale_contaminated checks it when one is rendered (most examples never pay)."""
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
            d = _digest(text)
            if d not in self.checked_texts:
                self.checked_texts[d] = idx.match(text)
            if self.checked_texts[d]:
                return self.checked_texts[d]
        return None


    def rationale_contaminated(self, rec: dict) -> str | None:
        """The benchmark a record's rationale overlaps, or None; checked once per record (kept in the record)."""
        if self.index is None:
            return None
        hit = rec.get(_RATIONALE_HIT, _UNCHECKED)
        if hit is _UNCHECKED:
            hit = rec[_RATIONALE_HIT] = self.index.match(rec.get("rationale") or "")
        return hit

    def contaminated_row(self, rec: dict) -> str | None:
        """The benchmark a pre-rendered row (its inputs: the whole prompt, exemplars included; its targets) overlaps."""
        if self.index is None:
            return None
        return self.index.match_record(rec["inputs"], rec["targets"])


class _TaskStream:
    """The examples of one task: records through a seeded shuffle buffer, rendered with seeded template choices."""

    def __init__(self, pt: PlannedTask, ctx: _Context, split: str):
        self.pt = pt
        self.task = pt.task
        self.ctx = ctx
        self.split = split
        cfg = ctx.cfg
        self.rng = random.Random(_seed(cfg.seed, split, pt.key))
        self.fmt_names = list(pt.formats)
        total = sum(pt.formats[f][0] for f in self.fmt_names)
        self.fmt_cum = list(itertools.accumulate(pt.formats[f][0] / total for f in self.fmt_names))
        self.last_fmt = len(self.fmt_cum) - 1
        # per format, in fmt_names order: (format, its templates, few-shot?)
        self.fmt_choices = [(f, pt.formats[f][1], f in FEW_SHOT_FORMATS) for f in self.fmt_names]
        self.buffer: list[dict] = []
        self.buffer_size = max(1, cfg.shuffle_buffer)
        self.recent: deque = deque(maxlen=8)
        self.records = self._prerendered_records() if pt.task.prerendered is not None else self._records()
        self.exhausted = False
        self.produced = 0

    def _records(self) -> Iterator[dict]:
        task, ctx, cfg = self.task, self.ctx, self.ctx.cfg
        if not task.finite:  # synthetic: the validation split is the generator's own disjoint stream
            split = "validation" if self.split == "validation" else "train"
            if self.pt.key != task.name:  # the same family in a second submixture: its own record stream
                split = f"{split}:{self.pt.submixture}"
            stream = task.open(cfg.seed, split)
            for rec in stream:
                hit = ctx.contaminated(rec)
                if hit:
                    ctx.removed.add("decontaminated", task.name, rec.get("question", ""), hit)
                    continue
                yield rec
            return
        yield from self._epochs(lambda: task.open(cfg.seed, "train"), "question", "answer", ctx.contaminated,
                                same_order=True)

    def _epochs(self, open_records: Callable[[], Iterator[dict]], text: str, target: str,
                contaminated: Callable[[dict], str | None], same_order: bool = False) -> Iterator[dict]:
        """A finite task's records, epoch after epoch, less the empty, contaminated and other-split ones (the
        validation bucket is a hash of the record's text and target fields). When every epoch reads the
        records in the same order (`same_order`), later epochs repeat the first one's: from memory when its
        usable records fit what is left of `record_cache_mb` (shared by all tasks), else re-read with the
        first epoch's verdicts kept (a byte a record), so that a task is decontaminated once."""
        ctx = self.ctx
        usable = bytearray()  # same_order, first epoch: 1 for each record this split uses
        kept: list[dict] | None = [] if same_order else None  # first epoch: its usable records, while they fit
        kept_bytes = 0
        epoch = 0
        while True:
            if epoch and kept is not None:  # every usable record fitted: the same ones in the same order, from memory
                yield from kept
                continue
            yielded = 0
            for i, rec in enumerate(open_records()):
                if epoch and same_order:  # a re-read: the first epoch's verdict
                    ok = usable[i]
                else:
                    ok = self._usable(rec, text, target, contaminated, report=epoch == 0)
                    if epoch == 0 and same_order:
                        usable.append(ok)
                    if ok and kept is not None:
                        size = _record_bytes(rec)
                        if size <= ctx.cache_left:
                            kept.append(rec)
                            kept_bytes += size
                            ctx.cache_left -= size
                        else:  # it does not all fit: give the memory back, re-read later epochs
                            ctx.cache_left += kept_bytes
                            kept = None
                if ok:
                    yielded += 1
                    yield rec
            if not yielded:
                return
            epoch += 1

    def _usable(self, rec: dict, text: str, target: str, contaminated: Callable[[dict], str | None],
                report: bool) -> bool:
        """Whether a finite task's record serves this split: not empty, in this split's hash bucket, not
        contaminated. With `report`, empty and contaminated records are counted as removed."""
        task, ctx, cfg = self.task, self.ctx, self.ctx.cfg
        if not rec.get(text) or not rec.get(target):
            if report:
                ctx.removed.add("empty", task.name, str(rec)[:200])
            return False
        if cfg.validation_size > 0:
            in_val = _seed(task.name, rec[text], rec[target]) < int(cfg.validation_fraction * (1 << 64))
            if in_val != (self.split == "validation"):
                return False
        hit = contaminated(rec)
        if hit:
            if report:
                ctx.removed.add("decontaminated", task.name, rec[text], hit)
            return False
        return True

    def _prerendered_records(self) -> Iterator[dict]:
        """A pre-rendered task's rows, pass after pass: each draw picks a format by the submixture's format weights
        (among the formats the task has rows of) and takes that format's next row (rows in a seeded order); a
        format whose rows are used up drops out of the pass, so the others fill in; the next pass repeats rows
        (removed as duplicates when dedup is on)."""
        task, cfg = self.task, self.ctx.cfg
        rng = random.Random(_seed(cfg.seed, self.split, self.pt.key, "formats"))
        weights = {f: w for f, (w, _) in self.pt.formats.items()}

        def one_pass() -> Iterator[dict]:
            live = dict(weights)
            rows = {f: task.open_rows(f, _seed(cfg.seed, task.name, f)) for f in live}
            while live:
                names = list(live)
                cum = list(itertools.accumulate(live[f] for f in names))
                fmt = names[min(bisect.bisect(cum, rng.random() * cum[-1]), len(names) - 1)]
                rec = next(rows[fmt], None)
                if rec is None:
                    del live[fmt]
                    continue
                yield rec

        yield from self._epochs(one_pass, "inputs", "targets", self.ctx.contaminated_row)

    def _next_record(self) -> dict | None:
        if self.task.prerendered is not None:  # rows come in a seeded order already and need no exemplars
            return next(self.records, None)
        while len(self.buffer) < self.buffer_size:
            rec = next(self.records, None)
            if rec is None:
                break
            self.buffer.append(rec)
        if not self.buffer:
            return None
        i = int(self.rng.random() * len(self.buffer))
        rec = self.buffer[i]
        self.buffer[i] = self.buffer[-1]
        self.buffer.pop()
        return rec

    def _values(self, rec: dict, t: Template, style: str, trigger: str) -> dict[str, str]:
        """The values template t needs (options rendered in the chosen style)."""
        v = {"question": rec["question"], "answer": rec["answer"], "trigger": trigger,
             "instruction": self.task.instruction}
        if t.extra_fields:
            fields = t.fields
            if "rationale" in fields:  # a sentence before "So the answer is ...": end it with a full stop
                r = rec["rationale"].strip()
                v["rationale"] = r if not r or r[-1] in ".!?:;" else r + "."
            if "options" in fields:
                v["options"] = OPTION_STYLES[style](rec["options"])
            if "definition" in fields:
                v["definition"] = rec["definition"]
        return v

    def render(self, rec: dict) -> tuple[str, str, str, str]:
        """(inputs, targets, template id, format) for one record."""
        if self.task.prerendered is not None:  # a row FLAN's templates rendered: passed through as it is
            return rec["inputs"], rec["targets"], rec["template_id"], rec["format"]
        rng, cfg, ctx = self.rng, self.ctx.cfg, self.ctx
        rand = rng.random
        fmt, templates, few_shot = self.fmt_choices[min(bisect.bisect(self.fmt_cum, rand()), self.last_fmt)]
        t = templates[int(rand() * len(templates))]
        style = OPTION_STYLE_KEYS[int(rand() * N_OPTION_STYLES)]
        trigger = TRIGGERS[int(rand() * N_TRIGGERS)]
        values = self._values(rec, t, style, trigger)
        if few_shot:
            if "examples" in t.fields:  # NIV2: the task's positive examples
                pos = rec.get("positive_examples") or []
                k = min(len(pos), 1 + int(rand() * max(1, cfg.fewshot)))
                while k > 0:
                    values["examples"] = render_niv2_examples(pos[:k])
                    inputs = t.render_input(values)
                    if ctx.count_tokens(inputs) <= cfg.max_input_tokens:
                        return inputs, t.render_target(values), t.id, fmt
                    k -= 1
            else:
                # exemplars: other records of the task (buffered upcoming ones and recent ones), never this one
                buffer, recent = self.buffer, self.recent
                nb, total = len(buffer), len(buffer) + len(recent)
                want = 1 + int(rand() * max(1, cfg.fewshot))
                question = rec["question"]
                cot = t.extra_fields and "rationale" in t.fields  # exemplars show their rationales
                shots, used = [], set()
                for _ in range(4 * want if total else 0):
                    j = int(rand() * total)
                    ex = buffer[j] if j < nb else recent[j - nb]
                    if j in used or ex["question"] == question or (cot and ctx.rationale_contaminated(ex)):
                        continue
                    used.add(j)
                    ev = self._values(ex, t, style, trigger)
                    shots.append((t.render_input(ev), t.render_target(ev)))
                    if len(shots) == want:
                        break
                if shots:
                    query = (t.render_input(values), t.render_target(values))
                    inputs, kept = render_few_shot(t, query, shots, cfg.max_input_tokens, ctx.count_tokens)
                    if kept:
                        return inputs, query[1], t.id, fmt
            fmt = ZERO_SHOT_OF[fmt]  # no exemplar fits (or none exists): the zero-shot format instead
            zs = self.pt.formats[fmt][1] if fmt in self.pt.formats else self._zero_shot_templates(fmt)
            t = zs[int(rand() * len(zs))]
            values = self._values(rec, t, style, trigger)
        return t.render_input(values), t.render_target(values), t.id, fmt

    def _zero_shot_templates(self, fmt: str) -> list:
        group = FORMAT_GROUP[fmt]
        have = self.task.template_fields()
        ts = self.task.template_sets(self.ctx.plan.template_sets)[group]
        return [t for t in ts.templates if fmt in t.formats and t.fields <= have]

    def next_example(self, seen: DigestSet | None) -> tuple[str, str, str, str] | None:
        """The task's next example that passes the length and duplicate checks, or None when it has no more."""
        ctx, cfg = self.ctx, self.ctx.cfg
        count = ctx.count_tokens
        max_chars = ctx.max_chars  # (input, target) lengths in characters, when lengths are estimated
        fails = 0
        while fails < MAX_RETRIES:
            rec = self._next_record()
            if rec is None:
                break
            self.recent.append(rec)
            inputs, targets, tid, fmt = self.render(rec)
            if fmt in COT_FORMATS and ctx.index is not None and self.task.prerendered is None:
                hit = ctx.rationale_contaminated(rec)  # the example shows it
                if hit:
                    ctx.removed.add("decontaminated", self.task.name, rec["question"], hit)
                    fails += 1
                    continue
            if ((len(inputs) > max_chars[0] or len(targets) > max_chars[1]) if max_chars else
                    (count(inputs) > cfg.max_input_tokens or count(targets) > cfg.max_target_tokens)):
                if cfg.overlong == "drop":
                    ctx.removed.add("too_long", self.task.name, inputs)
                    fails += 1
                    continue
                ctx.removed.add("truncated", self.task.name, inputs)  # kept, cut to the maximum lengths
                inputs = ctx.truncate(inputs, cfg.max_input_tokens)
                targets = ctx.truncate(targets, cfg.max_target_tokens)
            if seen is not None and not seen.add_new(_digest(inputs + "\x00" + targets)):
                ctx.removed.add("duplicate", self.task.name, inputs)
                fails += 1
                continue
            self.produced += 1
            return inputs, targets, tid, fmt
        self.exhausted = True
        return None


OPTION_STYLE_KEYS = tuple(OPTION_STYLES)
COT_FORMATS = frozenset(f for f, group in FORMAT_GROUP.items() if group == "cot")
N_OPTION_STYLES, N_TRIGGERS = len(OPTION_STYLE_KEYS), len(TRIGGERS)


def _interleave(plan: Plan, ctx: _Context, split: str, seen: DigestSet | None) -> Iterator[tuple[PlannedTask, tuple]]:
    """Merge the task streams: the k-th of a task's n examples has key (k + u) / n; a heap emits keys in order."""
    streams = {}
    heap = []
    for order, pt in enumerate(plan.tasks):
        n = pt.val_count if split == "validation" else pt.count
        if n <= 0:
            continue
        key_rng = random.Random(_seed(plan.config.seed, split, pt.key, "keys"))
        streams[order] = (pt, None, key_rng, n)
        heapq.heappush(heap, (key_rng.random() / n, order, 0))
    while heap:
        _, order, k = heapq.heappop(heap)
        pt, stream, key_rng, n = streams[order]
        if stream is None:
            stream = _TaskStream(pt, ctx, split)
            streams[order] = (pt, stream, key_rng, n)
        ex = stream.next_example(seen)
        if ex is None:
            continue  # exhausted: its remaining slots stay empty (reported)
        yield pt, ex
        if k + 1 < n:
            heapq.heappush(heap, ((k + 1 + key_rng.random()) / n, order, k + 1))
    ctx.shortfall = {streams[o][0].key: streams[o][3] - streams[o][1].produced
                     for o in streams if streams[o][1] is not None and streams[o][1].exhausted}


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


def _make_context(plan: Plan) -> tuple[_Context, dict]:
    from flanlab.data.decontam import build_index

    cfg = plan.config
    info: dict = {"enabled": cfg.decontaminate}
    index = None
    if cfg.decontaminate:
        index, how = build_index(plan.data_dir, n=cfg.ngram)
        info.update(index.summary())
        info["index"] = how  # not written to stats.json (it names the cache path)
    count, truncate, length_desc = _token_functions(cfg)
    return _Context(plan, index, count, truncate, length_desc), info


# --- public API --------------------------------------------------------------------------------------------------


def flan_collection_tasks(config: MixtureConfig, data_dir=None) -> list[catalog.Task]:
    """The tasks of the config's flan_collection entries, nested mixtures included (for `flanlab tasks --mixture`)."""
    from flanlab.settings import data_dir as resolve_data_dir

    d = resolve_data_dir(data_dir)
    tasks: list[catalog.Task] = []
    for leaf in _leaves(config):
        for spec in leaf.sub.flan_collection:
            tasks += spec_tasks(spec, lambda p, cfg=leaf.cfg: _resolve(cfg, p), d)
    return tasks


def preview_mixture(config: MixtureConfig, n: int, data_dir=None) -> list[Example]:
    """The first n training examples the build would write (same plan, filters and rendering)."""
    plan = plan_mixture(config, data_dir)
    ctx, _ = _make_context(plan)
    out = []
    for pt, (inputs, targets, tid, fmt) in _interleave(plan, ctx, "train", DigestSet() if config.dedup else None):
        out.append(Example(inputs=inputs, targets=targets, task=pt.task.name, template_id=tid, format=fmt,
                           source=pt.task.source, category=pt.task.category))
        if len(out) >= n:
            break
    if not out and n > 0:  # as build_mixture: no example is an error that says why, not an empty preview
        names = {pt.key: pt.task.name for pt in plan.tasks}
        reasons = [f"task {key} produced none ({_shortfall_reasons(ctx, names.get(key, key))})"
                   for key in ctx.shortfall]
        raise ValueError(f"{config.source_path or config.name}: the mixture has no training examples: "
                         + "; ".join(reasons or ["every task's records were removed"]))
    return out


class _ShardWriter:
    """Writes rows to train-NNNNN shards (JSONL and/or Parquet); final names get '-of-NNNNN' at close."""

    def __init__(self, folder: Path, kinds: list[str], shard_size: int):
        self.folder, self.kinds, self.shard_size = folder, kinds, max(1, shard_size)
        self.shard = -1
        self.left = 0  # rows the open shard still takes
        self.files: list[tuple[str, int]] = []  # (temporary stem, rows)
        self.jsonl = None
        self.lines: list[str] = []  # JSONL lines not yet written (written 1,000 at a time)
        self.parquet = None
        self.to_parquet = "parquet" in kinds
        self.batch: list[dict] = []

    def _open(self) -> None:
        self._close_shard()
        self.shard += 1
        self.left = self.shard_size
        stem = f"train-{self.shard:05d}"
        self.files.append((stem, 0))
        if "jsonl" in self.kinds:
            self.jsonl = open(self.folder / f"{stem}.jsonl", "w", encoding="utf-8")

    def write(self, pt: PlannedTask, ex: tuple) -> None:
        if not self.left:
            self._open()
        self.left -= 1
        if self.jsonl is not None:
            self.lines.append(_json_line(pt, ex))
            if len(self.lines) >= 1000:
                self._flush_jsonl()
        if self.to_parquet:
            self.batch.append(_row(pt, ex))
            if len(self.batch) >= 10_000:
                self._flush_parquet()

    def _flush_jsonl(self) -> None:
        self.jsonl.write("".join(self.lines))
        self.lines = []

    def _flush_parquet(self) -> None:
        if not self.batch:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(self.batch, schema=pa.schema([(f, pa.string()) for f in OUTPUT_FIELDS]))
        if self.parquet is None:
            self.parquet = pq.ParquetWriter(self.folder / f"train-{self.shard:05d}.parquet", table.schema)
        self.parquet.write_table(table)
        self.batch = []

    def _close_shard(self) -> None:
        if self.files:
            stem, _ = self.files[-1]
            self.files[-1] = (stem, self.shard_size - self.left)
        if self.jsonl is not None:
            self._flush_jsonl()
            self.jsonl.close()
            self.jsonl = None
        self._flush_parquet()
        if self.parquet is not None:
            self.parquet.close()
            self.parquet = None

    def close(self) -> list[dict]:
        """Close and rename the shards to train-00000-of-0000N; returns [{file, rows}]."""
        self._close_shard()
        if not self.files:  # an empty mixture still gets one (empty) shard
            self._open()
            self._close_shard()
        n = len(self.files)
        out = []
        for stem, rows in self.files:
            for kind in self.kinds:
                final = f"{stem}-of-{n:05d}.{kind}"
                tmp = self.folder / f"{stem}.{kind}"
                if kind == "parquet" and not tmp.exists():  # a shard with no rows
                    import pyarrow as pa
                    import pyarrow.parquet as pq

                    pq.write_table(pa.Table.from_pylist([], schema=pa.schema([(f, pa.string()) for f in OUTPUT_FIELDS])), tmp)
                tmp.rename(self.folder / final)
                out.append({"file": final, "rows": rows})
        return out


_encode = json.encoder.encode_basestring  # a JSON string literal, non-ASCII kept (as json.dumps(ensure_ascii=False))


def _json_line(pt: PlannedTask, ex: tuple) -> str:
    """json.dumps(_row(pt, ex), ensure_ascii=False) + newline: the same bytes, built faster."""
    inputs, targets, tid, fmt = ex
    if not pt.json_task:  # the task's constant fields, encoded once
        t = pt.task
        pt.json_task = f", {_encode('task')}: {_encode(t.name)}, {_encode('category')}: {_encode(t.category)}, "
    tail = pt.json_tail.get((tid, fmt))
    if tail is None:  # template id, format and source: few combinations per task
        tail = pt.json_tail[tid, fmt] = (f'"template_id": {_encode(tid)}, "format": {_encode(fmt)}, '
                                         f'"source": {_encode(pt.task.source)}}}\n')
    return f'{{"inputs": {_encode(inputs)}, "targets": {_encode(targets)}{pt.json_task}{tail}'


def _row(pt: PlannedTask, ex: tuple) -> dict:
    inputs, targets, tid, fmt = ex
    return {"inputs": inputs, "targets": targets, "task": pt.task.name, "category": pt.task.category,
            "template_id": tid, "format": fmt, "source": pt.task.source}


def _proportions(counts: dict[str, int], total: int) -> dict[str, dict]:
    return {k: {"examples": v, "proportion": round(v / total, 6) if total else 0.0} for k, v in counts.items()}


@locks_folder("mix", lambda config, out_dir, *args, **kwargs: out_dir)
def build_mixture(config: MixtureConfig, out_dir, data_dir=None, progress: bool = True, overwrite: bool = False) -> dict:
    """Build the mixture into out_dir (atomically); returns the stats written to out_dir/stats.json.

    Holds out_dir's run lock (flanlab.runlock), which first removes the temporary folders a killed build left
    beside it; SIGTERM and Ctrl-C remove this build's own."""
    from flanlab.fileio import atomic_dir, atomic_write_json

    if Path(out_dir).exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already exists (pass overwrite=True / --overwrite to replace it)")
    plan = plan_mixture(config, data_dir)
    ctx, decontam_info = _make_context(plan)
    seen: DigestSet | None = DigestSet(capacity=plan.size + config.validation_size) if config.dedup else None
    task_counts = {pt.key: 0 for pt in plan.tasks}
    sub_counts = {name: 0 for name in plan.submixtures}
    fmt_counts = {f: 0 for f in FORMATS}

    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        n_val = 0
        if config.validation_size > 0:
            with open(tmp / "validation.jsonl", "w", encoding="utf-8") as f:
                for pt, ex in _interleave(plan, ctx, "validation", seen):
                    f.write(_json_line(pt, ex))
                    n_val += 1
                    if n_val >= config.validation_size:
                        break
            ctx.shortfall = {}
        writer = _ShardWriter(tmp, config.output, config.shard_size)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=plan.size, unit="ex", desc=f"mix {config.name}", mininterval=0.5)
        written = 0
        for pt, ex in _interleave(plan, ctx, "train", seen):
            writer.write(pt, ex)
            task_counts[pt.key] += 1
            sub_counts[pt.submixture] += 1
            fmt_counts[ex[3]] += 1
            written += 1
            if bar is not None and written % 1000 == 0:
                bar.update(1000)
        if bar is not None:
            bar.update(written % 1000)
            bar.close()
        shards = writer.close()

        stats = _stats(plan, ctx, decontam_info, written, n_val, task_counts, sub_counts, fmt_counts, shards)
        if written == 0:  # never an empty mixture with a success status: say why (nothing is left behind)
            raise ValueError(f"{config.source_path or config.name}: the mixture has no training examples: "
                             + "; ".join(stats["warnings"] or ["every task's records were removed"]))
        atomic_write_json(tmp / "stats.json", stats)
    stats["decontamination"]["index"] = decontam_info.get("index", "")
    return stats


def _shortfall_reasons(ctx: _Context, task: str) -> str:
    """Why a task produced fewer examples than planned, from what was removed from it."""
    cfg = ctx.cfg
    what = {"too_long": f"inputs over max_input_tokens {cfg.max_input_tokens} or targets over max_target_tokens "
                        f"{cfg.max_target_tokens}; lengths: {ctx.length_desc}"}
    removed = ctx.removed.by_task.get(task, {})
    reasons = [f"{r} {n}" + (f" ({what[r]})" if r in what else "") for r, n in sorted(removed.items())]
    return "removed: " + ", ".join(reasons) if reasons else "its records are used up"


def _stats(plan, ctx, decontam_info, written, n_val, task_counts, sub_counts, fmt_counts, shards) -> dict:
    cfg = plan.config
    warnings = list(plan.warnings)
    if ctx.shortfall:
        names = {pt.key: pt.task.name for pt in plan.tasks}
        for name, short in ctx.shortfall.items():
            none = " and produced none" if task_counts.get(name) == 0 else ""
            warnings.append(f"task {name} ran out of new examples{none}: {short} fewer than planned "
                            f"({_shortfall_reasons(ctx, names.get(name, name))})")
    tasks = {}  # keyed by stream: the task name ("submixture:task" where a task serves a second submixture)
    for pt in plan.tasks:
        t = pt.task
        n = task_counts[pt.key]
        tasks[pt.key] = {
            "task": t.name, "submixture": pt.submixture, "source": t.source, "category": t.category,
            "size": pt.size if t.finite else f"stream (nominal {pt.size})", "weight": pt.weight,
            "planned": pt.count, "examples": n,
            "epochs": round(pt.count / pt.size, 3) if t.finite else None,  # > 1: records repeat, re-rendered
            "expected_proportion": round(pt.share, 6),
            "proportion": round(n / written, 6) if written else 0.0,
            "validation_planned": pt.val_count,
        }
    subs = {}
    for name, s in plan.submixtures.items():
        subs[name] = {"rate_configured": round(s["rate_configured"], 6), "rate": round(s["rate"], 6), "cap": s["cap"],
                      "tasks": s["tasks"], "examples": sub_counts[name],
                      "proportion": round(sub_counts[name] / written, 6) if written else 0.0}
    by_category: dict[str, int] = {}
    for pt in plan.tasks:
        by_category[pt.task.category] = by_category.get(pt.task.category, 0) + task_counts[pt.key]
    decontam = {k: v for k, v in decontam_info.items() if k != "index"}
    return {
        "schema": "flanlab.mixture_stats/1",
        "name": cfg.name,
        "seed": cfg.seed,
        "data_dir": str(plan.data_dir) if plan.data_dir else None,
        "length_measure": ctx.length_desc,
        "num_tasks": len({pt.task.name for pt in plan.tasks}),
        "requested_tasks": plan.requested_tasks,
        "size": {"planned": plan.size, "written": written, "validation": n_val,
                 "validation_planned": cfg.validation_size},
        "submixtures": subs,
        "formats": _proportions({f: n for f, n in fmt_counts.items() if n}, written),
        "categories": _proportions(dict(sorted(by_category.items())), written),
        "tasks": tasks,
        "removed": ctx.removed.to_dict(),
        "excluded_tasks": plan.excluded,
        "shortfall": ctx.shortfall,  # task -> training examples planned but not produced
        "decontamination": decontam,
        "warnings": warnings,
        "shards": shards,
        "config": dataclasses.asdict(cfg),
    }


__all__ = ["MixtureConfig", "SubmixtureConfig", "FileSpec", "FlanCollectionSpec", "load_mixture_config", "plan_mixture",
           "build_mixture", "preview_mixture", "flan_collection_tasks", "Plan", "PlannedTask"]
