"""The fine-tuning config: one dataclass, `TrainConfig`, loaded from YAML with key=value overrides.

`flanlab train configs/train/X.yaml steps=20 lora.enabled=true` and `load_train_config(path, overrides, **fields)`
both end here. Field comments say what each setting does; `check()` rejects impossible combinations with a
message naming the field, before any model is loaded.

Batch semantics: `batch_size` is the GLOBAL number of sequences per optimizer step (packed rows when packing
is on, examples otherwise), whatever the number of processes and accumulation steps; each forward pass sees
batch_size / (grad_accum x processes) of them. The same config therefore trains the same way on 1 or N
processes (up to floating-point summation order).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Annotated, Literal

from flanlab.config import (
    ConfigError, Count, Count0, NonEmpty, Range, Rate, Seed, Text, apply_overrides, check_fields, from_dict, read_yaml,
    to_dict,
)
from flanlab.eval.config import EvalConfig
from flanlab.eval.config import Mode as EvalMode
from flanlab.train.trackers import missing_tracker

Beta = Annotated[float, Range(ge=0, lt=1)]  # an Adam moment decay rate


@dataclass
class LoraSettings:
    enabled: bool = False
    r: Count = 16  # the adapters' rank
    alpha: Annotated[int, Range(gt=0)] = 32  # the adapters' scale is alpha / r
    dropout: Rate = 0.05
    # module names to adapt; "all-linear" = every linear layer but the output head (peft's shorthand);
    # null = peft's default for the architecture (q/v projections)
    target_modules: Annotated[list[Text], NonEmpty()] | Text | None = "all-linear"


@dataclass
class TrainConfig:
    model: Text  # preset name, Hugging Face folder or hub id (see flanlab.models.load)
    data: Text  # a `flanlab mix` output folder (train-*.jsonl|parquet + optional validation.jsonl) or one JSONL file
    output_dir: Text  # the run folder: model/, checkpoints/, log.jsonl, summary.json
    steps: Count = 100  # optimizer steps
    batch_size: Count = 8  # global sequences (packed rows, or examples when unpacked) per optimizer step
    grad_accum: Count = 1  # micro-batches per optimizer step (per process)
    lr: Annotated[float, Range(gt=0)] = 5e-4
    schedule: Literal["constant", "cosine"] = "constant"  # after linear warmup; the paper: constant
    warmup_steps: Count0 = 0
    min_lr_ratio: Annotated[float, Range(ge=0, le=1)] = 0.0  # cosine only: the final lr as a fraction of lr
    optimizer: Literal["adafactor", "adamw"] = "adafactor"
    weight_decay: Annotated[float, Range(ge=0)] = 0.0
    adam_betas: tuple[Beta, Beta] = (0.9, 0.999)
    clip_grad: Annotated[float, Range(ge=0, note="0 = no clipping")] = 1.0  # max global gradient norm; 0 = no clipping
    dropout: Rate | None = None  # set every dropout rate of the model (null: keep the model's own)
    max_input_len: Count = 512  # tokens; longer inputs keep their END (the question of a few-shot prompt)
    # tokens, EOS included; longer targets keep their beginning
    max_target_len: Annotated[int, Range(ge=2, note="a token and EOS")] = 128
    separator: str = "\n"  # causal models: text put between inputs and targets (unless inputs end in whitespace)
    packing: bool = True  # several examples per sequence, attention never crossing examples
    pack_len: Count = 1024  # packed row length (causal: whole sequence; seq2seq: encoder side)
    pack_target_len: Count = 256  # seq2seq only: packed decoder row length
    seed: Seed = 0
    lora: LoraSettings = field(default_factory=LoraSettings)
    save_every: Count0 = 50  # steps between checkpoints (0: only at the end)
    keep_checkpoints: Count = 2  # newest checkpoints kept on disk
    log_every: Count = 1  # steps between log.jsonl entries
    eval_every: Count0 = 0  # steps between held-out evaluations (0: only at the end, when validation data exists)
    eval_examples: Count = 256  # validation examples used for the held-out loss
    eval_batch_size: Count = 16
    # e.g. "synthetic": also run flanlab.eval on the model at each evaluation, with eval_config()'s EvalConfig
    eval_suite: Text | None = None
    eval_limit: Count = 20  # items per subtask for eval_suite
    # eval_suite modes: direct and/or cot
    eval_modes: Annotated[list[EvalMode], NonEmpty()] = field(default_factory=lambda: ["direct"])
    # trackers the run also reports to (flanlab/train/trackers.py); mlflow and wandb need flanlab[trackers]
    report_to: list[Literal["tensorboard", "mlflow", "wandb"]] = field(default_factory=list)
    tensorboard: bool = False  # the same as listing tensorboard in report_to (output_dir/tensorboard)
    # the base model's pretraining tokens, for "% of pretraining" in the summary
    pretrain_tokens: Annotated[float, Range(gt=0)] | None = None
    # cpu | cuda (default: what accelerate picks; CUDA runs in bf16 autocast). Not cuda:N: accelerate gives each
    # process its GPU (choose them with CUDA_VISIBLE_DEVICES); not mps: only cuda leaves the CPU
    device: Literal["cpu", "cuda"] | None = None
    # fp32, or bf16 autocast over fp32 weights (on CPU too); null: bf16 on CUDA, fp32 on CPU
    precision: Literal["fp32", "bf16"] | None = None
    threads: Count | None = None  # torch CPU threads per process (null: torch's default, one per core)

    def check(self, where: str = "config") -> None:
        """Raise ConfigError naming the first impossible setting: a field outside its declared range (a config
        built in code has not been through the loader) or, once the model kind is known, see check_packing."""
        check_fields(self, where)
        if len(set(self.report_to)) < len(self.report_to):
            raise ConfigError(f"{where}.report_to: each tracker once, got {self.report_to}")
        if problem := missing_tracker(self.trackers()):
            raise ConfigError(f"{where}.report_to: {problem}")

    def eval_config(self) -> EvalConfig | None:
        """What eval_suite evaluates at each evaluation (null without eval_suite): the suite, eval_limit items per
        subtask, eval_modes; every other option at EvalConfig's default."""
        if not self.eval_suite:
            return None
        return EvalConfig(suite=self.eval_suite, limit=self.eval_limit, modes=list(self.eval_modes))

    def trackers(self) -> list[str]:
        """report_to, with tensorboard when `tensorboard: true` asks for it."""
        wanted = ["tensorboard"] if self.tensorboard and "tensorboard" not in self.report_to else []
        return wanted + list(self.report_to)

    def check_packing(self, kind: str, where: str = "config") -> None:
        """Packed rows must hold the longest example (checked once the model kind is known)."""
        if not self.packing:
            return
        if kind == "causal" and self.pack_len < self.max_input_len + self.max_target_len:
            raise ConfigError(
                f"{where}.pack_len: {self.pack_len} cannot hold the longest causal example "
                f"(max_input_len + max_target_len = {self.max_input_len + self.max_target_len}); raise pack_len "
                "or lower the maximum lengths"
            )
        if kind == "seq2seq" and (self.pack_len < self.max_input_len or self.pack_target_len < self.max_target_len):
            raise ConfigError(
                f"{where}: seq2seq packing needs pack_len >= max_input_len and pack_target_len >= max_target_len "
                f"(got {self.pack_len}/{self.pack_target_len} for {self.max_input_len}/{self.max_target_len})"
            )


# Settings that may change between a run and its resumption without changing what is trained.
RESUMABLE_CHANGES = (
    "output_dir", "steps", "save_every", "keep_checkpoints", "log_every", "eval_every", "eval_examples",
    "eval_batch_size", "eval_suite", "eval_limit", "eval_modes", "report_to", "tensorboard",
    "pretrain_tokens", "device", "threads",
)


def load_train_config(
    path: str | os.PathLike | None = None, overrides: list[str] | None = None, **fields
) -> TrainConfig:
    """YAML file, then keyword fields, then key=value overrides -> a checked TrainConfig."""
    data = read_yaml(path) if path is not None else {}
    for key, value in fields.items():
        data[key] = to_dict(value) if isinstance(value, LoraSettings) else value
    apply_overrides(data, overrides)
    where = str(path) if path is not None else "train config"
    config = from_dict(TrainConfig, data, where)
    config.check(where)
    return config
