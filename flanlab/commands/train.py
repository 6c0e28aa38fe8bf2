"""`flanlab train CONFIG.yaml [key=value ...]`: fine-tune a model on a mixture (flanlab.train.train).

Several processes, data parallel (DDP):
    accelerate launch --multi_gpu --num_processes N -m flanlab.cli train CONFIG.yaml [key=value ...]
(`--multi_gpu` also starts N CPU processes with the gloo backend on a machine without GPUs.)
Sharded (FSDP version 2; checkpoints and exact resume work, Adafactor and AdamW both; LoRA and eval_suite are
refused):
    accelerate launch --use_fsdp --fsdp_version 2 --num_processes N -m flanlab.cli train CONFIG.yaml
A finished output_dir is returned only when rerun with the settings it was trained with; `--overwrite` deletes
it (or an unfinished one) and trains from the start. A second run on a folder in use stops at once.
"""

from __future__ import annotations

import json

from flanlab.log import process_rank


def add_arguments(parser) -> None:
    from flanlab.config import add_config_help
    from flanlab.train.config import TrainConfig

    add_config_help(parser, TrainConfig)
    parser.add_argument("config", help="a training config (configs/train/*.yaml)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. steps=20 lora.enabled=true")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete what output_dir holds (a finished or unfinished run) and train from the start")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")


def run(args) -> int:
    from flanlab.train import load_train_config, train

    config = load_train_config(args.config, args.overrides)
    out = train(config, progress=not args.no_progress, overwrite=args.overwrite)
    summary_path = out / "summary.json"
    if summary_path.is_file() and process_rank() == 0:  # one report per run
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        keys = ("model", "steps", "tokens", "first_loss", "final_loss", "train_flops", "percent_of_pretraining",
                "wall_time_s", "tokens_per_s")
        print(json.dumps({k: summary.get(k) for k in keys}, indent=2))
        print(f"model folder: {out / 'model'}  (evaluate: flanlab eval --model {out / 'model'})")
    return 0
