"""The resume cache records the flanlab version beside the engine settings (cache/engine.json): a release can
change the engine's code without changing a recorded lever, so a resume under another version is refused in one
line naming both versions and how to start fresh; a record from before the version was kept is served, with a
warning (flanlab.eval.results.ResultCache.check_engine)."""

from __future__ import annotations

import json

import pytest

import flanlab
from flanlab.eval import results
from flanlab.eval.results import ResultCache

ENGINE = {"batch_size": 2, "prefix_cache": True, "shared_attention": False, "draft_tokens": 0, "draft_ngrams": []}


def _cache_with_entries(folder) -> ResultCache:
    cache = ResultCache(folder)
    cache.load()
    cache.check_engine(ENGINE)
    cache.put_many([("k1", {"output": "a"}), ("k2", {"output": "b"})])
    cache.close()
    return cache


def _resumed(folder) -> ResultCache:
    cache = ResultCache(folder)
    assert cache.load() == 2
    return cache


def test_engine_record_holds_the_version(tmp_path):
    _cache_with_entries(tmp_path / "cache")
    recorded = json.loads((tmp_path / "cache" / "engine.json").read_text())
    assert recorded == {**ENGINE, "flanlab_version": flanlab.__version__}
    _resumed(tmp_path / "cache").check_engine(ENGINE)  # same version, same settings: served


def test_resume_under_another_version_is_refused(tmp_path, monkeypatch):
    _cache_with_entries(tmp_path / "cache")
    monkeypatch.setattr(results, "__version__", "9.9.9")  # the next release
    with pytest.raises(ValueError) as refused:
        _resumed(tmp_path / "cache").check_engine(ENGINE)
    line = str(refused.value)
    assert "\n" not in line and str(tmp_path / "cache") in line
    assert f"flanlab {flanlab.__version__}" in line and "flanlab 9.9.9" in line
    assert "--no-cache" in line and "--cache-dir" in line


def test_a_record_without_the_version_is_served_with_a_warning(tmp_path, caplog):
    _cache_with_entries(tmp_path / "cache")
    path = tmp_path / "cache" / "engine.json"
    path.write_text(json.dumps(ENGINE))  # written by a flanlab from before the version was recorded
    cache = _resumed(tmp_path / "cache")
    with caplog.at_level("WARNING", logger="flanlab"):
        cache.check_engine(ENGINE)
    assert "without the flanlab version" in caplog.text and cache.get("k1") == {"output": "a"}
    with pytest.raises(ValueError, match=r"batch_size 2 \(this run: 3\)"):  # its engine settings still count
        _resumed(tmp_path / "cache").check_engine({**ENGINE, "batch_size": 3})
