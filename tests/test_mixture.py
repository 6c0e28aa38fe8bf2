"""Mixtures: proportions follow rates and caps, builds are byte-identical, held-out data stays out (by name and by
13-gram decontamination), duplicates and over-long inputs are removed and reported, malformed inputs fail clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from flanlab.config import ConfigError
from flanlab.data.mixture import build_mixture, load_mixture_config, plan_mixture, preview_mixture
from flanlab.data.templates import TemplateError

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ROOT / "configs" / "mixtures"
TRAINING_FAMILIES = ["parity", "list_sum", "change_case"]


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No data dir, a private cache."""
    monkeypatch.delenv("FLANLAB_DATA_DIR", raising=False)
    monkeypatch.setenv("FLANLAB_CACHE", str(tmp_path / "cache"))


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def records(prefix: str, n: int, long: bool = False) -> list[dict]:
    """n distinct classification records with options and a rationale (so every format applies)."""
    pad = " and some more words" * 60 if long else ""
    return [{"question": f"{prefix} item {i}: is {i} even?{pad}", "answer": "yes" if i % 2 == 0 else "no",
             "options": ["yes", "no"], "rationale": f"{i} divided by 2 leaves {i % 2}."} for i in range(n)]


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text("# flanlab mix " + path.name + " -o OUT\n" + yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def read_rows(out: Path, name: str = "train-00000-of-00001.jsonl") -> list[dict]:
    return [json.loads(line) for line in (out / name).read_text(encoding="utf-8").splitlines()]


def all_train_rows(out: Path) -> list[dict]:
    rows = []
    for p in sorted(out.glob("train-*.jsonl")):
        rows += [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines()]
    return rows


@pytest.fixture
def files_config(tmp_path, offline):
    write_jsonl(tmp_path / "a.jsonl", records("a", 100))
    write_jsonl(tmp_path / "b.jsonl", records("b", 400))
    write_jsonl(tmp_path / "c.jsonl", records("c", 2000))
    cfg = {
        "name": "t", "seed": 3, "size": 3000, "validation_size": 60,
        "formats": {"zs_opt": 2, "zs_noopt": 1, "fs_opt": 1, "fs_noopt": 1, "cot_zs": 1, "cot_fs": 0},
        "submixtures": [
            {"name": "files", "rate": 0.6, "cap": 500, "files": [
                {"name": "a", "path": "a.jsonl"}, {"name": "b", "path": "b.jsonl"}, {"name": "c", "path": "c.jsonl"}]},
            {"name": "synthetic", "rate": 0.4, "tasks": TRAINING_FAMILIES, "synthetic_size": 1000, "cap": 600},
        ],
    }
    return write_config(tmp_path / "mix.yaml", cfg)


def test_proportions_follow_rates_caps_and_formats(files_config, tmp_path):
    stats = build_mixture(load_mixture_config(files_config), tmp_path / "out", progress=False)
    rows = all_train_rows(tmp_path / "out")
    assert len(rows) == stats["size"]["written"] == 3000
    expected = {"a": 0.6 * 100 / 1000, "b": 0.6 * 400 / 1000, "c": 0.6 * 500 / 1000}  # c capped at 500
    expected.update({f: 0.4 / 3 for f in TRAINING_FAMILIES})
    for task, p in expected.items():
        measured = sum(r["task"] == task for r in rows) / len(rows)
        assert measured == pytest.approx(p, abs=0.002), task
        assert stats["tasks"][task]["expected_proportion"] == pytest.approx(p, abs=1e-6)
    assert stats["submixtures"]["files"]["proportion"] == pytest.approx(0.6, abs=0.002)
    assert stats["submixtures"]["synthetic"]["proportion"] == pytest.approx(0.4, abs=0.002)
    # formats, on the file tasks (which have options and rationales, so every format applies)
    file_rows = [r for r in rows if r["source"] == "file"]
    weights = {"zs_opt": 2, "zs_noopt": 1, "fs_opt": 1, "fs_noopt": 1, "cot_zs": 1}
    for fmt, w in weights.items():
        measured = sum(r["format"] == fmt for r in file_rows) / len(file_rows)
        assert measured == pytest.approx(w / 6, abs=0.04), fmt
    assert not any(r["format"] == "cot_fs" for r in rows)
    # every row has the output fields, and the tables in stats agree with the rows
    assert list(rows[0]) == ["inputs", "targets", "task", "category", "template_id", "format", "source"]
    assert sum(f["examples"] for f in stats["formats"].values()) == 3000
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["tasks"]["a"]["examples"] == stats["tasks"]["a"]["examples"]


def test_two_builds_are_byte_identical(files_config, tmp_path):
    cfg = load_mixture_config(files_config, ["output=[jsonl, parquet]", "shard_size=1000"])
    build_mixture(cfg, tmp_path / "one", progress=False)
    build_mixture(cfg, tmp_path / "two", progress=False)
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "two").iterdir())
    assert "train-00002-of-00003.parquet" in names and "validation.jsonl" in names and "stats.json" in names
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    for line in (tmp_path / "one" / "train-00000-of-00003.jsonl").read_text(encoding="utf-8").splitlines():
        assert json.dumps(json.loads(line), ensure_ascii=False) == line  # the fast writer writes json.dumps' bytes
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "one" / "train-00000-of-00003.parquet")
    assert table.num_rows == 1000 and table.column_names[:2] == ["inputs", "targets"]
    other = load_mixture_config(files_config, ["seed=4"])
    build_mixture(other, tmp_path / "three", progress=False)
    assert (tmp_path / "three" / "train-00000-of-00001.jsonl").read_bytes() != b"".join(
        (tmp_path / "one" / n).read_bytes() for n in names if n.startswith("train-") and n.endswith(".jsonl"))


