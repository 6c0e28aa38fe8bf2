"""The Flan 2022 collection source: pre-rendered rows (inputs, targets, task_name, template_type) from parquet /
jsonl files, a data dir copy or a loopback URL become catalog tasks with counts per format; mixtures over them
keep caps, rates and format weights, pass rows through untemplated, are byte-identical twice, exclude held-out
task names and contaminated rows; malformed files and offline hub ids fail clearly."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from flanlab.config import ConfigError
from flanlab.data import catalog, flan_collection
from flanlab.data.flan_collection import FlanCollectionSpec, open_files
from flanlab.data.mixture import build_mixture, load_mixture_config, plan_mixture
from flanlab.data.sources import SourceFormatError, SourceUnavailableError
from conftest import hub_unreachable  # tests/ is on sys.path under pytest

TYPES = ("zs_opt", "fs_opt", "zs_noopt", "fs_noopt")
MUFFIN = {"anli_r1": 240, "glue_sst2": 80, "mmlu_abstract_algebra": 20}  # planted held-out name
T0 = {"adversarial_qa_dbert": 160, "bbh_date_understanding": 12, "web_questions": 40}  # planted held-out name


@pytest.fixture(autouse=True)
def private_caches(monkeypatch, tmp_path):
    """No data dir; FLANLAB_CACHE (flanlab's index and the datasets cache) private to the test."""
    monkeypatch.delenv("FLANLAB_DATA_DIR", raising=False)
    monkeypatch.delenv("HF_DATASETS_CACHE", raising=False)
    monkeypatch.setenv("FLANLAB_CACHE", str(tmp_path / "cache"))
    flan_collection._open.cache_clear()
    yield
    flan_collection._open.cache_clear()


def make_rows(tasks: dict[str, int], source: str, types=TYPES, seed: int = 0) -> list[dict]:
    """Rows as FLAN publishes them, shuffled (the upstream files are not sorted by task)."""
    rows = [{"inputs": f"{task} prompt {i} rendered {types[i % len(types)]}", "targets": f"{task} answer {i}",
             "task_source": source, "task_name": task, "template_type": types[i % len(types)]}
            for task, n in tasks.items() for i in range(n)]
    random.Random(seed).shuffle(rows)
    return rows


def write_parquet(path: Path, rows: list[dict], row_group_size: int = 50) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_size)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(f"# flanlab mix {path.name} -o OUT\n" + yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path):
    """flan2021 rows in two parquet shards, t0 rows in a jsonl file."""
    muffin = make_rows(MUFFIN, "Flan2021")
    half = len(muffin) // 2
    a = write_parquet(tmp_path / "flan2021" / "train-00000-of-00002.parquet", muffin[:half])
    b = write_parquet(tmp_path / "flan2021" / "train-00001-of-00002.parquet", muffin[half:])
    t0 = write_jsonl(tmp_path / "t0.jsonl", make_rows(T0, "T0"))
    return {"muffin": [a, b], "t0": t0, "muffin_rows": muffin, "t0_rows": make_rows(T0, "T0")}


def mixture_config(tmp_path: Path, **over) -> Path:
    cfg = {
        "name": "flan", "seed": 1, "size": 150, "validation_size": 0,
        "submixtures": [
            {"name": "muffin", "rate": 0.6, "cap": 60, "flan_collection": [{"submix": "flan2021", "files": ["flan2021/*.parquet"]}],
             "formats": {"zs_opt": 1, "fs_opt": 1, "zs_noopt": 1, "fs_noopt": 1}},
            {"name": "t0_sf", "rate": 0.4, "cap": 40, "flan_collection": [{"submix": "t0", "files": ["t0.jsonl"]}],
             "formats": {"zs_opt": 3, "fs_opt": 1}},
        ],
    }
    cfg.update(over)
    return write_config(tmp_path / "flan.yaml", cfg)


# ------------------------------------------------------------------------------------------------------ catalog


