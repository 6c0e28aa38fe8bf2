"""Readers of task data in its original formats, each yielding canonical records (see flanlab/data/example.py).

Every reader is a generator: it streams its file and never holds more than one task file (NIV2) or one record
batch (Parquet) in memory. Bad input raises SourceFormatError (a ValueError) naming the file and the line, row
or field at fault. The readers, top to bottom:

    read_niv2_task(path) -> Niv2Task           NIV2 / Super-NaturalInstructions task JSON: the header
    iter_niv2_instances(path)                  ... and its instances: {id, question, answer, outputs,
                                                   definition, positive_examples, task}
    read_niv2_metadata(path)                   FLAN's task_metadata.json (definition, example, count per task)
    read_niv2_split(path), read_niv2_index(data_dir), list_niv2_sample_tasks(data_dir)
    iter_cot_tsv(path)                         FLAN chain-of-thought TSV: {question, answer, rationale}
    iter_gsm8k(path)                           GSM8K JSONL: {question, rationale, answer}
    iter_table(path, fields, format)           any JSONL / JSON / CSV / TSV / Parquet with a field mapping
    iter_hf_dataset(name, split, fields, ...)  Hugging Face `datasets.load_dataset`, streamed

SOURCE_KINDS maps the kind names a task names ("niv2", "flan_cot", "gsm8k", "table", "hf") to these readers;
get_source_kind / read_source look them up with a did-you-mean error.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from flanlab.registry import lookup
from flanlab.settings import hub_endpoint, hub_offline, hub_reachable


class SourceFormatError(ValueError):
    """Input that does not have the expected format; the message names the file and line/row/field."""


class EmptyTaskError(SourceFormatError):
    """An NIV2 task file without instances."""


class SourceUnavailableError(RuntimeError):
    """A source that cannot be reached from here (e.g. a hub dataset while the hub is offline)."""


# ------------------------------------------------------------------------------------------------------------
# NIV2 / Super-NaturalInstructions
# ------------------------------------------------------------------------------------------------------------
# Upstream task files differ in layout from version to version; the helpers below normalise them:
#   Definition          a string or a list of strings (joined with newlines)
#   *_language          a list, a plain string, or absent                     -> list[str]
#   Categories, Source  a list, a plain string, absent or null                -> list[str] / str
#   instance keys       input/output or Input/Output; output a list or a string


@dataclass
class Niv2Task:
    name: str  # the file stem, e.g. task1087_two_number_sum
    definition: str
    categories: list[str]
    source: str  # upstream "Source" (a list upstream) joined with ", "
    input_language: list[str]
    output_language: list[str]
    instruction_language: list[str]
    positive_examples: list[dict]  # {"input", "output", "explanation"}; output is the first upstream output
    negative_examples: list[dict]  # same shape
    path: Path
    number_examples: int | None = None  # the full task's instance count where the file records it
    domains: list[str] = field(default_factory=list)


def _as_str_list(value) -> list[str]:
    """None -> [], "x" -> ["x"], [..] -> [str(..)]."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def _as_text(value, sep: str = "\n") -> str:
    """A string, or a list of strings joined with `sep`; None -> ""."""
    return sep.join(_as_str_list(value))


def _lower_keys(obj: dict) -> dict:
    return {str(k).lower(): v for k, v in obj.items()}


def _niv2_example(raw, path: Path, where: str) -> dict:
    """A positive/negative example as {"input", "output", "explanation"} (output: the first upstream output)."""
    if not isinstance(raw, dict):
        raise SourceFormatError(f"{path}: {where} is a {type(raw).__name__}, expected an object")
    ex = _lower_keys(raw)
    if "input" not in ex or "output" not in ex:
        missing = [k for k in ("input", "output") if k not in ex]
        raise SourceFormatError(f"{path}: {where} has no {' or '.join(repr(m) for m in missing)} field")
    outputs = _as_str_list(ex["output"])
    return {
        "input": str(ex["input"]),
        "output": outputs[0] if outputs else "",
        "explanation": _as_text(ex.get("explanation")),
    }


