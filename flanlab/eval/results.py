"""What an evaluation leaves on disk: results.json, samples.jsonl (schema in flanlab/eval/spec.py), the resume cache.

- `write_run(out_dir, results, samples)`: both files, each written atomically (flanlab.fileio).
- `provenance(benchmarks, data_dir)`: flanlab version, git revision (`git rev-parse HEAD` when the package sits in
  a git checkout, else null), sha256 of every data file the benchmarks read and one digest per benchmark of its
  files (`data_digest`), creation time.
- `model_fingerprint(lm)`: name + a hash of every weight (the model folder's files, or the tensors in memory), the
  tokenizer, the config, dtype and device (see `fingerprint_with_basis`): a model retrained into the same folder,
  even in one middle layer only, gets a new fingerprint, so the cache never serves its predecessor's outputs.
- `ResultCache`: completed items, one JSON line each, appended and flushed after every batch. An entry's key
  hashes the model fingerprint, the benchmark and its version, the full prompt, the choices and every generation
  setting, so a changed prompt, model or setting is never served from the cache. Each process of a distributed
  run appends to its own file (items.<rank>.jsonl); all files are read at start. A line cut short by a kill is
  ignored (the item is simply redone). The engine settings its entries were computed with (batch size and the
  generation engine's levers: not in the keys, as they are meant not to change an output, but padding and a
  multi-token forward change fp32 rounding, which can flip a near tie) are recorded in engine.json; a run with
  other ones is refused rather than mixed with them (`ResultCache.check_engine`). engine.json records the flanlab
  version too: a release can change the engine's code without changing a recorded lever, so a cache of another
  version is refused as well (a record from before the version was kept is served, with a warning).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

from flanlab import __version__
from flanlab.eval.schema import SCHEMA, Results  # results.json's typed form and its version
from flanlab.fileio import atomic_write_json, atomic_write_jsonl
from flanlab.models import FileStamp, parameter_state
from flanlab.log import get_logger
from flanlab.settings import cache_dir

log = get_logger(__name__)


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


def data_file_name(path, data_dir: Path | None) -> str:
    """How provenance names a data file: its path relative to the data dir, else absolute."""
    try:
        return str(Path(path).relative_to(data_dir)) if data_dir is not None else str(path)
    except ValueError:
        return str(path)


def _benchmark_file_hashes(bench, data_dir: Path | None, memo: dict[str, str]) -> dict[str, str]:
    """{data_file_name: sha256} of the existing data files of one benchmark; `memo` keeps every file's hash, so
    that a file two benchmarks read is hashed once."""
    hashes: dict[str, str] = {}
    for path in bench.data_files(data_dir):
        path = Path(path)
        if not path.is_file():
            continue
        name = data_file_name(path, data_dir)
        if name not in memo:
            memo[name] = sha256_file(path)
        hashes[name] = memo[name]
    return hashes


def data_digest(hashes: dict[str, str]) -> str:
    """One benchmark's data as one digest, from its files' {name: sha256}: two runs whose digests differ read other
    files, so the same item id (a position in a file) may name another item. A benchmark without data files (made
    in code, or read from the Hugging Face hub) has the digest of none: equal between two such runs, different
    from a run that read files."""
    return hashlib.sha256(json.dumps(sorted(hashes.items())).encode("utf-8")).hexdigest()


def library_versions() -> dict[str, str | None]:
    """The installed versions of the libraries an output's numerics depend on (None: not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in ("torch", "transformers"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def benchmark_data(benchmarks, data_dir: Path | None, memo: dict[str, str] | None = None) -> dict[str, str]:
    """benchmark -> data_digest of the files it reads in data_dir (provenance.benchmark_data; a finished scale cell
    is compared with it); `memo` collects every file's hash."""
    memo = {} if memo is None else memo
    return {b.name: data_digest(_benchmark_file_hashes(b, data_dir, memo)) for b in benchmarks}


