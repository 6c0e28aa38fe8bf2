"""Stage, skip and resume: the one rule of a run made of stages (`flanlab demo`, the cells of `flanlab scale`).

A stage writes into its folder and ends with its completion record, a file written last. On every run a stage is
  - finished when its completion record exists and its check passes: the settings recorded when it ran are the
    settings it would run with now. It is skipped ("✓ <name>: done (skipped)"; a mixture: "built before (reused)").
  - refused when its completion record exists but it ran with other settings (or recorded none), or when a stage
    it reads from ran again in this invocation (the training it evaluated was redone): a ValueError naming the
    folder, what differs, and what to remove to redo it. A rerun never reports numbers computed under settings the
    config no longer holds, nor on an output that was replaced since.
  - run otherwise, with its wall time. A killed stage left no completion record, so it runs again and
    resumes what it wrote: a training run from its last checkpoint, an evaluation from its item cache; a mixture
    is written aside and renamed into place, so a killed build starts over.
What a kind of stage records and how two settings compare is its check (flanlab/scale.py builds the kinds: an
evaluation, a mixture, a training run, a grid cell); the rule itself is here and nowhere else.

What a stage says ("▶ name", "✓ name (12.3 s)", "✓ name: done (skipped)") are status lines: info records of
flanlab.log on stderr, which --quiet silences; the run's results (a table, the report's path) are its caller's.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from flanlab.log import get_logger

log = get_logger(__name__)
ABSENT = "<absent>"  # how a setting one side does not have is shown in a difference


@dataclass(frozen=True)
class Stage:
    name: str  # said: "2/5 before", "tiny-llama · tasks-9"
    action: str  # what running it does, said after the name: "evaluate tiny-llama"
    folder: Path  # what the stage writes
    done: str  # its completion record: a file in `folder`, written last
    check: Callable[[], None]  # once the record exists: raises ValueError when it ran with other settings
    work: Callable[[], object]  # runs the stage (and resumes a killed one)
    skipped: str = "done (skipped)"  # said after the name when it is finished
    inputs: tuple[str, ...] = ()  # the names of the stages whose output it reads (the evaluation of a training run)

    def finished(self) -> bool:
        """True when the stage finished with the settings it would run with now; False when it has not finished
        (never run, or killed); ValueError, from its check, when it finished with other settings."""
        if not (self.folder / self.done).is_file():
            return False
        self.check()
        return True


@dataclass(frozen=True)
class SameSettings:
    """The check of a stage that records its settings in a JSON file of its folder (`file`, under `key`): they must
    equal `wanted` (both JSON-normalised), else ValueError naming `redo`, each setting that differs and the file."""

    file: Path  # the JSON file holding the recorded settings
    key: str  # where in it: "settings" (an evaluation's run_info.json), "config" (a mixture's stats.json)
    wanted: dict  # the settings the stage would run with now
    redo: Path  # what to remove to redo it (a grid cell: its eval and train folders together)
    refused: str = "finished with other settings than this config's"  # what the refusal says happened
    remove: str = ""  # what else to remove with `redo`, e.g. " and the cells trained on it"
    as_today: Callable[[object], object] = lambda recorded: recorded  # recorded settings of an older flanlab

    def __call__(self) -> None:
        recorded = json.loads(self.file.read_text(encoding="utf-8")).get(self.key) if self.file.is_file() else None
        if recorded is None:
            raise ValueError(f"{self.redo}: finished by an older flanlab that did not record its settings "
                             f"({self.file}), so whether it matches this config is unknown; use another output "
                             f"folder, or remove {self.redo}{self.remove} to redo it")
        changed = differences(self.as_today(recorded), self.wanted)
        if changed:
            raise ValueError(f"{self.redo}: {self.refused}: {', '.join(changed)} ({self.file} records the first "
                             f"values); use another output folder, or remove {self.redo}{self.remove} to redo it")


def normalised(settings) -> dict:
    """Settings as a JSON file records them (tuples become lists, keys strings): what a check compares."""
    return json.loads(json.dumps(settings))


def differences(recorded, wanted, where: str = "") -> list[str]:
    """"name (recorded -> wanted)" for each setting that differs, nested ones named by their path
    ("eval[0].limit (20 -> 3)"); [] when the two are equal."""
    if isinstance(recorded, dict) and isinstance(wanted, dict):
        keys = list(wanted) + [k for k in recorded if k not in wanted]
        return [d for k in keys for d in differences(recorded.get(k, ABSENT), wanted.get(k, ABSENT),
                                                     f"{where}.{k}" if where else str(k))]
    if isinstance(recorded, list) and isinstance(wanted, list) and len(recorded) == len(wanted):
        return [d for i, (r, w) in enumerate(zip(recorded, wanted)) for d in differences(r, w, f"{where}[{i}]")]
    if recorded == wanted:
        return []
    show = lambda value: value if value is ABSENT else repr(value)  # noqa: E731
    return [f"{where or 'settings'} ({show(recorded)} -> {show(wanted)})"]


@dataclass
class Stages:
    """Runs stages under the rule above, saying each one (info, on stderr) and keeping the wall time of those that
    ran."""

    times: dict[str, float] = field(default_factory=dict)  # "name: action" -> seconds
    ran: list[str] = field(default_factory=list)  # the names of the stages run (not skipped) in this invocation

    def run(self, stage: Stage) -> bool:
        """Skip `stage` when it is finished, else run it, timed; True when it ran. Refuses it (ValueError) when
        it finished with other settings, or before a stage it reads from ran again."""
        if stage.finished():
            redone = [name for name in stage.inputs if name in self.ran]
            if redone:
                raise ValueError(f"{stage.folder}: finished on the output of {', '.join(redone)} as it was before "
                                 f"that stage ran again now; remove {stage.folder} to redo it")
            log.info("✓ %s: %s", stage.name, stage.skipped)
            return False
        with self.timed(f"{stage.name}: {stage.action}"):
            stage.work()
        self.ran.append(stage.name)
        return True

    @contextlib.contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Say the start and the wall time of a step; record it in `times`."""
        log.info("▶ %s", name)
        t0 = time.time()
        yield
        seconds = time.time() - t0
        self.times[name] = round(seconds, 1)
        log.info("✓ %s (%.1f s)", name, seconds)
