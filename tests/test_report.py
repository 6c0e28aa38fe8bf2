"""The report from hand-made run folders (results.json, run_info.json, summary.json, log.jsonl) following the
schema in flanlab/eval/spec.py: content, deltas, escaping, Markdown twin, plots, and the page in Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from browser import check_png, chromium, images_loaded, serve_dir

from flanlab.cli import main
from flanlab.report import write_report
from flanlab.report.load import load_runs
from flanlab.report.markdown import md
from flanlab.report.tables import headline

XSS = "<script>alert(1)</script>"


def _bench(score: float, chance: float, subtasks: dict[str, float], n: int = 10, metric: str = "accuracy") -> dict:
    return {
        "score": score, "metric": metric, "n": n * len(subtasks), "scoring": "rank", "chance": chance,
        "normalized": 100 * (score - chance) / (100 - chance),
        "subtasks": {k: {"score": v, "n": n, "chance": chance, "metrics": {metric: v}} for k, v in subtasks.items()},
    }


def _results(model: str, params: int, untrained: bool, scores: dict[str, float], paper: bool = False) -> dict:
    """scores: 'direct'/'cot' -> synthetic score (or paper-benchmark scores when paper=True)."""
    benchmarks = {
        "synthetic": {
            mode: _bench(s, 25.0, {"boolean_expressions": s + 5, "word_sorting": s - 5}) for mode, s in scores.items()
        }
    }
    norm = {"value": None, "components": {}, "missing": ["mmlu/direct", "mmlu/cot", "bbh/direct", "bbh/cot", "tydiqa", "mgsm"]}
    if paper:
        benchmarks["mmlu"] = {m: _bench(s, 25.0, {"abstract_algebra": s, "anatomy": s + 2}) for m, s in scores.items()}
        norm = {"value": scores["direct"] / 2, "components": {"mmlu/direct": scores["direct"]}, "missing": []}
    return {
        "schema": "flanlab.results/1",
        "model": {"name": model, "kind": "causal", "parameters": params, "untrained": untrained},
        "settings": {"limit": 10, "scoring": "rank", "suite": "synthetic"},
        "benchmarks": benchmarks,
        "normalized_average": norm,
        "provenance": {"flanlab_version": "0.1.0", "git_revision": None, "data_files": {}, "created": "2025-01-01T00:00:00Z"},
        "timings": {"total_s": 12.5},
    }


def _write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def make_grid(root: Path, paper: bool = False) -> Path:
    """Two models (one untrained) x {0, 9, 89} tasks, laid out as `flanlab scale` does."""
    models = {"model-a": (1_000_000, True, 30.0), "model-b<i>": (10_000_000, False, 40.0)}
    for model, (params, untrained, base) in models.items():
        slug = model.replace("<", "").replace(">", "")
        for n in (0, 9, 89):
            cell = root / "cells" / slug / (f"tasks-{n}" if n else "base")
            score = base + (0 if n == 0 else 5 if n == 9 else 12)
            _write(cell / "eval" / "results.json",
                   _results(model if n == 0 else str(cell / "train" / "model"), params, untrained,
                            {"direct": score, "cot": score - 3}, paper=paper))
            info = {"model": model, "num_tasks": n, "mixture": f"tasks-{n}" if n else None,
                    "train_dir": "../train" if n else None}
            _write(cell / "eval" / "run_info.json", info)
            samples = [{"benchmark": "synthetic", "mode": "direct", "subtask": "boolean_expressions", "item_id": "0",
                        "prompt": "Q: True and False?\nA:", "output": f"False {XSS}", "extracted": "False",
                        "target": "False", "correct": True}]
            (cell / "eval" / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
            if n:
                _write(cell / "train" / "summary.json", {
                    "model": model, "untrained": untrained, "steps": 20, "tokens": 40960, "train_flops": 6 * params * 40960,
                    "wall_time_s": 33.0, "final_loss": 1.25, "first_loss": 3.5})
                (cell / "train" / "log.jsonl").write_text("".join(
                    json.dumps({"step": s, "loss": 3.5 - s * 0.1, "lr": 1e-4, "tokens": 2048 * s, "tokens_per_s": 1000.0,
                                "elapsed_s": s * 1.6}) + "\n" for s in range(1, 21)))
    return root


def test_report_content_escaping_markdown_and_plots(tmp_path):
    runs_dir = make_grid(tmp_path / "grid")
    index = write_report([runs_dir], tmp_path / "report")
    page = index.read_text()

    # results, headline and deltas against the un-fine-tuned model of the same row
    assert "synthetic suite average" in page and "not the paper" in page.lower()
    assert "model-a · 89 tasks" in page and "model-a · not fine-tuned" in page
    assert "(+12.0)" in page and "(+5.0)" in page  # synthetic/direct score deltas
    assert "boolean_expressions" in page and "word_sorting" in page  # per-subtask breakdown
    # model size and training budget stated
    assert "1.0M parameters" in page and "20 steps" in page and "40,960 tokens" in page and "FLOPs" in page
    assert "33.0 s wall time" in page
    # untrained models are labelled
    assert "untrained — random weights" in page
    # all run text escaped: the sample output and the model name with markup
    assert XSS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "model-b<i>" not in page and "model-b&lt;i&gt;" in page
    # plots: written beside the page and inlined in it
    for stem in ("tasks", "size", "benchmarks", "loss"):
        check_png(tmp_path / "report" / "plots" / f"{stem}.png")
    assert page.count('src="data:image/png;base64,') == 4
    assert "<script" not in page.replace("&lt;script", "")

    twin = (tmp_path / "report" / "report.md").read_text()
    assert "| synthetic | direct |" in twin and "![tasks plot](plots/tasks.png)" in twin
    assert XSS not in twin and "&lt;script&gt;alert\\(1\\)&lt;/script&gt;" in twin
    assert "untrained — random weights" in twin and "+12.0" in twin


def test_headline_is_the_papers_average_when_present(tmp_path):
    runs = load_runs([make_grid(tmp_path / "grid", paper=True)])
    head = headline(runs)
    assert head.name == "normalized average"
    by_label = {r.label: head.values[r.label] for r in runs}
    assert by_label["model-b<i> · not fine-tuned"] == 20.0 and by_label["model-b<i> · 89 tasks"] == 26.0
    runs = load_runs([make_grid(tmp_path / "grid2")])
    assert headline(runs).name == "synthetic suite average"


def test_inferred_training_run_without_run_info(tmp_path):
    """An eval of <train_dir>/model finds the training summary and loss log without run_info.json."""
    train = tmp_path / "train"
    _write(train / "summary.json", {"model": "tiny-llama", "untrained": True, "steps": 3, "tokens": 300,
                                    "train_flops": 1.0e9, "wall_time_s": 2.0, "final_loss": 2.0, "first_loss": 3.0})
    (train / "log.jsonl").write_text('{"step": 1, "loss": 3.0}\n{"step": 3, "loss": 2.0}\n')
    (train / "model").mkdir()
    _write(tmp_path / "after" / "results.json", _results(str(train / "model"), 1000, True, {"direct": 50.0}))
    _write(tmp_path / "before" / "results.json", _results("tiny-llama", 1000, True, {"direct": 40.0}))
    runs = load_runs([tmp_path / "before", tmp_path / "after"])
    after = next(r for r in runs if r.fine_tuned)
    assert after.model == "tiny-llama" and after.train.summary["steps"] == 3 and len(after.train.log) == 2
    index = write_report([tmp_path / "before", tmp_path / "after"], tmp_path / "report")
    assert "(+10.0)" in index.read_text()
    assert (tmp_path / "report" / "plots" / "loss.png").is_file()


def test_cli_and_bad_input(tmp_path, capsys):
    runs_dir = make_grid(tmp_path / "grid")
    assert main(["report", str(runs_dir), "-o", str(tmp_path / "out")]) == 0
    assert str((tmp_path / "out" / "index.html").resolve()) in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "-o", str(tmp_path / "out2")]) == 1
    assert "no results.json" in capsys.readouterr().err
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.json").write_text('{"model": {}}')
    assert main(["report", str(tmp_path / "bad"), "-o", str(tmp_path / "out3")]) == 1
    err = capsys.readouterr().err
    assert "results.json" in err and "benchmarks" in err


def test_md_escape_neutralises_links_and_html():
    assert md("[x](javascript:alert(1))") == "\\[x\\]\\(javascript:alert\\(1\\)\\)"
    assert md("a|b\n<b>") == "a\\|b ⏎ &lt;b&gt;"


def render_in_browser(report_dir: Path, tmp_path: Path) -> dict:
    """Open index.html through a loopback server; screenshot; return the images and the page text."""
    with serve_dir(report_dir) as url, chromium(tmp_path) as driver:
        driver.get(url + "index.html")
        shot = tmp_path / "report.png"
        driver.save_screenshot(str(shot))
        check_png(shot, min_colors=8)
        images = images_loaded(driver)
        driver.execute_script("document.querySelectorAll('details').forEach(d => d.open = true);")
        text = driver.execute_script("return document.body.innerText;")
        scripts = driver.execute_script("return document.scripts.length;")
    return {"images": images, "text": text, "scripts": scripts}


@pytest.mark.browser
def test_report_renders_in_chromium(tmp_path):
    make_grid(tmp_path / "grid")
    index = write_report([tmp_path / "grid"], tmp_path / "report")
    seen = render_in_browser(index.parent, tmp_path)
    assert len(seen["images"]) == 4
    assert all(i["complete"] and i["width"] > 0 and i["height"] > 0 for i in seen["images"]), seen["images"]
    assert seen["scripts"] == 0  # the sample's <script> did not become an element...
    assert XSS in seen["text"]  # ...it is shown to the reader as text
    assert "synthetic suite average" in seen["text"] and "untrained — random weights" in seen["text"]


@pytest.mark.browser
def test_report_page_opens_offline_from_file(tmp_path):
    """file:// with nothing beside the page: the plots are inlined, so they still load."""
    make_grid(tmp_path / "grid")
    index = write_report([tmp_path / "grid"], tmp_path / "report")
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "index.html").write_bytes(index.read_bytes())
    with chromium(tmp_path) as driver:
        driver.get(alone.joinpath("index.html").as_uri())
        images = images_loaded(driver)
        driver.execute_script("document.querySelectorAll('details').forEach(d => d.open = true);")
        text = driver.execute_script("return document.body.innerText;")
        shot = tmp_path / "alone.png"
        driver.save_screenshot(str(shot))
    check_png(shot, min_colors=8)
    assert images and all(i["width"] > 0 for i in images), images
    assert XSS in text  # shown to the reader as text


