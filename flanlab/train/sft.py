"""The fine-tuning loop, top to bottom: setup -> resume -> fit (step, log, checkpoint, validate) -> finish
(export, summary). `train(config)` runs them in that order.

`train(config)` fine-tunes a causal or seq2seq model on (inputs, targets) pairs with the loss on targets only,
and returns the run folder:
    model/          a Hugging Face folder (safetensors + tokenizer + flanlab_model.json); with LoRA, the merged model
    adapter/        LoRA only: the peft adapter, loadable with peft on top of the base model
    checkpoints/    step-N/ folders for exact resumption (flanlab.train.checkpoint)
    log.jsonl       one object per logged step: step, loss, lr, tokens, tokens_per_s, elapsed_s (+ grad_norm);
                    evaluations as {"step", "eval": {...}}
    summary.json    written last: a run folder holding it is finished and is not retrained (a rerun with other
                    settings that change what is trained, or other data, is refused; overwrite=True retrains)
    tensorboard/    with report_to: [tensorboard] (or tensorboard: true); MLflow and W&B: flanlab.train.trackers
A rerun of an unfinished folder resumes from its newest checkpoint and ends with the same weights as an
uninterrupted run (tests/test_train_resume.py kills a run with SIGKILL to check it). A damaged checkpoint
(sizes or checksums differ from its manifest, a file does not load) is skipped with a warning for the one
before it. The run holds the folder's lock (flanlab.runlock): a second run on the same output_dir stops at once.
The run's counters (steps, tokens, ...) are one `RunState`, saved in each checkpoint and restored from it.

The model has one name per wrapping level (fields of `Run`):
    model       the Hugging Face model being trained (with LoRA, peft injects its layers into it in place)
    peft_model  LoRA only: peft's wrapper of `model` (saves the adapter, merges it for the export)
    loss_model  SFTLoss(model): a batch in, the summed target-token loss out
    wrapped     loss_model as accelerate prepared it (DDP or FSDP wrapper); loss_model itself on one process
                and under flanlab's own CPU FSDP, which shards loss_model in place

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
import dataclasses
import json
import math
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from flanlab.config import to_dict
from flanlab.fileio import atomic_dir, atomic_write_json, discard_dir
from flanlab.log import get_logger
from flanlab.runlock import locks_folder
from flanlab.train.build import (add_lora, fsdp_on_cpu_requested, lr_factor, make_optimizer, set_dropout,
                                shard_on_cpu, sliding_window_conflict)
from flanlab.train.checkpoint import (capture_rng, gather_full_weights, latest_checkpoint, load_latest_usable,
                                     parameter_names, restore_rng, restore_training_state, save_checkpoint,
                                     training_state)
from flanlab.train.config import RESUMABLE_CHANGES, TrainConfig
from flanlab.train.data import (RowStream, TokenizedData, data_fingerprint, eval_rows, find_data_files, read_pairs,
                                tokenize_pairs)
from flanlab.train.loss import SFTLoss
from flanlab.train.packing import Row, collate
from flanlab.train.trackers import RunLog, close_trackers, start_trackers

logger = get_logger(__name__)  # `log` is the run's RunLog here

class TrainingDiverged(RuntimeError):
    """The loss or the gradient norm became NaN or infinite."""


@dataclass
class RunState:
    """The run's counters: saved in every checkpoint's state.json (under these names) and restored from it."""

    step: int = 0  # optimizer steps done
    tokens: int = 0  # tokens trained on, padding excluded (seq2seq: encoder + decoder)
    encoder_tokens: int = 0  # seq2seq: the encoder's part of `tokens`
    target_tokens: int = 0  # tokens the loss is taken on
    positions: int = 0  # token positions computed, padding included (padding_fraction = 1 - tokens / positions)
    elapsed_s: float = 0.0  # training wall time, earlier processes of a resumed run included

    @classmethod
    def from_checkpoint(cls, saved: dict) -> RunState:
        return cls(**{f.name: saved[f.name] for f in dataclasses.fields(cls)})

    def counters(self) -> dict:
        """What a checkpoint records (save_checkpoint adds the step itself)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "step"}


