"""`flanlab scale`: the tiny grid end to end (two untrained tiny models x two task counts, plus each model
before fine-tuning), resume by skipping finished cells, the aggregated table, and the grid's report in Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from browser import chromium, images_loaded

from flanlab.cli import main
from flanlab.config import ConfigError
from flanlab.scale import format_table, load_scale_config, merge_results

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "scale" / "tiny.yaml"


@pytest.fixture(scope="module")
def tiny_grid(tmp_path_factory):
    """The tiny grid, run once through the CLI; returns (output folder, printed text)."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("scale") / "grid"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["scale", str(TINY), f"output_dir={out}", "--no-progress"])
    assert code == 0, buf.getvalue()
    return out, buf.getvalue()


def test_tiny_grid_runs_every_cell(tiny_grid):
    out, printed = tiny_grid
    grid = json.loads((out / "grid.json").read_text())
    cells = grid["cells"]
    config = load_scale_config(TINY)
    assert len(cells) == len(config.models) * (1 + len(config.mixtures))  # + the row's un-fine-tuned model
    assert {c["model"] for c in cells} == set(config.models)
    counts = sorted({c["num_tasks"] for c in cells})
    assert counts[0] == 0 and len(counts) == 1 + len(config.mixtures) and all(counts[1:])
    assert all(c["score"] is not None and c["untrained"] for c in cells)
    for c in cells:
        assert Path(c["results"]).is_file()
        if c["num_tasks"]:
            assert c["train_steps"] and c["train_tokens"] and c["train_flops"]
    # every mixture built once, shared by the rows
    assert len(list((out / "mixtures").iterdir())) == len(config.mixtures)
    # one table: rows models, columns task counts
    assert "tiny-llama [UNTRAINED]" in printed and "tiny-t5 [UNTRAINED]" in printed
    assert f"{counts[1]} tasks" in printed and "no FT" in printed
    assert (out / "report" / "index.html").is_file() and "report:" in printed


def test_rerun_skips_finished_cells(tiny_grid, capsys):
    out, _ = tiny_grid
    results = sorted(out.glob("cells/*/*/eval/results.json"))
    before = {p: p.stat().st_mtime_ns for p in results}
    assert main(["scale", str(TINY), f"output_dir={out}", "--no-progress"]) == 0
    said = capsys.readouterr().err  # stage lines are status lines, on stderr
    assert said.count("done (skipped)") == len(results)
    assert {p: p.stat().st_mtime_ns for p in results} == before
    assert main(["scale", str(TINY), f"output_dir={out}", "--table"]) == 0
    assert "tiny-llama" in capsys.readouterr().out


def test_the_table_on_stdout_the_stage_lines_on_stderr(tiny_grid, capsys):
    """flanlab scale's result (the table, the report's path) is on stdout, its stage lines on stderr; --quiet
    silences the stage lines and leaves the result as it was."""
    out, printed = tiny_grid
    assert "▶" not in printed and "✓" not in printed  # the first run's stdout
    assert main(["scale", str(TINY), f"output_dir={out}", "--no-progress"]) == 0
    normal = capsys.readouterr()
    assert "✓" not in normal.out and "mixture" in normal.err and "done (skipped)" in normal.err
    assert main(["scale", str(TINY), f"output_dir={out}", "--no-progress", "--quiet"]) == 0
    quiet = capsys.readouterr()
    assert [line for line in quiet.err.splitlines() if line.startswith("[flanlab] ")
            and not line.startswith(("[flanlab] warning:", "[flanlab] error:"))] == []  # no info line
    assert quiet.out == normal.out and "no FT" in quiet.out and "report:" in quiet.out


def test_rerun_refuses_cells_finished_with_other_settings(tiny_grid, capsys):
    """A finished cell is skipped only for the settings it ran with: a changed eval limit or training override
    is refused, naming the cell, instead of reporting the old numbers under the new config."""
    out, _ = tiny_grid
    results = sorted(out.glob("cells/*/*/eval/results.json"))
    before = {p: p.stat().st_mtime_ns for p in results}
    for override in ("eval.limit=3", "train.overrides=[steps=3]"):
        assert main(["scale", str(TINY), f"output_dir={out}", override, "--no-progress"]) == 1
        err = capsys.readouterr().err
        assert "finished with other settings" in err and "cells" in err
    assert {p: p.stat().st_mtime_ns for p in results} == before