def test_synthetic_average_shown_beside_the_papers(tmp_path):
    index = write_report([make_grid(tmp_path / "grid", paper=True)], tmp_path / "report")
    page = index.read_text()
    assert "<th>normalized average</th>" in page and "<th>synthetic suite average</th>" in page
    assert "| synthetic suite average |" in (tmp_path / "report" / "report.md").read_text()


def test_mixture_num_tasks_counts_tasks_that_gave_examples(tmp_path):
    """A planned task whose records were all pruned (too long) is not counted as a fine-tuning task."""
    import json

    from flanlab.report.load import mixture_num_tasks

    stats = {"num_tasks": 3, "tasks": {"a": {"examples": 5}, "b": {"examples": 0}, "c": {"examples": 1}}}
    (tmp_path / "stats.json").write_text(json.dumps(stats))
    assert mixture_num_tasks(tmp_path) == 2
    (tmp_path / "stats.json").write_text(json.dumps({"num_tasks": 4}))  # older layouts: as recorded
    assert mixture_num_tasks(tmp_path) == 4


def test_comparisons_include_the_next_smaller_task_count(tmp_path):
    """Claim 2 of the paper (more tasks help) needs cell against cell: each fine-tuned run is also paired with the
    same model fine-tuned on the next smaller number of tasks, in the table, the page and its Markdown twin."""
    from flanlab.report.load import load_runs
    from flanlab.report.tables import comparisons, headline

    runs = load_runs([make_grid(tmp_path / "grid")])
    pairs = {(r["run"], r["baseline"]) for r in comparisons(runs, headline(runs))}
    assert ("model-a · 89 tasks", "model-a · 9 tasks") in pairs and ("model-a · 9 tasks", "model-a · not fine-tuned") in pairs
    assert ("model-a · 9 tasks", "model-a · 89 tasks") not in pairs
    assert not any(a.startswith("model-a") and b.startswith("model-b") for a, b in pairs)
    write_report([tmp_path / "grid"], tmp_path / "report")
    twin = (tmp_path / "report" / "report.md").read_text()
    assert "| model-a · 89 tasks | model-a · 9 tasks | synthetic suite average |" in twin
    assert "paper&#x27;s" in twin or "paper's" not in twin  # an entity stays whole (no backslash inside it)
    assert "&\\#x27;" not in twin