@dataclass
class Run:
    """What setup builds and every later phase reads: the run's settings, model, data and optimizer."""

    config: TrainConfig
    out: Path  # the run folder
    accelerator: object  # accelerate.Accelerator
    lm: object  # flanlab.models.LoadedModel: kind, tokenizer, untrained (lm.model is `model`)
    model: torch.nn.Module  # one name per wrapping level: see the module docstring
    peft_model: object | None
    loss_model: SFTLoss
    wrapped: torch.nn.Module
    trainable: list[tuple[str, torch.nn.Parameter]]  # named as model.named_parameters() names them
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    train_data: TokenizedData
    stream: RowStream  # the global batch of a step: a pure function of the step
    val_rows: list[Row]  # held-out rows (unpacked); empty without validation data
    fingerprint: str  # of the training files: a checkpoint or finished run on other data is refused
    per_forward: int  # rows per forward pass (per process, per micro-batch)
    fsdp: bool  # parameters sharded over the processes (accelerate's FSDP or flanlab's CPU FSDP2)
    precision: str  # "fp32" or "bf16" (autocast), as it runs
    total_params: int  # the base model's, before any LoRA matrices
    encoder_params: int  # seq2seq: the encoder's part of total_params
    started: float  # time.time() when setup began
    data_dir: object = None  # eval_suite's data dir, as train() was given it (None: evaluate() reads FLANLAB_DATA_DIR)

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def world(self) -> int:
        return self.accelerator.num_processes

    @property
    def kind(self) -> str:
        return self.lm.kind

    @property
    def pad_id(self) -> int:
        return self.lm.tokenizer.pad_token_id

    @property
    def parallelism(self) -> str:
        return "fsdp" if self.fsdp else "ddp" if self.world > 1 else "single"


# ----------------------------------------------------------------------------------------------------------
# the run


@locks_folder("train", lambda config, *args, **kwargs: config.output_dir)
def train(config: TrainConfig, progress: bool = True, overwrite: bool = False, data_dir=None) -> Path:
    """Fine-tune per `config`; return the run folder (see the module docstring). Resumes an unfinished run;
    returns a finished one trained the same way, refuses one trained otherwise. overwrite=True deletes what
    output_dir holds, finished or not, and trains from the start. data_dir goes to eval_suite's evaluations: a
    folder, settings.NO_DATA_DIR for none (an offline scale grid), or None for evaluate()'s own default."""
    config.check()
    out = Path(config.output_dir)
    if not overwrite and (out / "summary.json").is_file():
        check_finished(out, config)
        logger.info("%s is finished (summary.json present) with these settings; not retraining", out)
        return out

    run = setup(config, overwrite)
    run.data_dir = data_dir
    state = resume(run)
    log = open_log(run, state)
    try:
        peak_rss_training = fit(run, state, log, progress)
        finish(run, state, log, peak_rss_training)
    except BaseException:
        close_trackers(run.accelerator, failed=True)
        raise
    close_trackers(run.accelerator, failed=False)
    run.accelerator.wait_for_everyone()
    run.accelerator.end_training()
    return out


# ----------------------------------------------------------------------------------------------------------
# setup: processes, model, data, optimizer