def test_catalog_lists_the_data_dir_copies_with_counts(tmp_path, files, capsys):
    data = tmp_path / "data"
    write_parquet(data / "flan_collection" / "flan2021" / "data" / "train-0.parquet", files["muffin_rows"])
    write_jsonl(data / "flan_collection" / "t0" / "t0.jsonl", files["t0_rows"])
    (data / "flan_collection" / "t0" / ".cache").mkdir()  # huggingface-cli's metadata folder is skipped
    tasks = {t.name: t for t in catalog.discover("flan_collection", data)}
    assert set(tasks) == set(MUFFIN) | set(T0)
    for name, n in {**MUFFIN, **T0}.items():
        t = tasks[name]
        assert (t.count, t.source) == (n, "flan_collection")
        assert t.category == ("flan2021" if name in MUFFIN else "t0")
        assert t.prerendered == {ty: sum(1 for i in range(n) if TYPES[i % 4] == ty) for ty in TYPES}
    assert "derived from mmlu" in tasks["mmlu_abstract_algebra"].held_out
    assert "derived from bbh" in tasks["bbh_date_understanding"].held_out
    assert not tasks["anli_r1"].held_out
    rows = {r.name: r for r in catalog.list_tasks(data)}
    assert rows["anli_r1"].source == "flan_collection" and rows["anli_r1"].count == 240
    assert rows["mmlu_abstract_algebra"].held_out

    from flanlab.cli import main

    assert main(["tasks", "--data-dir", str(data), "--category", "t0"]) == 0
    out = capsys.readouterr().out
    assert "adversarial_qa_dbert" in out and "flan_collection" in out and "HELD OUT: derived from bbh" in out


