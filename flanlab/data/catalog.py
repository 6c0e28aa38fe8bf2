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

Held-out protection by name: HELD_OUT_RULES (data, below) names the benchmarks of the held-out suite and a
pattern for tasks derived from each; a task whose name (or NIV2 source/URL) matches is excluded from training
and listed as held out with the reason.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from flanlab.data.templates import FORMAT_GROUP, STYLES, TEMPLATE_SETS, TemplateSet
from flanlab.registry import did_you_mean, lookup
from flanlab.settings import data_dir as resolve_data_dir

# Tasks derived from the held-out benchmarks, by name. NIV2's MMLU tasks are spelled "mmmlu" (task664-737);
# BIG-Bench tasks are excluded as a whole because BBH is a subset of BIG-Bench (conservative: NIV2 has one,
# task062_bigbench_repeat_copy_logic, which is not among BBH's 27 tasks).
HELD_OUT_RULES: dict[str, str] = {
    "mmlu": r"m+mlu|hendrycks|massive.?multitask",
    "bbh": r"bbh|big.?bench",
    "tydiqa": r"tydi",
    "mgsm": r"mgsm",
}
_HELD_OUT_RE = {bench: re.compile(rx, re.IGNORECASE) for bench, rx in HELD_OUT_RULES.items()}


def held_out_reason(name: str, extra_text: str = "") -> str:
    """'' for a trainable task; else why it is excluded, e.g. 'derived from mmlu (name matches /m+mlu/)'."""
    for bench, rx in _HELD_OUT_RE.items():
        for where, text in (("name", name), ("source", extra_text)):
            if text and rx.search(text):
                return f"derived from {bench} ({where} matches /{HELD_OUT_RULES[bench]}/)"
    return ""


@dataclass(frozen=True)
class Task:
    """One task: how to read its records and which template sets render them."""

    name: str
    category: str
    source: str  # synthetic | niv2 | flan_cot | gsm8k | flan_collection | file
    style: str  # a key of templates.STYLES: plain | instruct | niv2 | gsm
    fields: frozenset  # record fields every record has (question, answer, options, rationale, definition, ...)
    count: int | None  # number of records; None for a synthetic (endless) stream
    open: Callable[[int, str], Iterator[dict]] = field(repr=False, compare=False)  # (seed, split) -> records
    held_out: str = ""  # why the task may never be trained on ('' = trainable)
    instruction: str = ""  # synthetic families: the one-sentence instruction the templates show
    path: str = ""  # the file it is read from, for reports
    description: str = ""
    # Pre-rendered tasks (the Flan collection): rows already hold inputs and targets, never templated here.
    prerendered: dict[str, int] | None = None  # flanlab format -> rows of it; None: rendered through templates
    open_rows: Callable[[str, int], Iterator[dict]] | None = field(default=None, repr=False, compare=False)  # (format,
    # seed) -> that format's rows {inputs, targets, format, template_id} in a seeded order

    @property
    def finite(self) -> bool:
        return self.count is not None

    def template_fields(self) -> set[str]:
        """The fields this task can fill in a template (record fields plus the ones rendering adds)."""
        out = set(self.fields)
        if self.instruction:
            out.add("instruction")
        if "rationale" in out:
            out.add("trigger")
        if "positive_examples" in out:
            out.add("examples")
        return out

    def template_sets(self, sets: dict[str, TemplateSet] | None = None) -> dict[str, TemplateSet]:
        """format group -> the template set serving it, for the groups this task can fill at all."""
        sets = TEMPLATE_SETS if sets is None else sets
        have = self.template_fields()
        out = {}
        for group, set_name in STYLES[self.style].items():
            if group == "opt" and "options" not in have:
                continue
            if group == "cot" and "rationale" not in have:
                continue
            out[group] = sets[set_name]
        return out

    def formats(self, sets: dict[str, TemplateSet] | None = None) -> dict[str, list]:
        """format -> the templates usable for this task (every field they name is one the task has); a
        pre-rendered task has each format it holds rows of, with no templates."""
        if self.prerendered is not None:
            return {fmt: [] for fmt in FORMAT_GROUP if self.prerendered.get(fmt)}
        have = self.template_fields()
        out: dict[str, list] = {}
        for group, ts in self.template_sets(sets).items():
            for fmt, fmt_group in FORMAT_GROUP.items():
                if fmt_group != group:
                    continue
                usable = [t for t in ts.templates if fmt in t.formats and t.fields <= have]
                if usable:
                    out[fmt] = usable
        return out


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
    from flanlab.data.generators import FAMILIES, iter_generate

    tasks = []
    for fam in FAMILIES.values():
        fields = getattr(fam, "fields", None)
        if not fields:  # a family that does not declare its fields: look at a few records
            from flanlab.data.generators import generate

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
    from flanlab.data.sources import iter_niv2_instances, list_niv2_sample_tasks, read_niv2_index, read_niv2_task

    if data_dir is None or not (data_dir / "niv2" / "sample" / "index.json").is_file():
        return []
    kept = {e["task"]: e.get("n_instances_kept") for e in read_niv2_index(data_dir)}
    tasks = []
    for path in list_niv2_sample_tasks(data_dir):
        header = read_niv2_task(path)
        count = kept.get(path.stem)
        if not isinstance(count, int):
            count = sum(1 for _ in iter_niv2_instances(path))
        fields = {"question", "answer", "definition"}
        if header.positive_examples:
            fields.add("positive_examples")
        tasks.append(Task(
            name=header.name, category=_niv2_category(header.categories), source="niv2", style="niv2",
            fields=frozenset(fields), count=count,
            open=lambda seed, split, path=path: iter_niv2_instances(path),
            held_out=held_out_reason(header.name, f"{header.source}\n{header.definition}"),
            path=str(path), description=header.definition.split("\n")[0][:120],
        ))
    return tasks


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def _cot_tasks(data_dir: Path | None) -> list[Task]:
    from flanlab.data.sources import iter_cot_tsv

    if data_dir is None or not (data_dir / "flan_cot").is_dir():
        return []
    tasks = []
    for path in sorted((data_dir / "flan_cot").glob("*_train.tsv")):
        name = "cot_" + path.name.removesuffix("_train.tsv")
        tasks.append(Task(
            name=name, category="cot", source="flan_cot", style="plain",
            fields=frozenset({"question", "answer", "rationale"}), count=_count_lines(path),
            open=lambda seed, split, path=path: iter_cot_tsv(path),
            held_out=held_out_reason(name), path=str(path),
            description=f"FLAN chain-of-thought data: {path.name}",
        ))
    return tasks