def test_validation_records_never_reach_training(files_config, tmp_path):
    stats = build_mixture(load_mixture_config(files_config), tmp_path / "out", progress=False)
    val = read_rows(tmp_path / "out", "validation.jsonl")
    assert len(val) == stats["size"]["validation"] == 60
    train_text = "\n".join(r["inputs"] for r in all_train_rows(tmp_path / "out"))
    import re

    held = {m for r in val if r["source"] == "file" for m in re.findall(r"\b[abc] item \d+:", r["inputs"])}
    assert held
    for marker in held:  # neither as a query nor as a few-shot exemplar
        assert marker not in train_text


PLANTED = ("The following paragraphs each describe a set of three objects arranged in a fixed order on a shelf "
           "there are a quail a falcon and a robin")


def bbh_data_dir(tmp_path: Path, monkeypatch, inputs: list[str]) -> Path:
    """A data dir whose only benchmark is one BBH task file holding these inputs; a private cache."""
    monkeypatch.setenv("FLANLAB_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data"
    (data / "bbh" / "bbh").mkdir(parents=True)
    (data / "bbh" / "bbh" / "x.json").write_text(json.dumps({"examples": [{"input": x, "target": "(A)"} for x in inputs]}))
    return data


def test_planted_bbh_item_is_removed_and_reported(tmp_path, monkeypatch):
    planted = PLANTED
    data = bbh_data_dir(tmp_path, monkeypatch, [planted, "Is seventeen a prime number?"])
    rows = records("clean", 40)
    rows.append({"question": "Context: " + planted.upper() + " Which bird is leftmost?", "answer": "quail"})
    rows.append({"question": "is  seventeen a PRIME number?", "answer": "yes"})  # the short item, exactly
    write_jsonl(tmp_path / "train.jsonl", rows)
    cfg = write_config(tmp_path / "mix.yaml", {"name": "p", "size": 200, "formats": {"zs_noopt": 1.0, "fs_noopt": 1.0},
                                                "submixtures": [{"name": "f", "files": [{"name": "t", "path": "train.jsonl"}]}]})
    stats = build_mixture(load_mixture_config(cfg), tmp_path / "out", data_dir=data, progress=False)
    text = (tmp_path / "out" / "train-00000-of-00001.jsonl").read_text().lower()
    assert "quail a falcon" not in text and "seventeen" not in text
    removed = stats["removed"]["decontaminated"]
    assert removed["count"] == 2 and removed["by"] == {"bbh": 2}
    assert any("QUAIL A FALCON" in ex["text"] for ex in removed["examples"])
    assert stats["decontamination"]["benchmarks"]["bbh"]["items"] == 2
    on_disk = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert on_disk["removed"]["decontaminated"]["count"] == 2
    assert stats["size"]["written"] == 200


def test_planted_rationale_never_shows_but_its_record_serves_non_cot_examples(tmp_path, monkeypatch):
    # a rationale is shown only by chain-of-thought examples: one that overlaps a benchmark must never be in a
    # CoT example (as the query or as an exemplar), while its record's direct examples, which do not show it,
    # are kept
    data = bbh_data_dir(tmp_path, monkeypatch, [PLANTED])
    rows = records("clean", 12)
    rows[5]["rationale"] = "Recall that " + PLANTED + ", so the count is odd."
    write_jsonl(tmp_path / "train.jsonl", rows)
    cfg = write_config(tmp_path / "mix.yaml", {
        "name": "r", "size": 300, "dedup": False,
        "formats": {"zs_noopt": 1.0, "cot_zs": 1.0, "cot_fs": 1.0},
        "submixtures": [{"name": "f", "files": [{"name": "t", "path": "train.jsonl"}]}]})
    stats = build_mixture(load_mixture_config(cfg), tmp_path / "out", data_dir=data, progress=False)
    out = read_rows(tmp_path / "out")
    cot = [r for r in out if r["format"].startswith("cot")]
    assert cot and not any("quail a falcon" in (r["inputs"] + r["targets"]).lower() for r in cot)
    assert any(r["format"] == "zs_noopt" and "clean item 5:" in r["inputs"] for r in out)  # the record still serves
    removed = stats["removed"]["decontaminated"]
    assert removed["by"] == {"bbh": removed["count"]} and removed["count"] >= 1  # its CoT draws, reported
    assert all("clean item 5:" in ex["text"] for ex in removed["examples"])


def test_finite_task_epochs_come_from_memory_with_the_same_output(offline, tmp_path, monkeypatch):
    # a task needing 6 epochs is read from its file once when its records fit record_cache_mb, every epoch
    # otherwise; the examples are the same either way
    from flanlab.data import sources

    reads = []
    real_iter_table = sources.iter_table

    def counting_iter_table(*args, **kwargs):
        reads.append(1)
        return real_iter_table(*args, **kwargs)

    monkeypatch.setattr(sources, "iter_table", counting_iter_table)
    write_jsonl(tmp_path / "small.jsonl", records("s", 10))
    texts = {}
    for mb in (128, 0):
        cfg = write_config(tmp_path / f"m{mb}.yaml", {
            "name": "e", "size": 60, "dedup": False, "record_cache_mb": mb, "formats": {"zs_noopt": 1.0},
            "submixtures": [{"name": "f", "files": [{"name": "small", "path": "small.jsonl"}]}]})
        reads.clear()
        build_mixture(load_mixture_config(cfg), tmp_path / f"out{mb}", progress=False)
        texts[mb] = ((tmp_path / f"out{mb}" / "train-00000-of-00001.jsonl").read_bytes(), len(reads))
    (cached, cached_reads), (reread, reread_reads) = texts[128], texts[0]
    assert cached == reread and cached.count(b"\n") == 60
    assert cached_reads == 2 and reread_reads >= 7  # 1 to count the records when planning, then 1 or 6+ epochs


def test_held_out_tasks_are_never_mixed(offline, tmp_path):
    from flanlab.data.generators import FAMILIES

    held = [n for n, f in FAMILIES.items() if f.held_out]
    cfg = write_config(tmp_path / "h.yaml", {"size": 500, "submixtures": [{"name": "s", "sources": ["synthetic"]}]})
    stats = build_mixture(load_mixture_config(cfg), tmp_path / "out", progress=False)
    assert {r["task"] for r in all_train_rows(tmp_path / "out")}.isdisjoint(held)
    assert sorted(e["name"] for e in stats["excluded_tasks"]) == sorted(held)
    bad = write_config(tmp_path / "bad.yaml", {"submixtures": [{"name": "s", "tasks": [held[0]]}]})
    with pytest.raises(ConfigError, match="held out"):
        plan_mixture(load_mixture_config(bad))


def test_duplicates_are_removed_and_reported(offline, tmp_path):
    rows = records("d", 5)
    write_jsonl(tmp_path / "dup.jsonl", rows + rows + rows)  # every record three times
    (tmp_path / "one.yaml").write_text("qa:\n  - {id: one/1, input: 'Q: {question}', target: '{answer}'}\n")
    cfg = write_config(tmp_path / "d.yaml", {
        "size": 50, "template_file": "one.yaml", "formats": {"zs_noopt": 1.0},
        "submixtures": [{"name": "f", "files": [{"name": "dup", "path": "dup.jsonl"}]}]})
    stats = build_mixture(load_mixture_config(cfg), tmp_path / "out", progress=False)
    out = all_train_rows(tmp_path / "out")
    assert len(out) == len({(r["inputs"], r["targets"]) for r in out}) == 5  # one template: 5 distinct examples
    assert stats["removed"]["duplicate"]["count"] >= 10
    assert stats["shortfall"] == {"dup": 45}
    assert any("dup ran out of new examples" in w for w in stats["warnings"])


def test_overlong_inputs_dropped_or_truncated(offline, tmp_path):
    write_jsonl(tmp_path / "mixed.jsonl", records("short", 50) + records("long", 50, long=True))
    base = {"size": 200, "max_input_tokens": 80, "formats": {"zs_noopt": 1.0},
            "submixtures": [{"name": "f", "files": [{"name": "m", "path": "mixed.jsonl"}]}]}
    cfg = write_config(tmp_path / "drop.yaml", {**base, "overlong": "drop"})
    stats = build_mixture(load_mixture_config(cfg), tmp_path / "drop", progress=False)
    rows = all_train_rows(tmp_path / "drop")
    assert rows and all(len(r["inputs"]) // 4 <= 80 for r in rows)
    assert stats["removed"]["too_long"]["count"] > 0
    cfg = write_config(tmp_path / "trunc.yaml", {**base, "overlong": "truncate"})
    stats = build_mixture(load_mixture_config(cfg), tmp_path / "trunc", progress=False)
    rows = all_train_rows(tmp_path / "trunc")
    assert len(rows) == 200 and all(len(r["inputs"]) <= 320 for r in rows)
    assert stats["removed"]["truncated"]["count"] > 0 and "len(text) // 4" in stats["length_measure"]


def test_few_shot_fits_the_input_budget(offline, tmp_path):
    write_jsonl(tmp_path / "r.jsonl", records("r", 200))
    cfg = write_config(tmp_path / "fs.yaml", {"size": 300, "fewshot": 5, "max_input_tokens": 60,
                                              "formats": {"fs_opt": 1.0, "fs_noopt": 1.0},
                                              "submixtures": [{"name": "f", "files": [{"name": "r", "path": "r.jsonl"}]}]})
    build_mixture(load_mixture_config(cfg), tmp_path / "out", progress=False)
    rows = all_train_rows(tmp_path / "out")
    assert all(len(r["inputs"]) // 4 <= 60 for r in rows)
    assert any(r["format"].startswith("fs_") and r["inputs"].count("r item") >= 2 for r in rows)
    for r in rows:  # an exemplar is never the item itself
        first_line_items = [line for line in r["inputs"].split("\n") if "r item" in line]
        assert len(first_line_items) == len(set(first_line_items))


def test_nested_mixture_rates_multiply(offline, tmp_path):
    write_jsonl(tmp_path / "x.jsonl", records("x", 300))
    write_jsonl(tmp_path / "y.jsonl", records("y", 300))
    write_config(tmp_path / "child.yaml", {"submixtures": [
        {"name": "x", "rate": 3, "files": [{"name": "x", "path": "x.jsonl"}]},
        {"name": "y", "rate": 1, "files": [{"name": "y", "path": "y.jsonl"}]}]})
    parent = write_config(tmp_path / "parent.yaml", {"size": 1000, "submixtures": [
        {"name": "nested", "rate": 0.5, "mixture": "child.yaml"},
        {"name": "synthetic", "rate": 0.5, "tasks": ["parity"], "synthetic_size": 1000}]})
    stats = build_mixture(load_mixture_config(parent), tmp_path / "out", progress=False)
    subs = stats["submixtures"]
    assert subs["nested/x"]["proportion"] == pytest.approx(0.375, abs=0.002)
    assert subs["nested/y"]["proportion"] == pytest.approx(0.125, abs=0.002)
    assert subs["synthetic"]["proportion"] == pytest.approx(0.5, abs=0.002)
    loop = write_config(tmp_path / "loop.yaml", {"submixtures": [{"name": "me", "mixture": "loop.yaml"}]})
    with pytest.raises(ConfigError, match="cycle"):
        plan_mixture(load_mixture_config(loop))


def test_fewer_tasks_than_requested_is_reported(offline, tmp_path):
    cfg = write_config(tmp_path / "m.yaml", {"size": 100, "max_tasks": 682,
                                             "submixtures": [{"name": "s", "sources": ["synthetic", "niv2"]}]})
    plan = plan_mixture(load_mixture_config(cfg))
    n = len(plan.tasks)
    assert 0 < n < 682
    assert any(f"max_tasks is 682 but only {n} tasks are available" in w for w in plan.warnings)
    assert any("source 'niv2' has no tasks here (no data dir)" in w for w in plan.warnings)


# --- malformed inputs ---------------------------------------------------------------------------------------------


def test_broken_json_line_names_file_and_line(offline, tmp_path):
    (tmp_path / "broken.jsonl").write_text(json.dumps({"question": "q", "answer": "a"}) + "\n{oops\n")
    cfg = write_config(tmp_path / "m.yaml", {"submixtures": [{"name": "f", "files": [{"name": "b", "path": "broken.jsonl"}]}]})
    with pytest.raises(ValueError, match=r"broken.jsonl:2: not valid JSON"):
        build_mixture(load_mixture_config(cfg), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_missing_tsv_column_names_file_and_line(tmp_path, monkeypatch):
    monkeypatch.setenv("FLANLAB_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data"
    (data / "flan_cot").mkdir(parents=True)
    (data / "flan_cot" / "bad_train.tsv").write_text("Q one?\tyes\tbecause\nQ two?\tno\n")
    cfg = write_config(tmp_path / "m.yaml", {"size": 10, "submixtures": [{"name": "c", "sources": ["flan_cot"]}]})
    with pytest.raises(ValueError, match=r"bad_train.tsv:2: missing rationale column"):
        build_mixture(load_mixture_config(cfg), tmp_path / "out", data_dir=data, progress=False)
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_empty_tasks_error_or_warn(offline, tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    cfg = write_config(tmp_path / "m.yaml", {"submixtures": [{"name": "f", "files": [{"name": "e", "path": "empty.jsonl"}]}]})
    with pytest.raises(ValueError, match="empty.jsonl has no records"):
        plan_mixture(load_mixture_config(cfg))
    # an NIV2 task without instances in a data dir: left out with a warning, the rest builds
    sample = tmp_path / "data" / "niv2" / "sample"
    (sample / "tasks").mkdir(parents=True)
    task = {"Definition": ["Say hi."], "Positive Examples": [], "Instances": []}
    (sample / "tasks" / "task9999_empty.json").write_text(json.dumps(task))
    full = dict(task, Instances=[{"input": f"x{i}", "output": ["hi"]} for i in range(4)])
    (sample / "tasks" / "task9998_full.json").write_text(json.dumps(full))
    (sample / "index.json").write_text(json.dumps([
        {"task": "task9999_empty", "n_instances_kept": 0}, {"task": "task9998_full", "n_instances_kept": 4}]))
    cfg = write_config(tmp_path / "n.yaml", {"size": 8, "submixtures": [{"name": "n", "sources": ["niv2"]}]})
    stats = build_mixture(load_mixture_config(cfg), tmp_path / "out", data_dir=tmp_path / "data", progress=False)
    assert any("task9999_empty has no records" in w for w in stats["warnings"])
    assert stats["tasks"]["task9998_full"]["examples"] == 8


def test_template_with_unknown_field_fails_at_load(offline, tmp_path):
    (tmp_path / "t.yaml").write_text("classification:\n  - {id: mine/1, input: '{question}\\n{optons}', formats: [zs_opt]}\n")
    cfg = write_config(tmp_path / "m.yaml", {"template_file": "t.yaml", "submixtures": [{"name": "s", "sources": ["synthetic"]}]})
    with pytest.raises(TemplateError, match=r"mine/1.*\{optons\}.*Did you mean 'options'"):
        load_mixture_config(cfg)


def test_unknown_format_and_source_are_config_errors(offline, tmp_path):
    cfg = write_config(tmp_path / "m.yaml", {"formats": {"zs_opts": 1}, "submixtures": [{"name": "s", "sources": ["synthetic"]}]})
    with pytest.raises(ConfigError, match="unknown format 'zs_opts'.*zs_opt"):
        load_mixture_config(cfg)
    cfg = write_config(tmp_path / "n.yaml", {"submixtures": [{"name": "s", "sources": ["synthetc"]}]})
    with pytest.raises(ConfigError, match="unknown source 'synthetc'.*synthetic"):
        load_mixture_config(cfg)


# --- presets and CLI --------------------------------------------------------------------------------------------------


def test_preview_returns_rendered_examples(offline):
    examples = preview_mixture(load_mixture_config(PRESETS / "demo.yaml"), 5)
    assert len(examples) == 5
    for ex in examples:
        assert ex.inputs and ex.targets and ex.template_id and ex.source == "synthetic"


def _check_measured(stats: dict, tol: float) -> None:
    for name, t in stats["tasks"].items():
        assert t["proportion"] == pytest.approx(t["expected_proportion"], abs=tol), name
    for name, s in stats["submixtures"].items():
        assert s["proportion"] == pytest.approx(s["rate"], abs=tol), name


def test_cli_mix_offline_preset(offline, tmp_path, capsys):
    from flanlab.cli import main

    out = tmp_path / "mix"
    assert main(["mix", str(PRESETS / "offline.yaml"), "-o", str(out), "size=4000", "validation_size=40", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "submixture" in printed and "format" in printed and "4000 training examples" in printed
    stats = json.loads((out / "stats.json").read_text())
    assert stats["size"]["written"] == 4000 and stats["num_tasks"] >= 20
    _check_measured(stats, 0.002)
    assert main(["mix", str(PRESETS / "offline.yaml"), "--preview", "2"]) == 0
    assert "--- target:" in capsys.readouterr().out


def test_cli_mix_real_preset_over_the_data_dir(data_dir, tmp_path, capsys):
    from flanlab.cli import main

    one, two = tmp_path / "one", tmp_path / "two"
    args = ["mix", str(PRESETS / "real.yaml"), "--data-dir", str(data_dir), "size=6000", "validation_size=60", "--no-progress"]
    assert main(args + ["-o", str(one)]) == 0
    assert main(args + ["-o", str(two)]) == 0
    stats = json.loads((one / "stats.json").read_text())
    assert stats["size"]["written"] == 6000
    sources = {t["source"] for t in stats["tasks"].values()}
    assert {"synthetic", "niv2", "flan_cot", "gsm8k"} <= sources
    assert stats["submixtures"]["synthetic"]["rate"] == pytest.approx(0.6)
    assert stats["submixtures"]["niv2"]["rate"] == pytest.approx(0.1)
    _check_measured(stats, 0.002)
    assert set(stats["decontamination"]["benchmarks"]) >= {"mmlu", "bbh", "tydiqa", "mgsm", "synthetic"}
    for f in sorted(p.name for p in one.iterdir()):
        assert (one / f).read_bytes() == (two / f).read_bytes(), f
    rows = all_train_rows(one)
    niv2 = [r for r in rows if r["source"] == "niv2"]
    assert {r["format"] for r in niv2} == {"zs_noopt", "fs_noopt"}
    assert all(("Positive Example 1 -" in r["inputs"]) == (r["format"] == "fs_noopt") for r in niv2)
    cot = [r for r in rows if r["format"].startswith("cot")]
    import re

    assert cot and all(re.search(r"[.!?:;] So the answer is .+\.$", r["targets"], re.S) for r in cot)


def test_cli_tasks(capsys, data_dir):
    from flanlab.cli import main

    assert main(["tasks", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "cot_gsm8k" in out and "7473" in out and "147 niv2" in out
    assert main(["tasks", "--data-dir", str(data_dir), "--all", "--category", "niv2"]) == 0
    assert "not in data dir" in capsys.readouterr().out


def test_hf_dataset_task_and_tokenizer_lengths(offline, tmp_path):
    """A Hugging Face `datasets` source (the packaged json builder on a local file: the hub is not reachable
    here) and lengths counted by a named tokenizer (tiny-t5: ByT5, one token a byte)."""
    write_jsonl(tmp_path / "hf.jsonl", [{"prompt": f"hf question {i}?", "label": str(i)} for i in range(30)])
    cfg = write_config(tmp_path / "m.yaml", {
        "size": 40, "tokenizer": "tiny-t5", "max_input_tokens": 40, "formats": {"zs_noopt": 1.0},
        "submixtures": [{"name": "h", "files": [{"name": "hf", "path": "json", "format": "hf", "data_files": "hf.jsonl",
                                                  "fields": {"question": "prompt", "answer": "label"}}]}]})
    stats = build_mixture(load_mixture_config(cfg), tmp_path / "out", progress=False)
    rows = all_train_rows(tmp_path / "out")
    assert stats["tasks"]["hf"]["size"] == 30 and len(rows) == 40
    assert stats["length_measure"] == "tokenizer tiny-t5"
    assert all(len(r["inputs"].encode()) <= 40 for r in rows)  # ByT5: bytes (the len // 4 estimate allows 160)
    assert stats["removed"]["too_long"]["count"] > 0


def test_digest_set_keeps_old_digests_compactly():
    from flanlab.data.mixture import DigestSet

    s = DigestSet(flush_at=100)
    values = [(i * 0x9E3779B97F4A7C15) % (1 << 64) for i in range(1050)]
    for v in values:
        assert v not in s
        s.add(v)
    assert len(s) == 1050 and s.frozen is not None and len(s.frozen) == 1000 and len(s.recent) == 50
    assert all(v in s for v in values)
    assert (1 << 64) - 1 not in s and 12345 not in s
    assert not s.add_new(values[0]) and not s.add_new(values[-1])  # one frozen, one recent
    assert s.add_new(12345) and 12345 in s and len(s) == 1051


def test_digest_set_answers_exactly_past_its_bloom_filter():
    # the Bloom filter only skips searches: membership must stay exact, for members and for the filter's false
    # positives alike (a tiny filter here, so that it has many)
    import random

    from flanlab.data.mixture import DigestSet

    rng = random.Random(7)
    members = [rng.getrandbits(64) for _ in range(5000)]
    s = DigestSet(flush_at=1000)
    s.bloom_bits = 1 << 12  # before the first flush: 4,096 bits for 5,000 digests
    for v in members:
        assert s.add_new(v)
    assert len(s.frozen) == 5000 and s.bloom is not None
    assert all(v in s and not s.add_new(v) for v in members)
    others = [rng.getrandbits(64) for _ in range(20000)]
    mask = s.bloom_bits - 1
    passed = sum(all((s.bloom[p >> 3] >> (p & 7)) & 1 for p in (v & mask, (v >> 32) & mask)) for v in others)
    assert passed > 10000  # most non-members get past the filter to the exact search here
    assert sum(v in s for v in others) == len(set(others) & set(members)) == 0


def test_num_tasks_counts_the_tasks_that_gave_examples(offline, tmp_path, capsys):
    """A planned task whose every record is too long gives no example: stats.json's num_tasks (what the mix
    summary prints and a grid's task axis reads, flanlab.report.load.mixture_num_tasks) leaves it out, and
    planned_tasks keeps the count that was planned."""
    from flanlab.cli import main
    from flanlab.report.load import mixture_num_tasks

    write_jsonl(tmp_path / "short.jsonl", records("short", 60))
    write_jsonl(tmp_path / "other.jsonl", records("other", 60))
    write_jsonl(tmp_path / "long.jsonl", records("long", 60, long=True))
    cfg = write_config(tmp_path / "m.yaml", {
        "size": 100, "max_input_tokens": 80, "overlong": "drop", "formats": {"zs_noopt": 1.0},
        "submixtures": [{"name": "f", "files": [{"name": "short", "path": "short.jsonl"},
                                                {"name": "other", "path": "other.jsonl"},
                                                {"name": "long", "path": "long.jsonl"}]}]})
    assert main(["mix", str(cfg), "-o", str(tmp_path / "out"), "--no-progress"]) == 0
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["tasks"]["long"]["examples"] == 0 and stats["tasks"]["short"]["examples"] > 0
    assert stats["num_tasks"] == 2 and stats["planned_tasks"] == 3
    assert mixture_num_tasks(tmp_path / "out") == 2
    assert "training examples from 2 tasks, 1 more planned gave none" in capsys.readouterr().out