def _load_json_file(path: Path):
    """json.load with errors naming the file, line and column."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise SourceFormatError(f"{path}:{e.lineno}:{e.colno}: not valid JSON ({e.msg})") from None
    except UnicodeDecodeError as e:
        raise SourceFormatError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSONL file; a broken line names file:line."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise SourceFormatError(f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(obj, dict):
                hint = (" (JSON lines hold one object per line; a file that is one JSON array of objects is JSON: "
                        "name it .json, or give format: json)") if isinstance(obj, list) else ""
                raise SourceFormatError(f"{path}:{lineno}: expected a JSON object, found a {type(obj).__name__}{hint}")
            yield lineno, obj


def _niv2_task_from_doc(doc, path: Path) -> Niv2Task:
    if not isinstance(doc, dict):
        raise SourceFormatError(f"{path}: an NIV2 task must be a JSON object, found a {type(doc).__name__}")
    if "Definition" not in doc:
        raise SourceFormatError(f"{path}: NIV2 task has no 'Definition' field")
    definition = _as_text(doc["Definition"])
    examples = {}
    for key in ("Positive Examples", "Negative Examples"):
        raw = doc.get(key) or []
        if not isinstance(raw, list):
            raise SourceFormatError(f"{path}: '{key}' is a {type(raw).__name__}, expected a list")
        examples[key] = [_niv2_example(ex, path, f"'{key}'[{i}]") for i, ex in enumerate(raw)]
    number = doc.get("number_examples")
    return Niv2Task(
        name=path.stem,
        definition=definition,
        categories=_as_str_list(doc.get("Categories")),
        source=_as_text(doc.get("Source"), sep=", "),
        input_language=_as_str_list(doc.get("Input_language")),
        output_language=_as_str_list(doc.get("Output_language")),
        instruction_language=_as_str_list(doc.get("Instruction_language")),
        positive_examples=examples["Positive Examples"],
        negative_examples=examples["Negative Examples"],
        path=path,
        number_examples=number if isinstance(number, int) else None,
        domains=_as_str_list(doc.get("Domains")),
    )


def read_niv2_task(path: str | os.PathLike) -> Niv2Task:
    """The header of one NIV2 task file (definition, categories, languages, examples); instances are not
    converted or checked (iter_niv2_instances does that)."""
    path = Path(path)
    return _niv2_task_from_doc(_load_json_file(path), path)


def iter_niv2_instances(path: str | os.PathLike) -> Iterator[dict]:
    """The instances of one NIV2 task file as records:

    {"id", "question": instance input, "answer": its first output, "outputs": all outputs,
     "definition": the task definition, "positive_examples": [{"input", "output"}], "task": file stem}

    A task without instances raises EmptyTaskError; an instance without input or output, SourceFormatError."""
    path = Path(path)
    doc = _load_json_file(path)
    task = _niv2_task_from_doc(doc, path)
    instances = doc.get("Instances")
    if instances is None or instances == []:
        why = "no 'Instances' field" if instances is None else "an empty 'Instances' list"
        raise EmptyTaskError(f"{path}: NIV2 task {task.name} has no instances ({why})")
    if not isinstance(instances, list):
        raise SourceFormatError(f"{path}: 'Instances' is a {type(instances).__name__}, expected a list")
    positives = [{"input": ex["input"], "output": ex["output"]} for ex in task.positive_examples]
    for i, raw in enumerate(instances):
        where = f"{path}: Instances[{i}]"
        if not isinstance(raw, dict):
            raise SourceFormatError(f"{where} is a {type(raw).__name__}, expected an object")
        inst = _lower_keys(raw)
        for key in ("input", "output"):
            if key not in inst:
                raise SourceFormatError(f"{where} has no '{key}' field (keys: {', '.join(raw)})")
        outputs = _as_str_list(inst["output"])
        if not outputs:
            raise SourceFormatError(f"{where} has an empty 'output' list")
        yield {
            "id": str(inst.get("id") or f"{task.name}-{i}"),
            "question": str(inst["input"]),
            "answer": outputs[0],
            "outputs": outputs,
            "definition": task.definition,
            "positive_examples": positives,
            "task": task.name,
        }


def read_niv2_metadata(path: str | os.PathLike) -> dict[str, dict]:
    """FLAN's NIV2 metadata (niv2/task_metadata.json): task name -> {"definition": str,
    "positive_examples": [{"input", "output", "explanation"}], "number_examples": int}."""
    path = Path(path)
    doc = _load_json_file(path)
    if not isinstance(doc, dict):
        raise SourceFormatError(f"{path}: expected a JSON object mapping task name -> metadata")
    out: dict[str, dict] = {}
    for name, meta in doc.items():
        if not isinstance(meta, dict):
            raise SourceFormatError(f"{path}: task {name!r}: expected an object, found a {type(meta).__name__}")
        for key in ("definition", "positive_examples", "number_examples"):
            if key not in meta:
                raise SourceFormatError(f"{path}: task {name!r} has no {key!r} field")
        if not isinstance(meta["number_examples"], int):
            raise SourceFormatError(f"{path}: task {name!r}: 'number_examples' is not an integer")
        positives = meta["positive_examples"]
        positives = positives if isinstance(positives, list) else [positives]
        out[name] = {
            "definition": _as_text(meta["definition"]),
            "positive_examples": [
                _niv2_example(ex, path, f"task {name!r} positive_examples[{i}]") for i, ex in enumerate(positives)
            ],
            "number_examples": meta["number_examples"],
        }
    return out


def read_niv2_split(path: str | os.PathLike) -> list[str]:
    """A task list such as niv2/sample/splits/default/train_tasks.txt: one task name a line (blank and #
    lines skipped)."""
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        return [s for s in (line.strip() for line in f) if s and not s.startswith("#")]


def _niv2_sample_dir(data_dir: str | os.PathLike) -> Path:
    """The NIV2 sample folder (holding index.json and tasks/) under a data dir, or the folder itself."""
    data_dir = Path(data_dir)
    for candidate in (data_dir / "niv2" / "sample", data_dir):
        if (candidate / "index.json").is_file():
            return candidate
    raise FileNotFoundError(f"no NIV2 sample under {data_dir}: expected {data_dir / 'niv2' / 'sample' / 'index.json'}")


def read_niv2_index(data_dir: str | os.PathLike) -> list[dict]:
    """The entries of niv2/sample/index.json: {task, categories, input_language, output_language,
    n_instances_kept, number_examples_in_source, split}."""
    path = _niv2_sample_dir(data_dir) / "index.json"
    entries = _load_json_file(path)
    if not isinstance(entries, list):
        raise SourceFormatError(f"{path}: expected a JSON list of task entries")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("task"), str):
            raise SourceFormatError(f"{path}: entry [{i}] has no 'task' name")
    return entries


def list_niv2_sample_tasks(data_dir: str | os.PathLike) -> list[Path]:
    """The task files listed by the sample's index.json, in its order; a listed file that is missing raises."""
    sample = _niv2_sample_dir(data_dir)
    paths = []
    for entry in read_niv2_index(sample):
        task_path = sample / "tasks" / (entry["task"] + ".json")
        if not task_path.is_file():
            raise FileNotFoundError(f"{sample / 'index.json'} lists {entry['task']} but {task_path} is missing")
        paths.append(task_path)
    return paths


