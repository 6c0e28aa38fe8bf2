"""Mixture builds pinned to the bytes the code wrote before issue 14 split flanlab/data/mixture.py: the SHA-256 of
each JSONL file, of stats.json (less the two fields naming temporary paths) and of a preview, for builds that
between them take every path of the build: templated files and synthetic families in every format (few-shot
exemplars, CoT rationales, validation buckets), truncation and few-shot pruning, the record cache off, planted
benchmark items (records, rationales), Flan collection rows (validation, repeats) and the real data dir.

GOLDEN was computed with mixture.py as of ff5b856 (before the split; the rest of the tree at 5eb1933) and the split
code gives the same hashes. A change that legitimately changes what a build writes (a template, a generator, a
filter) fails here: check that the change is the intended one, then update the hashes, saying so in its commit."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from flanlab.data import flan_collection
from flanlab.data.mixture import build_mixture, load_mixture_config, preview_mixture
import test_flan_collection as fc  # tests/ is on sys.path under pytest
import test_mixture as tm

PRESETS = Path(__file__).resolve().parent.parent / "configs" / "mixtures"

GOLDEN = {  # case -> file (or "preview") -> the first 16 hex digits of its SHA-256
    "files": {
        "train-00000-of-00003.jsonl": "6b460e870e44568f",
        "train-00001-of-00003.jsonl": "f15e8544da8b9f3f",
        "train-00002-of-00003.jsonl": "d497aed2f2bcbccc",
        "validation.jsonl": "1260f4bdf57dead7",
        "stats.json": "88c4488865e403a9",
        "preview": "95dbc1a2533e2727",
    },
    "files_pruned_uncached": {
        "train-00000-of-00003.jsonl": "f45f98d4be61fd79",
        "train-00001-of-00003.jsonl": "e7310e0383e9c350",
        "train-00002-of-00003.jsonl": "71c8458c14c369e6",
        "validation.jsonl": "0478cec449db613c",
        "stats.json": "0275918dc691c99d",
        "preview": "71e947879c3dd55c",
    },
    "flan_collection": {
        "train-00000-of-00001.jsonl": "e6d6accbe01dce92",
        "validation.jsonl": "3688358f7a627547",
        "stats.json": "31516135369cd426",
        "preview": "753642ebc48cf38d",
    },
    "offline_truncated": {
        "train-00000-of-00001.jsonl": "a0361d16ef627703",
        "validation.jsonl": "9491950c6c4f49c3",
        "stats.json": "95bd667721a251ff",
        "preview": "1c703fbc7ec51d84",
    },
    "planted": {
        "train-00000-of-00001.jsonl": "51c82e881b57d946",
        "validation.jsonl": "8b0311624257e714",
        "stats.json": "3d1136420b2f5d2a",
        "preview": "8c24a2a73903b237",
    },
    "real": {
        "train-00000-of-00001.jsonl": "59675c496eb050b9",
        "validation.jsonl": "b1001218374f0273",
        "stats.json": "ef9f0fd660595af2",
        "preview": "ea25500dfa89959f",
    },
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _hashes(out: Path, cfg, data_dir, preview: int) -> dict[str, str]:
    build_mixture(cfg, out, data_dir=data_dir, progress=False)
    got = {p.name: _sha(p.read_bytes()) for p in sorted(out.iterdir()) if p.suffix == ".jsonl"}
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    del stats["config"]["source_path"], stats["data_dir"]  # temporary paths
    got["stats.json"] = _sha(json.dumps(stats, sort_keys=True).encode())
    got["preview"] = _sha(repr(preview_mixture(cfg, preview, data_dir=data_dir)).encode())
    return got


def _files_config(tmp_path: Path) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    tm.write_jsonl(d / "a.jsonl", tm.records("a", 100))
    tm.write_jsonl(d / "b.jsonl", tm.records("b", 400))
    tm.write_jsonl(d / "c.jsonl", tm.records("c", 2000))
    return tm.write_config(d / "mix.yaml", {
        "name": "t", "seed": 3, "size": 3000, "validation_size": 60, "shard_size": 1000,
        "formats": {"zs_opt": 2, "zs_noopt": 1, "fs_opt": 1, "fs_noopt": 1, "cot_zs": 1, "cot_fs": 1},
        "submixtures": [
            {"name": "files", "rate": 0.6, "cap": 500, "files": [
                {"name": "a", "path": "a.jsonl"}, {"name": "b", "path": "b.jsonl"}, {"name": "c", "path": "c.jsonl"}]},
            {"name": "synthetic", "rate": 0.4, "tasks": tm.TRAINING_FAMILIES, "synthetic_size": 1000, "cap": 600}]})


def _planted_config(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "bbdata"
    (data / "bbh" / "bbh").mkdir(parents=True)
    items = [tm.PLANTED, "Is seventeen a prime number?"]
    (data / "bbh" / "bbh" / "x.json").write_text(json.dumps({"examples": [{"input": x, "target": "(A)"} for x in items]}))
    rows = tm.records("clean", 40)
    rows[5]["rationale"] = "Recall that " + tm.PLANTED + ", so the count is odd."
    rows.append({"question": "Context: " + tm.PLANTED.upper() + " Which bird is leftmost?", "answer": "quail"})
    rows.append({"question": "is  seventeen a PRIME number?", "answer": "yes"})
    tm.write_jsonl(tmp_path / "planted.jsonl", rows)
    cfg = tm.write_config(tmp_path / "planted.yaml", {
        "name": "p", "size": 400, "dedup": False, "validation_size": 10,
        "formats": {"zs_noopt": 1.0, "fs_noopt": 1.0, "cot_zs": 1.0, "cot_fs": 1.0},
        "submixtures": [{"name": "f", "files": [{"name": "t", "path": "planted.jsonl"}]},
                        {"name": "s", "tasks": ["parity", "list_sum"], "synthetic_size": 300}]})
    return cfg, data


def _flan_collection_config(tmp_path: Path) -> Path:
    muffin = fc.make_rows(fc.MUFFIN, "Flan2021")
    half = len(muffin) // 2
    fc.write_parquet(tmp_path / "flan2021" / "train-00000-of-00002.parquet", muffin[:half])
    fc.write_parquet(tmp_path / "flan2021" / "train-00001-of-00002.parquet", muffin[half:])
    fc.write_jsonl(tmp_path / "t0.jsonl", fc.make_rows(fc.T0, "T0"))
    fc.write_parquet(tmp_path / "cot.parquet", fc.make_rows({"cot_gsm8k": 40, "cot_esnli": 40}, "CoT"))
    cfg = {"name": "flan", "seed": 1, "size": 400, "validation_size": 30, "validation_fraction": 0.3, "dedup": False,
           "record_cache_mb": 0, "submixtures": [
               {"name": "muffin", "rate": 0.6, "cap": 60, "formats": {"zs_opt": 1, "fs_opt": 1, "zs_noopt": 1, "fs_noopt": 1},
                "flan_collection": [{"submix": "flan2021", "files": ["flan2021/*.parquet"]}]},
               {"name": "t0_sf", "rate": 0.4, "cap": 40, "formats": {"zs_opt": 3, "fs_opt": 1},
                "flan_collection": [{"submix": "t0", "files": ["t0.jsonl"]}]},
               {"name": "cot", "rate": 0.3, "formats": {"cot_zs": 1, "cot_fs": 1}, "flan_collection": [
                   {"submix": "cot", "files": ["cot.parquet"], "template_types": ["zs_opt", "fs_opt"]}]},
               {"name": "syn", "rate": 0.2, "tasks": ["parity"]}]}
    return fc.write_config(tmp_path / "flan.yaml", cfg)


def _offline_case(tmp_path: Path):
    return PRESETS / "offline.yaml", ["size=3000", "validation_size=100", "max_input_tokens=60", "overlong=truncate",
                                      "fewshot=5"], None


def _real_case(tmp_path: Path, data: Path):
    return PRESETS / "real.yaml", ["size=2000", "validation_size=30", "max_input_tokens=256", "max_target_tokens=128",
                                   "overlong=truncate", "record_cache_mb=1"], data


# name -> tmp_path -> (config file, overrides, data dir): what each build reads
CASES = {
    "files": lambda tmp: (_files_config(tmp), [], None),
    "files_pruned_uncached": lambda tmp: (_files_config(tmp), ["record_cache_mb=0", "overlong=truncate",
                                                                "max_input_tokens=40", "fewshot=5"], None),
    "offline_truncated": _offline_case,
    "planted": lambda tmp: (lambda cfg, data: (cfg, [], data))(*_planted_config(tmp)),
    "flan_collection": lambda tmp: (_flan_collection_config(tmp), [], None),
}


def case_hashes(name: str, tmp_path: Path, data: Path | None = None) -> dict[str, str]:
    """The hashes of case `name` built under tmp_path (`data`: the real data dir, for the "real" case)."""
    path, overrides, data_dir = _real_case(tmp_path, data) if name == "real" else CASES[name](tmp_path)
    cfg = load_mixture_config(path, overrides)
    return _hashes(tmp_path / "out", cfg, data_dir, 20)


@pytest.fixture
def private(monkeypatch, tmp_path):
    monkeypatch.delenv("FLANLAB_DATA_DIR", raising=False)
    monkeypatch.setenv("FLANLAB_CACHE", str(tmp_path / "cache"))
    flan_collection._open.cache_clear()
    yield
    flan_collection._open.cache_clear()


@pytest.mark.parametrize("name", sorted(CASES))
def test_build_writes_the_pinned_bytes(private, tmp_path, name):
    assert case_hashes(name, tmp_path) == GOLDEN[name]


def test_real_data_dir_build_writes_the_pinned_bytes(private, tmp_path, data_dir):
    assert case_hashes("real", tmp_path, data_dir) == GOLDEN["real"]
