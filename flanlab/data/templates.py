"""Templates as data: how a record (question, answer, options, rationale, ...) becomes an (inputs, targets) pair.

A `Template` is an id, an input pattern, a target pattern, the formats it serves and a version. Patterns name
fields in braces, `{question}`; `{{` and `}}` are literal braces. Only plain field names are allowed: no
attribute or index access, no conversions or format specs — checked when the Template is built — so rendering
(str.format_map on the checked pattern) only substitutes values: nothing is ever evaluated, and braces inside
values stay text. Patterns are parsed when a Template is built and checked against their set's fields when
a set is loaded (`check_template_set`), so a template naming a field its task lacks fails at load, naming the
template id and the field, not in the middle of a build.

The six formats (as in the paper):
    zs_opt / fs_opt       zero-/few-shot, answer options listed in the input    (tasks with options)
    zs_noopt / fs_noopt   zero-/few-shot, no options listed
    cot_zs / cot_fs       chain of thought: a trigger such as "Let's think step by step." in the input and a
                          target "{rationale} So the answer is {answer}."          (tasks with a rationale)
Few-shot inputs are exemplars (from the task's own training items, never the item itself) rendered with the
same template, each followed by its target, then the query; exemplars are dropped from the end until the
input fits the maximum length. NIV2 tasks follow the paper: the definition, optionally the task's positive
examples (its few-shot format), then the instance input.

TEMPLATE_SETS is the registry of template sets (name -> TemplateSet); STYLES says which set serves which
format group for each kind of task (plain questions, synthetic tasks with an instruction, NIV2, GSM8K).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from flanlab.registry import did_you_mean, lookup

FORMATS = ("zs_opt", "zs_noopt", "fs_opt", "fs_noopt", "cot_zs", "cot_fs")
FORMAT_GROUP = {"zs_opt": "opt", "fs_opt": "opt", "zs_noopt": "noopt", "fs_noopt": "noopt", "cot_zs": "cot", "cot_fs": "cot"}
FEW_SHOT_FORMATS = ("fs_opt", "fs_noopt", "cot_fs")
ZERO_SHOT_OF = {"fs_opt": "zs_opt", "fs_noopt": "zs_noopt", "cot_fs": "cot_zs"}  # used when no exemplar fits
COT_TARGET = "{rationale} So the answer is {answer}."

_FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class TemplateError(ValueError):
    """A template that cannot be parsed or names a field its set does not have."""


def parse_pattern(pattern: str, where: str) -> tuple[tuple[str, str | None], ...]:
    """'Q: {question}\\nA:' -> (('Q: ', 'question'), ('\\nA:', None)). Rejects anything but plain field names."""
    try:
        parsed = list(string.Formatter().parse(pattern))
    except ValueError as e:
        raise TemplateError(f"{where}: cannot parse pattern {pattern!r} ({e}); write literal braces as {{{{ and }}}}") from None
    parts = []
    for literal, name, spec, conversion in parsed:
        if name is None:
            parts.append((literal, None))
            continue
        if not _FIELD_NAME.match(name):
            raise TemplateError(f"{where}: field {{{name}}} is not a plain field name (no positional fields, "
                                "attribute or index access)")
        if spec or conversion:
            raise TemplateError(f"{where}: field {{{name}}} has a conversion or format spec; only {{name}} is allowed")
        parts.append((literal, name))
    return tuple(parts)


def fill(parts: tuple[tuple[str, str | None], ...], values: dict[str, str]) -> str:
    """Concatenate literals and field values (the reference renderer; Template.render_input is the fast path)."""
    return "".join(lit + values[name] if name is not None else lit for lit, name in parts)


@dataclass(frozen=True)
class Template:
    id: str
    input: str
    target: str
    formats: tuple[str, ...]
    version: int = 1
    input_parts: tuple = field(init=False, repr=False, compare=False)
    target_parts: tuple = field(init=False, repr=False, compare=False)
    fields: frozenset = field(init=False, repr=False, compare=False)  # every field either pattern names
    extra_fields: bool = field(init=False, repr=False, compare=False)  # names rationale, options or definition
    # The renderers: values -> text. The patterns hold only plain field names (checked in __post_init__), so
    # each is just the pattern's str.format_map (a C call, no Python frame: rendering is the mix's hot path).
    render_input: Callable[[dict[str, str]], str] = field(init=False, repr=False, compare=False)
    render_target: Callable[[dict[str, str]], str] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        inp = parse_pattern(self.input, f"template {self.id!r} input")
        tgt = parse_pattern(self.target, f"template {self.id!r} target")
        object.__setattr__(self, "input_parts", inp)
        object.__setattr__(self, "target_parts", tgt)
        object.__setattr__(self, "fields", frozenset(n for _, n in inp + tgt if n is not None))
        object.__setattr__(self, "extra_fields", bool(self.fields & {"rationale", "options", "definition"}))
        object.__setattr__(self, "render_input", self.input.format_map)
        object.__setattr__(self, "render_target", self.target.format_map)


@dataclass(frozen=True)
class TemplateSet:
    name: str
    fields: tuple[str, ...]  # the fields a template of this set may name
    formats: tuple[str, ...]  # the formats this set serves
    templates: tuple[Template, ...]
    description: str = ""


def T(id: str, input: str, target: str = "{answer}", formats: Sequence[str] = ("zs_noopt", "fs_noopt"), version: int = 1) -> Template:
    return Template(id=id, input=input, target=target, formats=tuple(formats), version=version)


OPT = ("zs_opt", "fs_opt")
COT = ("cot_zs", "cot_fs")

# --- the registry: our own wording, about ten templates per set -----------------------------------------
TEMPLATE_SETS: dict[str, TemplateSet] = {
    "qa": TemplateSet(
        name="qa", fields=("question", "answer"), formats=("zs_noopt", "fs_noopt"),
        description="a self-contained question, answered directly",
        templates=(
            T("qa/1", "{question}"),
            T("qa/2", "Q: {question}\nA:"),
            T("qa/3", "Question: {question}\nAnswer:"),
            T("qa/4", "{question}\nWhat is the answer?"),
            T("qa/5", "Answer the following question.\n\n{question}"),
            T("qa/6", "{question}\n\nGive a short answer."),
            T("qa/7", "Here is a question: {question}\n\nThe answer is:"),
            T("qa/8", "Respond to this:\n{question}"),
            T("qa/9", "Problem: {question}\nSolution:"),
            T("qa/10", "Please answer: {question}"),
        ),
    ),
    "classification": TemplateSet(
        name="classification", fields=("question", "answer", "options"), formats=OPT,
        description="a self-contained question with its answer options listed",
        templates=(
            T("cls/1", "{question}\n{options}", formats=OPT),
            T("cls/2", "Q: {question}\n{options}\nA:", formats=OPT),
            T("cls/3", "{question}\n\n{options}\n\nAnswer with one of the options.", formats=OPT),
            T("cls/4", "Question: {question}\n{options}\nAnswer:", formats=OPT),
            T("cls/5", "Choose the correct answer.\n\n{question}\n{options}", formats=OPT),
            T("cls/6", "{options}\n\nWhich option answers this? {question}", formats=OPT),
            T("cls/7", "{question}\n{options}\nThe correct option is:", formats=OPT),
            T("cls/8", "Pick the best answer to the question below.\n{question}\n{options}", formats=OPT),
            T("cls/9", "{question}\n\nSelect your answer.\n{options}", formats=OPT),
            T("cls/10", "Read the question and the options, then answer.\n{question}\n{options}", formats=OPT),
        ),
    ),
    "cot": TemplateSet(
        name="cot", fields=("question", "answer", "rationale", "trigger"), formats=COT,
        description="a self-contained question answered with its reasoning",
        templates=(
            T("cot/1", "{question}\n{trigger}", COT_TARGET, COT),
            T("cot/2", "Q: {question}\n{trigger}\nA:", COT_TARGET, COT),
            T("cot/3", "Question: {question}\n{trigger}", COT_TARGET, COT),
            T("cot/4", "{trigger}\n\n{question}", COT_TARGET, COT),
            T("cot/5", "Answer the question below. {trigger}\n\n{question}", COT_TARGET, COT),
            T("cot/6", "{question}\n\n{trigger} Then give the answer.", COT_TARGET, COT),
            T("cot/7", "Problem: {question}\n{trigger}\nSolution:", COT_TARGET, COT),
            T("cot/8", "Here is a question: {question}\n{trigger}", COT_TARGET, COT),
            T("cot/9", "Consider this question carefully.\n{question}\n{trigger}", COT_TARGET, COT),
            T("cot/10", "Think about this one: {question}\n{trigger}", COT_TARGET, COT),
        ),
    ),
    "instruct_qa": TemplateSet(
        name="instruct_qa", fields=("instruction", "question", "answer"), formats=("zs_noopt", "fs_noopt"),
        description="a task instruction plus an input, answered directly (the synthetic families)",
        templates=(
            T("iqa/1", "{instruction}\n\n{question}"),
            T("iqa/2", "{instruction}\nInput: {question}\nOutput:"),
            T("iqa/3", "{question}\n\n{instruction}"),
            T("iqa/4", "Task: {instruction}\n{question}\nAnswer:"),
            T("iqa/5", "{instruction}\n\nQ: {question}\nA:"),
            T("iqa/6", "Instructions: {instruction}\n\n{question}"),
            T("iqa/7", "{question}\nWhat is the result? {instruction}"),
            T("iqa/8", "Follow the instruction.\n{instruction}\n{question}"),
            T("iqa/9", "{instruction} Here is the input: {question}"),
            T("iqa/10", "Input: {question}\n{instruction}\nResult:"),
        ),
    ),
    "instruct_classification": TemplateSet(
        name="instruct_classification", fields=("instruction", "question", "answer", "options"), formats=OPT,
        description="a task instruction plus an input, with answer options listed",
        templates=(
            T("icls/1", "{instruction}\n\n{question}\n{options}", formats=OPT),
            T("icls/2", "{instruction}\nInput: {question}\n{options}\nOutput:", formats=OPT),
            T("icls/3", "{question}\n\n{instruction}\n{options}", formats=OPT),
            T("icls/4", "Task: {instruction}\n{question}\n{options}\nAnswer:", formats=OPT),
            T("icls/5", "{instruction}\n{options}\n\n{question}", formats=OPT),
            T("icls/6", "{question}\n{options}\n{instruction}", formats=OPT),
            T("icls/7", "Instructions: {instruction}\n\nQ: {question}\n{options}\nA:", formats=OPT),
            T("icls/8", "{instruction} Choose one option.\n{question}\n{options}", formats=OPT),
            T("icls/9", "{question}\n\n{instruction}\n\n{options}\nThe answer is:", formats=OPT),
            T("icls/10", "Select the right option. {instruction}\n{question}\n{options}", formats=OPT),
        ),
    ),
    "instruct_cot": TemplateSet(
        name="instruct_cot", fields=("instruction", "question", "answer", "rationale", "trigger", "options"), formats=COT,
        description="a task instruction plus an input, answered with reasoning (options shown where the task has them)",
        templates=(
            T("icot/1", "{instruction}\n\n{question}\n{trigger}", COT_TARGET, COT),
            T("icot/2", "{instruction}\nInput: {question}\n{trigger}\nOutput:", COT_TARGET, COT),
            T("icot/3", "{question}\n\n{instruction} {trigger}", COT_TARGET, COT),
            T("icot/4", "Task: {instruction}\n{question}\n{trigger}", COT_TARGET, COT),
            T("icot/5", "{instruction}\n\nQ: {question}\n{trigger}\nA:", COT_TARGET, COT),
            T("icot/6", "{trigger}\n{instruction}\n{question}", COT_TARGET, COT),
            T("icot/7", "Instructions: {instruction}\n{question}\n\n{trigger}", COT_TARGET, COT),
            T("icot/8", "{instruction}\n\n{question}\n{options}\n{trigger}", COT_TARGET, COT),
            T("icot/9", "Q: {question}\n{options}\n{instruction} {trigger}\nA:", COT_TARGET, COT),
            T("icot/10", "{question}\n{options}\n\n{instruction}\n{trigger}", COT_TARGET, COT),
        ),
    ),
    "niv2": TemplateSet(
        name="niv2", fields=("definition", "question", "answer", "examples"), formats=("zs_noopt", "fs_noopt"),
        description="Super-NaturalInstructions: the definition, optionally the positive examples, then the input",
        templates=(
            T("niv2/1", "Definition: {definition}\n\nInput: {question}\nOutput:", formats=("zs_noopt",)),
            T("niv2/2", "{definition}\n\n{question}", formats=("zs_noopt",)),
            T("niv2/3", "Task definition: {definition}\nNow complete the following example -\nInput: {question}\nOutput:", formats=("zs_noopt",)),
            T("niv2/4", "Instructions: {definition}\n\nQ: {question}\nA:", formats=("zs_noopt",)),
            T("niv2/5", "{definition}\nInput: {question}\nAnswer:", formats=("zs_noopt",)),
            T("niv2/6", "Definition: {definition}\n\n{examples}\n\nNow complete the following example -\nInput: {question}\nOutput:", formats=("fs_noopt",)),
            T("niv2/7", "{definition}\n\n{examples}\n\nInput: {question}\nOutput:", formats=("fs_noopt",)),
            T("niv2/8", "Task definition: {definition}\nHere are examples of the task done right.\n{examples}\n\nNew input: {question}\nOutput:", formats=("fs_noopt",)),
            T("niv2/9", "Instructions: {definition}\n\n{examples}\n\nQ: {question}\nA:", formats=("fs_noopt",)),
            T("niv2/10", "{definition}\n{examples}\nSolve this instance in the same way.\nInput: {question}\nOutput:", formats=("fs_noopt",)),
        ),
    ),
    "gsm": TemplateSet(
        name="gsm", fields=("question", "answer", "rationale", "trigger"), formats=("zs_noopt", "fs_noopt") + COT,
        description="grade-school math word problems: a number as the answer, or the worked solution (CoT)",
        templates=(
            T("gsm/1", "Q: {question}\nA:"),
            T("gsm/2", "Solve the math word problem.\n{question}\nAnswer:"),
            T("gsm/3", "{question}\nWhat is the final number?"),
            T("gsm/4", "Question: {question}\nGive only the numeric answer."),
            T("gsm/5", "Word problem: {question}\nResult:"),
            T("gsm/6", "Q: {question}\n{trigger}\nA:", COT_TARGET, COT),
            T("gsm/7", "Solve the math word problem. {trigger}\n\n{question}", COT_TARGET, COT),
            T("gsm/8", "{question}\n{trigger}", COT_TARGET, COT),
            T("gsm/9", "Question: {question}\nWork it out. {trigger}\nAnswer:", COT_TARGET, COT),
            T("gsm/10", "Word problem: {question}\n{trigger}\nSolution:", COT_TARGET, COT),
        ),
    ),
}

# Which set serves each format group, per kind of task.
STYLES: dict[str, dict[str, str]] = {
    "plain": {"noopt": "qa", "opt": "classification", "cot": "cot"},
    "instruct": {"noopt": "instruct_qa", "opt": "instruct_classification", "cot": "instruct_cot"},
    "niv2": {"noopt": "niv2"},
    "gsm": {"noopt": "gsm", "cot": "gsm"},
}

# --- options and chain-of-thought triggers, each rendered in varied styles ----------------------------------
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _lettered(options: Sequence[str]):
    """'(A) first', '(B) second', ... (map over str.format: the same text as f-strings, about twice as fast)."""
    if len(options) > len(_LETTERS):
        raise TemplateError(f"{len(options)} options: the lettered option styles take at most {len(_LETTERS)}")
    return map("({}) {}".format, _LETTERS, options)


OPTION_STYLES: dict[str, Callable[[Sequence[str]], str]] = {
    "options_dash": lambda o: "OPTIONS:\n" + "\n".join(map("- {}".format, o)),
    "letters_inline": lambda o: " ".join(_lettered(o)),
    "choices_comma": lambda o: "Choices: " + ", ".join(o),
    "options_letters": lambda o: "Options:\n" + "\n".join(_lettered(o)),
    "select_bullets": lambda o: "Select from:\n" + "\n".join(map("* {}".format, o)),
    "possible_answers": lambda o: "Possible answers: " + "; ".join(o),
    "numbered": lambda o: "Pick one of the following:\n" + "\n".join(map("{}. {}".format, range(1, len(o) + 1), o)),
}
OPTION_STYLE_NAMES = tuple(OPTION_STYLES)

TRIGGERS = (
    "Let's think step by step.",
    "Explain your reasoning.",
    "Think it through step by step before answering.",
    "Give your reasoning, then the answer.",
    "Reason carefully, step by step.",
    "Show your work.",
    "Walk through the reasoning first.",
    "Let's work this out step by step.",
)


def render_niv2_examples(examples: Sequence[dict]) -> str:
    """NIV2 positive examples as the paper's prompt shows them."""
    return "\n\n".join(
        f"Positive Example {i + 1} -\nInput: {ex.get('input', '')}\nOutput: {ex.get('output', '')}"
        for i, ex in enumerate(examples)
    )