# ------------------------------------------------------------------------------------------------------------
# FLAN chain-of-thought TSV and GSM8K
# ------------------------------------------------------------------------------------------------------------

COT_COLUMNS = ("question", "answer", "rationale")


def iter_cot_tsv(path: str | os.PathLike, unescape_newlines: bool = True) -> Iterator[dict]:
    """FLAN's CoT TSVs (aqua, creak, ecqa, esnli, gsm8k, qasc, qed, sensemaking, strategyqa _train.tsv): no
    header, no quoting, one example a line: question <TAB> answer <TAB> rationale.

    Quotes are ordinary characters (the files are not CSV-quoted). Line breaks inside a field are written as
    the two characters backslash-n; like FLAN's own reader (simple_cot_tsv), they become real newlines in
    question and rationale (unescape_newlines=False keeps them). Blank lines are skipped."""
    path = Path(path)
    with open(path, encoding="utf-8", newline="\n") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n").removesuffix("\r")
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) > len(COT_COLUMNS):
                raise SourceFormatError(
                    f"{path}:{lineno}: {len(parts)} tab-separated columns, expected 3 (question, answer, rationale)"
                )
            missing = [name for name, value in zip(COT_COLUMNS, parts + [""] * 3) if not value.strip()]
            if missing:
                raise SourceFormatError(
                    f"{path}:{lineno}: missing {', '.join(missing)} column"
                    f" (found {len(parts)} tab-separated column(s), expected 3: question, answer, rationale)"
                )
            question, answer, rationale = parts
            if unescape_newlines:
                question = question.replace("\\n", "\n")
                rationale = rationale.replace("\\n", "\n")
            yield {"question": question, "answer": answer, "rationale": rationale}


