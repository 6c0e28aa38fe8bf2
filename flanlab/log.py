"""flanlab's status lines: one `logging` hierarchy ("flanlab.*") written to stderr as "[flanlab] message".

A command's result (a table, JSON, a listing, the summary the user asked for) is printed to stdout; everything
else a command says while it works (what it loads, resumes, skips, converts, removes) is logged here, so that
`--quiet` can silence it and `--verbose` can add debug lines (cache hits, resolved paths) without touching the
result. Errors are never silenced: the CLI prints them itself, one line on stderr (flanlab/errors.py).

    from flanlab.log import get_logger
    log = get_logger(__name__)        # a module under flanlab/: "flanlab.train.sft", ...
    log.info("resuming from %s (step %d)", path, step)
    log.debug("cache hit: %s", key)

`setup(verbosity)` sets the level: "quiet" (warnings and errors only), "normal" (info, the default) or
"verbose" (debug). The CLI calls it from --quiet / --verbose (each time, so a level never outlives its command);
a Python caller gets the default without calling it, so `flanlab.train.train()` says what it does as the CLI
does. A program that wants flanlab's records in its own logging setup calls `propagate(True)`, which removes
flanlab's handler.

Several processes (accelerate launch, torchrun, mpirun): the handler shows info and debug lines from the main
process only, as accelerate's `get_logger(..., main_process_only=True)` does; warnings and errors come from every
process, tagged with its rank ("[flanlab rank 1] warning: ..."). The rank is read from the launcher's environment
(RANK and the MPI equivalents accelerate reads), so it needs no Accelerator or process group to exist first, and
a command that never starts one (mix, tasks) behaves the same.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Literal

ROOT = "flanlab"
Verbosity = Literal["quiet", "normal", "verbose"]
LEVELS: dict[str, int] = {"quiet": logging.WARNING, "normal": logging.INFO, "verbose": logging.DEBUG}
# the environment variables that carry a process's global rank, as accelerate's PartialState reads them
RANK_VARIABLES = ("RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK", "PMI_RANK")


def process_rank() -> int:
    """This process's global rank under a multi-process launcher; 0 when launched alone."""
    for name in RANK_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value.isdigit():
            return int(value)
    return 0


class MainProcessFilter(logging.Filter):
    """Lets info and debug records through on the main process only; warnings and errors on every process."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.rank = process_rank()
        return record.rank == 0 or record.levelno >= logging.WARNING


class Formatter(logging.Formatter):
    """ "[flanlab] message"; "[flanlab] warning: message" from warnings up; the rank beside flanlab off the main
    process."""

    def format(self, record: logging.LogRecord) -> str:
        rank = getattr(record, "rank", 0)
        tag = "[flanlab]" if rank == 0 else f"[flanlab rank {rank}]"
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        text = f"{tag} {level}{record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time of the record (a test's capture, a redirected stream), not to
    the stream that was current when the handler was made."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; the property always reads sys.stderr
        pass

    def emit(self, record: logging.LogRecord) -> None:
        """A line written while progress bars are on screen clears them first and redraws them after, so it
        starts its own line instead of trailing a bar (tqdm's write mode; its bars share one registry)."""
        bars = sys.modules.get("tqdm.std")  # a bar can be on screen only where tqdm is imported already
        if bars is None or not getattr(bars.tqdm, "_instances", None):
            super().emit(record)
            return
        with bars.tqdm.external_write_mode(file=self.stream):
            super().emit(record)


def _handler() -> StderrHandler:
    handler = StderrHandler()
    handler.addFilter(MainProcessFilter())
    handler.setFormatter(Formatter())
    return handler


def _root() -> logging.Logger:
    """The "flanlab" logger, given its one handler and the default level on first use (never at import)."""
    root = logging.getLogger(ROOT)
    if not getattr(root, "_flanlab_configured", False):
        root.addHandler(_handler())
        root.setLevel(LEVELS["normal"])
        root.propagate = False  # shown once, by this handler, whatever the program's root logger does
        root._flanlab_configured = True  # type: ignore[attr-defined]
    return root


def get_logger(name: str) -> logging.Logger:
    """The logger for `name` under the "flanlab" hierarchy (a module's __name__, or a short name like "train")."""
    _root()
    if name != ROOT and not name.startswith(ROOT + "."):
        name = f"{ROOT}.{name}"
    return logging.getLogger(name)


def setup(verbosity: Verbosity = "normal") -> None:
    """Set how much flanlab says: "quiet" warnings and errors only, "normal" info, "verbose" debug too."""
    if verbosity not in LEVELS:
        raise ValueError(f"verbosity must be one of {', '.join(LEVELS)}, not {verbosity!r}")
    _root().setLevel(LEVELS[verbosity])


def level() -> int:
    """The current level of flanlab's status lines (for restore())."""
    return _root().level


def restore(saved: int) -> None:
    """Put back a level saved by level() (the CLI, after its command)."""
    _root().setLevel(saved)


def propagate(enabled: bool) -> None:
    """True: hand flanlab's records to the program's own logging (root logger) instead of flanlab's handler."""
    root = _root()
    for handler in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(handler)
    if not enabled:
        root.addHandler(_handler())
    root.propagate = enabled