def _flan_collection_tasks(data_dir: Path | None) -> list[Task]:
    from flanlab.data.flan_collection import discover_data_dir

    return discover_data_dir(data_dir)


def _gsm8k_tasks(data_dir: Path | None) -> list[Task]:
    from flanlab.data.sources import iter_gsm8k

    if data_dir is None or not (data_dir / "gsm8k" / "train.jsonl").is_file():
        return []
    path = data_dir / "gsm8k" / "train.jsonl"
    return [Task(
        name="gsm8k", category="math", source="gsm8k", style="gsm",
        fields=frozenset({"question", "answer", "rationale"}), count=_count_lines(path),
        open=lambda seed, split: iter_gsm8k(path), path=str(path),
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
    "flan_collection": CatalogSource("flan_collection", _flan_collection_tasks,
                                     "Flan 2022 collection submixes in <data dir>/flan_collection/<submix>/ "
                                     "(parquet/jsonl with inputs, targets, task_name, template_type)"),
}


def discover(source: str, data_dir=None) -> list[Task]:
    """The tasks of one source kind (in its fixed order); [] when the data dir lacks that source."""
    return lookup(CATALOG_SOURCES, source, "task source").discover(resolve_data_dir(data_dir))


def all_tasks(data_dir=None) -> list[Task]:
    """Every task here, in the fixed catalog order: synthetic, flan_cot, gsm8k, niv2, flan_collection."""
    d = resolve_data_dir(data_dir)
    return list(itertools.chain.from_iterable(src.discover(d) for src in CATALOG_SOURCES.values()))


def get_task(name: str, data_dir=None) -> Task:
    """One task by name, with a did-you-mean error listing close names."""
    tasks = {t.name: t for t in all_tasks(data_dir)}
    if name not in tasks:
        hint = did_you_mean(name, tasks)
        where = "" if resolve_data_dir(data_dir) else " (no data dir: only the synthetic families; pass --data-dir)"
        raise KeyError(f"unknown task {name!r}.{hint} {len(tasks)} tasks known here{where}; see `flanlab tasks`.")
    return tasks[name]


def file_task(name: str, path: str | Path, *, fields: dict[str, str] | None = None, format: str | None = None,
              category: str = "file", instruction: str = "", hf_split: str = "train",
              hf_data_files: str | None = None) -> Task:
    """A task read from a table file (JSONL/JSON/CSV/TSV/Parquet) or, with format 'hf', a Hugging Face
    dataset (path = a hub name where the hub is reachable, or a packaged builder such as 'json' with
    hf_data_files). The records must have question and answer;
    options and rationale where present enable the option and CoT formats."""
    from flanlab.data.sources import iter_hf_dataset, iter_table

    if format == "hf":
        def open_(seed, split):
            return iter_hf_dataset(str(path), split=hf_split, fields=fields, data_files=hf_data_files)
    else:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"task {name!r}: file {p} does not exist")

        def open_(seed, split):
            return iter_table(p, fields=fields, format=format)

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
    d = resolve_data_dir(data_dir)
    tasks = all_tasks(d)
    listed = {t.name for t in tasks}
    for t in extra_tasks:
        if t.name not in listed:
            listed.add(t.name)
            tasks.append(t)
    rows = [_info(t) for t in tasks]
    meta_path = d / "niv2" / "task_metadata.json" if d is not None else None
    if meta_path is not None and meta_path.is_file():
        from flanlab.data.sources import read_niv2_metadata

        meta = read_niv2_metadata(meta_path)
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
