"""One evaluation config, `EvalConfig`: what `flanlab eval`, `evaluate()`, `flanlab scale`, the demo and training's
eval_suite evaluate, with every option's valid range declared once (flanlab.config: Range, NonEmpty, Literal).

    command line   flanlab/commands/eval.py builds its flags from these fields (flanlab.config.arg_type) and
                   hands evaluate() an EvalConfig
    Python         evaluate(model, EvalConfig(suite="synthetic", limit=5), out_dir=...), or the same fields as
                   keyword arguments: evaluate(model, suite="synthetic", limit=5, out_dir=...)
    scale, demo    an eval part (flanlab.scale.EvalPart) is an EvalConfig with a per-mode limit; each mode's
                   EvalConfig comes from EvalPart.for_mode
    training       TrainConfig.eval_config() (its eval_suite / eval_limit / eval_modes keys)

The temperature is self-consistency's alone: left unset (null) it is SC_TEMPERATURE when self_consistency > 1
and unused otherwise; one given with self_consistency 1 would be ignored (greedy decoding), so check() refuses it.
`sampling_temperature()` is the one place that resolves it; what runs and what is recorded use it.

results.json's "settings" are written from it (`settings()`: every field under its own name, the keys
results.json already had before this config existed, so older runs read the same); what a finished scale cell or
demo stage records of it, and a rerun compares, is `recorded()`: the fields, and for templated prompts the version
of their format (CHAT_FORMAT). Where the run's outputs go (out_dir, the resume cache, the data dir, the
progress bar) is not part of it: those are evaluate()'s own arguments.

Light to import (flanlab.config and flanlab.eval.chat only): the CLI imports it while parsing, before torch is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from flanlab.config import (ConfigError, Count, Count0, NonEmpty, Range, Seed, Text, check_fields, from_dict,
                            to_dict)
from flanlab.eval.chat import ChatOptions

Mode = Literal["direct", "cot"]  # zero-shot CoT is the cot mode with zero_shot_cot (recorded as zs_cot)
COT_MODES = ("cot", "zs_cot")  # the modes self-consistency applies to
# The format of prompts rendered through a chat template (apply_chat_template), recorded as "chat_format" beside
# the fields of a templated evaluation only, so that plain runs record what they always did and are still reused.
# 1: before 2026-12-04. 2: a rank choice scored as "A", not " A", after the assistant's header (0d9f411); a
# zero-shot multiturn prompt's task description in the system turn (bc5f238). A templated run recorded without the
# key was format 1 (flanlab.scale reads it so): a rerun refuses it, as it refuses any other change of settings.
CHAT_FORMAT = 2
SC_TEMPERATURE = 0.7  # self-consistency's sampling temperature when none is given (the paper's 0.7)


@dataclass
class EvalConfig:
    """What an evaluation runs and how; see the module docstring. Exactly one of suite and benchmarks."""

    suite: Text | None = None  # a benchmark suite: flan-heldout, synthetic, all
    benchmarks: Annotated[list[Text], NonEmpty()] | None = None  # instead of a suite: mmlu, bbh, tydiqa, mgsm, ...
    modes: Annotated[list[Mode], NonEmpty()] = field(default_factory=lambda: ["direct", "cot"])
    limit: Count | None = None  # at most N items per subtask (the first N; null: all)
    scoring: Literal["auto", "rank", "generate"] = "auto"  # auto: rank for direct modes with choices
    shots: Count0 | None = None  # exemplars per prompt instead of each benchmark's own (0: zero-shot)
    zero_shot_cot: bool = False  # the cot mode without exemplars + "Let's think step by step." (zs_cot)
    self_consistency: Count = 1  # K samples per CoT item, majority vote
    # self-consistency's sampling temperature (null: not given, SC_TEMPERATURE when self_consistency > 1); only
    # with self_consistency > 1: one K=1 would ignore is refused (check)
    temperature: Annotated[float, Range(ge=0, note="0 = greedy")] | None = None
    batch_size: Count = 8  # items per forward pass
    seed: Seed = 0  # sampling seed
    prefix_cache: bool = True  # reuse the few-shot prefix's KV cache (outputs identical; off: recompute per item)
    apply_chat_template: bool = False  # prompts as a user turn through the model's chat template
    fewshot_as_multiturn: bool = False  # with apply_chat_template: exemplars as user/assistant turns (lm-eval's)
    system_instruction: Text | None = None  # with apply_chat_template: a system turn with this text

    def check(self, where: str = "config") -> None:
        """Raise ConfigError naming the first field outside its declared range (a config built in code has not
        been through the loader), ValueError for options that need another (the chat options)."""
        check_fields(self, where)
        self.chat()  # ChatOptions refuses multiturn or a system turn without the chat template
        self.check_sampling(where)

    def check_sampling(self, where: str = "config") -> None:
        """ConfigError when self-consistency and the temperature disagree: K > 1 at temperature 0 (K identical
        greedy outputs), K > 1 without the cot mode (nothing would be sampled), or a temperature with K = 1, which
        would be ignored (temperature 0, greedy, is what K = 1 runs: not refused). Loaders of YAML eval parts
        (scale, demo) call it with the file and field as `where`."""
        if self.self_consistency > 1 and self.temperature == 0:
            raise ConfigError(f"{where}: self_consistency {self.self_consistency} with temperature 0 would vote over "
                              f"{self.self_consistency} identical greedy outputs: set temperature > 0 (e.g. 0.7), "
                              "or self_consistency 1")
        if self.self_consistency > 1 and not set(self.modes) & set(COT_MODES):
            raise ConfigError(f"{where}: self_consistency {self.self_consistency} samples the CoT modes only, and "
                              f"modes {list(self.modes)} run none (direct answers are one greedy output or a rank): "
                              "add cot to modes, or set self_consistency 1")
        if self.self_consistency == 1 and self.temperature:
            raise ConfigError(f"{where}: temperature {self.temperature:g} with self_consistency 1 would be ignored "
                              "(one greedy output per item; the temperature samples self-consistency's K outputs "
                              "in the CoT modes): set self_consistency > 1 (e.g. 5), or leave temperature unset")

    def sampling_temperature(self) -> float | None:
        """The temperature the CoT modes sample at: the one given, else SC_TEMPERATURE, when self_consistency > 1;
        None when nothing is sampled (self_consistency 1: greedy). The one place the default is resolved."""
        if self.self_consistency <= 1:
            return None
        return float(self.temperature) if self.temperature is not None else SC_TEMPERATURE

    def chat(self) -> ChatOptions:
        """The chat-template options."""
        return ChatOptions(self.apply_chat_template, self.fewshot_as_multiturn, self.system_instruction)

    def recorded(self) -> dict:
        """What a finished evaluation records of this config and a rerun compares (scale's cells, the demo's
        stages): every field under its own name, and "chat_format" (CHAT_FORMAT) when prompts go through the chat
        template, whose rendering changed under the same fields. The temperature is the one sampled at
        (sampling_temperature: null for self_consistency 1, SC_TEMPERATURE when not given), as the run used it."""
        return {**to_dict(self), "temperature": self.sampling_temperature(),
                **({"chat_format": CHAT_FORMAT} if self.apply_chat_template else {})}

    def settings(self) -> dict:
        """results.json's "settings" from this config: every field under its own name (and the templated prompts'
        format, as recorded()); the temperature is null when nothing is sampled (self_consistency 1), and the modes
        self-consistency applies to are named."""
        out = self.recorded()
        out["self_consistency_modes"] = list(COT_MODES)
        return out


def config_from_options(where: str = "evaluate()", **options) -> EvalConfig:
    """An EvalConfig from keyword options (evaluate()'s thin layer); `modes` may be a comma-separated string.
    An unknown option is a ConfigError with a did-you-mean, a value outside its range one naming the field."""
    if isinstance(options.get("modes"), str):
        options["modes"] = [m.strip() for m in options["modes"].split(",") if m.strip()]
    if isinstance(options.get("modes"), tuple):
        options["modes"] = list(options["modes"])
    return from_dict(EvalConfig, options, where)
