"""Fine-tuning speed against TRL's SFTTrainer, back to back on the same machine, model, data and lengths.

    .venv/bin/python bench/train_vs_trl.py                      # SmolLM2-135M preset (a few minutes on 2 cores)
    .venv/bin/python bench/train_vs_trl.py --model tiny-llama   # quick check of the script itself

Contenders, each in its own process (so that each peak RSS is its own):
  trl            TRL SFTTrainer, prompt-completion data (loss on the completion), batches of --batch-size
                 examples padded to the longest, AdamW, constant LR; gradient checkpointing OFF like flanlab
                 (TRL's default is on: --trl-gradient-checkpointing measures that).
  flanlab        flanlab train, packing off: the SAME batches in the same order (TRL reads the data in the
                 order flanlab's epoch-0 permutation visits it, with a sequential sampler), same optimizer and LR.
                 Its loss curve must equal TRL's: this is the equal-loss-curve check.
  flanlab-packed flanlab train with packing (its default): rows of --max-len tokens, --batch-size / 2 rows per
                 step. Different batches, so its loss curve is shown but not compared step by step; packing is
                 exact (tests/test_packing.py).
  trl-packed     TRL with its own packing (best-fit decreasing, padding-free position ids), rows of --max-len,
                 --batch-size / 2 rows per step (--no-trl-packed skips it).
Measured: trained non-padding tokens (prompt + completion + EOS) per second of the training steps, step 1
excluded (warm-up), and the peak RSS of each process during training (flanlab's is taken before it exports
model/, a step TRL skips here with save_strategy="no"). Examples longer than the lengths are left out, so
nothing is truncated on either side. Both run fp32 on the CPU with the same number of torch threads.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED = 0


# ----------------------------------------------------------------------------------------------------------
# data: the same examples, in the order flanlab's stream visits them


def prepare_data(args, work: Path) -> dict:
    import numpy as np

    from flanlab.models import load
    from flanlab.train.data import find_data_files, read_pairs, tokenize_pairs

    data_dir = Path(args.data) if args.data else work / "mix"
    if not args.data:
        cmd = [sys.executable, "-m", "flanlab.cli", "mix", str(ROOT / "configs/mixtures/demo.yaml"), "-o", str(data_dir)]
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    files, _ = find_data_files(data_dir)
    pairs = read_pairs(files, limit=args.examples * 4)
    tokenizer = load(args.model, device="cpu", verbose=False).tokenizer
    max_in, max_tgt = args.max_len * 2 // 3, args.max_len - args.max_len * 2 // 3
    tok = tokenize_pairs(pairs, tokenizer, "causal", 10**9, 10**9)
    keep = [i for i in range(len(pairs)) if len(tok.first[i]) <= max_in and len(tok.second[i]) + 1 <= max_tgt]
    pairs = [pairs[i] for i in keep][: args.examples]
    ours = work / "train.jsonl"
    with open(ours, "w", encoding="utf-8") as f:
        for x, y in pairs:
            f.write(json.dumps({"inputs": x, "targets": y}) + "\n")
    order = np.random.default_rng([SEED, 0]).permutation(len(pairs)).tolist()  # flanlab.train.data.RowStream's
    trl_rows = []
    for i in order:
        x, y = pairs[i]
        prompt = x if not x or x[-1].isspace() else x + "\n"  # flanlab's separator rule
        trl_rows.append({"prompt": prompt, "completion": y})
    trl_file = work / "trl.jsonl"
    trl_file.write_text("".join(json.dumps(r) + "\n" for r in trl_rows), encoding="utf-8")
    return {"ours": str(ours), "trl": str(trl_file), "max_in": max_in, "max_tgt": max_tgt, "n": len(pairs)}


# ----------------------------------------------------------------------------------------------------------
# workers (one per process)


def steady_rate(points: list[tuple[float, int]]) -> float:
    """Tokens per second between the end of step 1 and the end of the last step; points = (time, tokens)."""
    (t1, n1), (t2, n2) = points[0], points[-1]
    return (n2 - n1) / (t2 - t1)


def run_flanlab(args, data: dict, packed: bool, out: Path) -> dict:
    from flanlab.train import load_train_config, train

    config = load_train_config(
        None, None, model=args.model, data=data["ours"], output_dir=str(out), steps=args.steps,
        batch_size=args.batch_size // 2 if packed else args.batch_size, lr=args.lr, optimizer="adamw",
        schedule="constant", warmup_steps=0, clip_grad=1.0, max_input_len=data["max_in"],
        max_target_len=data["max_tgt"], packing=packed, pack_len=args.max_len, save_every=0, seed=SEED,
        log_every=1,
    )
    train(config, progress=False)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    steps = [e for e in log if "loss" in e]
    summary = json.loads((out / "summary.json").read_text())
    return {"losses": [e["loss"] for e in steps], "tokens": steps[-1]["tokens"],
            "tokens_per_s": steady_rate([(e["elapsed_s"], e["tokens"]) for e in steps]),
            "peak_rss_mb": summary["peak_rss_mb_training"],  # before exporting model/, which TRL does not do here
            "padding_fraction": summary["padding_fraction"]}


def run_trl(args, data: dict, packed: bool, out: Path) -> dict:
    import torch
    from datasets import load_dataset
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from flanlab.models import load

    torch.manual_seed(SEED)
    lm = load(args.model, device="cpu", dtype=torch.float32, verbose=False)
    dataset = load_dataset("json", data_files=data["trl"], split="train")
    points: list[tuple[float, int]] = []
    losses: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, a, state, control, **kw):
            points.append((time.perf_counter(), trainer._total_train_tokens))

        def on_log(self, a, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))

    config = SFTConfig(
        output_dir=str(out), max_steps=args.steps, per_device_train_batch_size=args.batch_size // 2 if packed else args.batch_size,
        gradient_accumulation_steps=1, learning_rate=args.lr, lr_scheduler_type="constant", warmup_steps=0,
        optim="adamw_torch", weight_decay=0.0, max_grad_norm=1.0, logging_steps=1, save_strategy="no",
        report_to="none", use_cpu=True, bf16=False, fp16=False, seed=SEED, data_seed=SEED,
        max_length=args.max_len, packing=packed, completion_only_loss=True, train_sampling_strategy="sequential",
        dataloader_num_workers=0, disable_tqdm=True, shuffle_dataset=False,
        # TRL turns gradient checkpointing on by default (less memory, ~1/3 more compute); flanlab does not use it
        gradient_checkpointing=args.trl_gradient_checkpointing,
    )
    trainer = SFTTrainer(model=lm.model, args=config, train_dataset=dataset, processing_class=lm.tokenizer,
                         callbacks=[Clock()])
    trainer.train()
    return {"losses": losses, "tokens": points[-1][1], "tokens_per_s": steady_rate(points)}


def worker(args) -> None:
    data = json.loads(Path(args.data_json).read_text())
    out = Path(args.out)
    run = run_trl if args.worker.startswith("trl") else run_flanlab
    t0 = time.time()
    result = run(args, data, args.worker.endswith("packed"), out / "run")
    result["wall_s"] = round(time.time() - t0, 1)
    result.setdefault("peak_rss_mb", round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
    (out / "result.json").write_text(json.dumps(result))


# ----------------------------------------------------------------------------------------------------------
# the comparison


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--data", default=None, help="a mixture folder (default: build configs/mixtures/demo.yaml)")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=8, help="examples per step (packed: batch-size / 2 rows)")
    p.add_argument("--max-len", type=int, default=384, help="tokens per example (unpacked) or per row (packed)")
    p.add_argument("--examples", type=int, default=400)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--no-trl-packed", action="store_true")
    p.add_argument("--trl-gradient-checkpointing", action="store_true",
                   help="TRL's default; off here by default, as flanlab trains without it")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--data-json", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.worker:
        worker(args)
        return 0

    import torch

    names = ["trl", "flanlab", "flanlab-packed"] + ([] if args.no_trl_packed else ["trl-packed"])
    with tempfile.TemporaryDirectory(prefix="flanlab-bench-") as tmp:
        work = Path(tmp)
        data = prepare_data(args, work)
        (work / "data.json").write_text(json.dumps(data))
        print(f"TRL gradient checkpointing: {'on' if args.trl_gradient_checkpointing else 'off'}; "
              f"model {args.model}; {data['n']} examples (prompt <= {data['max_in']}, target + EOS <= {data['max_tgt']} "
              f"tokens); {args.steps} steps; {args.batch_size} examples/step unpacked, {args.batch_size // 2} rows of "
              f"{args.max_len} packed; torch threads {torch.get_num_threads()}", flush=True)
        results = {}
        for name in names:
            out = work / name
            out.mkdir()
            cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--data-json",
                   str(work / "data.json"), "--out", str(out), "--model", args.model, "--steps", str(args.steps),
                   "--batch-size", str(args.batch_size), "--max-len", str(args.max_len), "--lr", str(args.lr)]
            cmd += ["--trl-gradient-checkpointing"] if args.trl_gradient_checkpointing else []
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                                  env=dict(os.environ, PYTHONPATH=str(ROOT)))
            if proc.returncode != 0:
                print(f"{name}: FAILED\n{proc.stderr[-3000:]}")
                results[name] = None
                continue
            results[name] = json.loads((out / "result.json").read_text())
            r = results[name]
            print(f"  {name:15s} {r['tokens_per_s']:8.1f} tok/s   peak RSS {r['peak_rss_mb']:7.0f} MB   "
                  f"({r['tokens']} tokens, {r['wall_s']}s)", flush=True)

    print("\npadding (padded positions / positions computed): " + ", ".join(
        f"{n} {r['padding_fraction']:.0%}" for n, r in results.items() if r and r.get("padding_fraction") is not None)
        + " (trl's unpacked batches are flanlab's)")
    print("\nloss per step")
    print("step  " + "".join(f"{n:>16s}" for n in names))
    for s in range(args.steps):
        cells = []
        for n in names:
            losses = (results.get(n) or {}).get("losses", [])
            cells.append(f"{losses[s]:16.4f}" if s < len(losses) else f"{'-':>16s}")
        print(f"{s + 1:4d}  " + "".join(cells))
    trl, ours, packed = results.get("trl"), results.get("flanlab"), results.get("flanlab-packed")
    if trl and ours:
        diff = max(abs(a - b) for a, b in zip(trl["losses"], ours["losses"]))
        print(f"\nequal loss curve (same batches): max |flanlab - trl| = {diff:.2e} "
              f"({'OK' if diff < 1e-2 else 'DIFFERENT'}, relative to a first loss of {trl['losses'][0]:.3f})")
        print(f"tokens/s ratio flanlab (unpacked) / trl       : {ours['tokens_per_s'] / trl['tokens_per_s']:.2f}x")
    if trl and packed:
        print(f"tokens/s ratio flanlab (packed)   / trl       : {packed['tokens_per_s'] / trl['tokens_per_s']:.2f}x  "
              "(target >= 1.5x)")
    if packed and results.get("trl-packed"):
        print(f"tokens/s ratio flanlab (packed)   / trl-packed: "
              f"{packed['tokens_per_s'] / results['trl-packed']['tokens_per_s']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