# --- loading and checking -----------------------------------------------------------------------------------


def check_template_set(ts: TemplateSet, where: str = "") -> None:
    """Raise TemplateError naming the template and field when a template does not fit its set."""
    prefix = f"{where}: " if where else ""
    seen = set()
    for t in ts.templates:
        if t.id in seen:
            raise TemplateError(f"{prefix}template set {ts.name!r}: duplicate template id {t.id!r}")
        seen.add(t.id)
        unknown = sorted(t.fields - set(ts.fields))
        if unknown:
            raise TemplateError(
                f"{prefix}template {t.id!r} (set {ts.name!r}) uses unknown field {{{unknown[0]}}}."
                f"{did_you_mean(unknown[0], ts.fields)} Fields of this set: {', '.join(ts.fields)}"
            )
        if not t.formats:
            raise TemplateError(f"{prefix}template {t.id!r}: lists no formats")
        for fmt in t.formats:
            if fmt not in ts.formats:
                raise TemplateError(f"{prefix}template {t.id!r}: format {fmt!r} is not served by set {ts.name!r} "
                                    f"(it serves {', '.join(ts.formats)}).{did_you_mean(fmt, FORMATS)}")
            group = FORMAT_GROUP[fmt]
            if group == "opt" and "options" not in t.fields:
                raise TemplateError(f"{prefix}template {t.id!r}: format {fmt} lists options, but the template has no {{options}}")
            if group == "cot" and not {"rationale", "answer"} <= t.fields:
                raise TemplateError(f"{prefix}template {t.id!r}: CoT format {fmt} needs {{rationale}} and {{answer}} in the target")
        if "answer" not in {n for _, n in t.target_parts if n}:
            raise TemplateError(f"{prefix}template {t.id!r}: the target must contain {{answer}}")
        if ts.name == "niv2" and ("examples" in t.fields) != ("fs_noopt" in t.formats):
            raise TemplateError(f"{prefix}template {t.id!r}: NIV2 few-shot templates (and only they) use {{examples}}")


