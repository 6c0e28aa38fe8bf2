"""One run per output folder: an exclusive lock taken by every command that writes a run folder.

`with run_lock(folder, "eval"):` holds an exclusive lock on `folder` for the duration of the block. The lock is
a file beside the folder, `<parent>/.<name>.lock` (beside, not inside: `flanlab mix` renames a whole temporary
folder into place, and `--overwrite` replaces the folder), locked with flock(2) and holding the owner's pid,
host, command and start time as JSON. The kernel releases a flock when its process dies, however it dies, so
a lock file left by a killed run (SIGKILL, power loss) is recognised as stale, reported, and taken over; a
live holder makes the second run stop at once with `FolderLocked`, one line naming the folder and the process.

While it holds the lock a run also removes the temporaries a dead run left for that folder
(`.<name>.*.tmp` beside it: flanlab.fileio.remove_stale_temporaries), and the outermost lock of a process
turns SIGTERM into SystemExit(143), so that `atomic_dir` and friends clean up as they do on Ctrl-C.

Re-entrant within a process (demo and scale lock their folder and call mix, train and eval on sub-folders).
Under a multi-process launch (`accelerate launch`, torchrun: RANK is set) the processes of one run share the
folder by design, so only the process of RANK 0 takes the lock.

The table of the locks this process holds (and holds_lock_over, which atomic_dir asks) is flanlab/held_locks.py.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import functools
import json
import os
import shlex
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from flanlab import fileio
from flanlab.held_locks import guard as _guard
from flanlab.held_locks import held as _held
from flanlab.held_locks import lock_path
from flanlab.log import get_logger, process_rank

log = get_logger(__name__)


class FolderLocked(RuntimeError):
    """Another live process holds the run folder's lock."""


_previous_sigterm = None


def _describe(owner: dict) -> str:
    if not owner:
        return "a process that has not yet written its name"
    return (f"pid {owner.get('pid')} on host {owner.get('host')} ({owner.get('command')}, "
            f"started {owner.get('started')})")


def _read_owner(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = b""
    while chunk := os.read(fd, 65536):
        raw += chunk
    try:
        owner = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {"command": f"unreadable lock file content {raw[:60]!r}"}
    return owner if isinstance(owner, dict) else {}


def _open_locked(path: Path, folder: Path) -> int:
    """Open and flock `path` (created if missing); raise FolderLocked when a live process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_owner(fd)
            os.close(fd)
            raise FolderLocked(f"{folder} is in use by another run: {_describe(owner)}; wait for it to finish or "
                               f"choose another output folder (lock file {path})") from None
        # a holder that was releasing may have unlinked the file between our open and our flock: then the lock
        # we hold is on a file nobody else will ever open; start again on the path's current file
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def _command_line(what: str) -> str:
    """This process's command line as the user typed it (`flanlab ...`), for the message of a second run."""
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    if program in ("cli.py", "flanlab", "__main__.py"):
        program = "flanlab"
    line = shlex.join([program, *sys.argv[1:]])
    line = line if len(line) <= 300 else line[:297] + "..."
    return line if program == "flanlab" and what in sys.argv[1:2] else f"{line} [{what}]"


def _acquire(path: Path, folder: Path, what: str) -> int:
    fd = _open_locked(path, folder)
    try:
        stale = _read_owner(fd)
        if stale:  # its process died holding it (a normal exit removes the file)
            log.warning("%s: taking over a stale lock left by %s, which is no longer running", folder,
                        _describe(stale))
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "command": _command_line(what),
                 "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps(owner) + "\n").encode("utf-8"))
        return fd
    except BaseException:
        os.close(fd)
        raise


def _release(path: Path, fd: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # first unlink, then unlock: a waiting opener then retries on a fresh file
    os.close(fd)


def _on_sigterm(signum, frame):
    log.warning("terminated (SIGTERM): cleaning up")
    raise SystemExit(128 + signal.SIGTERM)


def _install_sigterm() -> None:
    global _previous_sigterm
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        _previous_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)


def _restore_sigterm() -> None:
    global _previous_sigterm
    if _previous_sigterm is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _previous_sigterm)
        _previous_sigterm = None


def takes_lock() -> bool:
    """Whether this process takes run locks: yes, except the processes of RANK > 0 of a multi-process launch."""
    return process_rank() == 0  # RANK, or an MPI launcher's rank variable (flanlab.log, as accelerate reads them)


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold the exclusive lock of run folder `folder` (`what`: the command, for the message). See the module
    docstring. Raises FolderLocked, naming the folder and the holder, when another live process holds it."""
    if not takes_lock():
        yield
        return
    path = lock_path(folder)
    folder = Path(folder)
    with _guard:
        if path in _held:
            fd, depth = _held[path]
            _held[path] = (fd, depth + 1)
            nested = True
        else:
            nested = False
    if not nested:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _acquire(path, folder, what)
        log.debug("%s: locked (%s)", folder, path)
        with _guard:
            outermost = not _held
            _held[path] = (fd, 1)
        if outermost:
            _install_sigterm()
    try:
        if not nested:  # inside the try: a failure here (a permission error) still releases the lock
            for removed in fileio.remove_stale_temporaries(Path(folder).resolve()):
                log.info("removed %s, left by an interrupted run", removed)
        yield
    finally:
        with _guard:
            fd, depth = _held[path]
            if depth > 1:
                _held[path] = (fd, depth - 1)
                last = False
            else:
                del _held[path]
                last = True
                outermost = not _held
        if last:
            _release(path, fd)
            if outermost:
                _restore_sigterm()


def locks_folder(what: str, folder_of: Callable[..., str | os.PathLike | None]):
    """Decorator: the function runs holding run_lock(folder_of(*args, **kwargs), what); no lock when that is
    None (a call that writes no folder)."""

    def decorate(fn):
        @functools.wraps(fn)
        def locked(*args, **kwargs):
            folder = folder_of(*args, **kwargs)
            with run_lock(folder, what) if folder is not None else contextlib.nullcontext():
                return fn(*args, **kwargs)

        return locked

    return decorate