def setup(config: TrainConfig, overwrite: bool) -> Run:
    """Start the processes (accelerate), load and wrap the model, read the data, make the optimizer."""
    from accelerate.utils import set_seed

    from flanlab.models import load

    accelerator, precision = _start_accelerator(config)
    world = accelerator.num_processes
    per_forward, remainder = divmod(config.batch_size, config.grad_accum * world)
    if remainder or per_forward == 0:
        raise ValueError(f"batch_size {config.batch_size} must be a multiple of grad_accum x processes "
                         f"({config.grad_accum} x {world})")
    out = Path(config.output_dir)
    if overwrite:
        if accelerator.is_main_process and out.exists():
            discard_dir(out)
            logger.info("--overwrite: deleted the previous content of %s", out)
        accelerator.wait_for_everyone()
    fsdp, cpu_fsdp = _fsdp_mode(accelerator, config)
    if config.threads:
        torch.set_num_threads(config.threads)
    set_seed(config.seed)
    started = time.time()

    main = accelerator.is_main_process
    with accelerator.main_process_first():  # a preset is converted once, by the main process
        lm = load(config.model, device=str(accelerator.device), dtype=torch.float32, verbose=main)
    model = lm.model
    config.check_packing(lm.kind)
    if config.packing and (why := sliding_window_conflict(model, config)):
        raise ValueError(why)
    if config.dropout is not None:
        set_dropout(model, config.dropout)
    total_params = sum(p.numel() for p in model.parameters())  # before any LoRA matrices
    encoder_params = sum(p.numel() for n, p in model.named_parameters() if n.startswith("encoder."))
    peft_model = add_lora(model, lm.kind, config.lora) if config.lora.enabled else None  # layers injected in place
    model.train()

    train_files, val_files = find_data_files(config.data)
    logger.debug("data: %s (%d training file(s), first %s; %d validation file(s))", Path(config.data).resolve(),
                 len(train_files), train_files[0] if train_files else "none", len(val_files))
    train_data, stream, val_rows = _read_data(config, lm, train_files, val_files)

    loss_model = SFTLoss(model, lm.kind)
    if cpu_fsdp:  # sharding replaces the parameters (by DTensors): the optimizer is made on the sharded ones
        shard_on_cpu(loss_model, model, world)
    optimizer = make_optimizer(config, _trainable(model))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(config, s))
    wrapped = loss_model
    if not cpu_fsdp:
        wrapped, optimizer = accelerator.prepare(loss_model, optimizer)  # the scheduler is stepped by hand
        loss_model = accelerator.unwrap_model(wrapped)
    # FSDP may replace parameter objects (sharded DTensors): take them from the prepared model
    trainable = _trainable(loss_model.model)
    return Run(config=config, out=out, accelerator=accelerator, lm=lm, model=model, peft_model=peft_model,
               loss_model=loss_model, wrapped=wrapped, trainable=trainable, optimizer=optimizer, scheduler=scheduler,
               train_data=train_data, stream=stream, val_rows=val_rows, fingerprint=data_fingerprint(train_files),
               per_forward=per_forward, fsdp=fsdp, precision=precision, total_params=total_params,
               encoder_params=encoder_params, started=started)


def _start_accelerator(config: TrainConfig):
    """(the Accelerator of this process, the precision it runs in: "bf16" or "fp32")."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    cuda = config.device == "cuda" or (config.device is None and torch.cuda.is_available())
    precision = config.precision or ("bf16" if cuda else "fp32")
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        # accelerate keeps one state per process and refuses an Accelerator with other settings than the first
        # (another run in this process: fp32 after bf16, the CPU after CUDA); a run not launched distributed starts
        # from a clean state
        AcceleratorState._reset_state(reset_partial_state=True)
    accelerator = Accelerator(cpu=not cuda, mixed_precision={"bf16": "bf16", "fp32": "no"}[precision])
    return accelerator, precision


def _fsdp_mode(accelerator, config: TrainConfig) -> tuple[bool, bool]:
    """(sharded at all, sharded by flanlab on CPU processes); refuses what FSDP does not support here."""
    from accelerate.utils import DistributedType

    cpu_fsdp = fsdp_on_cpu_requested(accelerator)  # flanlab shards the model itself (accelerate would not)
    fsdp = accelerator.distributed_type == DistributedType.FSDP or cpu_fsdp
    if fsdp and (config.lora.enabled or config.eval_suite):
        raise ValueError("under FSDP, flanlab train supports neither LoRA nor eval_suite: set lora.enabled=false "
                         "eval_suite=null, or use DDP (the default)")
    if fsdp and not cpu_fsdp and not accelerator.is_fsdp2 and config.save_every:
        raise ValueError("checkpoints under FSDP need FSDP version 2 (accelerate launch --fsdp_version 2); "
                         "or set save_every=0")
    return fsdp, cpu_fsdp


def _read_data(config: TrainConfig, lm, train_files: list[Path], val_files: list[Path]):
    """(tokenized training examples, the stream of training rows, held-out rows) for this model."""
    start_id = getattr(lm.model.config, "decoder_start_token_id", None) if lm.kind == "seq2seq" else None
    train_data = tokenize_pairs(read_pairs(train_files), lm.tokenizer, lm.kind, config.max_input_len,
                                config.max_target_len, config.separator)
    stream = RowStream(train_data, packing=config.packing, pack_len=config.pack_len,
                       pack_target_len=config.pack_target_len, seed=config.seed, decoder_start_id=start_id)
    val_rows = []
    if val_files:
        val_data = tokenize_pairs(read_pairs(val_files, limit=config.eval_examples), lm.tokenizer, lm.kind,
                                  config.max_input_len, config.max_target_len, config.separator)
        val_rows = eval_rows(val_data, start_id)
    return train_data, stream, val_rows


def _trainable(model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


# ----------------------------------------------------------------------------------------------------------
# resume, and the log and trackers


def resume(run: Run) -> RunState:
    """Restore the newest usable checkpoint (weights, optimizer, scheduler, random generators) and return its
    RunState; a fresh RunState when there is none. A checkpoint of other settings or data is refused."""
    def warn(message: str) -> None:
        if run.main:
            logger.warning("%s", message)

    usable = load_latest_usable(run.out / "checkpoints", warn)
    if usable is None:
        return RunState()
    path, checkpoint = usable
    _check_resumable(checkpoint["state"], run.config, run.fingerprint, path)
    if set(checkpoint["weights"]) != {name for name, _ in run.trainable}:
        raise ValueError(f"{path}: its weights do not match this model's trainable parameters")
    restore_training_state(run.wrapped, run.optimizer, run.trainable, checkpoint["weights"], checkpoint["optimizer"],
                           sharded=run.fsdp)
    run.scheduler.load_state_dict(checkpoint["scheduler"])
    if len(checkpoint["rng"]) != run.world:
        raise ValueError(f"{path} was written by {len(checkpoint['rng'])} process(es); resume it with as many "
                         f"(this run has {run.world}) for an exact continuation")
    restore_rng(*checkpoint["rng"][run.accelerator.process_index])
    state = RunState.from_checkpoint(checkpoint["state"])
    if run.main:
        logger.info("resuming from %s (step %d)", path, state.step)
        if state.step >= run.config.steps:
            logger.info("checkpoint is at step %d >= steps %d; exporting", state.step, run.config.steps)
    return state


def open_log(run: Run, state: RunState) -> RunLog:
    """The run folder's log (cut back to the resumed step) and the trackers of report_to; logs the setup line."""
    if run.main:
        run.out.mkdir(parents=True, exist_ok=True)
    log = RunLog(run.out, state.step, run.accelerator)
    start_trackers(run.accelerator, run.config.trackers(), run.out, state.step, _jsonable(to_dict(run.config)))
    if run.main:
        config = run.config
        trainable = sum(p.numel() for _, p in run.trainable)
        logger.info(f"training {config.model} ({run.kind}, {run.total_params / 1e6:.1f}M params, "
                    f"{trainable / 1e6:.2f}M trainable), {len(run.train_data)} examples -> "
                    f"{len(run.stream.epoch_rows(0))} rows/epoch ({'packed' if config.packing else 'unpacked'}), "
                    f"{run.world} process(es) ({run.parallelism}), {run.per_forward} rows per forward, "
                    f"{run.precision} on {run.accelerator.device.type}; setup {time.time() - run.started:.1f}s")
    return log