_CALCULATOR = re.compile(r"<<[^<>]*>>")  # GSM8K's calculator annotations, e.g. <<48/2=24>>


def iter_gsm8k(path: str | os.PathLike) -> Iterator[dict]:
    """GSM8K JSONL ({"question", "answer"}, the answer's rationale ending "#### N") as records
    {"question", "rationale": the text before "####" without <<...>> annotations, "answer": N without commas}."""
    path = Path(path)
    for lineno, obj in _iter_jsonl(path):
        where = f"{path}:{lineno}"
        for key in ("question", "answer"):
            if not isinstance(obj.get(key), str):
                raise SourceFormatError(f"{where}: no {key!r} string field")
        rationale, marker, final = obj["answer"].rpartition("####")
        if not marker:
            raise SourceFormatError(f"{where}: answer has no '####' before the final answer")
        final = final.strip().replace(",", "")
        if not final:
            raise SourceFormatError(f"{where}: nothing after '####' in the answer")
        yield {
            "question": obj["question"],
            "rationale": _CALCULATOR.sub("", rationale).strip(),
            "answer": final,
        }


# ------------------------------------------------------------------------------------------------------------
# Generic tables (JSONL / JSON / CSV / TSV / Parquet) and Hugging Face datasets
# ------------------------------------------------------------------------------------------------------------

TABLE_FORMATS = {  # format name -> file suffixes that select it
    "jsonl": (".jsonl", ".ndjson"),
    "json": (".json",),
    "csv": (".csv",),
    "tsv": (".tsv",),
    "parquet": (".parquet", ".pq"),
}
TEXT_FIELDS = ("question", "answer", "rationale")  # canonical fields turned into strings when not already


def table_format(path: str | os.PathLike, format: str | None = None) -> str:
    """The table format named explicitly, else the one the file suffix selects; unknown -> a clear error."""
    supported = ", ".join(f"{name} ({' '.join(sfx)})" for name, sfx in TABLE_FORMATS.items())
    if format is not None:
        if format not in TABLE_FORMATS:
            raise SourceFormatError(f"unknown table format {format!r} for {path}; supported: {supported}")
        return format
    suffix = Path(path).suffix.lower()
    for name, suffixes in TABLE_FORMATS.items():
        if suffix in suffixes:
            return name
    raise SourceFormatError(
        f"cannot tell the table format of {path} from its suffix {suffix!r}; pass format=, supported: {supported}"
    )


def _split_options(value, sep: str | None, where: str) -> list[str]:
    """Options as a list: a list stays one; a string is a JSON list ('["a", "b"]') or is split on `sep`
    (default: "|" when the string holds one, else ";")."""
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    if not isinstance(value, str):
        raise SourceFormatError(f"{where}: 'options' is a {type(value).__name__}, expected a list or a string")
    text = value.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, list):
            return [str(v) for v in parsed]
    if sep is None:
        sep = "|" if "|" in text else ";"
    return [part.strip() for part in text.split(sep) if part.strip()]


