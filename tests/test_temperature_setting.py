"""The temperature is self-consistency's: given with self_consistency 1 it would be ignored (greedy decoding, and
results.json's temperature null), so every way of building eval settings refuses it, naming the setting (and the
YAML file and field). Left unset it is 0.7 when K > 1, resolved in one place (EvalConfig.sampling_temperature)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flanlab.cli import main
from flanlab.config import ConfigError
from flanlab.eval import runner
from flanlab.eval.config import SC_TEMPERATURE, EvalConfig
from flanlab.scale import _cell_settings, eval_finished, load_scale_config

IGNORED = r"temperature 0\.7 with self_consistency 1 would be ignored"


def test_the_command_refuses_a_temperature_it_would_ignore(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["eval", "--model", "no-such-model", "--suite", "synthetic", "-o", str(out), "--temperature", "0.7"])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert len(err.splitlines()) == 1, err
    assert err.startswith("flanlab eval: error: temperature 0.7 with self_consistency 1 would be ignored"), err
    assert "set self_consistency > 1" in err
    assert not out.exists()  # refused before any model or folder


def test_evaluate_refuses_it_before_loading_a_model(tmp_path):
    with pytest.raises(ValueError, match=r"evaluate\(\): " + IGNORED):
        runner.evaluate("no-such-model", suite="synthetic", temperature=0.7, out_dir=tmp_path / "o")
    with pytest.raises(ValueError, match=IGNORED):
        runner.evaluate("no-such-model", EvalConfig(suite="synthetic", temperature=0.7), out_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_accepted_settings_and_the_one_resolution():
    """Greedy (temperature unset or 0) with K = 1; K > 1 with a temperature, or without one (0.7). What runs and
    what is recorded is the resolved temperature."""
    for config in (EvalConfig(suite="synthetic"), EvalConfig(suite="synthetic", temperature=0)):
        config.check()
        assert config.sampling_temperature() is None
        assert config.settings()["temperature"] is None and config.recorded()["temperature"] is None
    unset = EvalConfig(suite="synthetic", self_consistency=5)
    unset.check()
    assert unset.sampling_temperature() == SC_TEMPERATURE == 0.7
    assert unset.settings()["temperature"] == 0.7 and unset.recorded()["temperature"] == 0.7
    given = EvalConfig(suite="synthetic", self_consistency=5, temperature=0.3)
    given.check()
    assert given.sampling_temperature() == 0.3 and given.settings()["temperature"] == 0.3
    with pytest.raises(ValueError, match=r"flanlab eval: self_consistency 5 with temperature 0 .*identical greedy"):
        EvalConfig(suite="synthetic", self_consistency=5, temperature=0).check("flanlab eval")


def test_self_consistency_without_the_cot_mode_is_refused(tmp_path, capsys):
    """--modes direct --self-consistency 5 samples nothing (direct answers are greedy or ranked): refused in one line
    rather than run greedy under a recorded K of 5, by the command, evaluate() and a scale YAML's part alike."""
    says = r"self_consistency 5 samples the CoT modes only, and modes \['direct'\] run none"
    out = tmp_path / "out"
    code = main(["eval", "--model", "no-such-model", "--suite", "synthetic", "-o", str(out), "--modes", "direct",
                 "--self-consistency", "5"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "add cot to modes" in err, err
    assert err.startswith("flanlab eval: error: self_consistency 5"), err  # the command named once, not twice
    assert not out.exists()
    with pytest.raises(ValueError, match=r"evaluate\(\): " + says):
        runner.evaluate("no-such-model", suite="synthetic", modes=["direct"], self_consistency=5, out_dir=out)
    path = tmp_path / "grid.yaml"
    path.write_text("models: [tiny-llama]\nmixtures: [x.yaml]\neval:\n  - {suite: synthetic, modes: [cot], "
                    "self_consistency: 5}\n  - {benchmarks: [bbh], modes: [direct], self_consistency: 5}\n")
    with pytest.raises(ConfigError, match=rf"{path}: eval\[1\]: {says}"):
        load_scale_config(path)
    EvalConfig(suite="synthetic", modes=["direct", "cot"], self_consistency=5).check()  # K samples the cot mode


def test_a_scale_yaml_names_the_file_and_part(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("models: [tiny-llama]\nmixtures: [x.yaml]\neval:\n  - {suite: synthetic}\n"
                    "  - {benchmarks: [bbh], temperature: 0.7}\n")
    with pytest.raises(ConfigError, match=rf"{path}: eval\[1\]: {IGNORED}"):
        load_scale_config(path)
    path.write_text("models: [tiny-llama]\nmixtures: [x.yaml]\neval: {suite: synthetic, self_consistency: 3}\n")
    assert load_scale_config(path).eval.for_mode("cot").sampling_temperature() == 0.7


def test_the_demo_config_names_the_part():
    from flanlab.demo import load_demo_config

    with pytest.raises(ConfigError, match=rf"demo config: real: {IGNORED}"):
        load_demo_config(None, ["real.temperature=0.7"])
    assert load_demo_config(None, ["real.temperature=0.7", "real.self_consistency=3"]).real.temperature == 0.7


def test_training_evaluates_at_no_temperature():
    from flanlab.train.config import TrainConfig

    config = TrainConfig(model="m", data="d", output_dir="o", eval_suite="synthetic").eval_config()
    config.check()
    assert config.temperature is None and config.sampling_temperature() is None


def _finished(folder: Path, settings) -> Path:
    folder.mkdir(parents=True)
    (folder / "results.json").write_text("{}")
    (folder / "run_info.json").write_text(json.dumps({"settings": settings}))
    return folder


def test_cells_recorded_at_the_old_default_are_still_recognised(tmp_path):
    """Cells finished before the temperature became optional recorded 0.7 (the old default), sampled or not: a
    greedy one (K = 1) is the same run as today's null, a K > 1 one at 0.7 the same as today's unset temperature;
    one recorded at another temperature is refused for an unset one."""
    path = tmp_path / "grid.yaml"
    part = {"suite": "synthetic", "modes": ["direct", "cot"], "limit": 6}

    def settings(**options):
        path.write_text("models: [tiny-llama]\nmixtures: [x.yaml]\neval:\n  - " + json.dumps({**part, **options}) + "\n")
        return _cell_settings(load_scale_config(path), None)

    greedy = settings()
    assert greedy["eval"][0]["temperature"] is None
    old_greedy = {**greedy["eval"][0], "temperature": 0.7, "self_consistency": 1}
    assert eval_finished(_finished(tmp_path / "g" / "eval", {"eval": [old_greedy]}), greedy)
    sampled = settings(self_consistency=3)
    old_sampled = {**sampled["eval"][0], "temperature": 0.7}
    assert eval_finished(_finished(tmp_path / "s" / "eval", {"eval": [old_sampled]}), sampled)
    with pytest.raises(ValueError, match=r"finished with other settings.*temperature"):
        eval_finished(_finished(tmp_path / "t" / "eval", {"eval": [{**old_sampled, "temperature": 0.5}]}), sampled)
