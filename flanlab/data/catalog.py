"""The task catalog: every task a mixture can draw from, with its category, source, size and templates.

Tasks come from *source kinds* (CATALOG_SOURCES, a literal dict): the built-in synthetic families are always
there; real tasks are discovered in the data dir when a catalog function is called (never at import):
    synthetic   one task per family in flanlab/data/generators (held-out families flagged, never mixable)
    niv2        each task file of niv2/sample/tasks/ (the metadata's other tasks are listed as unavailable)
    flan_cot    each FLAN chain-of-thought TSV flan_cot/<name>_train.tsv, as task cot_<name>
    gsm8k       gsm8k/train.jsonl
    flan_collection  each task_name of the Flan 2022 collection submixes copied into flan_collection/<submix>/
                (flanlab/data/flan_collection.py): rows FLAN already rendered, passed through untemplated
Further tasks come from files named in a mixture config (`file_task`: JSONL/CSV/TSV/Parquet or a Hugging Face
dataset with a field mapping) and from its `flan_collection` entries (a hub dataset or files).

Task, and the held-out protection by name (HELD_OUT_RULES, held_out_reason), are in flanlab/data/task.py, a leaf
that the sources of tasks (this catalog, flanlab/data/flan_collection.py) share; they are importable from here.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flanlab.data import sources
from flanlab.data.flan_collection import discover_data_dir
from flanlab.data.task import HELD_OUT_RULES, Task, held_out_reason
from flanlab.log import get_logger
from flanlab.registry import did_you_mean, lookup
from flanlab.settings import given_data_dir

log = get_logger(__name__)

__all__ = ["CATALOG_SOURCES", "HELD_OUT_RULES", "CatalogSource", "Task", "TaskInfo", "all_tasks", "discover",
           "file_task", "get_task", "held_out_reason", "list_tasks"]

@dataclass(frozen=True)
class TaskInfo:
    """One line of `flanlab tasks`."""

    name: str
    category: str
    source: str
    count: int | str  # records available here, or "stream" for a synthetic family
    held_out: bool
    available: bool = True  # False: listed in the NIV2 metadata but its instances are not in the data dir
    reason: str = ""  # why held out
    upstream_count: int | None = None  # NIV2: the full task's instance count, from FLAN's metadata


# --- source kinds ---------------------------------------------------------------------------------------------


def _synthetic_tasks(data_dir: Path | None) -> list[Task]:
    # imported here, not at the top: the family modules cost ~60 ms, and `flanlab mix --help` imports this
    # catalog (through the mixture config) without listing any task
    from flanlab.data.generators import FAMILIES, generate, iter_generate

    tasks = []
    for fam in FAMILIES.values():
        fields = getattr(fam, "fields", None)
        if not fields:  # a family that does not declare its fields: look at a few records
            recs = generate(fam, 4, seed=0, split="probe")
            fields = tuple(set.intersection(*(set(r) for r in recs)))
        tasks.append(Task(
            name=fam.name, category=fam.category, source="synthetic", style="instruct",
            fields=frozenset(fields), count=None,
            open=lambda seed, split, fam=fam: iter_generate(fam, seed, split),
            held_out="held-out synthetic family (BBH-style evaluation suite)" if fam.held_out else "",
            instruction=fam.instruction, description=fam.description,
        ))
    return tasks


def _niv2_category(categories: list[str]) -> str:
    """'Question Answering -> Commonsense ...' -> 'question_answering' (the first category's top level)."""
    if not categories:
        return "niv2"
    return re.sub(r"[^a-z0-9]+", "_", categories[0].split("->")[0].strip().lower()).strip("_") or "niv2"


def _niv2_tasks(data_dir: Path | None) -> list[Task]:
    if data_dir is None or not (data_dir / "niv2" / "sample" / "index.json").is_file():
        return []
    kept = {e["task"]: e.get("n_instances_kept") for e in sources.read_niv2_index(data_dir)}
    tasks = []
    for path in sources.list_niv2_sample_tasks(data_dir):
        header = sources.read_niv2_task(path)
        count = kept.get(path.stem)
        if not isinstance(count, int):
            count = sum(1 for _ in sources.iter_niv2_instances(path))
        fields = {"question", "answer", "definition"}
        if header.positive_examples:
            fields.add("positive_examples")
        tasks.append(Task(
            name=header.name, category=_niv2_category(header.categories), source="niv2", style="niv2",
            fields=frozenset(fields), count=count,
            open=lambda seed, split, path=path: sources.iter_niv2_instances(path),
            held_out=held_out_reason(header.name, f"{header.source}\n{header.definition}"),
            path=str(path), description=header.definition.split("\n")[0][:120],
        ))
    return tasks


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def _cot_tasks(data_dir: Path | None) -> list[Task]:
    if data_dir is None or not (data_dir / "flan_cot").is_dir():
        return []
    tasks = []
    for path in sorted((data_dir / "flan_cot").glob("*_train.tsv")):
        name = "cot_" + path.name.removesuffix("_train.tsv")
        tasks.append(Task(
            name=name, category="cot", source="flan_cot", style="plain",
            fields=frozenset({"question", "answer", "rationale"}), count=_count_lines(path),
            open=lambda seed, split, path=path: sources.iter_cot_tsv(path),
            held_out=held_out_reason(name), path=str(path),
            description=f"FLAN chain-of-thought data: {path.name}",
        ))
    return tasks


def _gsm8k_tasks(data_dir: Path | None) -> list[Task]:
    if data_dir is None or not (data_dir / "gsm8k" / "train.jsonl").is_file():
        return []
    path = data_dir / "gsm8k" / "train.jsonl"
    return [Task(
        name="gsm8k", category="math", source="gsm8k", style="gsm",
        fields=frozenset({"question", "answer", "rationale"}), count=_count_lines(path),
        open=lambda seed, split: sources.iter_gsm8k(path), path=str(path),
        description="GSM8K training split: grade-school math word problems with worked solutions",
    )]


@dataclass(frozen=True)
class CatalogSource:
    name: str
    discover: Callable[[Path | None], list[Task]]
    description: str


CATALOG_SOURCES: dict[str, CatalogSource] = {
    "synthetic": CatalogSource("synthetic", _synthetic_tasks, "built-in synthetic task families (always available)"),
    "flan_cot": CatalogSource("flan_cot", _cot_tasks, "FLAN chain-of-thought TSVs in <data dir>/flan_cot/"),
    "gsm8k": CatalogSource("gsm8k", _gsm8k_tasks, "GSM8K train split in <data dir>/gsm8k/train.jsonl"),
    "niv2": CatalogSource("niv2", _niv2_tasks, "NIV2 task files in <data dir>/niv2/sample/tasks/"),
    "flan_collection": CatalogSource("flan_collection", discover_data_dir,
                                     "Flan 2022 collection submixes in <data dir>/flan_collection/<submix>/ "
                                     "(parquet/jsonl with inputs, targets, task_name, template_type)"),
}


def discover(source: str, data_dir=None) -> list[Task]:
    """The tasks of one source kind (in its fixed order); [] when the data dir lacks that source."""
    return lookup(CATALOG_SOURCES, source, "task source").discover(given_data_dir(data_dir))


def all_tasks(data_dir=None) -> list[Task]:
    """Every task here, in the fixed catalog order: synthetic, flan_cot, gsm8k, niv2, flan_collection."""
    d = given_data_dir(data_dir)
    log.debug("data dir: %s", d if d is not None else "none (the synthetic families only)")
    return list(itertools.chain.from_iterable(src.discover(d) for src in CATALOG_SOURCES.values()))


def get_task(name: str, data_dir=None) -> Task:
    """One task by name, with a did-you-mean error listing close names."""
    tasks = {t.name: t for t in all_tasks(data_dir)}
    if name not in tasks:
        hint = did_you_mean(name, tasks)
        where = "" if given_data_dir(data_dir) else " (no data dir: only the synthetic families; pass --data-dir)"
        raise KeyError(f"unknown task {name!r}.{hint} {len(tasks)} tasks known here{where}; see `flanlab tasks`.")
    return tasks[name]


def file_task(name: str, path: str | Path, *, fields: dict[str, str] | None = None, format: str | None = None,
              category: str = "file", instruction: str = "", hf_split: str = "train",
              hf_data_files: str | None = None) -> Task:
    """A task read from a table file (JSONL/JSON/CSV/TSV/Parquet) or, with format 'hf', a Hugging Face
    dataset (path = a hub name where the hub is reachable, or a packaged builder such as 'json' with
    hf_data_files). The records must have question and answer;
    options and rationale where present enable the option and CoT formats."""
    if format == "hf":
        def open_(seed, split):
            return sources.iter_hf_dataset(str(path), split=hf_split, fields=fields, data_files=hf_data_files)
    else:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"task {name!r}: file {p} does not exist")

        def open_(seed, split):
            return sources.iter_table(p, fields=fields, format=format)

    count = 0
    have: set[str] | None = None
    for i, rec in enumerate(open_(0, "train")):
        keys = {k for k, v in rec.items() if v not in (None, "", [])}
        have = keys if have is None else have & keys
        count += 1
    if count == 0:
        raise ValueError(f"task {name!r}: {path} has no records (empty task)")
    missing = {"question", "answer"} - (have or set())
    if missing:
        raise ValueError(f"task {name!r}: records of {path} lack {', '.join(sorted(missing))} "
                         f"(map columns with fields: {{question: COLUMN, answer: COLUMN}})")
    fields_present = frozenset(k for k in (have or set()) if k in ("question", "answer", "options", "rationale"))
    return Task(
        name=name, category=category, source="file", style="instruct" if instruction else "plain",
        fields=fields_present, count=count, open=open_, held_out=held_out_reason(name), instruction=instruction,
        path=str(path), description=f"records of {path}",
    )


