"""Atomic writes: a file or folder either appears whole under its final name or not at all.

Everything is first written next to its destination under a temporary name, flushed to disk, then renamed
(os.replace is atomic on POSIX within one filesystem). A crash leaves only a temporary name behind, which
never looks like a finished result.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False, sort_keys=False) + "\n")


def atomic_write_jsonl(path: str | os.PathLike, rows) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def atomic_write_npz(path: str | os.PathLike, arrays: dict, meta: dict) -> None:
    """numpy arrays and a JSON-able `meta` dict in one .npz file (meta as UTF-8 JSON bytes); read by read_npz."""
    import io

    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **arrays, meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8))
    atomic_write_bytes(path, buf.getvalue())


def read_npz(path: str | os.PathLike) -> tuple[dict, dict]:
    """(arrays, meta) of a file written by atomic_write_npz; the arrays are read into memory."""
    import numpy as np

    with np.load(path) as z:
        meta = json.loads(z["meta"].tobytes().decode("utf-8"))
        return {k: z[k] for k in z.files if k != "meta"}, meta


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False):
    """Yield a temporary folder beside `path`; on success it is renamed to `path`, on error removed.

    With overwrite=True an existing `path` is replaced (moved aside first, then deleted)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            if not overwrite:
                raise FileExistsError(f"{path} already exists")
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_jsonl_numbered(path: str | os.PathLike):
    """Yield (line number, object) for the non-blank lines of a JSONL file; a broken line raises ValueError
    naming file and line."""
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno})") from None


def read_jsonl(path: str | os.PathLike):
    """Yield the objects of a JSONL file; a broken line raises ValueError naming file and line."""
    for _, obj in read_jsonl_numbered(path):
        yield obj
