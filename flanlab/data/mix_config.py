"""A mixture's configuration (MixtureConfig, read from YAML and checked before anything is read): its
submixtures, each with a rate and the tasks it draws from (catalog source kinds, task names or patterns, files,
Flan collection submixes, or another mixture YAML nested under it), and the settings of the build."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from flanlab.config import ConfigError, Count, Count0, NonEmpty, Range, Seed, Text, Weight, load_config
from flanlab.data import catalog
from flanlab.data.flan_collection import FlanCollectionSpec, check_spec
from flanlab.data.templates import FORMATS, load_template_file
from flanlab.registry import did_you_mean

DEFAULT_FORMATS = {"zs_opt": 1.0, "zs_noopt": 1.0, "fs_opt": 1.0, "fs_noopt": 1.0, "cot_zs": 0.5, "cot_fs": 0.5}


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
    check_config(cfg, str(path))
    return cfg


def check_config(cfg: MixtureConfig, where: str) -> None:
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
        load_template_file(resolve_path(cfg, cfg.template_file))


def resolve_path(cfg: MixtureConfig, path: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_absolute() and cfg.source_path:
        p = Path(cfg.source_path).parent / p
    return p

