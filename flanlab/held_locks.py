"""The run locks this process holds: the table flanlab/runlock.py keeps (it takes and releases the locks) and
flanlab/fileio.py reads (atomic_dir removes a killed run's temporaries only under a lock held here). A leaf, so
that both can import it: runlock builds on fileio, and fileio needs no more of runlock than this table.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

held: dict[Path, tuple[int, int]] = {}  # lock file -> (open descriptor, nesting depth), this process's locks
guard = threading.Lock()  # held is read and changed under it


def lock_path(folder: str | os.PathLike) -> Path:
    """The lock file of a run folder: `<parent>/.<name>.lock` (the folder's absolute, resolved path)."""
    folder = Path(folder).resolve()
    return folder.with_name(f".{folder.name}.lock")


def holds_lock_over(path: str | os.PathLike) -> bool:
    """True when this process holds the lock of `path` or of a folder above it."""
    with guard:
        locks = set(held)
    if not locks:
        return False
    path = Path(path).resolve()
    return any(lock_path(p) in locks for p in (path, *path.parents) if p.name)