@pytest.mark.browser
def test_grid_report_renders_in_chromium(tiny_grid, tmp_path):
    out, _ = tiny_grid
    page = (out / "report" / "index.html").read_text()
    assert "untrained — random weights" in page and "tiny-t5" in page
    with chromium(tmp_path) as driver:
        driver.get((out / "report" / "index.html").as_uri())
        images = images_loaded(driver)
        shot = tmp_path / "grid.png"
        driver.save_screenshot(str(shot))
    from browser import check_png

    check_png(shot, min_colors=8)
    assert len(images) >= 4 and all(i["width"] > 0 for i in images), images


def test_format_table():
    grid = {"headline": "synthetic suite average", "cells": [
        {"model": "a", "num_tasks": 0, "score": 1.0, "untrained": False},
        {"model": "a", "num_tasks": 9, "score": 2.5, "untrained": False},
        {"model": "b", "num_tasks": 9, "score": None, "untrained": True},
    ]}
    lines = format_table(grid).splitlines()
    assert "no FT" in lines[1] and "9 tasks" in lines[1]
    assert lines[3].split() == ["a", "1.0", "2.5"]
    assert lines[4].split() == ["b", "[UNTRAINED]", "—", "—"]


def test_merge_results_recomputes_the_average():
    def part(bench, mode, norm, limit):
        return {"model": {"name": "m"}, "settings": {"limit": limit}, "timings": {"total_s": 1.0},
                "benchmarks": {bench: {mode: {"score": norm, "normalized": norm, "n": 1}}}}

    merged = merge_results([part("synthetic", "direct", 10.0, 20), part("synthetic", "cot", 30.0, 2)])
    assert set(merged["benchmarks"]["synthetic"]) == {"direct", "cot"}
    assert merged["settings"]["limit"] == {"synthetic/direct": 20, "synthetic/cot": 2}
    assert merged["timings"]["total_s"] == 2.0
    assert merged["normalized_average"]["value"] is None and "mmlu/direct" in merged["normalized_average"]["missing"]


