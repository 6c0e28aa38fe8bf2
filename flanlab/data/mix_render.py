"""Renderers: one task stream's next example, as (record, (inputs, targets, template id, format)).

TemplateRenderer renders a templated task's records: they come through a small seeded shuffle buffer that also
supplies few-shot exemplars (other records of the task, never the query's), and each example draws its format
by the format weights, then a template, an option style and a CoT trigger; a few-shot example keeps as many
exemplars as fit max_input_tokens, else falls back to the zero-shot format. PassThroughRenderer hands over a
pre-rendered (Flan collection) task's rows as FLAN's templates rendered them. The renderer is on the build's hot
path: its speed tricks (cumulative format weights, bound rng.random, templates chosen once per format) stay here.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections import deque
from collections.abc import Iterator

from flanlab.data.mix_filters import Decontaminator, Example4, Lengths
from flanlab.data.mix_plan import PlannedTask
from flanlab.data.templates import (
    FEW_SHOT_FORMATS, FORMAT_GROUP, OPTION_STYLES, TRIGGERS, ZERO_SHOT_OF, Template, TemplateSet, render_few_shot,
    render_niv2_examples,
)

OPTION_STYLE_KEYS = tuple(OPTION_STYLES)
N_OPTION_STYLES, N_TRIGGERS = len(OPTION_STYLE_KEYS), len(TRIGGERS)


class PassThroughRenderer:
    """A pre-rendered task: each row (already in a seeded order, with its format drawn) passed through as it is."""

    shows_rationales = False  # a row's rationale, if any, is in its inputs/targets, checked whole with the row

    def __init__(self, rows: Iterator[dict]):
        self.rows = rows

    def next(self) -> tuple[dict, Example4] | None:
        rec = next(self.rows, None)
        if rec is None:
            return None
        return rec, (rec["inputs"], rec["targets"], rec["template_id"], rec["format"])


class TemplateRenderer:
    """A templated task: records through a seeded shuffle buffer, rendered with seeded template choices."""

    shows_rationales = True  # its CoT formats render the record's rationale (checked by the RationaleShown filter)

    def __init__(self, pt: PlannedTask, records: Iterator[dict], rng: random.Random, *, fewshot: int,
                 lengths: Lengths, decontam: Decontaminator, template_sets: dict[str, TemplateSet],
                 buffer_size: int):
        self.pt, self.task, self.records, self.rng = pt, pt.task, records, rng
        self.fewshot, self.lengths, self.decontam, self.template_sets = fewshot, lengths, decontam, template_sets
        fmt_names = list(pt.formats)
        total = sum(pt.formats[f][0] for f in fmt_names)
        self.fmt_cum = list(itertools.accumulate(pt.formats[f][0] / total for f in fmt_names))
        self.last_fmt = len(self.fmt_cum) - 1
        # per format, in fmt_names order: (format, its templates, few-shot?)
        self.fmt_choices = [(f, pt.formats[f][1], f in FEW_SHOT_FORMATS) for f in fmt_names]
        self.buffer: list[dict] = []
        self.buffer_size = max(1, buffer_size)
        self.recent: deque = deque(maxlen=8)

    def next(self) -> tuple[dict, Example4] | None:
        """A record drawn at random from the refilled buffer (it joins the recent ones), and its example."""
        buffer = self.buffer
        while len(buffer) < self.buffer_size:
            rec = next(self.records, None)
            if rec is None:
                break
            buffer.append(rec)
        if not buffer:
            return None
        i = int(self.rng.random() * len(buffer))
        rec = buffer[i]
        buffer[i] = buffer[-1]
        buffer.pop()
        self.recent.append(rec)
        return rec, self.render(rec)

    def _values(self, rec: dict, t: Template, style: str, trigger: str) -> dict[str, str]:
        """The values template t needs (options rendered in the chosen style)."""
        v = {"question": rec["question"], "answer": rec["answer"], "trigger": trigger,
             "instruction": self.task.instruction}
        if t.extra_fields:
            fields = t.fields
            if "rationale" in fields:  # a sentence before "So the answer is ...": end it with a full stop
                r = rec["rationale"].strip()
                v["rationale"] = r if not r or r[-1] in ".!?:;" else r + "."
            if "options" in fields:
                v["options"] = OPTION_STYLES[style](rec["options"])
            if "definition" in fields:
                v["definition"] = rec["definition"]
        return v

    def render(self, rec: dict) -> Example4:
        """(inputs, targets, template id, format) for one record."""
        rand = self.rng.random
        fmt, templates, few_shot = self.fmt_choices[min(bisect.bisect(self.fmt_cum, rand()), self.last_fmt)]
        t = templates[int(rand() * len(templates))]
        style = OPTION_STYLE_KEYS[int(rand() * N_OPTION_STYLES)]
        trigger = TRIGGERS[int(rand() * N_TRIGGERS)]
        values = self._values(rec, t, style, trigger)
        if few_shot:
            if "examples" in t.fields:  # NIV2: the task's positive examples
                shown = self._niv2_few_shot(rec, t, values)
            else:
                shown = self._exemplar_few_shot(rec, t, values, style, trigger)
            if shown is not None:
                inputs, targets = shown
                return inputs, targets, t.id, fmt
            fmt = ZERO_SHOT_OF[fmt]  # no exemplar fits (or none exists): the zero-shot format instead
            zs = self.pt.formats[fmt][1] if fmt in self.pt.formats else self._zero_shot_templates(fmt)
            t = zs[int(rand() * len(zs))]
            values = self._values(rec, t, style, trigger)
        return t.render_input(values), t.render_target(values), t.id, fmt

    def _niv2_few_shot(self, rec: dict, t: Template, values: dict) -> tuple[str, str] | None:
        """An NIV2 few-shot example: 1..fewshot of the task's positive examples, fewer until the input fits."""
        lengths = self.lengths
        pos = rec.get("positive_examples") or []
        k = min(len(pos), 1 + int(self.rng.random() * max(1, self.fewshot)))
        while k > 0:
            values["examples"] = render_niv2_examples(pos[:k])
            inputs = t.render_input(values)
            if lengths.count(inputs) <= lengths.max_input:
                return inputs, t.render_target(values)
            k -= 1
        return None

    def _exemplar_few_shot(self, rec: dict, t: Template, values: dict, style: str, trigger: str) -> tuple[str, str] | None:
        """A few-shot example whose exemplars are other records of the task (buffered upcoming ones and recent
        ones), never this one; a CoT exemplar whose rationale overlaps a benchmark is never picked."""
        rand = self.rng.random
        buffer, recent = self.buffer, self.recent
        nb, total = len(buffer), len(buffer) + len(recent)
        want = 1 + int(rand() * max(1, self.fewshot))
        question = rec["question"]
        cot = t.extra_fields and "rationale" in t.fields  # exemplars show their rationales
        shots, used = [], set()
        for _ in range(4 * want if total else 0):
            j = int(rand() * total)
            ex = buffer[j] if j < nb else recent[j - nb]
            if j in used or ex["question"] == question or (cot and self.decontam.rationale(ex)):
                continue
            used.add(j)
            ev = self._values(ex, t, style, trigger)
            shots.append((t.render_input(ev), t.render_target(ev)))
            if len(shots) == want:
                break
        if not shots:
            return None
        query = (t.render_input(values), t.render_target(values))
        inputs, kept = render_few_shot(t, query, shots, self.lengths.max_input, self.lengths.count)
        return (inputs, query[1]) if kept else None

    def _zero_shot_templates(self, fmt: str) -> list:
        group = FORMAT_GROUP[fmt]
        have = self.task.template_fields()
        ts = self.task.template_sets(self.template_sets)[group]
        return [t for t in ts.templates if fmt in t.formats and t.fields <= have]