def get_template_set(name: str) -> TemplateSet:
    return lookup(TEMPLATE_SETS, name, "template set")


def load_template_file(path: str | Path) -> dict[str, TemplateSet]:
    """Read a YAML file {set name: [{id, input, target, formats, version}, ...]} and check it.

    Each named set replaces the built-in set's templates (keeping its fields and formats); the result is a
    full registry to pass to the mixture. Errors name the file, the template id and the field."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise FileNotFoundError(f"template file not found: {path}") from None
    except yaml.YAMLError as e:
        raise TemplateError(f"{path}: invalid YAML ({e})") from None
    if not isinstance(data, dict):
        raise TemplateError(f"{path}: expected a mapping of template set name -> list of templates")
    sets = dict(TEMPLATE_SETS)
    for set_name, items in data.items():
        base = sets.get(set_name)
        if base is None:
            raise TemplateError(f"{path}: unknown template set {set_name!r}.{did_you_mean(str(set_name), TEMPLATE_SETS)} "
                                f"Known: {', '.join(TEMPLATE_SETS)}")
        if not isinstance(items, list) or not items:
            raise TemplateError(f"{path}: set {set_name!r} must be a non-empty list of templates")
        templates = []
        for i, item in enumerate(items):
            where = f"{path}: {set_name}[{i}]"
            if not isinstance(item, dict):
                raise TemplateError(f"{where}: expected a mapping with id, input, target, formats")
            unknown_keys = set(item) - {"id", "input", "target", "formats", "version"}
            if unknown_keys:
                raise TemplateError(f"{where}: unknown key(s) {', '.join(sorted(unknown_keys))}")
            if "id" not in item or "input" not in item:
                raise TemplateError(f"{where}: a template needs at least id and input")
            try:
                templates.append(Template(
                    id=str(item["id"]), input=str(item["input"]), target=str(item.get("target", "{answer}")),
                    formats=tuple(item.get("formats") or base.formats), version=int(item.get("version", 1)),
                ))
            except TemplateError as e:
                raise TemplateError(f"{path}: {e}") from None
        ts = TemplateSet(name=base.name, fields=base.fields, formats=base.formats, templates=tuple(templates),
                         description=base.description)
        check_template_set(ts, str(path))
        sets[set_name] = ts
    return sets


# --- rendering -----------------------------------------------------------------------------------------------


def estimate_tokens(text: str) -> int:
    """The cheap length estimate used unless a tokenizer is named: about 4 characters a token."""
    return len(text) // 4


def render_few_shot(template: Template, query: tuple[str, str], shots: Sequence[tuple[str, str]],
                    max_input_tokens: int | None, count_tokens: Callable[[str], int] = estimate_tokens) -> tuple[str, int]:
    """Exemplars (each input + its target) then the query input; drop exemplars from the end until it fits.

    Returns (inputs, number of exemplars kept)."""
    # each exemplar: its input, then its target on the same line after a colon, else on the next line
    blocks = [inp + (" " if inp.endswith(":") else "\n") + tgt for inp, tgt in shots]
    while True:
        text = "\n\n".join(blocks + [query[0]])
        if not blocks or max_input_tokens is None or count_tokens(text) <= max_input_tokens:
            return text, len(blocks)
        blocks.pop()
