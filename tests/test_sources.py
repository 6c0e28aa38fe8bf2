"""Tests of flanlab/data/sources.py: each reader on small files written here (including every malformed case),
the Hugging Face path through a local file and a loopback HTTP server, and the real data in the data dir."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from flanlab.data import sources
from flanlab.data.sources import (
    EmptyTaskError,
    SourceFormatError,
    SourceUnavailableError,
    iter_cot_tsv,
    iter_gsm8k,
    iter_hf_dataset,
    iter_niv2_instances,
    iter_table,
    list_niv2_sample_tasks,
    read_niv2_metadata,
    read_niv2_split,
    read_niv2_task,
)
from flanlab.registry import UnknownNameError
from conftest import hub_unreachable  # tests/ is on sys.path under pytest


def write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def niv2_doc(**overrides) -> dict:
    doc = {
        "Source": ["squad", "wiki"],
        "Categories": ["Question Answering"],
        "Definition": ["Answer the question."],
        "Input_language": ["English"],
        "Output_language": "English",
        "Positive Examples": [{"input": "2+2?", "output": "4", "explanation": "sum"}],
        "Negative Examples": [{"input": "2+3?", "output": ["6"], "explanation": "wrong"}],
        "Instances": [
            {"id": "task900-a", "input": "1+1?", "output": ["2", "two"]},
            {"input": "3+3?", "output": ["6"]},
        ],
    }
    doc.update(overrides)
    return doc


# ---------------------------------------------------------------------------------------------------------- NIV2


def test_niv2_task_and_instances(tmp_path):
    path = write_json(tmp_path / "task900_sums.json", niv2_doc())
    task = read_niv2_task(path)
    assert task.name == "task900_sums"
    assert task.definition == "Answer the question."
    assert task.source == "squad, wiki"
    assert task.categories == ["Question Answering"]
    assert task.input_language == ["English"] and task.output_language == ["English"]
    assert task.instruction_language == []  # missing upstream
    assert task.positive_examples == [{"input": "2+2?", "output": "4", "explanation": "sum"}]
    assert task.negative_examples[0]["output"] == "6"  # list output -> first
    assert task.path == path

    records = list(iter_niv2_instances(path))
    assert [r["id"] for r in records] == ["task900-a", "task900_sums-1"]
    assert records[0]["question"] == "1+1?"
    assert records[0]["answer"] == "2" and records[0]["outputs"] == ["2", "two"]
    assert records[1]["definition"] == "Answer the question."
    assert records[1]["positive_examples"] == [{"input": "2+2?", "output": "4"}]
    assert records[1]["task"] == "task900_sums"


def test_niv2_layout_variants(tmp_path):
    doc = niv2_doc(
        Definition=["First part.", "Second part."],
        Categories="Arithmetic",
        Instances=[{"Input": "[1, 2], target=3", "Output": "[[1, 2]]"}],
    )
    for key in ("Input_language", "Output_language", "Source", "Positive Examples", "Negative Examples"):
        del doc[key]
    path = write_json(tmp_path / "task901_caps.json", doc)
    task = read_niv2_task(path)
    assert task.definition == "First part.\nSecond part."
    assert task.categories == ["Arithmetic"]
    assert task.source == "" and task.input_language == [] and task.positive_examples == []
    (record,) = iter_niv2_instances(path)
    assert record["question"] == "[1, 2], target=3"
    assert record["answer"] == "[[1, 2]]" and record["outputs"] == ["[[1, 2]]"]


@pytest.mark.parametrize("instances", [[], None])
def test_niv2_empty_task(tmp_path, instances):
    doc = niv2_doc(Instances=instances)
    if instances is None:
        del doc["Instances"]
    path = write_json(tmp_path / "task902_empty.json", doc)
    read_niv2_task(path)  # the header alone is fine
    with pytest.raises(EmptyTaskError, match=r"task902_empty\.json.*no instances"):
        list(iter_niv2_instances(path))
    assert issubclass(EmptyTaskError, ValueError)


def test_niv2_broken_json_names_file_line_column(tmp_path):
    path = tmp_path / "task903_broken.json"
    path.write_text('{\n  "Definition": "x",\n  "Instances": [\n    {"input": "a" "output": ["b"]}\n  ]\n}\n')
    with pytest.raises(SourceFormatError, match=r"task903_broken\.json:4:19: not valid JSON"):
        read_niv2_task(path)
    with pytest.raises(ValueError, match=r"task903_broken\.json:4:"):
        list(iter_niv2_instances(path))


def test_niv2_malformed_instances(tmp_path):
    path = write_json(tmp_path / "t1.json", niv2_doc(Instances=[{"input": "a", "output": []}]))
    with pytest.raises(SourceFormatError, match=r"t1\.json: Instances\[0\] has an empty 'output'"):
        list(iter_niv2_instances(path))
    path = write_json(tmp_path / "t2.json", niv2_doc(Instances=[{"input": "a"}, {"output": ["b"]}]))
    with pytest.raises(SourceFormatError, match=r"t2\.json: Instances\[0\] has no 'output' field"):
        list(iter_niv2_instances(path))
    doc = niv2_doc()
    del doc["Definition"]
    with pytest.raises(SourceFormatError, match=r"t3\.json: NIV2 task has no 'Definition'"):
        read_niv2_task(write_json(tmp_path / "t3.json", doc))
    with pytest.raises(SourceFormatError, match="must be a JSON object"):
        read_niv2_task(write_json(tmp_path / "t4.json", [1, 2]))
    with pytest.raises(SourceFormatError, match=r"t5\.json: 'Instances' is a dict, expected a list"):
        list(iter_niv2_instances(write_json(tmp_path / "t5.json", niv2_doc(Instances={"input": "a"}))))


def test_niv2_metadata_split_and_index(tmp_path):
    meta = {
        "task1_a": {"definition": "Do A.", "positive_examples": {"input": "i", "output": "o", "explanation": "e"},
                    "number_examples": 12},
    }
    parsed = read_niv2_metadata(write_json(tmp_path / "meta.json", meta))
    assert parsed == {"task1_a": {"definition": "Do A.", "number_examples": 12,
                                  "positive_examples": [{"input": "i", "output": "o", "explanation": "e"}]}}
    del meta["task1_a"]["number_examples"]
    with pytest.raises(SourceFormatError, match=r"meta2\.json: task 'task1_a' has no 'number_examples'"):
        read_niv2_metadata(write_json(tmp_path / "meta2.json", meta))

    split = tmp_path / "train_tasks.txt"
    split.write_text("task1_a\n\n# comment\ntask2_b  \n")
    assert read_niv2_split(split) == ["task1_a", "task2_b"]

    sample = tmp_path / "data" / "niv2" / "sample"
    (sample / "tasks").mkdir(parents=True)
    write_json(sample / "tasks" / "task900_sums.json", niv2_doc())
    write_json(sample / "index.json", [{"task": "task900_sums", "split": "train"}])
    assert list_niv2_sample_tasks(tmp_path / "data") == [sample / "tasks" / "task900_sums.json"]
    assert list_niv2_sample_tasks(sample) == [sample / "tasks" / "task900_sums.json"]
    write_json(sample / "index.json", [{"task": "task900_sums"}, {"task": "task999_gone"}])
    with pytest.raises(FileNotFoundError, match="task999_gone"):
        list_niv2_sample_tasks(tmp_path / "data")


# ------------------------------------------------------------------------------------------------ CoT and GSM8K


def test_cot_tsv(tmp_path):
    path = tmp_path / "creak_train.tsv"
    path.write_text(
        'Is "Paris" in France?\\nOptions:\\n- yes\\n- no\tyes\tParis is the capital of France.\n'
        "\n"  # blank lines are skipped
        "Q2 'quoted\tno\tline one\\nline two\n",
        encoding="utf-8",
    )
    records = list(iter_cot_tsv(path))
    assert records == [
        {"question": 'Is "Paris" in France?\nOptions:\n- yes\n- no', "answer": "yes",
         "rationale": "Paris is the capital of France."},
        {"question": "Q2 'quoted", "answer": "no", "rationale": "line one\nline two"},
    ]
    raw = list(iter_cot_tsv(path, unescape_newlines=False))
    assert raw[1]["rationale"] == "line one\\nline two"


@pytest.mark.parametrize(
    "line, message",
    [
        ("question only", r"x\.tsv:2: missing answer, rationale column"),
        ("question\tanswer", r"x\.tsv:2: missing rationale column"),
        ("question\t\trationale", r"x\.tsv:2: missing answer column"),
        ("q\ta\tr\textra", r"x\.tsv:2: 4 tab-separated columns, expected 3"),
    ],
)
def test_cot_tsv_missing_column(tmp_path, line, message):
    path = tmp_path / "x.tsv"
    path.write_text("q\ta\tr\n" + line + "\n")
    with pytest.raises(SourceFormatError, match=message):
        list(iter_cot_tsv(path))


def test_gsm8k(tmp_path):
    path = tmp_path / "train.jsonl"
    rows = [
        {"question": "Q1?", "answer": "She has 1,000 + 200 = <<1000+200=1200>>1,200 eggs.\n#### 1,200"},
        {"question": "Q2?", "answer": "He lost 3 - 5 = <<3-5=-2>>-2.\n#### -2"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert list(iter_gsm8k(path)) == [
        {"question": "Q1?", "rationale": "She has 1,000 + 200 = 1,200 eggs.", "answer": "1200"},
        {"question": "Q2?", "rationale": "He lost 3 - 5 = -2.", "answer": "-2"},
    ]


def test_gsm8k_malformed(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"question": "Q", "answer": "A\n#### 1"}) + "\n"
                    + json.dumps({"question": "Q", "answer": "no marker here, 5"}) + "\n")
    with pytest.raises(SourceFormatError, match=r"bad\.jsonl:2: answer has no '####'"):
        list(iter_gsm8k(path))
    path.write_text(json.dumps({"question": "Q", "answer": "A\n#### 1"}) + "\n" + '{"question": "Q", "answer": \n')
    with pytest.raises(SourceFormatError, match=r"bad\.jsonl:2: not valid JSON"):
        list(iter_gsm8k(path))
    path.write_text(json.dumps({"question": "Q"}) + "\n")
    with pytest.raises(SourceFormatError, match=r"bad\.jsonl:1: no 'answer' string field"):
        list(iter_gsm8k(path))


# ------------------------------------------------------------------------------------------------------- tables

FIELDS = {"question": "prompt", "answer": "label", "options": "choices"}
EXPECTED = [
    {"question": "Is it, \"red\"?", "answer": "yes", "options": ["yes", "no"], "extra": "e1"},
    {"question": "Two\nlines", "answer": "no", "options": ["yes", "no", "maybe"], "extra": "e2"},
]


def test_table_jsonl_and_json(tmp_path):
    rows = [
        {"prompt": 'Is it, "red"?', "label": "yes", "choices": ["yes", "no"], "extra": "e1"},
        {"prompt": "Two\nlines", "label": "no", "choices": "yes|no|maybe", "extra": "e2"},
    ]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    assert list(iter_table(path, FIELDS)) == EXPECTED
    assert list(iter_table(path))[0] == rows[0]  # no mapping: rows as they are
    assert list(iter_table(write_json(tmp_path / "t.json", rows), FIELDS)) == EXPECTED
    as_lines = tmp_path / "lines.json"  # a ".json" file that is really JSON lines
    as_lines.write_text(path.read_text())
    assert list(iter_table(as_lines, FIELDS)) == EXPECTED
    other = tmp_path / "t.data"
    other.write_text(path.read_text())
    assert list(iter_table(other, FIELDS, format="jsonl")) == EXPECTED


def test_table_csv_tsv(tmp_path):
    csv_path = tmp_path / "t.csv"
    csv_path.write_text('prompt,label,choices,extra\n"Is it, ""red""?",yes,yes|no,e1\n"Two\nlines",no,'
                        '"[""yes"", ""no"", ""maybe""]",e2\n')
    assert list(iter_table(csv_path, FIELDS)) == EXPECTED
    tsv_path = tmp_path / "t.tsv"  # plain TSV: quotes are text, options split on ";"
    tsv_path.write_text('prompt\tlabel\tchoices\textra\nIs it, "red"?\tyes\tyes; no\te1\n')
    assert list(iter_table(tsv_path, FIELDS)) == EXPECTED[:1]
    pipe = tmp_path / "p.tsv"
    pipe.write_text("prompt\tlabel\tchoices\nq\ta;b\ta;b/c;d\n")
    assert list(iter_table(pipe, FIELDS, options_sep="/"))[0]["options"] == ["a;b", "c;d"]


def test_table_parquet_streams_batches(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 2500  # more than one 1024-row record batch
    table = pa.table({
        "prompt": [f"q{i}" for i in range(n)],
        "label": list(range(n)),
        "choices": [[str(i), "other"] for i in range(n)],
    })
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=1000)
    records = list(iter_table(path, FIELDS))
    assert len(records) == n
    assert records[2499] == {"question": "q2499", "answer": "2499", "options": ["2499", "other"]}
    with pytest.raises(SourceFormatError, match=r"t\.parquet: column\(s\) 'why' not in the file"):
        list(iter_table(path, {"question": "prompt", "rationale": "why"}))
    pq.write_table(pa.table({"prompt": ["a", None]}), tmp_path / "nulls.parquet")
    with pytest.raises(SourceFormatError, match=r"nulls\.parquet: row 1: field 'question' .* missing \(null\)"):
        list(iter_table(tmp_path / "nulls.parquet", {"question": "prompt"}))


def test_table_missing_field_and_bad_input(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"prompt": "a", "label": "b"}\n{"prompt": "c"}\n')
    with pytest.raises(SourceFormatError, match=r"t\.jsonl:2: field 'answer' \(column 'label'\) is missing"):
        list(iter_table(path, {"question": "prompt", "answer": "label"}))
    path.write_text('{"prompt": "a", "label": "b"}\n{"prompt": "c", \n')
    with pytest.raises(SourceFormatError, match=r"t\.jsonl:2: not valid JSON"):
        list(iter_table(path))
    path.write_text('{"prompt": "a"}\n["not", "an", "object"]\n')
    with pytest.raises(SourceFormatError, match=r"t\.jsonl:2: expected a JSON object, found a list"):
        list(iter_table(path))
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("prompt,label\na,b\nc\n")
    with pytest.raises(SourceFormatError, match=r"t\.csv:3: field 'answer' \(column 'label'\) is missing"):
        list(iter_table(csv_path, {"question": "prompt", "answer": "label"}))
    csv_path.write_text("prompt,label\na,b,c\n")
    with pytest.raises(SourceFormatError, match=r"t\.csv:2: 3 columns, the header has 2"):
        list(iter_table(csv_path))


def test_table_unknown_format(tmp_path):
    path = tmp_path / "t.xlsx"
    path.write_text("x")
    with pytest.raises(SourceFormatError, match=r"t\.xlsx.*'\.xlsx'.*supported: jsonl .*csv .*parquet"):
        list(iter_table(path))
    with pytest.raises(SourceFormatError, match=r"unknown table format 'excel'.*supported: jsonl"):
        list(iter_table(path, format="excel"))


# ---------------------------------------------------------------------------------------------- HF datasets


def test_hf_local_file(tmp_path):
    path = tmp_path / "d.jsonl"
    rows = [{"prompt": "a", "label": 1, "choices": ["x", "y"]}, {"prompt": "b", "label": 0, "choices": "x|y"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    fields = {"question": "prompt", "answer": "label", "options": "choices"}
    want = [{"question": "a", "answer": "1", "options": ["x", "y"]},
            {"question": "b", "answer": "0", "options": ["x", "y"]}]
    assert list(iter_hf_dataset("json", data_files=str(path), fields=fields)) == want
    assert list(iter_hf_dataset("json", data_files=str(path), fields=fields, streaming=False,
                                cache_dir=str(tmp_path / "cache"))) == want
    with pytest.raises(SourceFormatError, match=r"row 0: field 'rationale' \(column 'why'\) is missing"):
        list(iter_hf_dataset("json", data_files=str(path), fields={"rationale": "why"}))


def test_hf_remote_file_through_loopback_http(loopback_server):
    root, base = loopback_server
    (root / "x.jsonl").write_text("".join(json.dumps({"q": f"q{i}", "a": str(i)}) + "\n" for i in range(5)))
    records = list(iter_hf_dataset("json", data_files=f"{base}/x.jsonl", fields={"question": "q", "answer": "a"}))
    assert records == [{"question": f"q{i}", "answer": str(i)} for i in range(5)]
    with pytest.raises((SourceUnavailableError, FileNotFoundError)):
        list(iter_hf_dataset("json", data_files=f"{base}/missing.jsonl"))


def test_hf_hub_name_offline_or_unreachable_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SourceUnavailableError, match=r"'squad'.*HF_HUB_OFFLINE=1"):
        next(iter_hf_dataset("squad"))
    hub_unreachable(monkeypatch)
    with pytest.raises(SourceUnavailableError, match=r"'org/some_dataset'.*cannot be reached"):
        next(iter_hf_dataset("org/some_dataset"))


# ------------------------------------------------------------------------------------------------- registry


def test_source_kinds_registry(tmp_path):
    assert set(sources.SOURCE_KINDS) == {"niv2", "flan_cot", "gsm8k", "table", "hf"}
    assert sources.get_source_kind("gsm8k") is iter_gsm8k
    with pytest.raises(UnknownNameError, match="Did you mean 'flan_cot'"):
        sources.get_source_kind("flan_cott")
    path = tmp_path / "x.tsv"
    path.write_text("q\ta\tr\n")
    assert list(sources.read_source("flan_cot", path=path)) == [{"question": "q", "answer": "a", "rationale": "r"}]


# ------------------------------------------------------------------------------------------------ real data

# FLAN's own line counts of its CoT TSVs (flan/v2/task_configs.py); esnli and qed are not in the data dir.
FLAN_COT_LINES = {"aqua": 2728, "creak": 6915, "ecqa": 7112, "gsm8k": 7473, "qasc": 1084, "sensemaking": 6070,
                  "strategyqa": 2061}


def test_real_niv2_sample(data_dir):
    paths = list_niv2_sample_tasks(data_dir)
    assert len(paths) == 147
    metadata = read_niv2_metadata(data_dir / "niv2" / "task_metadata.json")
    assert len(metadata) == 1654
    total = 0
    for path in paths:
        task = read_niv2_task(path)
        assert task.definition.strip(), path
        records = list(iter_niv2_instances(path))
        assert records and all(r["question"] and r["outputs"] for r in records), path
        assert task.name in metadata and metadata[task.name]["number_examples"] == task.number_examples
        total += len(records)
    assert total == 1405  # the sample's README: 1,405 instances


def test_real_niv2_capitalized_keys_task(data_dir):
    path = data_dir / "niv2" / "sample" / "tasks" / "task1087_two_number_sum.json"
    raw = json.loads(path.read_text())
    assert "Input" in raw["Instances"][0]  # still the capitalised layout this test is about
    records = list(iter_niv2_instances(path))
    assert records[0]["question"] == raw["Instances"][0]["Input"]
    assert records[0]["outputs"] == [raw["Instances"][0]["Output"]]


def test_real_niv2_splits(data_dir):
    splits = data_dir / "niv2" / "sample" / "splits" / "default"
    train, test = read_niv2_split(splits / "train_tasks.txt"), read_niv2_split(splits / "test_tasks.txt")
    assert (len(train), len(test)) == (756, 119)
    assert not set(train) & set(test)


def test_real_cot_tsvs(data_dir):
    counts = {}
    for path in sorted((data_dir / "flan_cot").glob("*_train.tsv")):
        records = list(iter_cot_tsv(path))
        assert all(r["question"] and r["answer"] and r["rationale"] for r in records)
        counts[path.name.removesuffix("_train.tsv")] = len(records)
    print("CoT TSV records:", counts)
    assert counts == FLAN_COT_LINES


def test_real_gsm8k(data_dir):
    train = list(iter_gsm8k(data_dir / "gsm8k" / "train.jsonl"))
    assert len(train) == 7473
    assert all(math.isfinite(float(r["answer"])) and "<<" not in r["rationale"] for r in train)
    assert sum(1 for _ in iter_gsm8k(data_dir / "gsm8k" / "test.jsonl")) == 1319
