"""The fine-tuning loop, top to bottom: setup -> resume -> loop (step, log, evaluate, checkpoint) -> export -> summary.

`train(config)` fine-tunes a causal or seq2seq model on (inputs, targets) pairs with the loss on targets only,
and returns the run folder:
    model/          a Hugging Face folder (safetensors + tokenizer + flanlab_model.json); with LoRA, the merged model
    adapter/        LoRA only: the peft adapter, loadable with peft on top of the base model
    checkpoints/    step-N/ folders for exact resumption (flanlab.train.checkpoint)
    log.jsonl       one object per logged step: step, loss, lr, tokens, tokens_per_s, elapsed_s (+ grad_norm);
                    evaluations as {"step", "eval": {...}}
    summary.json    written last: a run folder holding it is finished and is not retrained (a rerun with other
                    settings that change what is trained, or other data, is refused; overwrite=True retrains)
    tensorboard/    with tensorboard: true
A rerun of an unfinished folder resumes from its newest checkpoint and ends with the same weights as an
uninterrupted run (tests/test_train_resume.py kills a run with SIGKILL to check it). A damaged checkpoint
(sizes or checksums differ from its manifest, a file does not load) is skipped with a warning for the one
before it. The run holds the folder's lock (flanlab.runlock): a second run on the same output_dir stops at once.

Distributed: run under `accelerate launch` (DDP by default; FSDP with --use_fsdp) and every process builds the
same global batch for a step and takes its share; the loss is the token-level mean over the global batch, so
1 and N processes train the same way (tests/test_train_distributed.py). FSDP on GPUs is accelerate's own; on
CPU processes accelerate silently falls back to DDP, so flanlab shards the model itself there with torch's
FSDP2 `fully_shard` (version 2 only), which is what the CPU tests exercise. Checkpoints have one format
whatever the number of processes: under FSDP (version 2) the shards are gathered to process 0, which writes
them, and a resumed run gives each process its shards back (tests/test_train_fsdp_resume.py kills a 2-process
FSDP run and resumes it). FSDP refuses LoRA and eval_suite. Adafactor is flanlab's own (flanlab/train/adafactor.py:
transformers' algorithm, which also steps sharded parameters).
Precision (`precision`): by default the forward runs in bf16 autocast over fp32 weights on CUDA and in fp32 on CPU;
`precision=fp32` or `precision=bf16` chooses either on any device (the launcher's --mixed_precision is not read).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import sys
import time
from pathlib import Path

import torch

from flanlab.config import to_dict
from flanlab.fileio import atomic_dir, atomic_write_json, discard_dir
from flanlab.runlock import locks_folder
from flanlab.train.checkpoint import (capture_rng, gather_full_weights, latest_checkpoint, load_latest_usable,
                                     parameter_names, restore_rng, restore_training_state, save_checkpoint,
                                     training_state)
from flanlab.train.config import RESUMABLE_CHANGES, TrainConfig
from flanlab.train.data import RowStream, data_fingerprint, eval_rows, find_data_files, read_pairs, tokenize_pairs
from flanlab.train.loss import SFTLoss
from flanlab.train.packing import collate


class TrainingDiverged(RuntimeError):
    """The loss or the gradient norm became NaN or infinite."""


# ----------------------------------------------------------------------------------------------------------
# setup helpers


def set_dropout(model, p: float) -> None:
    """Set every dropout probability of the model (nn.Dropout modules, attention dropout attributes, config)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
        for attr in ("attention_dropout", "dropout"):  # Llama-style attention; T5Attention
            if isinstance(getattr(module, attr, None), float) and not isinstance(module, torch.nn.Dropout):
                setattr(module, attr, p)
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


def shard_on_cpu(module: torch.nn.Module, model, world: int) -> None:
    """FSDP2 over CPU processes (gloo), in place: each transformer block (the model's `_no_split_modules`) is
    its own unit, then the root `module` takes the rest (embeddings, tied output head, final norm). Settings
    come from the launcher's FSDP options, as accelerate reads them; only version 2 is supported."""
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
    fully_shard(module, mesh=mesh, reshard_after_forward=plugin.reshard_after_forward)


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


