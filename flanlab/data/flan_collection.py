"""The Flan 2022 collection's published submixes as flanlab tasks (catalog source kind `flan_collection`).

The Flan Collection (Longpre et al. 2023; the data of Flan-T5 / Flan-PaLM in Chung et al. 2022) is published as
five submixes (SUBMIXES below), each one table whose rows FLAN's own templates already rendered:
    inputs, targets    the prompt and its answer, as FLAN rendered them (zero- or few-shot, with or without options)
    task_name          the FLAN task of the row: each value becomes one flanlab task
    template_type      FLAN's format name: zs_opt | zs_noopt | fs_opt | fs_noopt
    task_source        the submix the row came from (read by nobody here; not required)
flanlab never re-templates these rows: they pass through as (inputs, targets), with format = template_type mapped
onto flanlab's format names (TEMPLATE_TYPE_FORMATS; in the CoT submix zs_* -> cot_zs and fs_* -> cot_fs, since
flanlab's chain-of-thought formats have no with/without-options split). A FlanCollectionSpec may map further
template types (format_map) and keep only some (template_types).

Where the rows come from (FlanCollectionSpec, in a mixture config's submixture under `flan_collection:`):
    files      parquet / jsonl files: local paths (relative to the config; globs; folders) or http(s) URLs
    dataset    a Hugging Face hub dataset id
    neither    <data dir>/flan_collection/<submix>/ where it holds parquet/jsonl files (for example a
               `huggingface-cli download <dataset> --repo-type dataset --local-dir <data dir>/flan_collection/<submix>`),
               else the submix's published hub dataset
The data dir's copies are also the catalog's `flan_collection` source (`sources: [flan_collection]`, `flanlab tasks`).
Every source is loaded with Hugging Face `datasets` (load_dataset, not streaming; each local file or URL on its
own, so errors can name it), which keeps the rows as memory-mapped Arrow files in its cache (HF_DATASETS_CACHE,
else FLANLAB_CACHE/flan_collection/datasets). A hub id while the hub is switched off or unreachable fails at once
with SourceUnavailableError.

Per-task access in bounded memory: one pass over the task_name and template_type columns, chunk by chunk, gives
every row a (task, template type) group; the row numbers sorted by group (4 bytes a row; about 20 bytes a row
while it is built) are the index, cached under FLANLAB_CACHE/flan_collection/ keyed by the identity of the Arrow
files (names, sizes, modification times) and written atomically. A task's stream reads its rows by number, in a
seeded random order (so a capped task draws a uniform sample however the file is sorted), in batches, each value
straight from the memory-mapped buffers of its Arrow chunk: the text columns are never read whole.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from flanlab.config import ConfigError
from flanlab.data.sources import SourceFormatError, SourceUnavailableError, require_hub
from flanlab.data.task import Task, held_out_reason
from flanlab.data.templates import FORMATS
from flanlab.fileio import atomic_write_npz, read_npz
from flanlab.log import get_logger
from flanlab.registry import did_you_mean
from flanlab.settings import cache_dir, hub_offline

log = get_logger(__name__)


@dataclass(frozen=True)
class Submix:
    name: str
    dataset: str  # the published hub dataset
    cot: bool  # chain-of-thought rows: template types zs_* / fs_* become flanlab's cot_zs / cot_fs
    description: str


# The five submixes, as FLAN's flan/v2/README.md ("Download") links them: github.com/google-research/FLAN/blob/
# main/flan/v2/README.md. Checked with the search tool: the dataset cards of flan2021, t0, niv2 and cot
# (huggingface.co/datasets/DataProvenanceInitiative/<name>_submix_original/blob/main/README.md) declare the columns
# inputs, targets, task_source, task_name, template_type (strings), one split "train", and rows: flan2021 5,362,361,
# t0 1,650,308, niv2 10,066,896, cot 183,848. No card of the dialog submix was found: its columns are taken from the
# README's words that all five "can be further filtered by template_type or task_name fields".
SUBMIXES: dict[str, Submix] = {
    "flan2021": Submix("flan2021", "DataProvenanceInitiative/flan2021_submix_original", False,
                       "Flan 2021 (Muffin's FLAN tasks)"),
    "t0": Submix("t0", "DataProvenanceInitiative/t0_submix_original", False, "P3 without the Flan 2021 tasks (T0-SF)"),
    "niv2": Submix("niv2", "DataProvenanceInitiative/niv2_submix_original", False, "Super-Natural Instructions"),
    "cot": Submix("cot", "DataProvenanceInitiative/cot_submix_original", True, "FLAN chain-of-thought data sets"),
    "dialog": Submix("dialog", "DataProvenanceInitiative/dialog_submix_original", False, "FLAN dialog data sets"),
}

# FLAN's template types -> flanlab formats. The template_type column is FLAN's `_template_type` feature (run_example.py
# passes it through), set by preprocessors.add_template_info from the literals in flan/v2/tasks.py (github.com/
# google-research/FLAN, commit d0841d3): "zs_opt" / "zs_noopt" for the zero-shot task variants, "fs_opt" / "fs_noopt"
# for the few-shot ones. The same loops register every task in task_configs.ALL_CANDIDATE_TASK_CONFIGS (Flan 2021, T0,
# NIv2, CoT, Dialog and the CoT/Dialog input-inversion "_ii" tasks), so no submix has its own spellings. (An earlier
# tasks.py revision wrote "zsopt" for zero-shot, but that file could not run: no functools import.) task_source is
# "Flan2021" | "P3" | "NIv2" | "CoT" | "Dialog" (flan/v2/task_configs.py). Not read from the hub parquet itself.
TEMPLATE_TYPE_FORMATS = {"zs_opt": "zs_opt", "zs_noopt": "zs_noopt", "fs_opt": "fs_opt", "fs_noopt": "fs_noopt"}
COT_TEMPLATE_TYPE_FORMATS = {"zs_opt": "cot_zs", "zs_noopt": "cot_zs", "fs_opt": "cot_fs", "fs_noopt": "cot_fs"}
REQUIRED_COLUMNS = ("inputs", "targets", "task_name", "template_type")
FILE_BUILDERS = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "json", ".ndjson": "json", ".json": "json"}
INDEX_VERSION = 1
READ_BATCH = 256  # rows read at a time by a task stream


@dataclass
class FlanCollectionSpec:
    """One submix of the Flan collection in a mixture config (see the module docstring for where rows come from)."""

    submix: str  # flan2021 | t0 | niv2 | cot | dialog
    dataset: str | None = None  # a hub dataset id (default: the submix's published dataset, or the data dir's copy)
    files: list[str] = field(default_factory=list)  # parquet / jsonl paths, globs, folders or http(s) URLs
    revision: str | None = None  # hub revision (a commit sha pins the data)
    template_types: list[str] | None = None  # keep only rows of these template types (default: all)
    format_map: dict[str, str] = field(default_factory=dict)  # template_type -> flanlab format, beyond the defaults


def check_spec(spec: FlanCollectionSpec, where: str) -> None:
    """Config errors that need no data: unknown submix or format, files together with a dataset."""
    if spec.submix not in SUBMIXES:
        raise ConfigError(f"{where}.submix: unknown submix {spec.submix!r}.{did_you_mean(spec.submix, SUBMIXES)} "
                          f"Known: {', '.join(SUBMIXES)}")
    if spec.files and spec.dataset:
        raise ConfigError(f"{where}: give files or dataset, not both")
    for ttype, fmt in spec.format_map.items():
        if fmt not in FORMATS:
            raise ConfigError(f"{where}.format_map.{ttype}: unknown format {fmt!r}.{did_you_mean(fmt, FORMATS)} "
                              f"Formats: {', '.join(FORMATS)}")


# --- loading ------------------------------------------------------------------------------------------------------


def _is_url(path: str) -> bool:
    return path.startswith(("http://", "https://"))


def _hf_cache() -> str:
    return os.environ.get("HF_DATASETS_CACHE") or str(cache_dir() / "flan_collection" / "datasets")


def _builder_of(path: str) -> str | None:
    """The `datasets` builder for a file name by its suffix (.gz allowed), or None for another kind of file."""
    name = path.rsplit("/", 1)[-1].lower().removesuffix(".gz")
    return next((builder for suffix, builder in FILE_BUILDERS.items() if name.endswith(suffix)), None)


def _builder(path: str) -> str:
    builder = _builder_of(path)
    if builder is None:
        raise SourceFormatError(f"{path}: not a parquet or jsonl file (suffixes: {', '.join(FILE_BUILDERS)})")
    return builder


def _data_files(folder: Path) -> list[str]:
    """The parquet / jsonl files under a folder (recursively; hidden folders such as .cache skipped), sorted."""
    out = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).parts
        if p.is_file() and not any(part.startswith(".") for part in rel) and _builder_of(p.name) is not None:
            out.append(str(p))
    return out


def _expand_files(entries: list[str], resolve: Callable[[str], Path]) -> list[str]:
    """URLs as they are; local entries resolved, globs expanded, folders listed; a missing one raises."""
    out: list[str] = []
    for entry in entries:
        if _is_url(entry):
            out.append(entry)
            continue
        path = resolve(entry)
        if any(c in entry for c in "*?["):
            hits = sorted(glob.glob(str(path), recursive=True))
            if not hits:
                raise FileNotFoundError(f"flan_collection files: pattern {entry!r} ({path}) matches no file")
            out += hits
        elif path.is_dir():
            found = _data_files(path)
            if not found:
                raise FileNotFoundError(f"flan_collection files: folder {path} holds no parquet or jsonl file")
            out += found
        elif path.is_file():
            out.append(str(path))
        else:
            raise FileNotFoundError(f"flan_collection files: {path} does not exist")
    return out


def _check_columns(schema, label: str) -> None:
    """Every REQUIRED_COLUMNS column is there and holds text; else an error naming the file and the column."""
    import pyarrow as pa

    names = schema.names
    for col in REQUIRED_COLUMNS:
        if col not in names:
            raise SourceFormatError(f"{label}: no column {col!r} (columns: {', '.join(names)}); the Flan collection "
                                    f"needs {', '.join(REQUIRED_COLUMNS)}")
        tp = schema.field(col).type
        if not (pa.types.is_string(tp) or pa.types.is_large_string(tp) or pa.types.is_null(tp)):
            raise SourceFormatError(f"{label}: column {col!r} holds {tp}, expected text")


def _load(name: str, data_files: str | None, revision: str | None, label: str):
    """datasets.load_dataset(..., split='train') as a memory-mapped Dataset; errors name `label`."""
    import datasets
    import pyarrow as pa

    if data_files is not None and not _is_url(data_files) and _builder(data_files) == "parquet":
        import pyarrow.parquet as pq

        try:  # check the columns before datasets converts the whole file
            schema = pq.read_schema(data_files)
        except (pa.ArrowInvalid, OSError) as e:
            raise SourceFormatError(f"{label}: not a readable parquet file ({e})") from None
        _check_columns(schema, label)
    try:
        ds = datasets.load_dataset(name, data_files=data_files, split="train", revision=revision,
                                   cache_dir=_hf_cache())
    except FileNotFoundError:
        raise
    except (ConnectionError, OSError) as e:  # offline / network errors of requests, fsspec, huggingface_hub
        raise SourceUnavailableError(f"cannot load {label}: {e}") from e
    except (datasets.exceptions.DatasetGenerationError, pa.ArrowException, ValueError) as e:
        cause = e.__cause__ or e
        raise SourceFormatError(f"{label}: cannot be read ({type(cause).__name__}: {cause})") from None
    _check_columns(ds.data.table.schema, label)
    return ds


@dataclass
class _Segment:
    """One loaded source (a file, a URL or a hub dataset): its rows are rows start .. start + len of the collection."""

    label: str
    table: object  # pyarrow.Table, memory-mapped
    start: int
    identity: list  # the Arrow cache files: [name, size, mtime_ns] each


def _segment(name: str, data_files: str | None, revision: str | None, label: str, start: int) -> _Segment:
    ds = _load(name, data_files, revision, label)
    identity = []
    for f in ds.cache_files:
        st = os.stat(f["filename"])
        identity.append([f["filename"], st.st_size, st.st_mtime_ns])
    return _Segment(label=label, table=ds.data.table, start=start, identity=identity)


class _Column:
    """The values of one text column at given row numbers, read straight from the memory-mapped Arrow buffers of
    the chunks they fall in (the column is never concatenated or converted whole)."""

    def __init__(self, column):
        import numpy as np

        self.chunks = column.chunks
        self.starts = np.cumsum([0] + [len(c) for c in self.chunks])
        self.views: dict[int, tuple | None] = {}  # chunk -> (its value offsets, its data), None: read by scalar

    def _view(self, c: int) -> tuple | None:
        import numpy as np
        import pyarrow as pa

        if c not in self.views:
            chunk = self.chunks[c]
            view = None
            if not chunk.null_count and (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
                _, offsets, data = chunk.buffers()
                dtype = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
                offsets = np.frombuffer(offsets, dtype=dtype)[chunk.offset:chunk.offset + len(chunk) + 1]
                view = (offsets, memoryview(data) if data is not None else memoryview(b""))
            self.views[c] = view
        return self.views[c]

    def take(self, rows) -> list:
        """Values at `rows` (numbers within this table; None for a null)."""
        import numpy as np

        which = np.searchsorted(self.starts, rows, side="right") - 1
        local = (rows - self.starts[which]).tolist()
        out = []
        for c, i in zip(which.tolist(), local):
            view = self._view(c)
            if view is None:
                out.append(self.chunks[c][i].as_py())
            else:
                offsets, data = view
                out.append(str(data[offsets[i]:offsets[i + 1]], "utf-8"))
        return out


@dataclass
class Collection:
    """A loaded submix: its segments and the index of its rows by (task, template type)."""

    submix: Submix
    label: str  # where it comes from, for messages and reports
    segments: list[_Segment]
    tasks: list[str]  # task names, in order of first appearance
    types: list[str]  # template types, in order of first appearance
    first_row: dict[str, str]  # template type -> where it first appears ("FILE: row N")
    counts: object  # np.ndarray (tasks x types): rows per group
    offsets: object  # np.ndarray: group g's row numbers are order[offsets[g]:offsets[g + 1]]
    order: object  # np.ndarray: row numbers grouped by (task, type), ascending within each group
    columns: dict = field(default_factory=dict, repr=False)  # (segment, column) -> _Column, built on first read

    def group(self, task: int, ttype: int):
        g = task * len(self.types) + ttype
        return self.order[self.offsets[g]:self.offsets[g + 1]]

    def read(self, rows) -> tuple[list, list]:
        """(inputs, targets) of the rows (ascending numbers in the collection, so each segment's come together)."""
        import numpy as np

        starts = np.array([s.start for s in self.segments])
        which = np.searchsorted(starts, rows, side="right") - 1
        inputs: list = []
        targets: list = []
        cuts = np.flatnonzero(np.diff(which)) + 1
        for part, seg_rows in zip(np.split(which, cuts), np.split(rows, cuts)):
            if not len(part):
                continue
            s = int(part[0])
            seg = self.segments[s]
            for name, out in (("inputs", inputs), ("targets", targets)):
                col = self.columns.get((s, name))
                if col is None:
                    col = self.columns[s, name] = _Column(seg.table.column(name))
                out += col.take(seg_rows - seg.start)
        return inputs, targets

    def iter_rows(self, task: int, ttypes: list[int], fmt: str, seed: int) -> Iterator[dict]:
        """The rows of one task and these template types (all of format `fmt`), in a seeded random order, as
        {"inputs", "targets", "format", "template_id"}; read READ_BATCH rows at a time."""
        import numpy as np

        groups = [self.group(task, t) for t in ttypes]
        rows = np.concatenate(groups) if groups else np.empty(0, dtype=np.int64)
        tids = np.concatenate([np.full(len(g), t, dtype=np.int32) for g, t in zip(groups, ttypes)]) if groups else rows
        perm = np.random.default_rng(seed).permutation(len(rows))
        rows, tids = rows[perm], tids[perm]
        template_ids = [f"flan_collection/{self.submix.name}/{t}" for t in self.types]
        for b in range(0, len(rows), READ_BATCH):
            batch = rows[b:b + READ_BATCH]
            by_row = np.argsort(batch, kind="stable")
            inputs, targets = self.read(batch[by_row])
            back = np.empty_like(by_row)
            back[by_row] = np.arange(len(by_row))
            for j, k in enumerate(back):
                yield {"inputs": inputs[k] or "", "targets": targets[k] or "", "format": fmt,
                       "template_id": template_ids[tids[b + j]]}


def _index_key(segments: list[_Segment]) -> str:
    ident = [INDEX_VERSION, [[s.label, s.table.num_rows, s.identity] for s in segments]]
    return hashlib.sha256(json.dumps(ident).encode("utf-8")).hexdigest()[:24]


def _build_index(segments: list[_Segment]) -> dict:
    """One pass over task_name and template_type, chunk by chunk: {tasks, types, first_row, counts, order}."""
    import numpy as np
    import pyarrow.compute as pc

    total = sum(s.table.num_rows for s in segments)
    ids = {"task_name": np.empty(total, dtype=np.int32), "template_type": np.empty(total, dtype=np.int32)}
    names: dict[str, dict[str, int]] = {"task_name": {}, "template_type": {}}
    first_row: dict[str, str] = {}
    for seg in segments:
        for col in ("task_name", "template_type"):
            lookup, out = names[col], ids[col]
            pos = seg.start
            for chunk in seg.table.column(col).chunks:
                where = f"{seg.label}: row"
                if chunk.null_count:
                    row = pos - seg.start + int(np.flatnonzero(chunk.is_null().to_numpy(zero_copy_only=False))[0])
                    raise SourceFormatError(f"{where} {row}: {col} is empty (null)")
                enc = pc.dictionary_encode(chunk)
                local_ids = enc.indices.to_numpy(zero_copy_only=False)
                values = enc.dictionary.to_pylist()
                mapped = []
                for k, v in enumerate(values):
                    if v not in lookup:
                        row = pos - seg.start + int(np.argmax(local_ids == k))
                        if not v.strip():
                            raise SourceFormatError(f"{where} {row}: {col} is empty")
                        lookup[v] = len(lookup)
                        if col == "template_type":
                            first_row[v] = f"{where} {row}"
                    mapped.append(lookup[v])
                out[pos:pos + len(chunk)] = np.asarray(mapped, dtype=np.int32)[local_ids]
                pos += len(chunk)
    n_types = max(1, len(names["template_type"]))
    key = ids["task_name"].astype(np.int64) * n_types + ids["template_type"]
    del ids
    order = np.argsort(key, kind="stable").astype(np.int64 if total >= 2**31 else np.int32)
    counts = np.bincount(key, minlength=len(names["task_name"]) * n_types)
    return {"tasks": list(names["task_name"]), "types": list(names["template_type"]), "first_row": first_row,
            "counts": counts, "order": order}


def _save_index(path: Path, index: dict) -> None:
    atomic_write_npz(path, {"counts": index["counts"], "order": index["order"]},
                     {k: index[k] for k in ("tasks", "types", "first_row")})


def _load_index(path: Path) -> dict:
    arrays, meta = read_npz(path)
    return {**meta, **arrays}


@functools.lru_cache(maxsize=16)
def _open(submix: str, sources: tuple, revision: str | None) -> Collection:
    """Load the sources (("files", (file, size, mtime_ns)...) or ("dataset", id)) and their index (cached)."""
    import numpy as np

    kind, items = sources
    segments: list[_Segment] = []
    start = 0
    if kind == "dataset":
        name = items
        local = Path(name).expanduser().exists()
        if not local:
            require_hub(f"Hugging Face dataset {name!r} (Flan collection submix {submix})",
                        "download it elsewhere and give its parquet files: flan_collection: [{submix: "
                        f"{submix}, files: [...]}}], or put them in <data dir>/flan_collection/{submix}/")
        seg = _segment(name, None, revision, f"hub dataset {name}" if not local else name, 0)
        segments.append(seg)
        label = name
    else:
        urls = [f for f, _, _ in items if _is_url(f)]
        if urls and hub_offline(datasets=True):
            raise SourceUnavailableError(f"flan_collection file {urls[0]} needs the network, which Hugging Face "
                                         "datasets refuses while HF_HUB_OFFLINE=1; unset it or use a local copy")
        for f, _, _ in items:
            seg = _segment(_builder(f), f, None, f, start)
            segments.append(seg)
            start += seg.table.num_rows
        label = items[0][0] if len(items) == 1 else f"{items[0][0]} (+{len(items) - 1} more files)"
    path = cache_dir() / "flan_collection" / f"index-{_index_key(segments)}.npz"
    if path.is_file():
        log.debug("flan collection %s: row index cached at %s", submix, path)
        index = _load_index(path)
    else:
        log.info("flan collection %s: building the per-task row index of %s (once, cached in %s)", submix, label, path)
        index = _build_index(segments)
        _save_index(path, index)
    n_types = max(1, len(index["types"]))
    offsets = np.concatenate([[0], np.cumsum(index["counts"])])
    return Collection(submix=SUBMIXES[submix], label=label, segments=segments, tasks=index["tasks"],
                      types=index["types"], first_row=index["first_row"],
                      counts=index["counts"].reshape(len(index["tasks"]), n_types), offsets=offsets,
                      order=index["order"])


def _file_identity(f: str) -> tuple:
    if _is_url(f):
        return (f, None, None)
    st = os.stat(f)
    return (f, st.st_size, st.st_mtime_ns)


def open_files(submix: str, files: list[str]) -> Collection:
    """A submix read from parquet / jsonl files or URLs (each loaded on its own)."""
    if not files:
        raise FileNotFoundError(f"flan_collection submix {submix}: no files")
    return _open(submix, ("files", tuple(_file_identity(f) for f in files)), None)


def open_dataset(submix: str, dataset: str, revision: str | None = None) -> Collection:
    """A submix read from a Hugging Face hub dataset (its split 'train')."""
    return _open(submix, ("dataset", dataset), revision)


# --- tasks ----------------------------------------------------------------------------------------------------


def collection_tasks(coll: Collection, format_map: dict[str, str] | None = None,
                     template_types: list[str] | None = None) -> list[Task]:
    """One catalog Task per task_name (in order of first appearance) with its rows per flanlab format.

    An unknown template type (one neither FLAN's nor mapped by format_map) raises, naming where it first appears."""
    fmt_of = dict(COT_TEMPLATE_TYPE_FORMATS if coll.submix.cot else TEMPLATE_TYPE_FORMATS)
    fmt_of.update(format_map or {})
    kept = set(template_types) if template_types is not None else set(coll.types)
    for ttype in coll.types:
        if ttype in kept and ttype not in fmt_of:
            raise SourceFormatError(
                f"{coll.first_row[ttype]}: unknown template_type {ttype!r} (FLAN's are {', '.join(TEMPLATE_TYPE_FORMATS)}); "
                f"map it to a flanlab format in the submixture's flan_collection entry: format_map: {{{ttype}: FORMAT}}, "
                f"FORMAT one of {', '.join(FORMATS)}")
    by_format: dict[str, list[int]] = {}  # flanlab format -> template type ids
    for t, ttype in enumerate(coll.types):
        if ttype in kept:
            by_format.setdefault(fmt_of[ttype], []).append(t)
    tasks = []
    for i, name in enumerate(coll.tasks):
        rows = {fmt: int(sum(coll.counts[i, t] for t in ts)) for fmt, ts in by_format.items()}
        rows = {fmt: n for fmt, n in rows.items() if n}
        if not rows:
            continue

        def open_rows(fmt: str, seed: int, i=i) -> Iterator[dict]:
            return coll.iter_rows(i, by_format.get(fmt, []), fmt, seed)

        def open_all(seed: int, split: str, open_rows=open_rows, fmts=tuple(rows)) -> Iterator[dict]:
            for fmt in fmts:
                yield from open_rows(fmt, seed)

        tasks.append(Task(
            name=name, category=coll.submix.name, source="flan_collection", style="plain",
            fields=frozenset({"inputs", "targets"}), count=sum(rows.values()), open=open_all,
            held_out=held_out_reason(name), path=coll.label,
            description=f"{coll.submix.description}: FLAN's pre-rendered rows of {name}",
            prerendered=rows, open_rows=open_rows,
        ))
    return tasks


def data_dir_files(data_dir: Path | None, submix: str) -> list[str]:
    """The parquet / jsonl files in <data dir>/flan_collection/<submix>/ ([] when there are none)."""
    if data_dir is None:
        return []
    folder = Path(data_dir) / "flan_collection" / submix
    return _data_files(folder) if folder.is_dir() else []


def discover_data_dir(data_dir: Path | None) -> list[Task]:
    """The catalog source: the tasks of every submix copied into <data dir>/flan_collection/<submix>/."""
    tasks = []
    for name in SUBMIXES:
        files = data_dir_files(data_dir, name)
        if files:
            tasks += collection_tasks(open_files(name, files))
    return tasks


def spec_tasks(spec: FlanCollectionSpec, resolve: Callable[[str], Path], data_dir: Path | None) -> list:
    """The tasks a mixture config's flan_collection entry names: its files, else its dataset, else the data dir's
    copy, else the submix's published hub dataset."""
    check_spec(spec, f"flan_collection entry {spec.submix!r}")
    if spec.files:
        coll = open_files(spec.submix, _expand_files(spec.files, resolve))
    elif spec.dataset:
        local = resolve(spec.dataset)
        coll = open_dataset(spec.submix, str(local) if local.exists() else spec.dataset, spec.revision)
    elif files := data_dir_files(data_dir, spec.submix):
        coll = open_files(spec.submix, files)
    else:
        coll = open_dataset(spec.submix, SUBMIXES[spec.submix].dataset, spec.revision)
    return collection_tasks(coll, spec.format_map, spec.template_types)
