"""What a task is (Task) and which tasks may never be trained on (held_out_reason): the shapes the task catalog
(flanlab/data/catalog.py), the Flan collection (flanlab/data/flan_collection.py) and the mixture builder share.
A leaf: it imports only the templates, so every source of tasks can import it.

Held-out protection by name: HELD_OUT_RULES (data, below) names the benchmarks of the held-out suite and a
pattern for tasks derived from each; a task whose name (or NIV2 source/URL) matches is excluded from training
and listed as held out with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from flanlab.data.templates import FORMAT_GROUP, STYLES, TEMPLATE_SETS, TemplateSet

# Tasks derived from the held-out benchmarks, by name. NIV2's MMLU tasks are spelled "mmmlu" (task664-737);
# BIG-Bench tasks are excluded as a whole because BBH is a subset of BIG-Bench (conservative: NIV2 has one,
# task062_bigbench_repeat_copy_logic, which is not among BBH's 27 tasks).
HELD_OUT_RULES: dict[str, str] = {
    "mmlu": r"m+mlu|hendrycks|massive.?multitask",
    "bbh": r"bbh|big.?bench",
    "tydiqa": r"tydi",
    "mgsm": r"mgsm",
}
_HELD_OUT_RE = {bench: re.compile(rx, re.IGNORECASE) for bench, rx in HELD_OUT_RULES.items()}


def held_out_reason(name: str, extra_text: str = "") -> str:
    """'' for a trainable task; else why it is excluded, e.g. 'derived from mmlu (name matches /m+mlu/)'."""
    for bench, rx in _HELD_OUT_RE.items():
        for where, text in (("name", name), ("source", extra_text)):
            if text and rx.search(text):
                return f"derived from {bench} ({where} matches /{HELD_OUT_RULES[bench]}/)"
    return ""


@dataclass(frozen=True)
class Task:
    """One task: how to read its records and which template sets render them."""

    name: str
    category: str
    source: str  # synthetic | niv2 | flan_cot | gsm8k | flan_collection | file
    style: str  # a key of templates.STYLES: plain | instruct | niv2 | gsm
    fields: frozenset  # record fields every record has (question, answer, options, rationale, definition, ...)
    count: int | None  # number of records; None for a synthetic (endless) stream
    open: Callable[[int, str], Iterator[dict]] = field(repr=False, compare=False)  # (seed, split) -> records
    held_out: str = ""  # why the task may never be trained on ('' = trainable)
    instruction: str = ""  # synthetic families: the one-sentence instruction the templates show
    path: str = ""  # the file it is read from, for reports
    description: str = ""
    # Pre-rendered tasks (the Flan collection): rows already hold inputs and targets, never templated here.
    prerendered: dict[str, int] | None = None  # flanlab format -> rows of it; None: rendered through templates
    open_rows: Callable[[str, int], Iterator[dict]] | None = field(default=None, repr=False, compare=False)  # (format,
    # seed) -> that format's rows {inputs, targets, format, template_id} in a seeded order

    @property
    def finite(self) -> bool:
        return self.count is not None

    def template_fields(self) -> set[str]:
        """The fields this task can fill in a template (record fields plus the ones rendering adds)."""
        out = set(self.fields)
        if self.instruction:
            out.add("instruction")
        if "rationale" in out:
            out.add("trigger")
        if "positive_examples" in out:
            out.add("examples")
        return out

    def template_sets(self, sets: dict[str, TemplateSet] | None = None) -> dict[str, TemplateSet]:
        """format group -> the template set serving it, for the groups this task can fill at all."""
        sets = TEMPLATE_SETS if sets is None else sets
        have = self.template_fields()
        out = {}
        for group, set_name in STYLES[self.style].items():
            if group == "opt" and "options" not in have:
                continue
            if group == "cot" and "rationale" not in have:
                continue
            out[group] = sets[set_name]
        return out

    def formats(self, sets: dict[str, TemplateSet] | None = None) -> dict[str, list]:
        """format -> the templates usable for this task (every field they name is one the task has); a
        pre-rendered task has each format it holds rows of, with no templates."""
        if self.prerendered is not None:
            return {fmt: [] for fmt in FORMAT_GROUP if self.prerendered.get(fmt)}
        have = self.template_fields()
        out: dict[str, list] = {}
        for group, ts in self.template_sets(sets).items():
            for fmt, fmt_group in FORMAT_GROUP.items():
                if fmt_group != group:
                    continue
                usable = [t for t in ts.templates if fmt in t.formats and t.fields <= have]
                if usable:
                    out[fmt] = usable
        return out