class RunLog:
    """log.jsonl (append-only; on resume, entries after the checkpoint are dropped) and optional TensorBoard."""

    def __init__(self, out: Path, resume_step: int, tensorboard: bool, active: bool):
        self.path = out / "log.jsonl"
        self.active = active
        self.writer = None
        if not active:
            return
        if self.path.exists():
            kept = [line for line in self.path.read_text(encoding="utf-8").splitlines()
                    if line.strip() and json.loads(line)["step"] <= resume_step]
            self.path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(out / "tensorboard"), purge_step=resume_step + 1)

    def write(self, entry: dict) -> None:
        if not self.active:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
        if self.writer is not None:
            scalars = entry["eval"] if "eval" in entry else entry
            prefix = "eval" if "eval" in entry else "train"
            for key, value in scalars.items():
                if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.writer.add_scalar(f"{prefix}/{key}", value, entry["step"])
            self.writer.flush()

    def entries(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


# ----------------------------------------------------------------------------------------------------------
# evaluation


def held_out_loss(module, rows, kind: str, pad_id: int, batch_size: int, accelerator) -> float | None:
    """Token-level mean loss over validation rows (unpacked), shared out over the processes.

    Every process runs the same number of forward passes (FSDP gathers weights collectively in each): a process
    short of a batch repeats the first one and discards the result."""
    batches = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    world, rank = accelerator.num_processes, accelerator.process_index
    total = torch.zeros(2, dtype=torch.float64, device=accelerator.device)  # (loss sum, target tokens)
    inner = accelerator.unwrap_model(module)
    was_training = inner.training
    inner.eval()
    with torch.no_grad(), accelerator.autocast():
        for j in range(rank, -(-len(batches) // world) * world, world):
            part = batches[j] if j < len(batches) else batches[0]
            batch = _to_device(collate(part, kind, pad_id, packed=False), accelerator.device)
            loss_sum = inner(batch).double()
            if j < len(batches):
                total[0] += loss_sum
                total[1] += sum(r.target_tokens for r in part)
    inner.train(was_training)
    total = accelerator.reduce(total, reduction="sum") if accelerator.num_processes > 1 else total
    return float(total[0] / total[1]) if total[1] > 0 else None


def benchmark_eval(hf_model, tokenizer, kind: str, config: TrainConfig, untrained: bool, out_dir: Path) -> dict:
    """flanlab.eval on the model being trained (optional; skipped with a note when the harness is missing).

    Called in every process: under several processes the harness shares the items out and gathers them."""
    try:
        from flanlab.eval.runner import evaluate
    except ImportError as e:
        return {"suite": config.eval_suite, "skipped": f"flanlab.eval.runner not available ({e})"}
    from flanlab.models import LoadedModel

    lm = LoadedModel(model=hf_model, tokenizer=tokenizer, kind=kind, name=f"{config.model} (training)",
                     untrained=untrained, info={"parameters": sum(p.numel() for p in hf_model.parameters())})
    was_training = hf_model.training
    hf_model.eval()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            results = evaluate(lm, suite=config.eval_suite, limit=config.eval_limit, modes=config.eval_modes,
                               out_dir=out_dir, progress=False)
    finally:
        hf_model.train(was_training)
    record = {"suite": config.eval_suite, "out_dir": str(out_dir)}
    norm = results.get("normalized_average") if isinstance(results, dict) else None
    if isinstance(norm, dict):
        record["normalized_average"] = norm.get("value")
    return record


def _to_device(batch: dict, device) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


# ----------------------------------------------------------------------------------------------------------
# the run


@locks_folder("train", lambda config, *args, **kwargs: config.output_dir)
def train(config: TrainConfig, progress: bool = True, overwrite: bool = False) -> Path:
    """Fine-tune per `config`; return the run folder (see the module docstring). Resumes an unfinished run;
    returns a finished one trained the same way, refuses one trained otherwise. overwrite=True deletes what
    output_dir holds, finished or not, and trains from the start."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedType, set_seed

    from flanlab.models import load

    config.check()
    out = Path(config.output_dir)
    if not overwrite and (out / "summary.json").is_file():
        _check_finished(out, config)
        print(f"[flanlab train] {out} is finished (summary.json present) with these settings; not retraining",
              file=sys.stderr)
        return out

    # --- setup: processes, model, data, optimizer -----------------------------------------------------------
    cuda = config.device == "cuda" or (config.device is None and torch.cuda.is_available())
    precision = config.precision or ("bf16" if cuda else "fp32")
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        # accelerate keeps one state per process and refuses an Accelerator with other settings than the first
        # (another run in this process: fp32 after bf16, the CPU after CUDA); a run not launched distributed starts
        # from a clean state
        AcceleratorState._reset_state(reset_partial_state=True)
    accelerator = Accelerator(cpu=not cuda, mixed_precision={"bf16": "bf16", "fp32": "no"}[precision])
    main = accelerator.is_main_process
    world = accelerator.num_processes
    if overwrite:
        if main and out.exists():
            discard_dir(out)
            print(f"[flanlab train] --overwrite: deleted the previous content of {out}", file=sys.stderr)
        accelerator.wait_for_everyone()
    cpu_fsdp = fsdp_on_cpu_requested(accelerator)  # flanlab shards the model itself (accelerate would not)
    fsdp = accelerator.distributed_type == DistributedType.FSDP or cpu_fsdp
    if fsdp and (config.lora.enabled or config.eval_suite):
        raise ValueError("under FSDP, flanlab train supports neither LoRA nor eval_suite: set lora.enabled=false "
                         "eval_suite=null, or use DDP (the default)")
    if fsdp and not cpu_fsdp and not accelerator.is_fsdp2 and config.save_every:
        raise ValueError("checkpoints under FSDP need FSDP version 2 (accelerate launch --fsdp_version 2); "
                         "or set save_every=0")
    if config.threads:
        torch.set_num_threads(config.threads)
    set_seed(config.seed)
    t_setup = time.time()

    with accelerator.main_process_first():  # a preset is converted once, by the main process
        lm = load(config.model, device=str(accelerator.device), dtype=torch.float32, verbose=main)
    kind, tokenizer, hf = lm.kind, lm.tokenizer, lm.model
    config.check_packing(kind)
    if config.packing and (why := sliding_window_conflict(hf, config)):
        raise ValueError(why)
    if config.dropout is not None:
        set_dropout(hf, config.dropout)
    total_params = sum(p.numel() for p in hf.parameters())  # the base model's, before any LoRA matrices
    encoder_params = sum(p.numel() for n, p in hf.named_parameters() if n.startswith("encoder."))
    peft_model = add_lora(hf, kind, config.lora) if config.lora.enabled else None
    model = peft_model.get_base_model() if peft_model is not None else hf  # LoRA layers are injected in place
    model.train()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]

    train_files, val_files = find_data_files(config.data)
    pad_id = tokenizer.pad_token_id
    start_id = getattr(hf.config, "decoder_start_token_id", None) if kind == "seq2seq" else None
    train_data = tokenize_pairs(read_pairs(train_files), tokenizer, kind, config.max_input_len,
                                config.max_target_len, config.separator)
    stream = RowStream(train_data, packing=config.packing, pack_len=config.pack_len,
                       pack_target_len=config.pack_target_len, seed=config.seed, decoder_start_id=start_id)
    val_rows = []
    if val_files:
        val_data = tokenize_pairs(read_pairs(val_files, limit=config.eval_examples), tokenizer, kind,
                                  config.max_input_len, config.max_target_len, config.separator)
        val_rows = eval_rows(val_data, start_id)

    per_forward, remainder = divmod(config.batch_size, config.grad_accum * world)
    if remainder or per_forward == 0:
        raise ValueError(f"batch_size {config.batch_size} must be a multiple of grad_accum x processes "
                         f"({config.grad_accum} x {world})")

    module = SFTLoss(model, kind)
    if cpu_fsdp:  # sharding replaces the parameters (by DTensors): the optimizer is made on the sharded ones
        shard_on_cpu(module, model, world)
        trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    optimizer = make_optimizer(config, trainable)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(config, s))
    if not cpu_fsdp:
        module, optimizer = accelerator.prepare(module, optimizer)  # the scheduler is stepped by hand, once per step
        # FSDP may replace parameter objects (sharded DTensors): take them again from the prepared module
        trainable = [(n, p) for n, p in accelerator.unwrap_model(module).model.named_parameters() if p.requires_grad]
    parallelism = "fsdp" if fsdp else "ddp" if world > 1 else "single"

    # --- resume -----------------------------------------------------------------------------------------------
    fingerprint = data_fingerprint(train_files)
    start_step, tokens, enc_tokens, target_tokens, positions, elapsed_before = 0, 0, 0, 0, 0, 0.0

    def warn(message: str) -> None:
        if main:
            print(f"[flanlab train] warning: {message}", file=sys.stderr)

    usable = load_latest_usable(out / "checkpoints", warn)
    ckpt_path = None
    if usable is not None:
        ckpt_path, ckpt = usable
        _check_resumable(ckpt["state"], config, fingerprint, ckpt_path)
        if set(ckpt["weights"]) != {name for name, _ in trainable}:
            raise ValueError(f"{ckpt_path}: its weights do not match this model's trainable parameters")
        restore_training_state(module, optimizer, trainable, ckpt["weights"], ckpt["optimizer"], sharded=fsdp)
        scheduler.load_state_dict(ckpt["scheduler"])
        if len(ckpt["rng"]) != world:
            raise ValueError(f"{ckpt_path} was written by {len(ckpt['rng'])} process(es); resume it with as many "
                             f"(this run has {world}) for an exact continuation")
        restore_rng(*ckpt["rng"][accelerator.process_index])
        state = ckpt["state"]
        start_step, tokens, target_tokens = state["step"], state["tokens"], state["target_tokens"]
        enc_tokens = state["encoder_tokens"]
        positions, elapsed_before = state["positions"], state["elapsed_s"]
        if main:
            print(f"[flanlab train] resuming from {ckpt_path} (step {start_step})", file=sys.stderr)
    if start_step >= config.steps and ckpt_path is not None and main:
        print(f"[flanlab train] checkpoint is at step {start_step} >= steps {config.steps}; exporting", file=sys.stderr)

    if main:
        out.mkdir(parents=True, exist_ok=True)
    log = RunLog(out, start_step, config.tensorboard, active=main)
    if main:
        rows0 = stream.epoch_rows(0)
        print(f"[flanlab train] {config.model} ({kind}, {total_params / 1e6:.1f}M params, "
              f"{sum(p.numel() for _, p in trainable) / 1e6:.2f}M trainable), {len(train_data)} examples -> "
              f"{len(rows0)} rows/epoch ({'packed' if config.packing else 'unpacked'}), {world} process(es) "
              f"({parallelism}), {per_forward} rows per forward, {precision} on {accelerator.device.type}; "
              f"setup {time.time() - t_setup:.1f}s", file=sys.stderr)

    # --- the loop ---------------------------------------------------------------------------------------------
    from tqdm.auto import tqdm

    bar = tqdm(total=config.steps, initial=start_step, disable=not (progress and main), unit="step",
               dynamic_ncols=True, desc="train")
    t_start = time.time()
    t_last, tokens_last = t_start, tokens
    for step in range(start_step, config.steps):
        rows = stream.global_batch(step, config.batch_size)
        step_targets = sum(r.target_tokens for r in rows)
        scale = world / max(step_targets, 1)  # DDP averages gradients over processes; we want sum / tokens
        local_loss = torch.zeros((), dtype=torch.float64, device=accelerator.device)
        positions += sum(_padded_size(rows[i : i + per_forward]) for i in range(0, len(rows), per_forward))
        for a in range(config.grad_accum):
            first = (a * world + accelerator.process_index) * per_forward
            part = rows[first : first + per_forward]
            batch = _to_device(collate(part, kind, pad_id, packed=config.packing), accelerator.device)
            sync = contextlib.nullcontext() if a == config.grad_accum - 1 else accelerator.no_sync(module)
            with sync, accelerator.autocast():
                loss_sum = module(batch)
                accelerator.backward(loss_sum * scale)
            local_loss += loss_sum.detach().double()
        total_loss = accelerator.reduce(local_loss, reduction="sum") if world > 1 else local_loss
        step_loss = float(total_loss) / max(step_targets, 1)
        grad_norm = float(accelerator.clip_grad_norm_([p for _, p in trainable], config.clip_grad or float("inf")))
        if not (math.isfinite(step_loss) and math.isfinite(grad_norm)):
            _diverged(out, step + 1, step_loss, grad_norm, main)
        lr = optimizer.param_groups[0]["lr"]  # the rate this step used
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += sum(r.tokens for r in rows)
        enc_tokens += sum(len(r.input_ids) for r in rows) if kind == "seq2seq" else 0
        target_tokens += step_targets
        done = step + 1

        now = time.time()
        if done % config.log_every == 0 or done == config.steps:
            rate = (tokens - tokens_last) / max(now - t_last, 1e-9)
            log.write({"step": done, "loss": round(step_loss, 6), "lr": lr, "tokens": tokens,
                       "tokens_per_s": round(rate, 2), "elapsed_s": round(elapsed_before + now - t_start, 3),
                       "grad_norm": round(grad_norm, 6)})
            t_last, tokens_last = now, tokens
            bar.set_postfix(loss=f"{step_loss:.4f}", tok_s=f"{rate:.0f}")
        bar.update(1)

        if config.save_every and done % config.save_every == 0 and done < config.steps:
            _save(accelerator, module, trainable, optimizer, scheduler, stream, config, out, done, fingerprint,
                  tokens, enc_tokens, target_tokens, positions, elapsed_before + time.time() - t_start, fsdp)
        if (config.eval_every and done % config.eval_every == 0) or done == config.steps:
            _evaluate(accelerator, module, model, tokenizer, kind, config, lm.untrained, val_rows, pad_id, out, done,
                      log)
    bar.close()
    wall = elapsed_before + time.time() - t_start
    peak_rss_training = _peak_rss_mb()  # before the export, which copies weights

    # --- export and summary ---------------------------------------------------------------------------------
    if config.save_every and config.steps > start_step:  # a final checkpoint: a rerun with more steps continues
        _save(accelerator, module, trainable, optimizer, scheduler, stream, config, out, config.steps, fingerprint,
              tokens, enc_tokens, target_tokens, positions, wall, fsdp)
    state_dict = gather_full_weights(module) if fsdp else None
    if main:
        _export(out, hf, peft_model, tokenizer, lm, config, state_dict)
        entries = log.entries()
        train_losses = [e["loss"] for e in entries if "loss" in e]
        evals = [e["eval"] for e in entries if "eval" in e]
        summary = _summary(config, lm, kind, total_params, encoder_params, trainable, tokens, enc_tokens,
                           target_tokens, positions, wall, train_losses, evals, train_data, world, parallelism)
        summary["peak_rss_mb_training"] = peak_rss_training
        summary["precision"] = precision  # what ran: config.precision null means bf16 on CUDA, fp32 on CPU
        summary["device"] = accelerator.device.type
        summary["data_fingerprint"] = fingerprint  # a rerun on changed data is refused (_check_finished)
        atomic_write_json(out / "summary.json", summary)
        log.close()
        print(f"[flanlab train] done: {config.steps} steps, {tokens} tokens, loss {summary['first_loss']} -> "
              f"{summary['final_loss']}, {wall:.0f}s; model in {out / 'model'}", file=sys.stderr)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return out


# ----------------------------------------------------------------------------------------------------------
# pieces of the run


def _changed_settings(saved: dict, config: TrainConfig, ignore: set[str]) -> list[str]:
    """"name (saved value -> requested value)" for each setting outside `ignore` that differs."""
    now = _jsonable(to_dict(config))
    return [f"{k} ({saved.get(k)!r} -> {now[k]!r})" for k in now if k not in ignore and saved.get(k) != now[k]]


def _check_finished(out: Path, config: TrainConfig) -> None:
    """A finished run is returned as it is only for the settings it was trained with (those that change what
    is trained: RESUMABLE_CHANGES but the step count) and the same data; otherwise ValueError names them."""
    path = out / "summary.json"
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
        saved = summary["config"]
        if not isinstance(saved, dict):
            raise TypeError("its config is not an object")
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: unreadable ({type(e).__name__}: {e}); rerun with --overwrite to retrain") from None
    changed = _changed_settings(saved, config, set(RESUMABLE_CHANGES) - {"steps"})
    if changed:
        raise ValueError(f"{out} is a finished run trained with different settings: {', '.join(changed)}; use a "
                         "new output_dir, or --overwrite (overwrite=True) to retrain it")
    if summary.get("data_fingerprint") is not None:  # summaries of older runs do not have it
        try:
            train_files, _ = find_data_files(config.data)
        except (FileNotFoundError, ValueError):
            return  # the data is gone: nothing can have changed it
        if data_fingerprint(train_files) != summary["data_fingerprint"]:
            raise ValueError(f"{out} is a finished run trained on other data (the files of {config.data} changed "
                             "since: names, sizes or times); use a new output_dir, or --overwrite to retrain it")


def _check_resumable(state: dict, config: TrainConfig, fingerprint: str, path: Path) -> None:
    saved = state.get("config", {})
    ignore = set(RESUMABLE_CHANGES) - ({"steps"} if config.schedule == "cosine" else set())
    changed = _changed_settings(saved, config, ignore)
    if changed:
        raise ValueError(f"{path} was trained with different settings: {', '.join(changed)}; use a new "
                         "output_dir, or restore those settings to resume")
    if state.get("data_fingerprint") != fingerprint:
        raise ValueError(f"{path}: the training data changed since this checkpoint (files, sizes or times); "
                         "use a new output_dir")


def _padded_size(part) -> int:
    """Token positions a forward pass over these rows computes, padding included (encoder + decoder)."""
    size = len(part) * max(len(r.input_ids) for r in part)
    if part[0].decoder_input_ids is not None:
        size += len(part) * max(len(r.decoder_input_ids) for r in part)
    return size


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _jsonable(value):
    return json.loads(json.dumps(value))


def _save(accelerator, module, trainable, optimizer, scheduler, stream, config, out, step, fingerprint,
          tokens, enc_tokens, target_tokens, positions, elapsed, fsdp) -> None:
    """Checkpoint after `step` steps; refuses to save non-finite weights (so the last checkpoint stays good).

    Every process calls it: the random generators are gathered from all, and under FSDP the shards too."""
    from accelerate.utils import gather_object

    # each process checks the weights it holds (its shards under FSDP), and all learn of any bad one
    bad = [name for name, p in trainable if not torch.isfinite(_local(p)).all()]
    if accelerator.num_processes > 1:
        bad = sorted(set(gather_object(bad)))
    if bad:
        _diverged(out, step, float("nan"), float("nan"), accelerator.is_main_process,
                  f"parameter {bad[0]} is not finite")
    rng = gather_object([capture_rng()]) if accelerator.num_processes > 1 else [capture_rng()]  # one per process
    weights, optimizer_state = training_state(module, optimizer, trainable, sharded=fsdp)
    if accelerator.is_main_process:
        state = {
            "data_position": stream.position(step, config.batch_size),
            "data_fingerprint": fingerprint,
            "tokens": tokens, "encoder_tokens": enc_tokens, "target_tokens": target_tokens,
            "positions": positions, "elapsed_s": elapsed,
            "world_size": accelerator.num_processes,
            "config": _jsonable(to_dict(config)),
        }
        save_checkpoint(out / "checkpoints", step, weights=weights,
                        optimizer_state=optimizer_state, scheduler_state=scheduler.state_dict(),
                        rng=rng, state=state, keep=config.keep_checkpoints)
    accelerator.wait_for_everyone()


def _local(p: torch.Tensor) -> torch.Tensor:
    """This process's part of a parameter: its shard for an FSDP2 (DTensor) parameter, else the whole."""
    from torch.distributed.tensor import DTensor

    return p.to_local() if isinstance(p, DTensor) else p


def _diverged(out: Path, step: int, loss: float, grad_norm: float, main: bool, detail: str = "") -> None:
    last = latest_checkpoint(out / "checkpoints")
    where = f"the last good checkpoint is {last}" if last else "no checkpoint was written before it"
    what = detail or f"loss {loss}, gradient norm {grad_norm}"
    message = (f"training diverged at step {step}: {what}. Stopped; {where}. Lower lr (or raise warmup_steps / "
               "lower clip_grad) and rerun: an unfinished run resumes from its last checkpoint.")
    if main:
        atomic_write_json(out / "failed.json", {"step": step, "loss": repr(loss), "grad_norm": repr(grad_norm),
                                                "detail": detail, "last_checkpoint": str(last) if last else None})
    raise TrainingDiverged(message)


def _evaluate(accelerator, module, model, tokenizer, kind, config, untrained, val_rows, pad_id, out, step, log) -> None:
    record: dict = {}
    if val_rows:
        record["loss"] = held_out_loss(module, val_rows, kind, pad_id, config.eval_batch_size, accelerator)
    if config.eval_suite:
        record["benchmark"] = benchmark_eval(model, tokenizer, kind, config, untrained,
                                             out / "evals" / f"step-{step:06d}")
    if record:
        log.write({"step": step, "eval": record})
    accelerator.wait_for_everyone()


def _export(out: Path, hf, peft_model, tokenizer, lm, config: TrainConfig, state_dict) -> None:
    """model/ (merged, safetensors, tokenizer, flanlab_model.json) and, for LoRA, adapter/."""
    if peft_model is not None:
        with atomic_dir(out / "adapter", overwrite=True) as tmp:
            peft_model.save_pretrained(tmp)
        merged = peft_model.merge_and_unload()
    else:
        merged = hf
        if state_dict is not None:  # FSDP: the gathered full state dict, keys prefixed by SFTLoss's "model."
            state_dict = {k.removeprefix("model."): v for k, v in state_dict.items()}
            # the gathered copies of a tied parameter are separate tensors: make them one again, so that
            # save_pretrained leaves out the tied names as it does for an unsharded model
            for names in parameter_names(hf).values():
                for alias in names[1:]:
                    state_dict[alias] = state_dict[names[0]]
    with atomic_dir(out / "model", overwrite=True) as tmp:
        merged.save_pretrained(tmp, state_dict=state_dict)
        tokenizer.save_pretrained(tmp)
        (tmp / "flanlab_model.json").write_text(json.dumps(
            {"untrained": lm.untrained, "base": config.model, "lora": config.lora.enabled,
             "trained_steps": config.steps, "created_by": "flanlab train"}, indent=2) + "\n", encoding="utf-8")


def _summary(config, lm, kind, total_params, encoder_params, trainable, tokens, enc_tokens, target_tokens,
             positions, wall, train_losses, evals, data, world, parallelism) -> dict:
    if kind == "seq2seq":
        # an encoder token passes through the encoder's parameters only, a decoder token through the rest
        flops = 6.0 * (encoder_params * enc_tokens + (total_params - encoder_params) * (tokens - enc_tokens))
        flops_note = "6 x (encoder parameters x encoder tokens + other parameters x decoder tokens)"
    else:
        flops = 6.0 * total_params * tokens
        flops_note = "6 x parameters x tokens"
    return {
        "model": config.model,
        "kind": kind,
        "untrained": lm.untrained,
        "parameters": total_params,
        "trainable_parameters": sum(p.numel() for _, p in trainable),
        "lora": config.lora.enabled,
        "steps": config.steps,
        "tokens": tokens,
        "target_tokens": target_tokens,
        "padding_fraction": round(1 - tokens / positions, 4) if positions else None,
        "train_flops": flops,
        "train_flops_formula": flops_note,
        "pretrain_tokens": config.pretrain_tokens,
        "percent_of_pretraining": (100.0 * tokens / config.pretrain_tokens) if config.pretrain_tokens else None,
        "wall_time_s": round(wall, 2),
        "tokens_per_s": round(tokens / wall, 2) if wall > 0 else None,
        "first_loss": train_losses[0] if train_losses else None,
        "final_loss": train_losses[-1] if train_losses else None,
        "final_eval": evals[-1] if evals else None,
        "train_examples": len(data),
        "truncated_inputs": data.truncated_inputs,
        "truncated_targets": data.truncated_targets,
        "processes": world,
        "parallelism": parallelism,  # "single", "ddp" or "fsdp" (parameters sharded over the processes)
        "peak_rss_mb": _peak_rss_mb(),
        "config": _jsonable(to_dict(config)),
    }