# ----------------------------------------------------------------------------------------------------------
# fit: the loop


def fit(run: Run, state: RunState, log: RunLog, progress: bool) -> float:
    """Train from state.step to config.steps: step, log, checkpoint, validate; then the final checkpoint.
    Returns the peak RSS of training (MB), measured before the final checkpoint and the export copy weights."""
    from tqdm.auto import tqdm

    config = run.config
    first_step = state.step
    bar = tqdm(total=config.steps, initial=first_step, disable=not (progress and run.main), unit="step",
               dynamic_ncols=True, desc="train")
    t_start, elapsed_before = time.time(), state.elapsed_s
    t_last, tokens_last = t_start, state.tokens
    for step in range(first_step, config.steps):
        loss, grad_norm, lr = train_step(run, state, step)
        now = time.time()
        state.elapsed_s = elapsed_before + now - t_start
        if state.step % config.log_every == 0 or state.step == config.steps:
            rate = (state.tokens - tokens_last) / max(now - t_last, 1e-9)
            log.write({"step": state.step, "loss": round(loss, 6), "lr": lr, "tokens": state.tokens,
                       "tokens_per_s": round(rate, 2), "elapsed_s": round(state.elapsed_s, 3),
                       "grad_norm": round(grad_norm, 6)})
            t_last, tokens_last = now, state.tokens
            bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{rate:.0f}")
        bar.update(1)

        if config.save_every and state.step % config.save_every == 0 and state.step < config.steps:
            state.elapsed_s = elapsed_before + time.time() - t_start
            _save(run, state)
        if (config.eval_every and state.step % config.eval_every == 0) or state.step == config.steps:
            validate(run, log, state.step)
    bar.close()
    state.elapsed_s = elapsed_before + time.time() - t_start
    peak_rss_training = _peak_rss_mb()
    if config.save_every and config.steps > first_step:  # a final checkpoint: a rerun with more steps continues
        _save(run, state)
    return peak_rss_training