def test_config_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [tiny-llama]\nmixtures: [x.yaml]\nmodles: []\n")
    with pytest.raises(ConfigError, match="Did you mean 'models'"):
        load_scale_config(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("models: []\nmixtures: [x.yaml]\n")
    with pytest.raises(ValueError, match="at least one model"):
        load_scale_config(empty)


def test_eval_parts_list_zero_shot_and_duplicates(tmp_path, tiny_llama):
    """`eval` as a list of parts: the synthetic suite zero-shot by generation, plus its zero-shot CoT, into one
    results.json; a benchmark and mode given by two parts is refused before anything runs."""
    from flanlab.scale import EvalPart, evaluate_cell

    parts = [EvalPart(suite="synthetic", modes=["direct"], limit=2, scoring="generate", shots=0),
             EvalPart(suite="synthetic", modes=["cot"], limit=1, zero_shot_cot=True)]
    results = evaluate_cell(tiny_llama, tmp_path / "eval", parts, None, {"model": "tiny-llama"}, progress=False)
    modes = results["benchmarks"]["synthetic"]
    assert set(modes) == {"direct", "zs_cot"}
    rows = [json.loads(line) for line in (tmp_path / "eval" / "samples.jsonl").read_text().splitlines()]
    direct = [r for r in rows if r["mode"] == "direct"]
    assert direct and all(r["scoring"] == "generate" for r in direct)
    assert all("Q:" not in r["prompt"].split("\n\n", 1)[1].rsplit("Q:", 1)[0] for r in direct)  # no exemplars
    assert sorted(p.name for p in (tmp_path / "eval" / "parts").iterdir()) == [
        "0-synthetic-limit-2-shots-0", "1-synthetic-limit-1-zs-cot"]
    with pytest.raises(ValueError, match="both evaluate synthetic in mode direct"):
        evaluate_cell(tiny_llama, tmp_path / "again", [parts[0], EvalPart(suite="synthetic", modes=["direct"])],
                      None, {}, progress=False)
    assert not (tmp_path / "again").exists()


def test_eval_list_in_yaml(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("models: [tiny-llama]\nmixtures: [configs/mixtures/demo.yaml]\n"
                    "eval:\n  - {suite: synthetic, modes: [direct], shots: 0}\n  - {benchmarks: [bbh], modes: [cot]}\n")
    config = load_scale_config(path)
    assert [p.shots for p in config.eval] == [0, None]
    path.write_text("models: [tiny-llama]\nmixtures: [x.yaml]\neval:\n  - {suite: synthetic, shots: -1}\n")
    with pytest.raises(ConfigError, match=r"eval\[0\]\.shots: must be >= 0"):
        load_scale_config(path)


def test_merged_settings_that_differ_between_parts_are_per_mode():
    """A cell evaluated in parts (zero-shot synthetic by generation, 5-shot MMLU ranked) records such settings per
    benchmark and mode; the first part's values would mislabel the others."""
    parts = [{"benchmarks": {"synthetic": {"direct": {}}}, "settings": {"shots": 0, "scoring": "generate", "seed": 0}},
             {"benchmarks": {"mmlu": {"direct": {}}}, "settings": {"shots": None, "scoring": "auto", "seed": 0}}]
    settings = merge_results(parts)["settings"]
    assert settings["shots"] == {"synthetic/direct": 0, "mmlu/direct": None}
    assert settings["scoring"] == {"synthetic/direct": "generate", "mmlu/direct": "auto"}
    assert settings["seed"] == 0  # the same in every part: one value


def test_rerun_refuses_an_edited_train_yaml_or_mixture_yaml(tmp_path, capsys):
    """A cell records the NAMES of its train and mixture YAML files: editing their content (lr, the mixture's
    size) must not let a rerun skip the finished cell, or reuse the old mixture for new cells."""
    train_yaml = tmp_path / "train.yaml"
    train_yaml.write_text("steps: 2\nbatch_size: 2\nlr: 1.0e-3\nmax_input_len: 256\nmax_target_len: 64\n"
                          "pack_len: 512\npack_target_len: 128\nsave_every: 0\nlog_every: 1\n")
    mixture_yaml = tmp_path / "mix.yaml"
    mixture_yaml.write_text((REPO / "configs" / "mixtures" / "tasks-9.yaml").read_text())
    grid = tmp_path / "grid.yaml"
    grid.write_text(f"models: [tiny-llama]\nmixtures: [{mixture_yaml}]\noutput_dir: {tmp_path / 'out'}\noffline: true\n"
                    "mixture_overrides: [size=60, validation_size=0, max_input_tokens=256, max_target_tokens=64, fewshot=1]\n"
                    f"train: {{config: {train_yaml}}}\neval: {{suite: synthetic, modes: [direct], limit: 1}}\nreport: false\n")
    assert main(["scale", str(grid), "--no-progress"]) == 0
    assert main(["scale", str(grid), "--no-progress"]) == 0  # unchanged: skipped
    assert "done (skipped)" in capsys.readouterr().err
    train_yaml.write_text(train_yaml.read_text().replace("lr: 1.0e-3", "lr: 2.0e-3"))
    assert main(["scale", str(grid), "--no-progress"]) == 1
    assert "lr (0.001 -> 0.002)" in capsys.readouterr().err
    train_yaml.write_text(train_yaml.read_text().replace("lr: 2.0e-3", "lr: 1.0e-3"))
    mixture_yaml.write_text(mixture_yaml.read_text().replace("seed: 0", "seed: 1"))
    assert main(["scale", str(grid), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "built from other mixture settings" in err and "seed (0 -> 1)" in err


def test_a_cell_without_recorded_settings_says_so(tmp_path):
    from flanlab.scale import eval_finished

    (tmp_path / "results.json").write_text("{}")
    (tmp_path / "run_info.json").write_text('{"model": "m"}')
    with pytest.raises(ValueError, match="older flanlab that did not record its settings"):
        eval_finished(tmp_path, {"eval": {}})
