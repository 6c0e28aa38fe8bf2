"""The engine's generation levers, one against another on the same items: which ones pay for CoT generation.

    .venv/bin/python bench/generate_levers.py --data-dir ../shared/data --limit 8 \\
        --configs "batch=8" "batch=8,prefix_cache=0" "batch=16" "batch=8,drop=0" "batch=8,drop=2"

Items as in bench/generate_vs_lmeval.py (BBH 3-shot CoT subtasks, MGSM native CoT and zero-shot CoT). Each
config is an Engine setting: batch (items per batch), prefix_cache (0/1), shared (0/1: shared-prefix
attention, flanlab.eval.prefix_attention), drafts (tokens a row drafts a step, 0: none; flanlab.eval.speculative), drop (the share of a batch's rows that must have ended before they
leave the batch: 0 at the first, 2 never). For every group of items the
configs run in turn, their order rotating from group to group, so that all see the same machine load.
Printed: items/s and generated tokens/s per config, its speed relative to the first config, and whether its
outputs are identical to the first config's (greedy: they must be).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def parse_config(text: str) -> dict:
    keys = {"batch": int, "prefix_cache": lambda v: bool(int(v)), "drop": float, "shared": lambda v: bool(int(v)),
            "drafts": int}
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = part.partition("=")
        if key not in keys:
            raise SystemExit(f"config {text!r}: unknown key {key!r} (known: {', '.join(keys)})")
        out[key] = keys[key](value)
    return out


def main(argv=None) -> int:
    from generate_vs_lmeval import groups

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--bbh", default="date_understanding,logical_deduction_three_objects,sports_understanding")
    p.add_argument("--mgsm", default="en")
    p.add_argument("--limit", type=int, default=8)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--configs", nargs="+", default=["batch=8", "batch=16"])
    args = p.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from flanlab.eval.engine import Engine
    from flanlab.eval.runner import generation_settings
    from flanlab.models import load
    from flanlab.settings import require_data_dir

    data_dir = require_data_dir(args.data_dir, "bench/generate_levers.py (BBH and MGSM files)")
    lm = load(args.model, device="cpu", verbose=False)
    configs = [parse_config(c) for c in args.configs]
    engines = []
    for c in configs:
        e = Engine(lm, batch_size=c.get("batch", 8), prefix_cache=c.get("prefix_cache", True),
                   shared_attention=c.get("shared", True), draft_tokens=c.get("drafts"))
        e.drop_fraction = c.get("drop", Engine.drop_fraction)
        engines.append(e)
    seconds = [0.0] * len(configs)
    tokens = [0] * len(configs)
    outputs: list[list[str]] = [[] for _ in configs]
    n_items = 0
    print(f"model {lm.name}, torch threads {torch.get_num_threads()}", flush=True)
    for g, (bench, items) in enumerate(groups(data_dir, args)):
        settings = generation_settings(bench, items[0].mode, 1, 0.0, 0)
        n_items += len(items)
        order = [(g + j) % len(configs) for j in range(len(configs))]
        line = []
        for c in order:
            engine = engines[c]
            t = time.perf_counter()
            out: list = [None] * len(items)
            for batch in engine.plan(items):
                for i, gens in zip(batch, engine.generate_detailed([items[i] for i in batch], settings)):
                    out[i] = gens[0]
            seconds[c] += time.perf_counter() - t
            tokens[c] += sum(o.new_tokens for o in out)
            outputs[c] += [o.text for o in out]
            line.append(f"{args.configs[c]}: {time.perf_counter() - t:.1f}s")
        print(f"  {bench.name}/{items[0].mode} ({len(items)} items): " + "  ".join(line), flush=True)
    for c, name in enumerate(args.configs):
        same = sum(a == b for a, b in zip(outputs[c], outputs[0]))
        print(f"{name:<32} {n_items / seconds[c]:7.3f} items/s  {tokens[c] / seconds[c]:7.1f} tokens/s  "
              f"x{seconds[0] / seconds[c]:.2f} vs {args.configs[0]}  identical to it {same}/{n_items}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
