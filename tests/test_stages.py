"""Stage, skip and resume (flanlab/stages.py), the one rule of `flanlab demo` and `flanlab scale`, and the data dir
passed down from the entry points instead of read from the environment by the library (issue 14)."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import MutableMapping
from pathlib import Path

import pytest

from flanlab.stages import SameSettings, Stage, Stages, differences

REPO = Path(__file__).resolve().parents[1]
FLANLAB = REPO / "flanlab"


def _stage(folder: Path, wanted: dict, ran: list) -> Stage:
    """A stage that records `wanted` in folder/info.json and then writes its completion record, done.json."""
    def work():
        folder.mkdir(parents=True, exist_ok=True)
        ran.append(folder.name)
        (folder / "info.json").write_text(json.dumps({"settings": wanted}))
        (folder / "done.json").write_text("{}")

    check = SameSettings(folder / "info.json", "settings", wanted, redo=folder)
    return Stage("1/1 thing", "make it", folder, "done.json", check, work)


def test_a_stage_runs_then_is_skipped_for_the_same_settings_and_refused_for_others(tmp_path, capsys):
    stages, ran = Stages(), []
    assert stages.run(_stage(tmp_path / "a", {"limit": 1, "eval": [{"seed": 0}]}, ran)) is True
    assert ran == ["a"] and "1/1 thing: make it" in stages.times
    assert stages.run(_stage(tmp_path / "a", {"limit": 1, "eval": [{"seed": 0}]}, ran)) is False
    said = capsys.readouterr()  # status lines: on stderr (flanlab.log), none on stdout
    assert said.out == "" and said.err.splitlines()[-1] == "[flanlab] ✓ 1/1 thing: done (skipped)"
    assert re.fullmatch(r"\[flanlab\] ▶ 1/1 thing: make it\n\[flanlab\] ✓ 1/1 thing: make it \(\d+\.\d s\)\n.*",
                        said.err, flags=re.S)
    assert ran == ["a"]
    with pytest.raises(ValueError) as refused:
        stages.run(_stage(tmp_path / "a", {"limit": 2, "eval": [{"seed": 1}]}, ran))
    message = str(refused.value)
    assert message.startswith(f"{tmp_path / 'a'}: finished with other settings")
    assert "limit (1 -> 2)" in message and "eval[0].seed (0 -> 1)" in message and ran == ["a"]


def test_quiet_silences_the_stage_lines(tmp_path, capsys):
    """The stage lines are status lines (info): --quiet (log.setup("quiet")) leaves neither stream any of them."""
    from flanlab import log

    log.setup("quiet")
    try:
        stages, ran = Stages(), []
        assert stages.run(_stage(tmp_path / "a", {"limit": 1}, ran))  # run
        assert not stages.run(_stage(tmp_path / "a", {"limit": 1}, ran))  # skipped
    finally:
        log.setup("normal")
    assert ran == ["a"] and capsys.readouterr() == ("", "")


def test_a_killed_stage_runs_again(tmp_path):
    """A stage killed before its completion record was written is not finished: it runs again (and what it
    resumes from is its own business), whatever settings its partial files hold."""
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "info.json").write_text(json.dumps({"settings": {"limit": 9}}))  # written first, then killed
    ran: list = []
    assert Stages().run(_stage(folder, {"limit": 1}, ran)) is True and ran == ["a"]


def test_a_finished_stage_is_refused_when_a_stage_it_reads_from_ran_again(tmp_path):
    """The demo's after-evaluation reads the training run: once that was redone (its folder removed), the finished
    evaluation describes the model that was replaced and is refused, not reported."""
    stages, ran = Stages(), []
    train, after = _stage(tmp_path / "train", {"lr": 1}, ran), _stage(tmp_path / "after", {"limit": 1}, ran)
    after = Stage("after", after.action, after.folder, after.done, after.check, after.work, inputs=("1/1 thing",))
    assert stages.run(train) and stages.run(after)
    again = Stages()
    assert not again.run(train) and not again.run(after)  # nothing redone: both skipped
    for name in ("done.json", "info.json"):
        (tmp_path / "train" / name).unlink()
    again = Stages()
    assert again.run(train)
    with pytest.raises(ValueError, match=r"after: finished on the output of 1/1 thing .*remove .*after"):
        again.run(after)


def test_a_stage_that_recorded_no_settings_is_refused(tmp_path):
    (tmp_path / "done.json").write_text("{}")
    with pytest.raises(ValueError, match="did not record its settings"):
        _stage(tmp_path, {"limit": 1}, []).finished()


def test_differences_name_each_setting_by_its_path():
    assert differences({"a": 1, "b": {"c": [1, 2]}}, {"a": 1, "b": {"c": [1, 2]}}) == []
    assert differences({"a": 1, "b": {"c": [1, 2]}}, {"a": 2, "b": {"c": [1, 3]}, "d": None}) == [
        "a (1 -> 2)", "b.c[1] (2 -> 3)", "d (<absent> -> None)"]
    assert differences({"c": [1]}, {"c": [1, 2]}) == ["c ([1] -> [1, 2])"]  # lists of other lengths: whole


def test_a_mixture_built_with_a_data_dir_is_not_reused_without_one(tmp_path):
    """Turning offline: true on (or off) over an output folder must not reuse a mixture built the other way: its
    tasks and decontamination came from the data dir."""
    from flanlab.scale import mixture_stage

    mixture_yaml = REPO / "configs" / "mixtures" / "tasks-9.yaml"
    overrides = ["size=40", "validation_size=0", "max_input_tokens=256", "max_target_tokens=64", "fewshot=1"]
    out = tmp_path / "mixture"
    assert Stages().run(mixture_stage("m", mixture_yaml, out, None, overrides, progress=False))
    assert mixture_stage("m", mixture_yaml, out, None, overrides).finished()
    with pytest.raises(ValueError, match=r"built without a data dir, but this run has the data dir"):
        mixture_stage("m", mixture_yaml, out, tmp_path, overrides).finished()
    with pytest.raises(ValueError, match=r"built from other mixture settings .*size \(40 -> 41\)"):
        mixture_stage("m", mixture_yaml, out, None, overrides + ["size=41"]).finished()


# --- the data dir ---------------------------------------------------------------------------------------------


def test_library_functions_do_not_read_the_environment(tmp_path, monkeypatch):
    """Only an entry point reads FLANLAB_DATA_DIR: the catalog and the mixture planner take the data dir they are
    given (None: none), so a missing folder named by the environment does not reach them."""
    from flanlab.data.catalog import list_tasks
    from flanlab.data.mixture import load_mixture_config, plan_mixture
    from flanlab.settings import NO_DATA_DIR, data_dir, given_data_dir

    monkeypatch.setenv("FLANLAB_DATA_DIR", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="FLANLAB_DATA_DIR"):
        data_dir(None)  # an entry point reads it, and says it is missing
    assert data_dir(NO_DATA_DIR) is None and given_data_dir(None) is None and given_data_dir(NO_DATA_DIR) is None
    assert {r.source for r in list_tasks(None)} == {"synthetic"}
    plan = plan_mixture(load_mixture_config(REPO / "configs" / "mixtures" / "demo.yaml"))
    assert plan.data_dir is None
    with pytest.raises(FileNotFoundError, match="missing"):
        given_data_dir(tmp_path / "missing")  # a folder passed down is still checked


def test_the_mixture_bench_resolves_the_data_dir_at_its_entry_point(tmp_path, monkeypatch):
    """bench/mix_throughput.py is an entry point: FLANLAB_DATA_DIR reaches build_mixture through it (build_mixture
    no longer reads the environment). build_mixture is replaced by a stub that stops the bench: nothing is built
    or timed."""
    import importlib.util

    import flanlab.data.mixture as mixture

    class Stop(Exception):
        pass

    given = []

    def build_mixture(config, out, data_dir=None, **kwargs):
        given.append(data_dir)
        raise Stop

    spec = importlib.util.spec_from_file_location("mix_throughput", REPO / "bench" / "mix_throughput.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr(mixture, "build_mixture", build_mixture)
    monkeypatch.setenv("FLANLAB_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["mix_throughput.py", "--size", "10", "--repeat", "1", "--peer-size", "0"])
    with pytest.raises(Stop):
        bench.main()
    assert given == [tmp_path]


class _WatchedEnviron(MutableMapping):
    """os.environ, recording each key that flanlab's own code writes or removes (libraries may save, clear and
    restore the whole environment, as accelerate's clear_environment does: that is not flanlab steering it)."""

    def __init__(self, real):
        self.real, self.changed_by_flanlab = real, []

    def _note(self, key) -> None:
        frame = sys._getframe(2)
        while frame is not None and frame.f_code.co_filename.endswith(("_collections_abc.py", "test_stages.py")):
            frame = frame.f_back  # MutableMapping.pop/update/setdefault call __delitem__/__setitem__
        if frame is not None and Path(frame.f_code.co_filename).resolve().is_relative_to(FLANLAB):
            self.changed_by_flanlab.append((key, f"{frame.f_code.co_filename}:{frame.f_lineno}"))

    def __getitem__(self, key):
        return self.real[key]

    def __setitem__(self, key, value):
        self._note(key)
        self.real[key] = value

    def __delitem__(self, key):
        self._note(key)
        del self.real[key]

    def __iter__(self):
        return iter(self.real)

    def __len__(self):
        return len(self.real)

    def copy(self):
        return self.real.copy()


