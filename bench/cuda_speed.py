"""Speed on the GPU, for the record (not targets): training and generation tokens/s of the tiny presets (and of
SmolLM2 where its preset is available on the machine). Called by bench/cuda_check.sh.

usage: python bench/cuda_speed.py STEPS_TSV [--device cuda] [--work DIR]
Appends one line per measurement to STEPS_TSV ("speed ... <TAB> INFO <TAB> detail") and prints it.
Training: the default precision (CUDA: bf16 autocast), packed 512-token rows, batch 16, 12 steps; the median of
the logged per-step rates after the first 2 steps (CUDA start-up and kernel selection excluded).
Generation: greedy, 32 prompts in batches of 16, 64 new tokens each, no stop strings; generated tokens (the tokens
the model produced, an ending EOS included, as the engine counts them: an untrained model's tokens may decode to no
text at all) over the wall time of the second of two identical passes.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

WORDS = "alpha beta gamma delta kappa sigma omega red green blue seven eleven".split()


def write_mixture(folder: Path, n: int = 2000, seed: int = 0) -> Path:
    """A reverse-the-words mixture, as `flanlab mix` writes one (the test suite's task, longer)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "train-00000-of-00001.jsonl", "w", encoding="utf-8") as f:
        for _ in range(n):
            ws = [rng.choice(WORDS) for _ in range(rng.randint(8, 40))]
            f.write(json.dumps({"inputs": "Reverse the words: " + " ".join(ws), "targets": " ".join(reversed(ws)),
                                "task": "reverse", "category": "synthetic", "template_id": "t0",
                                "format": "zs_noopt", "source": "synthetic"}) + "\n")
    return folder


def train_speed(model: str, device: str, work: Path) -> str:
    from flanlab.train import load_train_config, train

    data = work / "mix" if (work / "mix").is_dir() else write_mixture(work / "mix")
    run = train(load_train_config(None, None, model=model, data=str(data), device=device,
                                  output_dir=str(work / f"train-{model}"), steps=12, batch_size=16, lr=1e-4,
                                  optimizer="adamw", max_input_len=384, max_target_len=128, pack_len=512,
                                  pack_target_len=128, save_every=0, log_every=1), progress=False)
    rates = [e["tokens_per_s"] for e in map(json.loads, (run / "log.jsonl").read_text().splitlines()) if "loss" in e]
    summary = json.loads((run / "summary.json").read_text())
    precision = {"bf16": "bf16 autocast", "fp32": "fp32"}[summary["config"].get("precision")
                                                         or ("bf16" if device.startswith("cuda") else "fp32")]
    return (f"{model} {precision}, packed 512 x 16: {statistics.median(rates[2:]):.0f} tokens/s "
            f"(median of steps 3-12; whole run {summary['tokens_per_s']:.0f})")


def generation_speed(model: str, device: str) -> str:
    from flanlab.eval.engine import Engine, GenerationSettings
    from flanlab.eval.spec import EvalItem
    from flanlab.models import load

    lm = load(model, device=device, verbose=False)
    items = [EvalItem("speed", "gen", "direct", str(i), "", f"Q: reverse {' '.join(WORDS[: 2 + i % 9])}\nA:", "")
             for i in range(32)]
    settings = GenerationSettings(max_new_tokens=64)
    engine = Engine(lm, batch_size=16)
    engine.generate_detailed(items, settings)  # warm-up: kernels chosen, caches allocated
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    outputs = engine.generate_detailed(items, settings)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    # counted by the engine, not by re-tokenizing the text: tiny-t5's tokens decode to "" (0 tokens/s was printed)
    tokens = sum(g.new_tokens for samples in outputs for g in samples)
    return (f"{model} {lm.info.get('dtype')}, greedy, 32 prompts in batches of 16: {tokens / seconds:.0f} "
            f"generated tokens/s ({tokens} tokens in {seconds:.2f} s)")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("steps_tsv")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--work", default=None)
    args = parser.parse_args(argv)
    from flanlab.models import PRESETS, preset_available

    models = ["tiny-llama", "tiny-t5"]
    if args.device.startswith("cuda") and preset_available(PRESETS["smollm2-135m-instruct"])[0]:
        models.append("smollm2-135m-instruct")  # its GGUF is on this machine (not carried by a GPU session)
    work = Path(args.work or tempfile.mkdtemp(prefix="flanlab-speed-"))
    failed = 0
    with open(args.steps_tsv, "a", encoding="utf-8") as out:
        for what, measure in (("train", lambda m: train_speed(m, args.device, work)),
                              ("generate", lambda m: generation_speed(m, args.device))):
            for model in models:
                try:
                    line = f"speed {what} {model}\tINFO\t{measure(model)}"
                except Exception as e:  # noqa: BLE001 - reported in the summary as a failed check
                    traceback.print_exc()
                    failed += 1
                    line = f"speed {what} {model}\tFAIL\t{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                print(line, flush=True)
                out.write(line + "\n")
                out.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
