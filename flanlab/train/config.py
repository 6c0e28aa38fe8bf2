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
from typing import Literal

from flanlab.config import ConfigError, apply_overrides, from_dict, read_yaml, to_dict


@dataclass
class LoraSettings:
    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    # module names to adapt; "all-linear" = every linear layer but the output head (peft's shorthand);
    # null = peft's default for the architecture (q/v projections)
    target_modules: list[str] | str | None = "all-linear"


@dataclass
class TrainConfig:
    model: str  # preset name, Hugging Face folder or hub id (see flanlab.models.load)
    data: str  # a `flanlab mix` output folder (train-*.jsonl|parquet + optional validation.jsonl) or one JSONL file
    output_dir: str  # the run folder: model/, checkpoints/, log.jsonl, summary.json
    steps: int = 100  # optimizer steps
    batch_size: int = 8  # global sequences (packed rows, or examples when unpacked) per optimizer step
    grad_accum: int = 1  # micro-batches per optimizer step (per process)
    lr: float = 5e-4
    schedule: Literal["constant", "cosine"] = "constant"  # after linear warmup; the paper: constant
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0  # cosine only: the final lr as a fraction of lr
    optimizer: Literal["adafactor", "adamw"] = "adafactor"
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    clip_grad: float = 1.0  # max global gradient norm; 0 = no clipping
    dropout: float | None = None  # set every dropout rate of the model (null: keep the model's own)
    max_input_len: int = 512  # tokens; longer inputs keep their END (the question of a few-shot prompt)
    max_target_len: int = 128  # tokens, EOS included; longer targets keep their beginning
    separator: str = "\n"  # causal models: text put between inputs and targets (unless inputs end in whitespace)
    packing: bool = True  # several examples per sequence, attention never crossing examples
    pack_len: int = 1024  # packed row length (causal: whole sequence; seq2seq: encoder side)
    pack_target_len: int = 256  # seq2seq only: packed decoder row length
    seed: int = 0
    lora: LoraSettings = field(default_factory=LoraSettings)
    save_every: int = 50  # steps between checkpoints (0: only at the end)
    keep_checkpoints: int = 2  # newest checkpoints kept on disk
    log_every: int = 1  # steps between log.jsonl entries
    eval_every: int = 0  # steps between held-out evaluations (0: only at the end, when validation data exists)
    eval_examples: int = 256  # validation examples used for the held-out loss
    eval_batch_size: int = 16
    eval_suite: str | None = None  # e.g. "synthetic": also run flanlab.eval on the model at each evaluation
    eval_limit: int = 20  # items per subtask for eval_suite
    eval_modes: list[str] = field(default_factory=lambda: ["direct"])  # eval_suite modes: direct and/or cot
    tensorboard: bool = False  # also write TensorBoard events to output_dir/tensorboard
    pretrain_tokens: float | None = None  # the base model's pretraining tokens, for "% of pretraining" in the summary
    device: str | None = None  # cpu | cuda (default: what accelerate picks; CUDA runs in bf16 autocast)
    threads: int | None = None  # torch CPU threads per process (null: torch's default, one per core)

    def check(self, where: str = "config") -> None:
        """Raise ConfigError naming the first impossible setting."""
        positive = ("steps", "batch_size", "grad_accum", "max_input_len", "max_target_len", "pack_len",
                    "pack_target_len", "log_every", "eval_examples", "eval_batch_size", "keep_checkpoints")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{where}.{name}: must be at least 1, got {getattr(self, name)}")
        for name in ("save_every", "eval_every", "warmup_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{where}.{name}: must be 0 or more, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ConfigError(f"{where}.lr: must be positive, got {self.lr}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ConfigError(f"{where}.dropout: must be in [0, 1), got {self.dropout}")
        if self.max_target_len < 2:
            raise ConfigError(f"{where}.max_target_len: must leave room for a token and EOS, got {self.max_target_len}")

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
    "eval_batch_size", "eval_suite", "eval_limit", "eval_modes", "tensorboard", "pretrain_tokens", "device", "threads",
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