def test_tasks_command_lists_a_configs_collection(tmp_path, files, capsys):
    from flanlab.cli import main

    assert main(["tasks", "--mixture", str(mixture_config(tmp_path)), "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["anli_r1"]["count"] == 240 and rows["anli_r1"]["source"] == "flan_collection"
    assert rows["web_questions"]["category"] == "t0"
    assert rows["parity"]["source"] == "synthetic"  # the catalog is still listed


def test_index_is_cached_by_file_identity(tmp_path, files):
    coll = open_files("flan2021", [str(p) for p in files["muffin"]])
    cached = sorted((tmp_path / "cache" / "flan_collection").glob("index-*.npz"))
    assert len(cached) == 1
    flan_collection._open.cache_clear()
    again = open_files("flan2021", [str(p) for p in files["muffin"]])  # read from the cache file
    assert again.tasks == coll.tasks and (again.order == coll.order).all()
    write_parquet(files["muffin"][1], make_rows({"anli_r1": 8}, "Flan2021"))  # a changed file: a new index
    changed = open_files("flan2021", [str(p) for p in files["muffin"]])
    assert len(list((tmp_path / "cache" / "flan_collection").glob("index-*.npz"))) == 2
    assert changed.counts.sum() == len(files["muffin_rows"]) // 2 + 8


def test_rows_pass_through_in_a_seeded_order(files):
    coll = open_files("flan2021", [str(p) for p in files["muffin"]])
    [task] = [t for t in flan_collection.collection_tasks(coll) if t.name == "anli_r1"]
    want = {(r["inputs"], r["targets"]) for r in files["muffin_rows"] if r["task_name"] == "anli_r1"
            and r["template_type"] == "fs_opt"}
    rows = list(task.open_rows("fs_opt", 7))
    assert {(r["inputs"], r["targets"]) for r in rows} == want and len(rows) == len(want) == 60
    assert {(r["format"], r["template_id"]) for r in rows} == {("fs_opt", "flan_collection/flan2021/fs_opt")}
    assert rows == list(task.open_rows("fs_opt", 7)) != list(task.open_rows("fs_opt", 8))
    assert sum(1 for _ in task.open(0, "train")) == 240


# ------------------------------------------------------------------------------------------------------ mixtures


def test_mixture_keeps_caps_rates_formats_and_is_byte_identical(tmp_path, files):
    cfg = load_mixture_config(mixture_config(tmp_path))
    stats = build_mixture(cfg, tmp_path / "a", progress=False)
    build_mixture(load_mixture_config(mixture_config(tmp_path)), tmp_path / "b", progress=False)
    for name in ("train-00000-of-00001.jsonl", "stats.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    rows = [json.loads(line) for line in (tmp_path / "a" / "train-00000-of-00001.jsonl").read_text().splitlines()]
    assert len(rows) == stats["size"]["written"] == 150
    # held-out names never appear; they are reported
    assert {e["name"] for e in stats["excluded_tasks"]} == {"mmlu_abstract_algebra", "bbh_date_understanding"}
    assert not {r["task"] for r in rows} & {"mmlu_abstract_algebra", "bbh_date_understanding"}
    # caps within submixtures, rates between them: muffin 0.6 over anli 60 : sst2 60 (both capped); t0 0.4 over
    # adversarial_qa 40 (capped; its rows of the two t0 formats: 80 of 160) : web_questions 20 (of its two formats)
    counts = Counter(r["task"] for r in rows)
    expected = {"anli_r1": 0.6 * 60 / 120, "glue_sst2": 0.6 * 60 / 120,
                "adversarial_qa_dbert": 0.4 * 40 / 60, "web_questions": 0.4 * 20 / 60}
    for task, share in expected.items():
        assert counts[task] == stats["tasks"][task]["planned"] == round(150 * share), (task, counts[task])
    # rows pass through untemplated; format = template_type; t0 only its weighted formats, about 3:1
    upstream = {(r["inputs"], r["targets"], r["template_type"]) for r in files["muffin_rows"] + files["t0_rows"]}
    assert all((r["inputs"], r["targets"], r["format"]) in upstream for r in rows)
    assert all(r["source"] == "flan_collection" and r["template_id"].endswith(r["format"]) for r in rows)
    assert {r["format"] for r in rows if r["category"] == "t0"} == {"zs_opt", "fs_opt"}
    qa_formats = Counter(r["format"] for r in rows if r["task"] == "adversarial_qa_dbert")  # 40 of 40 + 40 rows
    assert 25 <= qa_formats["zs_opt"] <= 35 and qa_formats["zs_opt"] + qa_formats["fs_opt"] == 40
    web_formats = Counter(r["format"] for r in rows if r["task"] == "web_questions")  # all 20: zs_opt runs out first
    assert web_formats == {"zs_opt": 10, "fs_opt": 10}
    assert "removed" not in stats or not stats["removed"].get("duplicate")
    assert len({(r["inputs"], r["targets"]) for r in rows}) == len(rows)  # no repeats
    assert stats["submixtures"]["muffin"]["cap"] == 60 and abs(stats["submixtures"]["muffin"]["proportion"] - 0.6) < 0.005


def test_size_null_and_validation_draw_disjoint_rows(tmp_path, files):
    cfg = load_mixture_config(mixture_config(tmp_path, size=None, validation_size=20, validation_fraction=0.2))
    stats = build_mixture(cfg, tmp_path / "out", progress=False)
    # the largest size with no task past its capped weight: min(muffin 120 / 0.6, t0 60 / 0.4) (t0 counts only the
    # rows of its two formats: adversarial_qa min(80, 40) + web_questions 20)
    assert stats["size"]["planned"] == 150
    train = {json.loads(x)["inputs"] for x in (tmp_path / "out" / "train-00000-of-00001.jsonl").read_text().splitlines()}
    val = {json.loads(x)["inputs"] for x in (tmp_path / "out" / "validation.jsonl").read_text().splitlines()}
    assert val and not train & val


def test_cot_submix_maps_to_cot_formats_and_filters_template_types(tmp_path):
    write_parquet(tmp_path / "cot.parquet", make_rows({"cot_gsm8k": 40, "cot_esnli": 40}, "CoT"))
    cfg = {"name": "cot", "seed": 0, "size": 60, "formats": {"cot_zs": 1, "cot_fs": 1},
           "submixtures": [{"name": "cot", "cap": 100000, "flan_collection": [
               {"submix": "cot", "files": ["cot.parquet"], "template_types": ["zs_opt", "fs_opt"]}]}]}
    plan = plan_mixture(load_mixture_config(write_config(tmp_path / "cot.yaml", cfg)))
    assert {pt.task.name: pt.task.prerendered for pt in plan.tasks} == {
        "cot_gsm8k": {"cot_zs": 10, "cot_fs": 10}, "cot_esnli": {"cot_zs": 10, "cot_fs": 10}}
    build_mixture(plan.config, tmp_path / "out", progress=False)
    rows = [json.loads(x) for x in (tmp_path / "out" / "train-00000-of-00001.jsonl").read_text().splitlines()]
    assert len(rows) == 40  # 20 usable rows per task; the rest would repeat and is dropped as duplicates
    assert {r["format"] for r in rows} == {"cot_zs", "cot_fs"}
    assert all(r["inputs"].endswith(("zs_opt", "fs_opt")) for r in rows)


def test_decontamination_covers_prerendered_rows(tmp_path):
    data = tmp_path / "data"
    question = "which of the following statements about finite abelian groups of prime order is always true"
    (data / "mmlu" / "data" / "test").mkdir(parents=True)
    (data / "mmlu" / "data" / "test" / "abstract_algebra_test.csv").write_text(f'"{question}",a,b,c,d,A\n')
    rows = make_rows({"math_qa": 30}, "Flan2021")
    rows[3]["inputs"] = f"Q: 2+2?\nA: 4\n\nQ: {question.capitalize()}?\nA:"  # a few-shot prompt holding the item
    write_parquet(data / "flan_collection" / "flan2021" / "x.parquet", rows)
    cfg = {"name": "d", "seed": 0, "size": 29, "submixtures": [{"name": "m", "sources": ["flan_collection"]}]}
    stats = build_mixture(load_mixture_config(write_config(tmp_path / "d.yaml", cfg)), tmp_path / "out",
                          data_dir=data, progress=False)
    assert stats["removed"]["decontaminated"]["by"] == {"mmlu": 1}
    out = (tmp_path / "out" / "train-00000-of-00001.jsonl").read_text()
    assert question not in out.lower() and len(out.splitlines()) == 29


# ------------------------------------------------------------------------------------------------------ errors


def test_missing_column_names_the_file_and_column(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "template_type"} for r in make_rows({"x": 4}, "T0")]
    p = write_parquet(tmp_path / "bad.parquet", rows)
    with pytest.raises(SourceFormatError, match=r"bad\.parquet: no column 'template_type'"):
        open_files("t0", [str(p)])
    j = write_jsonl(tmp_path / "bad.jsonl", [{k: v for k, v in r.items() if k != "targets"} for r in make_rows({"x": 4}, "T0")])
    with pytest.raises(SourceFormatError, match=r"bad\.jsonl: no column 'targets'"):
        open_files("t0", [str(j)])


def test_unknown_template_type_names_file_row_and_value(tmp_path):
    rows = make_rows({"x": 6}, "T0", seed=1)
    rows[4]["template_type"] = "zs_weird"
    p = write_parquet(tmp_path / "odd.parquet", rows)
    with pytest.raises(SourceFormatError, match=r"odd\.parquet: row 4: unknown template_type 'zs_weird'.*format_map"):
        flan_collection.collection_tasks(open_files("t0", [str(p)]))
    [task] = flan_collection.collection_tasks(open_files("t0", [str(p)]), format_map={"zs_weird": "zs_noopt"})
    assert task.count == 6
    rows[5]["task_name"] = None
    with pytest.raises(SourceFormatError, match=r"null\.jsonl: row 5: task_name is empty"):
        open_files("t0", [str(write_jsonl(tmp_path / "null.jsonl", rows))])


def test_bad_specs_and_files_fail_clearly(tmp_path, files):
    with pytest.raises(ConfigError, match=r"flan_collection\[0\]\.submix: unknown submix 'flan2012'.*'flan2021'"):
        load_mixture_config(write_config(tmp_path / "a.yaml", {"submixtures": [
            {"name": "m", "flan_collection": [{"submix": "flan2012"}]}]}))
    with pytest.raises(ConfigError, match="files or dataset, not both"):
        load_mixture_config(write_config(tmp_path / "b.yaml", {"submixtures": [
            {"name": "m", "flan_collection": [{"submix": "t0", "files": ["t0.jsonl"], "dataset": "x/y"}]}]}))
    with pytest.raises(ConfigError, match=r"format_map\.zs_x: unknown format 'zs_optt'"):
        load_mixture_config(write_config(tmp_path / "c.yaml", {"submixtures": [
            {"name": "m", "flan_collection": [{"submix": "t0", "format_map": {"zs_x": "zs_optt"}}]}]}))
    with pytest.raises(FileNotFoundError, match="matches no file"):
        plan_mixture(load_mixture_config(mixture_config(tmp_path, submixtures=[
            {"name": "m", "flan_collection": [{"submix": "t0", "files": ["nothing/*.parquet"]}]}])))
    (tmp_path / "t0.csv").write_text("a,b\n")
    with pytest.raises(SourceFormatError, match=r"t0\.csv: not a parquet or jsonl file"):
        open_files("t0", [str(tmp_path / "t0.csv")])


def test_hub_dataset_offline_or_unreachable_fails_fast(tmp_path, monkeypatch):
    spec = FlanCollectionSpec(submix="t0")
    start = time.monotonic()
    with pytest.raises(SourceUnavailableError, match=r"'DataProvenanceInitiative/t0_submix_original'.*HF_HUB_OFFLINE=1"):
        flan_collection.spec_tasks(spec, Path, None)
    hub_unreachable(monkeypatch)
    with pytest.raises(SourceUnavailableError, match=r"'org/flan_copy'.*cannot be reached"):
        flan_collection.spec_tasks(FlanCollectionSpec(submix="t0", dataset="org/flan_copy"), Path, None)
    assert time.monotonic() - start < 10


def test_remote_file_through_loopback_http(tmp_path, loopback_server, monkeypatch):
    import datasets.config
    import huggingface_hub.constants

    root, base = loopback_server
    rows = make_rows({"anli_r1": 12, "glue_sst2": 8}, "Flan2021")
    write_parquet(root / "train-0.parquet", rows)
    spec = FlanCollectionSpec(submix="flan2021", files=[f"{base}/train-0.parquet"])
    with pytest.raises(SourceUnavailableError, match="HF_HUB_OFFLINE=1"):  # the tests run with the hub off
        flan_collection.spec_tasks(spec, Path, None)
    # datasets reads these switches when imported: turn them off where it looks
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    tasks = {t.name: t for t in flan_collection.spec_tasks(spec, Path, None)}
    assert {n: t.count for n, t in tasks.items()} == {"anli_r1": 12, "glue_sst2": 8}
    got = {(r["inputs"], r["targets"]) for r in tasks["glue_sst2"].open(0, "train")}
    assert got == {(r["inputs"], r["targets"]) for r in rows if r["task_name"] == "glue_sst2"}


def test_shipped_flan2022_config_names_the_paper_caps():
    cfg = load_mixture_config(Path(__file__).resolve().parent.parent / "configs" / "mixtures" / "flan2022.yaml")
    subs = {s.name: (s.flan_collection[0].submix, s.cap, s.rate) for s in cfg.submixtures}
    assert subs == {"muffin": ("flan2021", 30000, 0.4), "t0_sf": ("t0", 20000, 0.32), "niv2": ("niv2", 5000, 0.2),
                    "cot": ("cot", 100000, 0.05), "dialog": ("dialog", 200000, 0.03)}
    assert set(flan_collection.SUBMIXES) == {s for s, _, _ in subs.values()}
