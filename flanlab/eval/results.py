"""What an evaluation leaves on disk: results.json, samples.jsonl (schema in flanlab/eval/spec.py), the resume cache.

- `write_run(out_dir, results, samples)`: both files, each written atomically (flanlab.fileio).
- `provenance(benchmarks, data_dir)`: flanlab version, git revision (`git rev-parse HEAD` when the package sits in
  a git checkout, else null), sha256 of every data file the benchmarks read, creation time.
- `model_fingerprint(lm)`: name + a hash of the config and a few weight tensors: a retrained checkpoint in the
  same folder gets a new fingerprint, so the cache never serves its predecessor's outputs.
- `ResultCache`: completed items, one JSON line each, appended and flushed after every batch. An entry's key
  hashes the model fingerprint, the benchmark and its version, the full prompt, the choices and every generation
  setting, so a changed prompt, model or setting is never served from the cache. Each process of a distributed
  run appends to its own file (items.<rank>.jsonl); all files are read at start. A line cut short by a kill is
  ignored (the item is simply redone).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import subprocess
from pathlib import Path

from flanlab.fileio import atomic_write_json, atomic_write_jsonl

SCHEMA = "flanlab.results/1"


# ----------------------------------------------------------------------------------------------------------
# provenance


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def git_revision() -> str | None:
    """HEAD of the git checkout holding the flanlab package, or None (installed from a wheel, no git)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def data_file_hashes(benchmarks, data_dir: Path | None) -> dict[str, str]:
    """{path relative to the data dir (else absolute): sha256} for every existing data file of the benchmarks."""
    hashes: dict[str, str] = {}
    for bench in benchmarks:
        for path in bench.data_files(data_dir):
            path = Path(path)
            if not path.is_file():
                continue
            try:
                name = str(path.relative_to(data_dir)) if data_dir is not None else str(path)
            except ValueError:
                name = str(path)
            if name not in hashes:
                hashes[name] = sha256_file(path)
    return dict(sorted(hashes.items()))


def provenance(benchmarks, data_dir: Path | None) -> dict:
    from flanlab import __version__

    return {
        "flanlab_version": __version__,
        "git_revision": git_revision(),
        "data_dir": str(data_dir) if data_dir is not None else None,
        "data_files": data_file_hashes(benchmarks, data_dir),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def model_section(lm) -> dict:
    """The "model" section of results.json for a flanlab.models.LoadedModel."""
    return {
        "name": lm.name,
        "kind": lm.kind,
        "parameters": lm.info.get("parameters"),
        "untrained": bool(lm.untrained),
        "source": lm.info.get("source"),
        "dtype": lm.info.get("dtype"),
        "fingerprint": model_fingerprint(lm),
    }


def model_fingerprint(lm) -> str:
    """"<name>@<16 hex>": a hash of the model's config, kind and the first/last few weight tensors (first 64k values)."""
    cached = getattr(lm, "_flanlab_fingerprint", None)
    if cached:
        return cached
    import torch

    digest = hashlib.sha256()
    digest.update(lm.kind.encode())
    config = lm.model.config.to_dict()
    config.pop("_name_or_path", None)
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    params = list(lm.model.state_dict().items())
    for name, tensor in params[:3] + params[-3:]:
        digest.update(name.encode())
        flat = tensor.detach().reshape(-1)[:65536].to(device="cpu", dtype=torch.float32).contiguous()  # (<=64k,)
        digest.update(flat.numpy().tobytes())
    fingerprint = f"{lm.name}@{digest.hexdigest()[:16]}"
    try:
        lm._flanlab_fingerprint = fingerprint
    except AttributeError:
        pass
    return fingerprint


# ----------------------------------------------------------------------------------------------------------
# results.json and samples.jsonl


def write_run(out_dir: str | os.PathLike, results: dict, samples: list[dict]) -> tuple[Path, Path]:
    """Write out_dir/results.json and out_dir/samples.jsonl atomically; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_jsonl(out / "samples.jsonl", samples)
    atomic_write_json(out / "results.json", results)
    return out / "results.json", out / "samples.jsonl"


def read_results(path: str | os.PathLike) -> dict:
    """A results.json (or a folder holding one), checked for the schema tag."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    if results.get("schema") != SCHEMA:
        raise ValueError(f"{path}: schema is {results.get('schema')!r}, expected {SCHEMA!r}")
    return results


# ----------------------------------------------------------------------------------------------------------
# the resume cache


def cache_key(fingerprint: str, benchmark, item, operation: str, settings: dict) -> str:
    """The key of one completed item: everything its output depends on."""
    payload = {
        "model": fingerprint,
        "benchmark": benchmark.name,
        "version": benchmark.version,
        "op": operation,  # "generate" | "rank"
        "prompt": item.prompt,
        "choices": list(item.choices),
        "settings": settings,
        # sampling seeds derive from the item's identity (see engine._row_generators)
        "item": [item.subtask, item.mode, item.item_id] if settings.get("temperature", 0) > 0 else None,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


class ResultCache:
    """Append-only JSONL store key -> value for completed items (see the module docstring)."""

    def __init__(self, folder: str | os.PathLike | None, rank: int = 0):
        self.folder = Path(folder) if folder is not None else None
        self.rank = rank
        self.entries: dict[str, dict] = {}
        self._file = None

    @property
    def path(self) -> Path | None:
        return self.folder / f"items.{self.rank}.jsonl" if self.folder is not None else None

    def load(self) -> int:
        """Read every items.*.jsonl of the folder; return the number of entries. Broken lines are skipped."""
        if self.folder is None or not self.folder.is_dir():
            return 0
        for path in sorted(self.folder.glob("items.*.jsonl")):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    try:
                        entry = json.loads(line)
                        self.entries[entry["key"]] = entry["value"]
                    except (json.JSONDecodeError, KeyError, TypeError):
                        continue  # a line cut short by a kill: that item is redone
        return len(self.entries)

    def get(self, key: str):
        return self.entries.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def put_many(self, pairs: list[tuple[str, dict]], persist: bool = True) -> None:
        """Remember (key, value) pairs; with persist, append them to this process's file and flush."""
        for key, value in pairs:
            self.entries[key] = value
        if not persist or self.folder is None or not pairs:
            return
        if self._file is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open across batches
            if self._file.tell() > 0:
                self._file.write("\n")  # a previous run may have been killed mid-line
        self._file.write("".join(json.dumps({"key": k, "value": v}, ensure_ascii=False) + "\n" for k, v in pairs))
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