def provenance(benchmarks, data_dir: Path | None) -> dict:
    memo: dict[str, str] = {}
    per_benchmark = benchmark_data(benchmarks, data_dir, memo)
    return {
        "flanlab_version": __version__,
        "git_revision": git_revision(),
        "libraries": library_versions(),  # fp32 rounding, and so a near tie, can change with them
        "data_dir": str(data_dir) if data_dir is not None else None,
        "data_files": dict(sorted(memo.items())),
        "benchmark_data": per_benchmark,  # benchmark -> data_digest of its files (paired comparisons check it)
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def model_section(lm) -> dict:
    """The "model" section of results.json for a flanlab.models.LoadedModel; fingerprint_basis says what was hashed."""
    fingerprint, basis = fingerprint_with_basis(lm)
    return {
        "name": lm.name,
        "kind": lm.kind,
        "parameters": lm.info.get("parameters"),
        "untrained": bool(lm.untrained),
        "source": lm.info.get("source"),
        "dtype": lm.info.get("dtype"),
        "fingerprint": fingerprint,
        "fingerprint_basis": basis,
    }


def model_fingerprint(lm) -> str:
    """"<name>@<32 hex>": changes whenever any weight, the tokenizer, the config, the dtype or the device changes."""
    return fingerprint_with_basis(lm)[0]


HASH_METHOD = "xxh3-128 of contents"
RACY_NS = 2_000_000_000  # a file modified less than this before hashing is hashed again next time (FileHashCache)


def fingerprint_with_basis(lm) -> tuple[str, dict]:
    """The fingerprint of a flanlab.models.LoadedModel and what it hashes (results.json's "fingerprint_basis"):

    weights    the content of every file of the folder it was loaded from (flanlab.models records them, stamped,
               at load), while those files and the tensors in memory are still as loaded; otherwise (a model
               built in memory: the tiny presets, one being trained; weights changed in memory or a folder
               rewritten since) every tensor of the state dict, as it is in memory
    tokenizer  the files the tokenizer in memory saves (save_pretrained: vocabulary, special tokens, settings)
    config     the model config and generation config, as in memory
    dtype and device type of the weights, and the model kind.
    File hashes are kept in $FLANLAB_CACHE/file_hashes.json (FileHashCache), so a rerun reads no weight file."""
    import torch

    first = next(iter(lm.model.parameters()))
    basis = {
        "method": HASH_METHOD,
        "kind": lm.kind,
        "dtype": str(first.dtype).replace("torch.", ""),
        "device": torch.device(first.device).type,
        "weights": _weights_basis(lm),
        "tokenizer": _tokenizer_hashes(lm.tokenizer),
        "config": _config_hash(lm.model),
    }
    digest = hashlib.sha256(json.dumps(basis, sort_keys=True).encode("utf-8")).hexdigest()
    return f"{lm.name}@{digest[:32]}", basis


def _xxh3():
    import xxhash

    return xxhash.xxh3_128()


def hash_file(path: str | os.PathLike) -> str:
    digest = _xxh3()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


class FileHashCache:
    """Content hashes of files in a JSON file ($FLANLAB_CACHE/file_hashes.json), each valid while the file's
    (absolute path, size, mtime_ns, ctime_ns, inode) are unchanged. A file modified less than RACY_NS before it
    is hashed is not remembered: a rewrite within the filesystem's timestamp tick could leave that stat as it
    was. A missing or corrupt cache file counts as empty; it is written atomically, and entries of files that
    no longer exist are dropped then."""

    SCHEMA = "flanlab.file_hashes/1"

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else cache_dir() / "file_hashes.json"
        self.entries = self._read()
        self.changed = False

    def _read(self) -> dict[str, list]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("schema") != self.SCHEMA or not isinstance(data.get("files"), dict):
                return {}
            return {k: v for k, v in data["files"].items() if isinstance(v, list) and len(v) == 5}
        except (OSError, ValueError, AttributeError):
            return {}

    def hash(self, stamp) -> str:
        """The content hash of the file a flanlab.models.FileStamp describes (the caller checks the stamp holds)."""
        key = [stamp.size, stamp.mtime_ns, stamp.ctime_ns, stamp.inode]
        entry = self.entries.get(stamp.path)
        if entry is not None and entry[:4] == key:
            return entry[4]
        digest = hash_file(stamp.path)
        if time.time_ns() - stamp.mtime_ns >= RACY_NS:
            self.entries[stamp.path] = [*key, digest]
            self.changed = True
        return digest

    def save(self) -> None:
        if not self.changed:
            return
        files = {k: v for k, v in sorted(self.entries.items()) if os.path.exists(k)}
        try:
            atomic_write_json(self.path, {"schema": self.SCHEMA, "files": files}, indent=None)
        except OSError:
            return  # a read-only cache only costs a rehash next time
        self.changed = False


def _folder_hashes(stamps) -> dict[str, str] | None:
    """{name: content hash} of a model's files, or None when any of them differs from its stamp at load."""
    def unchanged() -> bool:
        try:
            return all(FileStamp.of(s.name, s.path) == s for s in stamps)
        except OSError:
            return False

    if not unchanged():
        return None
    cache = FileHashCache()
    hashes = {s.name: cache.hash(s) for s in stamps}
    if not unchanged():  # rewritten while being hashed
        return None
    cache.save()
    return hashes


def _weights_basis(lm) -> dict:
    if lm.files:
        if parameter_state(lm.model) != lm.loaded_state:
            why = "the weights were changed in memory after loading"
        else:
            hashes = _folder_hashes(lm.files)
            if hashes is not None:
                return {"hashed": "files of the folder it was loaded from", "files": hashes}
            why = "the model folder's files changed after loading"
    else:
        why = "built in memory"
    return {"hashed": "tensors in memory", "why": why, **_tensor_hash(lm.model)}


def _tensor_hash(model) -> dict:
    """One hash over every tensor of the state dict: name, dtype, shape and bytes."""
    import torch

    digest = _xxh3()
    count = 0
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach()
        digest.update(json.dumps([name, str(tensor.dtype), list(tensor.shape)]).encode("utf-8"))
        flat = tensor.to("cpu").contiguous().reshape(-1)
        digest.update(flat.view(torch.uint8).numpy().data)
        count += 1
    return {"tensors": count, "hash": digest.hexdigest()}


def _tokenizer_hashes(tokenizer) -> dict[str, str]:
    """{file: content hash} of what the tokenizer saves (vocabulary, merges, special tokens, chat template...)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="flanlab-tok-") as tmp:
        tokenizer.save_pretrained(tmp)
        return {p.name: hash_file(p) for p in sorted(Path(tmp).iterdir()) if p.is_file()}


def _config_hash(model) -> str:
    config = model.config.to_dict()
    config.pop("_name_or_path", None)
    generation = getattr(model, "generation_config", None)
    payload = {"config": config, "generation_config": generation.to_dict() if generation is not None else None}
    digest = _xxh3()
    digest.update(json.dumps(payload, sort_keys=True, default=str).encode("utf-8"))
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------------------
# results.json and samples.jsonl


def write_run(out_dir: str | os.PathLike, results: dict, samples: list[dict]) -> tuple[Path, Path]:
    """Write out_dir/results.json and out_dir/samples.jsonl atomically; return their paths. results goes through
    flanlab.eval.schema.Results first, so a file that the reader would refuse is never written."""
    results = Results.from_json(results, f"{out_dir}/results.json (being written)").to_json()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_jsonl(out / "samples.jsonl", samples)
    atomic_write_json(out / "results.json", results)
    return out / "results.json", out / "samples.jsonl"


def read_results(path: str | os.PathLike) -> dict:
    """A results.json (or a folder holding one), checked by flanlab.eval.schema.Results (schema version, fields):
    schema 2 as written; a schema-1 file without intervals; anything else refused naming the file."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    return Results.from_json(results, str(path)).to_json()


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

    ENGINE = "engine.json"  # the engine settings the entries were computed with, and the flanlab version
    VERSION = "flanlab_version"  # engine.json's key of the version (beside runner.engine_settings' keys)

    def check_engine(self, engine: dict, record: bool = True) -> None:
        """Refuse (ValueError, one line naming the folder and each setting) to serve entries computed with other
        engine settings or engine code (its engine_revision) than `engine` (runner.engine_settings), or by another
        flanlab version (a release may change the engine's code without changing a lever); record both in a new
        folder (`record`: the main process). A folder with entries from before the record existed is served with a
        warning: what computed them is unknown; likewise a record from before it held the version. A folder with a
        record but no entries yet takes this run's."""
        if self.folder is None:
            return
        path = self.folder / self.ENGINE
        if path.is_file() and self.entries:  # a record without entries (killed before a batch) is simply replaced
            try:
                recorded = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
                raise ValueError(f"{path}: unreadable ({type(e).__name__}: {e}); delete the cache folder "
                                 f"{self.folder} to compute its items again") from None
            if not isinstance(recorded, dict):
                raise ValueError(f"{path}: expected a JSON object of engine settings; delete the cache folder "
                                 f"{self.folder} to compute its items again")
            version = recorded.pop(self.VERSION, None)
            if version is not None and version != __version__:
                raise ValueError(f"{self.folder}: the resume cache's items were computed by flanlab {version}, this is "
                                 f"flanlab {__version__}; a release can change the engine's outputs, so they are not "
                                 f"mixed with this run's. Rerun with --no-cache or another --cache-dir (or delete "
                                 f"{self.folder}) to compute every item again")
            differ = [f"{k} {recorded.get(k)!r} (this run: {engine.get(k)!r})"
                      for k in sorted(set(recorded) | set(engine)) if recorded.get(k) != engine.get(k)]
            if differ:
                code = recorded.get("engine_revision") != engine.get("engine_revision")
                raise ValueError(f"{self.folder}: the resume cache's items were computed with other engine "
                                 f"{'code or settings' if code else 'settings'}: {', '.join(differ)}; "
                                 f"{'other engine code can change an output, and ' if code else ''}other settings "
                                 f"can round a near tie differently, so they are not mixed with this run's. Rerun "
                                 f"with the recorded settings, or --no-cache / another --cache-dir to compute every "
                                 f"item again")
            if version is None:
                log.warning("%s: %d cached items recorded without the flanlab version that computed them are served "
                            "as they are (this is flanlab %s; --no-cache computes them again)",
                            self.folder, len(self.entries), __version__)
            return
        if self.entries:
            log.warning("%s: %d cached items from before engine settings were recorded (%s) are served as they are; "
                        "what computed them is not known (--no-cache computes them again)",
                        self.folder, len(self.entries), ", ".join(f"{k} {v!r}" for k, v in engine.items()))
            return
        if record:
            atomic_write_json(path, {**engine, self.VERSION: __version__})

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