def train_step(run: Run, state: RunState, step: int) -> tuple[float, float, float]:
    """One optimizer step on the global batch of `step` (every process builds it and takes its share of each
    micro-batch); adds to the counters of `state`. Returns (loss: token-level mean over the global batch,
    gradient norm before clipping, the learning rate the step used)."""
    config, accelerator, world, per_forward = run.config, run.accelerator, run.world, run.per_forward
    rows = run.stream.global_batch(step, config.batch_size)  # batch_size rows = grad_accum x world x per_forward
    step_targets = sum(r.target_tokens for r in rows)
    scale = world / max(step_targets, 1)  # DDP averages gradients over processes; we want sum / tokens
    local_loss = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    for a in range(config.grad_accum):
        first = (a * world + accelerator.process_index) * per_forward
        part = rows[first : first + per_forward]  # this process's share of micro-batch a
        batch = _to_device(collate(part, run.kind, run.pad_id, packed=config.packing), accelerator.device)
        # batch["input_ids"]: (per_forward, L); seq2seq also batch["decoder_input_ids"]: (per_forward, Ld)
        sync = contextlib.nullcontext() if a == config.grad_accum - 1 else accelerator.no_sync(run.wrapped)
        with sync, accelerator.autocast():
            loss_sum = run.wrapped(batch)  # (): summed loss over the share's target tokens
            accelerator.backward(loss_sum * scale)
        local_loss += loss_sum.detach().double()
    total_loss = accelerator.reduce(local_loss, reduction="sum") if world > 1 else local_loss  # (): all shares
    loss = float(total_loss) / max(step_targets, 1)
    grad_norm = float(accelerator.clip_grad_norm_([p for _, p in run.trainable], config.clip_grad or float("inf")))
    if not (math.isfinite(loss) and math.isfinite(grad_norm)):
        _diverged(run.out, step + 1, loss, grad_norm, run.main)
    lr = run.optimizer.param_groups[0]["lr"]  # the rate this step used
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)

    state.step = step + 1
    state.tokens += sum(r.tokens for r in rows)
    state.encoder_tokens += sum(len(r.input_ids) for r in rows) if run.kind == "seq2seq" else 0
    state.target_tokens += step_targets
    state.positions += sum(_padded_size(rows[i : i + per_forward]) for i in range(0, len(rows), per_forward))
    return loss, grad_norm, lr


# ----------------------------------------------------------------------------------------------------------
# validate


def validate(run: Run, log: RunLog, step: int) -> None:
    """The held-out loss (with validation data) and eval_suite's benchmarks, logged as {"step", "eval"}."""
    config = run.config
    record: dict = {}
    if run.val_rows:
        record["loss"] = held_out_loss(run.loss_model, run.val_rows, run.kind, run.pad_id, config.eval_batch_size,
                                       run.accelerator)
    if config.eval_suite:
        record["benchmark"] = benchmark_eval(run.model, run.lm.tokenizer, run.kind, config, run.lm.untrained,
                                             run.out / "evals" / f"step-{step:06d}", run.data_dir)
    if record:
        log.write({"step": step, "eval": record})
    run.accelerator.wait_for_everyone()


