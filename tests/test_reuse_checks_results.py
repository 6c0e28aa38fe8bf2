"""A finished scale cell or demo stage is reused only when its results.json was computed as this run would compute
it: the same model, the benchmark versions this flanlab scores, the same flanlab version and the engine's code
defaults (flanlab.scale.SameEvaluation, the one check of both). Before, only run_info.json's eval settings were
compared: a cell scored under an older benchmark version (MMLU's scoring changed in version 3) was reused beside
cells scored under the new one, and the demo's "before" stage was reused for another model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import flanlab
from flanlab.demo import _eval_settings, _evaluation, load_demo_config
from flanlab.eval.benchmarks import BENCHMARKS
from flanlab.eval.engine import REVISION
from flanlab.scale import _cell_settings, base_cell, load_scale_config

VERSION = BENCHMARKS["synthetic"].version
ENGINE = {"batch_size": 8, "prefix_cache": True, "shared_attention": False, "draft_tokens": 0, "draft_ngrams": [],
          "engine_revision": REVISION}


def _results(versions=None, flanlab_version=flanlab.__version__, engine=ENGINE) -> dict:
    return {"settings": {"benchmark_versions": versions or {"synthetic": VERSION}, "engine": engine},
            "provenance": {"flanlab_version": flanlab_version}}


def _finish(folder: Path, model: str, settings: dict, results: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run_info.json").write_text(json.dumps({"model": model, "settings": settings}))
    (folder / "results.json").write_text(json.dumps(results))


def _grid(tmp_path: Path):
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "grid.yaml"
    path.write_text(f"models: [tiny-llama]\nmixtures: [x.yaml]\noutput_dir: {tmp_path / 'out'}\n"
                    "eval: {suite: synthetic, limit: 2, modes: [direct]}\n")
    return load_scale_config(path)


def _base_stage(tmp_path: Path, results: dict, model: str = "tiny-llama"):
    config = _grid(tmp_path)
    stage = base_cell(config, tmp_path / "out", "tiny-llama", None, progress=False)
    _finish(stage.folder, model, _cell_settings(config, None), results)
    return stage


def test_a_cell_computed_as_this_run_would_is_reused(tmp_path):
    assert _base_stage(tmp_path, _results()).finished()
    assert _base_stage(tmp_path / "old", {}).finished()  # an older results.json records none of it: not compared


@pytest.mark.parametrize("results, says", [
    (_results(versions={"synthetic": "0"}), f"synthetic version ('0' -> '{VERSION}')"),
    (_results(flanlab_version="0.0.1"), f"flanlab version ('0.0.1' -> '{flanlab.__version__}')"),
])
def test_a_cell_computed_otherwise_is_refused(tmp_path, results, says):
    stage = _base_stage(tmp_path, results)
    with pytest.raises(ValueError) as refused:
        stage.finished()
    line = str(refused.value)
    assert "\n" not in line and says in line and "evaluated otherwise than this run would" in line
    assert str(stage.folder.parent) in line and "remove" in line


def test_engine_code_defaults_are_compared(tmp_path):
    from flanlab.eval import speculative

    drafting = {**ENGINE, "shared_attention": True, "draft_tokens": speculative.DRAFT_TOKENS,
                "draft_ngrams": list(speculative.NGRAMS)}
    assert _base_stage(tmp_path / "same", _results(engine=drafting)).finished()
    merged = {"synthetic/direct": {**drafting, "draft_tokens": speculative.DRAFT_TOKENS + 2}}  # a merged cell's record
    with pytest.raises(ValueError, match=rf"engine draft_tokens \({speculative.DRAFT_TOKENS + 2} -> "
                                         rf"{speculative.DRAFT_TOKENS}\)"):
        _base_stage(tmp_path / "other", _results(engine=merged)).finished()


@pytest.mark.parametrize("revision, says", [
    (REVISION, None),
    (REVISION - 1, f"engine revision ({REVISION - 1} -> {REVISION})"),
    (None, f"engine revision ('not recorded' -> {REVISION})"),
])
def test_a_finished_cell_of_other_engine_code_is_refused(tmp_path, revision, says):
    record = {k: v for k, v in ENGINE.items() if k != "engine_revision"} if revision is None else {**ENGINE, "engine_revision": revision}
    stage = _base_stage(tmp_path, _results(engine=record))
    if says is None:
        assert stage.finished()
        return
    with pytest.raises(ValueError) as refused:
        stage.finished()
    assert says in str(refused.value) and "evaluated otherwise than this run would" in str(refused.value)
    merged = {"synthetic/direct": {**ENGINE, "engine_revision": REVISION}, "synthetic/cot": record}
    with pytest.raises(ValueError, match="engine revision"):  # one record of a merged cell is enough
        _base_stage(tmp_path / "merged", _results(engine=merged)).finished()


def test_a_demo_stage_of_another_model_is_refused(tmp_path):
    config = load_demo_config(None, ["synthetic.limit=1", "model=tiny-llama"])
    info = {"model": "tiny-llama", "settings": _eval_settings(config, None)}
    stage = _evaluation("2/5 before", "evaluate", "tiny-llama", tmp_path / "before", config, None, info, False)
    _finish(stage.folder, "tiny-t5", info["settings"], _results())  # the demo ran before with model=tiny-t5
    with pytest.raises(ValueError, match=r"model \('tiny-t5' -> 'tiny-llama'\)"):
        stage.finished()
    _finish(stage.folder, "tiny-llama", info["settings"], _results())
    assert stage.finished()


def test_a_cell_that_read_other_data_files_is_refused(tmp_path):
    """provenance.benchmark_data: the cell's benchmark files had other contents than this run's data dir holds."""
    from flanlab.eval.results import provenance
    from flanlab.scale import EvalPart, eval_finished

    data = tmp_path / "data"
    (data / "bbh" / "bbh").mkdir(parents=True)
    navigate = data / "bbh" / "bbh" / "navigate.json"
    navigate.write_text('{"examples": []}')
    part = EvalPart(suite=None, benchmarks=["bbh"], modes=["direct"], limit=2)
    settings = {"eval": part.recorded()}
    results = {**_results(), "provenance": provenance([BENCHMARKS["bbh"]], data)}
    _finish(tmp_path / "cell", "m", settings, results)
    assert eval_finished(tmp_path / "cell", settings, model="m", parts=[part], data_dir=data)
    navigate.write_text('{"examples": [{"input": "x", "target": "y"}]}')  # the data dir now holds another file
    with pytest.raises(ValueError, match=r"bbh data files \(other contents in "):
        eval_finished(tmp_path / "cell", settings, model="m", parts=[part], data_dir=data)
