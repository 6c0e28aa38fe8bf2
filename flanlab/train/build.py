"""The setup's pieces, each a plain function: model edits (dropout, LoRA, the sliding-window check of packing),
the optimizer and its learning-rate schedule, and FSDP2 sharding over CPU processes. flanlab.train.sft.setup
calls them in that order."""

from __future__ import annotations

import math
import os

import torch

from flanlab.train.config import TrainConfig


def set_dropout(model, p: float) -> None:
    """Set every dropout probability of the model (nn.Dropout modules, attention dropout attributes, config)."""
    for layer in model.modules():
        if isinstance(layer, torch.nn.Dropout):
            layer.p = p
        for attr in ("attention_dropout", "dropout"):  # Llama-style attention; T5Attention
            if isinstance(getattr(layer, attr, None), float) and not isinstance(layer, torch.nn.Dropout):
                setattr(layer, attr, p)
    for key in ("dropout_rate", "attention_dropout", "hidden_dropout", "dropout", "resid_pdrop", "attn_pdrop"):
        if isinstance(getattr(model.config, key, None), float):
            setattr(model.config, key, p)


def add_lora(model, kind: str, settings):
    """Wrap the model with peft LoRA adapters; returns the PeftModel (its get_base_model() is trained)."""
    from peft import LoraConfig, TaskType, get_peft_model

    lora = LoraConfig(
        task_type=TaskType.CAUSAL_LM if kind == "causal" else TaskType.SEQ_2_SEQ_LM,
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=settings.target_modules,
    )
    return get_peft_model(model, lora)


def make_optimizer(config: TrainConfig, named_params: list[tuple[str, torch.nn.Parameter]]):
    """Adafactor (the paper's: constant LR, no parameter scaling, no relative step) or AdamW.

    Weight decay, when set, spares biases and norm weights (1-D tensors), as transformers' Trainer does."""
    decay = [p for n, p in named_params if p.ndim > 1]
    no_decay = [p for n, p in named_params if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    if config.optimizer == "adafactor":  # transformers' algorithm, written so that it also runs sharded (FSDP2)
        from flanlab.train.adafactor import Adafactor

        return Adafactor(groups, lr=config.lr)
    return torch.optim.AdamW(groups, lr=config.lr, betas=tuple(config.adam_betas))


def fsdp_on_cpu_requested(accelerator) -> bool:
    """`accelerate launch --use_fsdp` with CPU processes: accelerate leaves them DDP (it shards only on GPUs)."""
    from accelerate.utils import DistributedType

    return (accelerator.distributed_type == DistributedType.MULTI_CPU
            and os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true")


def shard_on_cpu(loss_model: torch.nn.Module, model, world: int) -> None:
    """FSDP2 over CPU processes (gloo), in place: each transformer block (the model's `_no_split_modules`) is
    its own unit, then the root `loss_model` (SFTLoss(model)) takes the rest (embeddings, tied output head,
    final norm). Settings come from the launcher's FSDP options, as accelerate reads them; only version 2."""
    from accelerate.utils import FullyShardedDataParallelPlugin
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    plugin = FullyShardedDataParallelPlugin()  # reads the FSDP_* variables `accelerate launch` sets
    if plugin.fsdp_version != 2:
        raise ValueError(f"FSDP on CPU processes: flanlab shards with FSDP version 2 only (launched with version "
                         f"{plugin.fsdp_version}); pass --fsdp_version 2 to accelerate launch")
    mesh = init_device_mesh("cpu", (world,))
    blocks = set(getattr(model, "_no_split_modules", None) or ())
    for sub in model.modules():
        if type(sub).__name__ in blocks:
            fully_shard(sub, mesh=mesh, reshard_after_forward=plugin.reshard_after_forward)
    fully_shard(loss_model, mesh=mesh, reshard_after_forward=plugin.reshard_after_forward)


def lr_factor(config: TrainConfig, step: int) -> float:
    """Multiplier of config.lr at 0-based optimizer step `step`: linear warmup, then constant or cosine."""
    if config.warmup_steps and step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return 1.0
    span = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def sliding_window_conflict(model, config: TrainConfig) -> str | None:
    """A custom 4D mask replaces sliding-window masks too: only safe when no example is longer than the window."""
    window = getattr(model.config, "sliding_window", None)
    layer_types = getattr(model.config, "layer_types", None) or ()
    if window and "sliding_attention" in layer_types and config.max_input_len + config.max_target_len > window:
        return (f"packing: this model has sliding-window layers (window {window}) and examples may be longer "
                f"(max_input_len + max_target_len = {config.max_input_len + config.max_target_len}); "
                "lower the maximum lengths or set packing=false")
    return None