def held_out_loss(loss_model: SFTLoss, rows: list[Row], kind: str, pad_id: int, batch_size: int,
                  accelerator) -> float | None:
    """Token-level mean loss over validation rows (unpacked), shared out over the processes.

    Every process runs the same number of forward passes (FSDP gathers weights collectively in each): a process
    short of a batch repeats the first one and discards the result."""
    batches = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    world, rank = accelerator.num_processes, accelerator.process_index
    total = torch.zeros(2, dtype=torch.float64, device=accelerator.device)  # (loss sum, target tokens)
    was_training = loss_model.training
    loss_model.eval()
    with torch.no_grad(), accelerator.autocast():
        for j in range(rank, -(-len(batches) // world) * world, world):
            part = batches[j] if j < len(batches) else batches[0]
            batch = _to_device(collate(part, kind, pad_id, packed=False), accelerator.device)
            loss_sum = loss_model(batch).double()  # (): summed over the part's target tokens
            if j < len(batches):
                total[0] += loss_sum
                total[1] += sum(r.target_tokens for r in part)
    loss_model.train(was_training)
    total = accelerator.reduce(total, reduction="sum") if accelerator.num_processes > 1 else total
    return float(total[0] / total[1]) if total[1] > 0 else None


def benchmark_eval(model, tokenizer, kind: str, config: TrainConfig, untrained: bool, out_dir: Path,
                   data_dir=None) -> dict:
    """flanlab.eval on the model being trained (optional; skipped with a note when the harness is missing).

    Called in every process: under several processes the harness shares the items out and gathers them."""
    try:
        from flanlab.eval.runner import evaluate
    except ImportError as e:
        return {"suite": config.eval_suite, "skipped": f"flanlab.eval.runner not available ({e})"}
    from flanlab.models import LoadedModel

    lm = LoadedModel(model=model, tokenizer=tokenizer, kind=kind, name=f"{config.model} (training)",
                     untrained=untrained, info={"parameters": sum(p.numel() for p in model.parameters())})
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            results = evaluate(lm, config.eval_config(), out_dir=out_dir, data_dir=data_dir, progress=False)
    finally:
        model.train(was_training)
    record = {"suite": config.eval_suite, "out_dir": str(out_dir)}
    # the paper's normalized average (None unless the suite has its six components) and the synthetic suite
    # average (where the suite has synthetic modes), each with its standard error, as results.json gives them
    for key in ("normalized_average", "synthetic_average"):
        average = results.get(key) if isinstance(results, dict) else None
        if isinstance(average, dict):
            record[key] = average.get("value")
            record[f"{key}_stderr"] = (((average.get("uncertainty") or {}).get("value") or {}).get("stderr")
                                       if average.get("value") is not None else None)
    return record


# ----------------------------------------------------------------------------------------------------------
# checkpoint, export, summary


def _save(run: Run, state: RunState) -> None:
    """Checkpoint the run at state.step; refuses to save non-finite weights (so the last checkpoint stays good).

    Every process calls it: the random generators are gathered from all, and under FSDP the shards too."""
    from accelerate.utils import gather_object

    accelerator = run.accelerator
    # each process checks the weights it holds (its shards under FSDP), and all learn of any bad one
    bad = [name for name, p in run.trainable if not torch.isfinite(_local(p)).all()]
    if run.world > 1:
        bad = sorted(set(gather_object(bad)))
    if bad:
        _diverged(run.out, state.step, float("nan"), float("nan"), run.main, f"parameter {bad[0]} is not finite")
    rng = gather_object([capture_rng()]) if run.world > 1 else [capture_rng()]  # one per process
    weights, optimizer_state = training_state(run.wrapped, run.optimizer, run.trainable, sharded=run.fsdp)
    if run.main:
        record = {"data_position": run.stream.position(state.step, run.config.batch_size),
                  "data_fingerprint": run.fingerprint, **state.counters(), "world_size": run.world,
                  "config": _jsonable(to_dict(run.config))}
        save_checkpoint(run.out / "checkpoints", state.step, weights=weights, optimizer_state=optimizer_state,
                        scheduler_state=run.scheduler.state_dict(), rng=rng, state=record,
                        keep=run.config.keep_checkpoints)
        logger.debug("checkpoint of step %d saved in %s", state.step, run.out / "checkpoints")
    accelerator.wait_for_everyone()


def finish(run: Run, state: RunState, log: RunLog, peak_rss_training: float) -> None:
    """model/ (and adapter/), then summary.json, written last: the run is finished."""
    state_dict = gather_full_weights(run.wrapped) if run.fsdp else None  # every process takes part
    if not run.main:
        return
    _export(run, state_dict)
    summary = _summary(run, state, log.entries(), peak_rss_training)
    atomic_write_json(run.out / "summary.json", summary)
    logger.info(f"training done: {run.config.steps} steps, {state.tokens} tokens, loss {summary['first_loss']} -> "
                f"{summary['final_loss']}, {state.elapsed_s:.0f}s; model in {run.out / 'model'}")


def _export(run: Run, state_dict: dict | None) -> None:
    """model/ (merged, safetensors, tokenizer, flanlab_model.json) and, for LoRA, adapter/."""
    out, config = run.out, run.config
    if run.peft_model is not None:
        with atomic_dir(out / "adapter", overwrite=True) as tmp:
            run.peft_model.save_pretrained(tmp)
        merged = run.peft_model.merge_and_unload()
    else:
        merged = run.model
        if state_dict is not None:  # FSDP: the gathered full state dict, keys prefixed by SFTLoss's "model."
            state_dict = {k.removeprefix("model."): v for k, v in state_dict.items()}
            # the gathered copies of a tied parameter are separate tensors: make them one again, so that
            # save_pretrained leaves out the tied names as it does for an unsharded model
            for names in parameter_names(run.model).values():
                for alias in names[1:]:
                    state_dict[alias] = state_dict[names[0]]
    with atomic_dir(out / "model", overwrite=True) as tmp:
        merged.save_pretrained(tmp, state_dict=state_dict)
        run.lm.tokenizer.save_pretrained(tmp)
        (tmp / "flanlab_model.json").write_text(json.dumps(
            {"untrained": run.lm.untrained, "base": config.model, "lora": config.lora.enabled,
             "trained_steps": config.steps, "created_by": "flanlab train"}, indent=2) + "\n", encoding="utf-8")


def _summary(run: Run, state: RunState, entries: list[dict], peak_rss_training: float) -> dict:
    config, data, wall = run.config, run.train_data, state.elapsed_s
    train_losses = [e["loss"] for e in entries if "loss" in e]
    evals = [e["eval"] for e in entries if "eval" in e]
    if run.kind == "seq2seq":
        # an encoder token passes through the encoder's parameters only, a decoder token through the rest
        flops = 6.0 * (run.encoder_params * state.encoder_tokens
                       + (run.total_params - run.encoder_params) * (state.tokens - state.encoder_tokens))
        flops_note = "6 x (encoder parameters x encoder tokens + other parameters x decoder tokens)"
    else:
        flops = 6.0 * run.total_params * state.tokens
        flops_note = "6 x parameters x tokens"
    return {
        "model": config.model,
        "kind": run.kind,
        "untrained": run.lm.untrained,
        "parameters": run.total_params,
        "trainable_parameters": sum(p.numel() for _, p in run.trainable),
        "lora": config.lora.enabled,
        "steps": config.steps,
        "tokens": state.tokens,
        "target_tokens": state.target_tokens,
        "padding_fraction": round(1 - state.tokens / state.positions, 4) if state.positions else None,
        "train_flops": flops,
        "train_flops_formula": flops_note,
        "pretrain_tokens": config.pretrain_tokens,
        "percent_of_pretraining": (100.0 * state.tokens / config.pretrain_tokens) if config.pretrain_tokens else None,
        "wall_time_s": round(wall, 2),
        "tokens_per_s": round(state.tokens / wall, 2) if wall > 0 else None,
        "first_loss": train_losses[0] if train_losses else None,
        "final_loss": train_losses[-1] if train_losses else None,
        "final_eval": evals[-1] if evals else None,
        "train_examples": len(data),
        "truncated_inputs": data.truncated_inputs,
        "truncated_targets": data.truncated_targets,
        "processes": run.world,
        "parallelism": run.parallelism,  # "single", "ddp" or "fsdp" (parameters sharded over the processes)
        "peak_rss_mb": _peak_rss_mb(),
        "config": _jsonable(to_dict(config)),
        "peak_rss_mb_training": peak_rss_training,
        "precision": run.precision,  # what ran: config.precision null means bf16 on CUDA, fp32 on CPU
        "device": run.accelerator.device.type,
        "data_fingerprint": run.fingerprint,  # a rerun on changed data is refused (check_finished)
    }


# ----------------------------------------------------------------------------------------------------------
# a finished run, a checkpoint: trained the same way?


def _changed_settings(saved: dict, config: TrainConfig, ignore: set[str]) -> list[str]:
    """"name (saved value -> requested value)" for each setting outside `ignore` that differs."""
    now = _jsonable(to_dict(config))
    return [f"{k} ({saved.get(k)!r} -> {now[k]!r})" for k in now if k not in ignore and saved.get(k) != now[k]]


def check_finished(out: Path, config: TrainConfig) -> None:
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


# ----------------------------------------------------------------------------------------------------------
# small pieces


def _padded_size(part: list[Row]) -> int:
    """Token positions a forward pass over these rows computes, padding included (encoder + decoder)."""
    size = len(part) * max(len(r.input_ids) for r in part)
    if part[0].decoder_input_ids is not None:
        size += len(part) * max(len(r.decoder_input_ids) for r in part)
    return size


def _to_device(batch: dict, device) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _jsonable(value):
    return json.loads(json.dumps(value))


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