def test_notes_go_into_both_pages(tmp_path):
    """`flanlab report --notes FILE.md`: the author's Markdown as written in report.md, converted in index.html."""
    from flanlab.cli import main

    make_grid(tmp_path / "grid")
    notes = tmp_path / "notes.md"
    notes.write_text("## How this was made\n\n| cell | wall time |\n|---|---|\n| base | 12 s |\n\n`flanlab scale x.yaml`\n")
    assert main(["report", str(tmp_path / "grid"), "-o", str(tmp_path / "out"), "--notes", str(notes)]) == 0
    twin = (tmp_path / "out" / "report.md").read_text()
    assert "## How this was made\n\n| cell | wall time |" in twin
    page = (tmp_path / "out" / "index.html").read_text()
    assert "<h2>How this was made</h2>" in page and "<td>12 s</td>" in page and "<code>flanlab scale x.yaml</code>" in page
    assert main(["report", str(tmp_path / "grid"), "-o", str(tmp_path / "out2"), "--notes", str(tmp_path / "nope.md")]) != 0


def test_pieces_of_an_unfinished_cell_are_not_runs(tmp_path):
    """A scale cell evaluated in several parts writes eval/parts/<n>/results.json first and eval/results.json last:
    until then the cell is unfinished, and its pieces must not appear in a report as runs of their own."""
    from flanlab.report.load import find_results

    make_grid(tmp_path / "grid")
    cell = tmp_path / "grid" / "cells" / "model-a" / "tasks-9" / "eval"
    piece = cell / "parts" / "0-synthetic-limit-30" / "results.json"
    piece.parent.mkdir(parents=True)
    piece.write_text((cell / "results.json").read_text())
    assert piece.resolve() not in find_results([tmp_path / "grid"])  # the finished cell's merged results.json covers it
    (cell / "results.json").unlink()
    found = find_results([tmp_path / "grid"])
    assert piece.resolve() not in found and len(found) == 5



