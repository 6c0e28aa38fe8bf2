"""Atomic writes: a file or folder either appears whole under its final name or not at all.

Everything is first written next to its destination under a temporary name, flushed to disk, then renamed
(os.replace is atomic on POSIX within one filesystem). A crash leaves only a temporary name behind, which
never looks like a finished result.

Durable as well as atomic: a file's data is fsynced before its rename and the folder holding the new name after
it; atomic_dir fsyncs every file and folder it wrote before its rename. Without the first, a power loss after the
rename can leave the final name on a file of zeros or a truncated one (ext4 and XFS may commit the rename before
the data); without the second, the rename itself can be lost while a later write (a run's summary saying it
finished) survives.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from flanlab.held_locks import holds_lock_over


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
        fsync_dir(path.parent)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        named = _name_file(e, path)
        if named is e:
            raise
        raise named from e


def fsync_dir(folder: str | os.PathLike) -> None:
    """Flush a folder's entries (names created, renamed or removed in it) to disk. A no-op where folders cannot
    be opened for it (Windows) or the filesystem does not sync folders (EINVAL, ENOTSUP: some network and FUSE
    filesystems); any other failure (EIO) is raised."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except (PermissionError, IsADirectoryError):
        return
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def fsync_tree(root: str | os.PathLike) -> None:
    """Flush every file under `root` to disk, then every folder, the deepest first and `root` last (the data
    before the names that point to it). Symbolic links are not followed."""
    root = Path(root)
    folders = [root]
    for here, dirs, files in os.walk(root):
        for name in files:
            file = Path(here) / name
            if file.is_symlink() or not file.is_file():
                continue
            fd = os.open(file, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        folders += [Path(here) / d for d in dirs if not (Path(here) / d).is_symlink()]
    for folder in reversed(folders):
        fsync_dir(folder)


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


def _temporaries(path: Path) -> list[Path]:
    """What atomic_dir / discard_dir leave beside `path` when killed: `.<name>.XXXXXXXX.tmp` (mkdtemp's 8
    random characters: a temporary of another name such as `<name>.json` never matches) and `.<name>.old`."""
    if not path.parent.is_dir():
        return []
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[A-Za-z0-9_]{{8}}\.tmp")
    return sorted(p for p in path.parent.iterdir()
                  if pattern.fullmatch(p.name) or p.name == f".{path.name}.old")


def remove_stale_temporaries(path: str | os.PathLike) -> list[str]:
    """Delete the temporaries of `path` (see _temporaries) that a killed run left; returns "name (size)" of each.

    Only safe while no live process writes `path`: callers hold its run lock (flanlab.runlock)."""
    removed = []
    for tmp in _temporaries(Path(path)):
        size = _size(tmp)
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        if not tmp.exists():
            removed.append(f"{tmp} ({size / 1e6:.1f} MB)")
    return removed


def _size(path: Path) -> int:
    if not path.is_dir():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*"))


def discard_dir(path: str | os.PathLike) -> None:
    """Delete the folder `path`: first renamed aside in one step (a temporary that remove_stale_temporaries
    recognises, should the deletion be killed), then removed."""
    path = Path(path)
    if not path.exists():
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.replace(path, aside)  # a folder replaces the empty one mkdtemp made
    shutil.rmtree(aside)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False):
    """Yield a temporary folder beside `path`; on success its files and folders are flushed to disk and it is
    renamed to `path` (the rename flushed too), on error removed (Ctrl-C, and SIGTERM under a run lock, included).

    With overwrite=True an existing `path` is replaced (moved aside first, then deleted). When this process
    holds the run lock of `path` or of a folder above it (flanlab.runlock), the temporaries a killed run left
    for `path` are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if holds_lock_over(path):
        remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        fsync_tree(tmp)  # what was written is on disk before the folder takes its final name
        if path.exists():
            if not overwrite:
                raise FileExistsError(f"{path} already exists")
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            fsync_dir(path.parent)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
            fsync_dir(path.parent)  # the rename is on disk before anything written after it
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        named = _name_file(e, path)
        if named is e:
            raise
        raise named from e


OS_ERROR_IN_TEXT = re.compile(r"\(os error (\d+)\)")  # how Rust libraries (safetensors) report an OS error


def _name_file(error: BaseException, path: Path) -> BaseException:
    """The error to raise for a failed write to `path`: an OSError without a file name (a write() on a full disk
    has none) gets the destination's, so that the message says where the write failed; a library error that
    carries an OS error only in its text (safetensors: 'I/O error: No space left on device (os error 28)')
    becomes that OSError, naming `path`. Any other error is returned as it is."""
    if isinstance(error, OSError):
        if error.errno is not None and error.filename is None:
            error.filename = str(path)
        return error
    found = OS_ERROR_IN_TEXT.search(str(error)) if isinstance(error, Exception) else None
    if found:
        code = int(found.group(1))
        return OSError(code, os.strerror(code), str(path))
    return error


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