def test_an_offline_grid_uses_no_data_dir_and_leaves_the_environment_alone(tmp_path, monkeypatch):
    """offline: true with FLANLAB_DATA_DIR set: no step uses the data dir (the mixture, every evaluation and the
    training run's own eval_suite evaluation record none), and os.environ is never changed (scale used to pop
    FLANLAB_DATA_DIR for the run)."""
    from flanlab.cli import main

    sentinel = tmp_path / "sentinel-data"
    sentinel.mkdir()
    monkeypatch.setenv("FLANLAB_DATA_DIR", str(sentinel))
    watched = _WatchedEnviron(os.environ)
    monkeypatch.setattr(os, "environ", watched)
    grid = tmp_path / "grid.yaml"
    out = tmp_path / "out"
    grid.write_text(f"models: [tiny-llama]\nmixtures: [{REPO / 'configs' / 'mixtures' / 'tasks-9.yaml'}]\n"
                    f"output_dir: {out}\noffline: true\n"
                    "mixture_overrides: [size=60, validation_size=0, max_input_tokens=256, max_target_tokens=64, "
                    "fewshot=1]\ntrain: {overrides: [steps=2, batch_size=2, max_input_len=256, max_target_len=64, "
                    "pack_len=512, save_every=0, eval_suite=synthetic, eval_limit=1]}\n"
                    "eval: {suite: synthetic, modes: [direct], limit: 1}\nreport: false\n")
    assert main(["scale", str(grid), "--no-progress"]) == 0
    assert [w for w in watched.changed_by_flanlab if w[0] == "FLANLAB_DATA_DIR"] == []
    assert os.environ["FLANLAB_DATA_DIR"] == str(sentinel)
    stats = json.loads((out / "mixtures" / "tasks-9" / "stats.json").read_text())
    assert stats["data_dir"] is None
    results = sorted(out.glob("cells/*/*/eval/**/results.json"))
    assert len(results) >= 2  # the base cell and the fine-tuned one
    during_training = sorted(out.glob("cells/*/*/train/evals/**/results.json"))  # the train YAML's eval_suite
    assert during_training
    results += during_training
    for path in results:
        assert json.loads(path.read_text())["provenance"]["data_dir"] is None, path
