"""A task's records, as its stream reads them: epoch after epoch for a finite task (the first epoch kept in memory
under a memory budget shared by all tasks, or re-read), the validation split held apart by a hash bucket, and the
record filters applied (flanlab/data/mix_filters.py); a synthetic family's endless stream (its validation split
is the generator's own); a pre-rendered (Flan collection) task's rows, a format drawn for each."""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Callable, Iterator

from flanlab.data.mix_config import MixtureConfig
from flanlab.data.mix_filters import AllOf, Decontaminator, InSplit, NotContaminated, NotEmpty, Removed, seed_of
from flanlab.data.mix_plan import PlannedTask

RecordFilter = Callable[[dict, bool], bool]  # (record, report removals?) -> keep?


class RecordBudget:
    """The memory (estimated bytes) that finite tasks' records may still take after their first epoch, in all."""

    def __init__(self, megabytes: int):
        self.left = megabytes << 20


def record_bytes(rec: dict) -> int:
    """A record's memory, roughly: its own strings plus ~200 bytes of dict (texts shared by every record of a
    task, such as an NIV2 definition, are counted each time: an overestimate)."""
    return 200 + sum(len(v) for v in rec.values() if isinstance(v, str))


def task_records(pt: PlannedTask, split: str, cfg: MixtureConfig, decontam: Decontaminator, removed: Removed,
                 budget: RecordBudget) -> Iterator[dict]:
    """The records (or pre-rendered rows) one stream of a task reads for `split`, filtered; lazy (nothing is
    opened before the first record is asked for)."""
    task = pt.task
    on = decontam.index is not None  # decontamination
    if task.prerendered is not None:
        usable = _finite_filter(task.name, "inputs", "targets", split, cfg, decontam.row if on else None, removed)
        yield from epochs(_format_draws(pt, split, cfg.seed), usable, None)
    elif not task.finite:  # synthetic: the validation split is the generator's own disjoint stream
        stream_split = "validation" if split == "validation" else "train"
        if pt.key != task.name:  # the same family in a second submixture: its own record stream
            stream_split = f"{stream_split}:{pt.submixture}"
        records = task.open(cfg.seed, stream_split)
        if not on:
            yield from records
            return
        # the filter's two halves called here (a call less a record: a synthetic record is one example)
        not_contaminated = NotContaminated(task.name, "question", decontam.record, removed)
        check, report = not_contaminated.check, not_contaminated.report
        for rec in records:
            hit = check(rec)
            if not hit:
                yield rec
            else:
                report(rec, hit)
    else:
        usable = _finite_filter(task.name, "question", "answer", split, cfg, decontam.record if on else None, removed)
        yield from epochs(lambda: task.open(cfg.seed, "train"), usable, budget)


def _finite_filter(task: str, text: str, target: str, split: str, cfg: MixtureConfig,
                   check: Callable[[dict], str | None] | None, removed: Removed) -> RecordFilter:
    """Not empty, in this split's hash bucket (when a validation split is asked for), not contaminated (by
    `check`, a Decontaminator method; None: decontamination is off)."""
    chain: list = [NotEmpty(task, text, target, removed)]
    if cfg.validation_size > 0:
        chain.append(InSplit(task, text, target, split, cfg.validation_fraction))
    if check is not None:
        chain.append(NotContaminated(task, text, check, removed))
    return AllOf(chain).keep if len(chain) > 1 else chain[0].keep


def epochs(open_records: Callable[[], Iterator[dict]], usable: RecordFilter,
           budget: RecordBudget | None) -> Iterator[dict]:
    """A finite task's usable records, epoch after epoch (until an epoch has none); the first epoch reports what
    `usable` removes. With a `budget`, every epoch reads the records in the same order, so later epochs repeat
    the first one's: from memory when its usable records fit what is left of the budget, else re-read with the
    first epoch's verdicts kept (a byte a record), so that a task is decontaminated once. Without one
    (`open_records` gives a new order each time), every epoch is checked again."""
    same_order = budget is not None
    verdicts = bytearray()  # same_order, first epoch: 1 for each record this split uses
    kept: list[dict] | None = [] if same_order else None  # first epoch: its usable records, while they fit
    kept_bytes = 0
    epoch = 0
    while True:
        if epoch and kept is not None:  # every usable record fitted: the same ones in the same order, from memory
            yield from kept
            continue
        yielded = 0
        for i, rec in enumerate(open_records()):
            if epoch and same_order:  # a re-read: the first epoch's verdict
                ok = verdicts[i]
            else:
                ok = usable(rec, epoch == 0)
                if epoch == 0 and same_order:
                    verdicts.append(ok)
                if ok and kept is not None:
                    size = record_bytes(rec)
                    if size <= budget.left:
                        kept.append(rec)
                        kept_bytes += size
                        budget.left -= size
                    else:  # it does not all fit: give the memory back, re-read later epochs
                        budget.left += kept_bytes
                        kept = None
            if ok:
                yielded += 1
                yield rec
        if not yielded:
            return
        epoch += 1


def _format_draws(pt: PlannedTask, split: str, seed: int) -> Callable[[], Iterator[dict]]:
    """One pass over a pre-rendered task's rows, as a function starting a new pass: each draw picks a format by
    the submixture's format weights (among the formats the task has rows of) and takes that format's next row
    (rows in a seeded order); a format whose rows are used up drops out of the pass, so the others fill in; the
    next pass repeats rows (removed as duplicates when dedup is on)."""
    task = pt.task
    rng = random.Random(seed_of(seed, split, pt.key, "formats"))
    weights = {f: w for f, (w, _) in pt.formats.items()}

    def one_pass() -> Iterator[dict]:
        live = dict(weights)
        rows = {f: task.open_rows(f, seed_of(seed, task.name, f)) for f in live}
        while live:
            names = list(live)
            cum = list(itertools.accumulate(live[f] for f in names))
            fmt = names[min(bisect.bisect(cum, rng.random() * cum[-1]), len(names) - 1)]
            rec = next(rows[fmt], None)
            if rec is None:
                del live[fmt]
                continue
            yield rec

    return one_pass
