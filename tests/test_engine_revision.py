"""The engine's code revision (flanlab.eval.engine.REVISION) stands for its code in what a result was computed with.
Settings cover levers, not code: before it, a resume cache written before an engine change that moved outputs
(fa39116 changed which items share a batch) was resumed without a word, since flanlab's version stays 0.1.0 in
development. Now runner.engine_settings records the revision, the resume cache refuses another one, and so does
scale's and the demo's finished-evaluation check; and the test below fails whenever the engine's files change, until
someone judges the change (bump REVISION if it can move an output, or only record the files' new digest).
The runner's record and refusal: test_eval_runner.py; scale's and the demo's: test_reuse_checks_results.py."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import flanlab
from flanlab.eval import engine as engine_module
from flanlab.eval.results import ResultCache

# The files whose code decides an engine output for a given prompt and settings, and their digest at REVISION.
SOURCES = ("engine.py", "kvcache.py", "prefix_attention.py", "speculative.py")
RECORDED = {"revision": 1, "sha256": "3cd515476ed36cdf3a719608f9fecda94ea87989c63a72231358832b38bf1862"}
OLD = {"batch_size": 2, "prefix_cache": True, "shared_attention": False, "draft_tokens": 0, "draft_ngrams": []}


def _digest() -> str:
    digest = hashlib.sha256()
    for name in SOURCES:
        text = (Path(engine_module.__file__).parent / name).read_bytes().replace(b"\r\n", b"\n")
        digest.update(name.encode() + b"\0" + text + b"\0")
    return digest.hexdigest()


def test_an_engine_change_is_judged_for_its_revision():
    now = _digest()
    assert (engine_module.REVISION, now) == (RECORDED["revision"], RECORDED["sha256"]), (
        f"flanlab/eval/{{{','.join(SOURCES)}}} changed since engine revision {RECORDED['revision']} was recorded. "
        f"If the change can move any output (batching, padding, kernels, decoding, stopping), bump REVISION in "
        f"flanlab/eval/engine.py (with a line on what changed); either way set RECORDED here to "
        f"{{'revision': <REVISION>, 'sha256': {now!r}}}")


def test_a_cache_from_before_revisions_were_recorded_is_refused(tmp_path):
    cache = ResultCache(tmp_path / "cache")
    cache.check_engine(OLD)  # written by a flanlab that recorded no revision
    cache.put_many([("k", {"outputs": ["a"]})])
    cache.close()
    resumed = ResultCache(tmp_path / "cache")
    resumed.load()
    with pytest.raises(ValueError, match=rf"engine_revision None \(this run: {engine_module.REVISION}\)"):
        resumed.check_engine({**OLD, "engine_revision": engine_module.REVISION})
    recorded = json.loads((tmp_path / "cache" / "engine.json").read_text())
    assert recorded == {**OLD, "flanlab_version": flanlab.__version__}  # left as it was