def test_mixture_num_tasks_counts_a_task_of_two_submixtures_once(tmp_path):
    """An older stats.json (num_tasks: the planned tasks) with a task serving two submixtures (an entry for each,
    "submixture:task" for the second) and a task that gave nothing: 2 tasks, not 3 or 4."""
    from flanlab.report.load import mixture_num_tasks

    stats = {"num_tasks": 3, "tasks": {"a": {"task": "a", "examples": 5}, "s2:a": {"task": "a", "examples": 2},
                                       "b": {"task": "b", "examples": 0}, "c": {"task": "c", "examples": 1}}}
    (tmp_path / "stats.json").write_text(json.dumps(stats))
    assert mixture_num_tasks(tmp_path) == 2
    (tmp_path / "stats.json").write_text(json.dumps({**stats, "num_tasks": 2, "planned_tasks": 3}))
    assert mixture_num_tasks(tmp_path) == 2


def test_inputs_the_context_cut_are_counted_on_both_pages(tmp_path):
    """A results.json counting prompts_cut (inputs longer than the model's context, which lost their first tokens)
    shows "k cut" beside n in the results table of index.html and report.md, with the note saying what it means;
    a run without cuts shows neither."""
    make_grid(tmp_path / "grid")
    write_report([tmp_path / "grid"], tmp_path / "plain")
    assert "lost their first tokens" not in (tmp_path / "plain" / "report.md").read_text()
    cell = next((tmp_path / "grid").rglob("results.json"))
    results = json.loads(cell.read_text())
    results["benchmarks"]["synthetic"]["direct"]["prompts_cut"] = 3
    cell.write_text(json.dumps(results))
    write_report([tmp_path / "grid"], tmp_path / "out")
    twin = (tmp_path / "out" / "report.md").read_text()
    assert "n=20, 3 cut" in twin and "lost their first tokens" in twin
    page = (tmp_path / "out" / "index.html").read_text()
    assert ">3 cut</span>" in page and "lost their first tokens" in page