def _map_row(row: Mapping, fields: Mapping[str, str] | None, where: str, options_sep: str | None) -> dict:
    """A source row as a record: mapped columns under their canonical names, other columns kept as they are;
    text fields as strings, options as a list. A mapped column missing (or null) in the row raises."""
    if fields:
        sources = set(fields.values())
        record = {k: v for k, v in row.items() if k not in sources}
        for canonical, column in fields.items():
            if column not in row or row[column] is None:
                raise SourceFormatError(
                    f"{where}: field {canonical!r} (column {column!r}) is missing"
                    + ("" if column not in row else " (null)")
                )
            record[canonical] = row[column]
    else:
        record = dict(row)
    for key in TEXT_FIELDS:
        if key in record and record[key] is not None and not isinstance(record[key], str):
            record[key] = str(record[key])
    if record.get("options") is not None:
        record["options"] = _split_options(record["options"], options_sep, where)
    return record


def _iter_delimited(path: Path, delimiter: str) -> Iterator[tuple[str, dict]]:
    """(where, row dict) for a CSV (RFC 4180 quoting) or TSV (plain: no quoting, no tabs in fields) file
    with a header line."""
    with open(path, encoding="utf-8", newline="") as f:
        if delimiter == "\t":
            reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        else:
            reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise SourceFormatError(f"{path}:1: {e}") from None
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                raise SourceFormatError(f"{path}:{reader.line_num}: {e}") from None
            if not values or (len(values) == 1 and not values[0].strip()):
                continue
            where = f"{path}:{reader.line_num}"
            if len(values) > len(header):
                raise SourceFormatError(f"{where}: {len(values)} columns, the header has {len(header)}")
            yield where, dict(zip(header, values))  # a short row lacks its last columns