# --- listing --------------------------------------------------------------------------------------------------


def _info(t: Task) -> TaskInfo:
    return TaskInfo(name=t.name, category=t.category, source=t.source,
                    count=t.count if t.count is not None else "stream", held_out=bool(t.held_out), reason=t.held_out)


def list_tasks(data_dir=None, category: str | None = None, include_unavailable: bool = False,
               extra_tasks=()) -> list[TaskInfo]:
    """The catalog as TaskInfo rows (catalog order), then extra_tasks (e.g. a mixture config's own) not listed yet.
    include_unavailable adds the NIV2 metadata's tasks whose instances are not in the data dir, with
    available=False and their upstream counts."""
    d = given_data_dir(data_dir)
    tasks = all_tasks(d)
    listed = {t.name for t in tasks}
    for t in extra_tasks:
        if t.name not in listed:
            listed.add(t.name)
            tasks.append(t)
    rows = [_info(t) for t in tasks]
    meta_path = d / "niv2" / "task_metadata.json" if d is not None else None
    if meta_path is not None and meta_path.is_file():
        meta = sources.read_niv2_metadata(meta_path)
        here = {t.name for t in tasks}
        rows = [r if r.name not in meta else TaskInfo(**{**r.__dict__, "upstream_count": meta[r.name]["number_examples"]})
                for r in rows]
        if include_unavailable:
            for name, m in meta.items():
                if name in here:
                    continue
                reason = held_out_reason(name)
                rows.append(TaskInfo(name=name, category="niv2", source="niv2", count=0, held_out=bool(reason),
                                     available=False, reason=reason, upstream_count=m["number_examples"]))
    if category is not None:
        cats = sorted({r.category for r in rows})
        if category not in cats:
            raise KeyError(f"unknown category {category!r}.{did_you_mean(category, cats)} Categories here: {', '.join(cats)}")
        rows = [r for r in rows if r.category == category]
    return rows
