"""A mixture's examples as a stream: one TaskStream per planned task (its records -> a renderer -> the example
filters), merged by deterministic stratified interleaving: the k-th example of a task with n examples gets the
key (k + u)/n, u uniform in [0, 1) from the task's seeded RNG, and a heap emits keys in order."""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass

from flanlab.data.mix_config import MixtureConfig
from flanlab.data.mix_filters import (
    COT_FORMATS, Decontaminator, Dedup, DigestSet, Example4, Lengths, LengthLimit, RationaleShown, Removed, seed_of,
)
from flanlab.data.mix_plan import Plan, PlannedTask
from flanlab.data.mix_records import RecordBudget, task_records
from flanlab.data.mix_render import PassThroughRenderer, TemplateRenderer
from flanlab.data.templates import FORMATS, TemplateSet

MAX_RETRIES = 64  # consecutive duplicates / over-long drops before a task counts as exhausted


@dataclass
class StreamParts:
    """What the task streams of one build share, each piece with one job."""

    config: MixtureConfig
    template_sets: dict[str, TemplateSet]
    decontam: Decontaminator  # benchmark overlap of records, rationales and rows
    lengths: Lengths  # how lengths are measured, and the limits
    removed: Removed  # what the filters removed, by reason and task (stats.json's "removed")
    budget: RecordBudget  # memory left for finite tasks' records after their first epoch


class TaskStream:
    """One task's examples for one split: each drawn example passes the filters of its format in order, or the
    task draws again; after MAX_RETRIES drops in a row (or with no record left) the task is exhausted."""

    def __init__(self, renderer: TemplateRenderer | PassThroughRenderer, filters: dict[str, list]):
        self.renderer = renderer
        # format -> the example filters' keep methods: (record, example) -> the example (possibly cut) or None
        self.filters = filters
        self.exhausted = False
        self.produced = 0

    def next_example(self) -> Example4 | None:
        """The task's next example that passes the filters, or None when it has no more."""
        draw, filters = self.renderer.next, self.filters
        fails = 0
        while fails < MAX_RETRIES:
            drawn = draw()
            if drawn is None:
                break
            rec, ex = drawn
            for keep in filters[ex[3]]:
                ex = keep(rec, ex)
                if ex is None:
                    fails += 1
                    break
            else:
                self.produced += 1
                return ex
        self.exhausted = True
        return None


def open_stream(pt: PlannedTask, parts: StreamParts, split: str, seen: DigestSet | None) -> TaskStream:
    """The stream of one planned task: its records, the renderer its kind takes, the example filters by format
    (a chain-of-thought example also has its record's rationale checked, when the renderer shows rationales)."""
    cfg, name = parts.config, pt.task.name
    records = task_records(pt, split, cfg, parts.decontam, parts.removed, parts.budget)
    if pt.task.prerendered is not None:
        renderer: TemplateRenderer | PassThroughRenderer = PassThroughRenderer(records)
    else:
        renderer = TemplateRenderer(pt, records, random.Random(seed_of(cfg.seed, split, pt.key)), fewshot=cfg.fewshot,
                                    lengths=parts.lengths, decontam=parts.decontam,
                                    template_sets=parts.template_sets, buffer_size=cfg.shuffle_buffer)
    chain = [LengthLimit(name, parts.lengths, cfg.overlong, parts.removed).keep]
    if seen is not None:
        chain.append(Dedup(name, seen, parts.removed).keep)
    filters = {fmt: chain for fmt in FORMATS}
    if renderer.shows_rationales and parts.decontam.index is not None:
        cot_chain = [RationaleShown(name, parts.decontam, parts.removed).keep] + chain
        filters.update({fmt: cot_chain for fmt in COT_FORMATS})
    return TaskStream(renderer, filters)


class Interleave:
    """The examples of one split, merged over the plan's tasks: iterate for (planned task, example); once the
    iteration ends, `shortfall` holds each exhausted stream's examples planned but not produced."""

    def __init__(self, plan: Plan, parts: StreamParts, split: str, seen: DigestSet | None):
        self.plan, self.parts, self.split, self.seen = plan, parts, split, seen
        self.shortfall: dict[str, int] = {}

    def __iter__(self) -> Iterator[tuple[PlannedTask, Example4]]:
        plan, split = self.plan, self.split
        streams = {}
        heap = []
        for order, pt in enumerate(plan.tasks):
            n = pt.val_count if split == "validation" else pt.count
            if n <= 0:
                continue
            key_rng = random.Random(seed_of(plan.config.seed, split, pt.key, "keys"))
            streams[order] = (pt, None, key_rng, n)
            heapq.heappush(heap, (key_rng.random() / n, order, 0))
        while heap:
            _, order, k = heapq.heappop(heap)
            pt, stream, key_rng, n = streams[order]
            if stream is None:  # opened at its first example
                stream = open_stream(pt, self.parts, split, self.seen)
                streams[order] = (pt, stream, key_rng, n)
            ex = stream.next_example()
            if ex is None:
                continue  # exhausted: its remaining slots stay empty (reported)
            yield pt, ex
            if k + 1 < n:
                heapq.heappush(heap, ((k + 1 + key_rng.random()) / n, order, k + 1))
        self.shortfall = {pt.key: n - stream.produced
                          for pt, stream, _, n in streams.values() if stream is not None and stream.exhausted}