def _iter_parquet(path: Path, columns: list[str] | None) -> Iterator[tuple[str, dict]]:
    """(where, row dict) for a Parquet file, read one record batch at a time."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises ArrowInvalid and friends for non-Parquet bytes
        raise SourceFormatError(f"{path}: not a readable Parquet file ({e})") from None
    names = parquet.schema_arrow.names
    if columns:
        absent = [c for c in columns if c not in names]
        if absent:
            raise SourceFormatError(
                f"{path}: column(s) {', '.join(map(repr, absent))} not in the file (columns: {', '.join(names)})"
            )
    row = 0
    for batch in parquet.iter_batches(batch_size=1024):
        for values in batch.to_pylist():
            yield f"{path}: row {row}", values
            row += 1


def _iter_json_array(path: Path) -> Iterator[tuple[str, dict]]:
    """(where, object) for a JSON file holding a list of objects (or JSON lines, if it does not start '[')."""
    with open(path, encoding="utf-8") as f:
        head = f.read(4096).lstrip()
    if not head.startswith("["):  # many ".json" files are really JSON lines
        yield from ((f"{path}:{lineno}", obj) for lineno, obj in _iter_jsonl(path))
        return
    doc = _load_json_file(path)
    for i, obj in enumerate(doc):
        if not isinstance(obj, dict):
            raise SourceFormatError(f"{path}: item [{i}] is a {type(obj).__name__}, expected an object")
        yield f"{path}: item [{i}]", obj


def iter_table(
    path: str | os.PathLike,
    fields: dict[str, str] | None = None,
    format: str | None = None,
    options_sep: str | None = None,
) -> Iterator[dict]:
    """Rows of a JSONL / JSON / CSV / TSV / Parquet file as records.

    fields maps canonical name -> source column, e.g. {"question": "prompt", "answer": "label"}; mapped
    columns appear under their canonical names, the other columns as they are (fields=None keeps every
    column as it is). "options" may be a list or a string split on options_sep ("|" or ";" by default).
    format is one of TABLE_FORMATS, by default taken from the suffix. CSV has a header line and RFC 4180
    quoting; TSV has a header line and no quoting. JSON is a top-level list of objects (read whole);
    JSONL and Parquet stream."""
    path = Path(path)
    kind = table_format(path, format)
    if not path.is_file():
        raise FileNotFoundError(f"table file {path} does not exist")
    if kind == "jsonl":
        rows = ((f"{path}:{lineno}", obj) for lineno, obj in _iter_jsonl(path))
    elif kind == "json":
        rows = _iter_json_array(path)
    elif kind == "csv":
        rows = _iter_delimited(path, ",")
    elif kind == "tsv":
        rows = _iter_delimited(path, "\t")
    else:
        rows = _iter_parquet(path, list(fields.values()) if fields else None)
    for where, row in rows:
        yield _map_row(row, fields, where, options_sep)


LOCAL_BUILDERS = ("json", "csv", "parquet", "text", "arrow", "pandas", "webdataset", "imagefolder", "audiofolder")


def require_hub(what: str, local_hint: str) -> None:
    """Raise SourceUnavailableError at once when `what` (e.g. "Hugging Face dataset 'x'") cannot reach the hub:
    switched off (HF_HUB_OFFLINE=1) or its endpoint unreachable; `local_hint` says how to use a local copy."""
    if hub_offline(datasets=True):
        raise SourceUnavailableError(f"{what} needs the hub, which is switched off here (HF_HUB_OFFLINE=1); {local_hint}")
    endpoint = hub_endpoint()
    if not hub_reachable():
        raise SourceUnavailableError(f"{what} needs the hub, but {endpoint} cannot be reached from here; {local_hint}")


def iter_hf_dataset(
    name: str,
    split: str = "train",
    fields: dict[str, str] | None = None,
    config: str | None = None,
    data_files=None,
    streaming: bool = True,
    options_sep: str | None = None,
    **load_kwargs,
) -> Iterator[dict]:
    """Rows of a Hugging Face dataset, through datasets.load_dataset (the hub where reachable; local or
    remote files with a packaged builder such as "json", "csv", "parquet" and data_files=path or URL).

    fields maps canonical name -> column, as in iter_table; load_kwargs go to load_dataset (revision,
    cache_dir, token, ...). A hub name while the hub is offline or unreachable raises SourceUnavailableError at
    once instead of waiting on network retries; so does a network failure while loading."""
    local = name in LOCAL_BUILDERS or Path(name).expanduser().exists()
    if not local:
        require_hub(f"Hugging Face dataset {name!r}", "use a local copy: kind 'table' with its file, or kind 'hf' "
                    "with name='json'/'csv'/'parquet' and data_files=PATH")
    import datasets

    label = name if data_files is None else f"{name} {data_files}"
    try:
        ds = datasets.load_dataset(
            name, config, split=split, data_files=data_files, streaming=streaming, **load_kwargs
        )
        rows = iter(ds)
        row_index = 0
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            yield _map_row(row, fields, f"{label} split {split!r} row {row_index}", options_sep)
            row_index += 1
    except FileNotFoundError:
        raise
    except (ConnectionError, OSError) as e:  # requests', fsspec's and datasets' offline errors derive from these
        raise SourceUnavailableError(f"cannot load Hugging Face dataset {label!r} split {split!r}: {e}") from e


# ------------------------------------------------------------------------------------------------------------
# The registry: source kind name -> reader
# ------------------------------------------------------------------------------------------------------------

SOURCE_KINDS: dict[str, Callable[..., Iterator[dict]]] = {
    "niv2": iter_niv2_instances,
    "flan_cot": iter_cot_tsv,
    "gsm8k": iter_gsm8k,
    "table": iter_table,
    "hf": iter_hf_dataset,
}


def get_source_kind(kind: str) -> Callable[..., Iterator[dict]]:
    """The reader of a source kind, with a did-you-mean error for unknown kinds."""
    return lookup(SOURCE_KINDS, kind, "source kind")


def read_source(kind: str, **kwargs) -> Iterator[dict]:
    """The records of one source: read_source("gsm8k", path=...), read_source("table", path=..., fields=...)."""
    return get_source_kind(kind)(**kwargs)

