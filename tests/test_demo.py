"""`flanlab demo` smoke test with the untrained tiny model in place of SmolLM2 (the model is a parameter):
every stage runs and is timed, the report has before/after, and a rerun skips the finished stages.
The real demo (SmolLM2, ~15 minutes) is not run in the tests."""

from __future__ import annotations

import json

from flanlab.cli import main
from flanlab.demo import load_demo_config

SMOKE = [
    "--model", "tiny-llama", "--no-progress",
    "mixture_overrides=[size=200, validation_size=0, max_input_tokens=256, max_target_tokens=64, fewshot=1]",
    "train.overrides=[steps=2, batch_size=2, max_input_len=256, max_target_len=64, pack_len=512, save_every=0]",
    "synthetic.modes=[direct]", "synthetic.limit=1",
]


def test_demo_smoke_with_tiny_model(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FLANLAB_DATA_DIR", raising=False)  # the embedded defaults: offline
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out)] + SMOKE) == 0
    captured = capsys.readouterr()
    printed, said = captured.out, captured.err  # the result on stdout, the stage lines on stderr
    for stage in ("1/5 mixture", "2/5 before", "3/5 train", "4/5 after", "5/5 report"):
        assert f"[flanlab] ✓ {stage}" in said and f"✓ {stage}" not in printed
    assert said.count(" s)\n") >= 5  # every stage's time
    assert "significant changes after fine-tuning" in printed  # the before/after summary
    last = printed.strip().splitlines()[-1]
    assert last.startswith("[flanlab] report: ") and last.endswith("index.html")
    index = out / "report" / "index.html"
    assert str(index.resolve()) in last and (out / "report" / "report.md").is_file()

    page = index.read_text()
    assert "tiny-llama · before fine-tuning" in page and "tiny-llama · after fine-tuning" in page
    assert "untrained — random weights" in page and "2 steps" in page and "FLOPs" in page
    assert page.count("data:image/png;base64,") >= 3  # tasks, size, benchmarks, loss (plots need no network)
    after = json.loads((out / "after" / "run_info.json").read_text())
    assert after["num_tasks"] == json.loads((out / "mixture" / "stats.json").read_text())["num_tasks"] > 0
    stages = json.loads((out / "stages.json").read_text())["stages_s"]
    assert len(stages) == 5

    # resumable: a rerun skips every finished stage (the report is rewritten)
    assert main(["demo", "-o", str(out)] + SMOKE) == 0
    said = capsys.readouterr().err
    for stage in ("2/5 before", "3/5 train", "4/5 after"):
        assert f"✓ {stage}: done (skipped)" in said
    assert "1/5 mixture: built before (reused)" in said

    # --quiet: no stage line on either stream; the result on stdout unchanged
    assert main(["demo", "-o", str(out)] + SMOKE + ["--quiet"]) == 0
    quiet = capsys.readouterr()
    assert "✓" not in quiet.err and "▶" not in quiet.err and "✓" not in quiet.out and "▶" not in quiet.out
    assert "significant changes after fine-tuning" in quiet.out
    assert quiet.out.strip().splitlines()[-1] == last


def test_demo_config_overrides_keep_nested_defaults():
    config = load_demo_config(None, ["real.limit=5", "synthetic.mode_limits.cot=1", "model=tiny-t5"])
    assert config.real.limit == 5 and config.real.suite == "flan-heldout"
    assert config.synthetic.mode_limits == {"cot": 1} and config.synthetic.limit == 20
    assert config.model == "tiny-t5" and config.train.config == "configs/train/smollm2-demo.yaml"
