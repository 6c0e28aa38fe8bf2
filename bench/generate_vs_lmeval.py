"""Chain-of-thought generation: flanlab's engine vs EleutherAI lm-evaluation-harness, back to back.

    .venv/bin/python bench/generate_vs_lmeval.py --data-dir ../shared/data                 # SmolLM2-135M-Instruct
    .venv/bin/python bench/generate_vs_lmeval.py --data-dir ../shared/data --mgsm en --mgsm-limit 8   # English only
    .venv/bin/python bench/generate_vs_lmeval.py --data-dir ../shared/data --model tiny-llama --limit 2   # quick check

Both tools generate with the same model object (loaded once by flanlab.models.load) for the same prompt strings,
read from the data dir by flanlab's benchmark files: BBH 3-shot CoT items of three subtasks (--limit each,
default 8), and MGSM native-exemplar CoT and zero-shot CoT items of every language that flanlab eval's MGSM runs
(--mgsm-limit each, default 2: 44 items). Until 2026-12-05 the default MGSM sample was English alone, 8 items a
mode: the one language MGSM's score leaves out, and the worst case for drafts (SmolLM2's English zero-shot CoT
rationales loop to max_new_tokens with changing numbers; see the README's generation row). Greedy decoding, each
benchmark's own stop sequences and max new tokens (flanlab.eval.runner.generation_settings). lm-eval gets `generate_until` requests (context = the prompt string,
until = the stop sequences, max_gen_toks, do_sample False) through its Python API, an HFLM wrapping the loaded
model (BOS as flanlab adds it); flanlab gets the EvalItems through Engine.generate_detailed, batch by batch as
flanlab eval runs them (plan(): prefix groups, longest first).

The groups (benchmark, mode; each holding its subtasks' items, as flanlab eval runs them) alternate: flanlab then lm-eval on one, lm-eval then flanlab on the
next, so that both see the same machine load. Printed: items/s and generated tokens/s of each (tokens of the
outputs cut at the stop sequence, counted by the same tokenizer for both), the ratio; the share of outputs
identical after the cut, and for each mismatch the place where the two diverge with the model's top-2 logits
there (fp32 greedy decoding can flip a near-tie token; the margin shows whether it was one); peak RSS.
Target: ratio >= 4 with >= 99% identical outputs.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--bbh", default="date_understanding,logical_deduction_three_objects,sports_understanding",
                   help="comma-separated BBH subtasks (3-shot CoT)")
    p.add_argument("--mgsm", default="all",
                   help="comma-separated MGSM languages (native CoT and zero-shot CoT); all: the 11 that flanlab eval's "
                        "MGSM runs (the 10 of its score, and English, reported beside it)")
    p.add_argument("--limit", type=int, default=8, help="items per (subtask, mode)")
    p.add_argument("--mgsm-limit", type=int, default=2,
                   help="MGSM items per (language, mode)")
    p.add_argument("--batch-size", type=int, default=8, help="lm-eval's batch size")
    p.add_argument("--engine-batch-size", type=int, default=None,
                   help="flanlab's (default: flanlab eval's default batch size)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    p.add_argument("--data-dir", default=None, help="the data dir holding bbh/ and mgsm/ (default FLANLAB_DATA_DIR)")
    return p.parse_args(argv)


def groups(data_dir, args) -> list[tuple[object, list]]:
    """(benchmark, items) for each (benchmark, mode) of the bench, its subtasks' items together, as `flanlab
    eval` hands them to the engine (one run_items call per benchmark and mode: batches may span subtasks)."""
    from flanlab.eval.benchmarks import bbh, mgsm
    from flanlab.eval.spec import EvalOptions

    options = EvalOptions(limit=args.limit)
    bbh_items = [it for task in [t.strip() for t in args.bbh.split(",") if t.strip()]
                 for it in bbh.items(data_dir, task, "cot", options)[:args.limit]]
    out = [(bbh.BENCHMARK, bbh_items)] if bbh_items else []
    langs = list(mgsm.LANGUAGES) if args.mgsm == "all" else [t.strip() for t in args.mgsm.split(",") if t.strip()]
    per_lang = args.mgsm_limit
    for mode in ("cot", "zs_cot"):
        items = [it for lang in langs for it in mgsm.items(data_dir, lang, mode, EvalOptions(limit=per_lang))[:per_lang]]
        if items:
            out.append((mgsm.BENCHMARK, items))
    return out


def divergence(engine, prompt: str, ours: str, theirs: str) -> str:
    """Where two outputs part, and the model's two best next tokens there with their logit margin (the common
    text re-tokenized after the prompt, so the margin is the model's view of that text, not of the exact
    generated tokens)."""
    import torch

    i = next((j for j, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
    ids = engine.text_ids(prompt + ours[:i])
    with torch.inference_mode():
        logits = engine.model(input_ids=torch.tensor([ids], device=engine.device)).logits[0, -1].float()
    top = torch.topk(logits, 2)
    (l1, l2), (t1, t2) = top.values.tolist(), top.indices.tolist()
    dec = engine.tokenizer.decode
    return (f"char {i}: flanlab {ours[i:i + 20]!r} vs lm-eval {theirs[i:i + 20]!r}; top-2 next tokens "
            f"{dec([t1])!r} {l1:.4f}, {dec([t2])!r} {l2:.4f} (margin {l1 - l2:.2e})")


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        import lm_eval
        from lm_eval.api.instance import Instance
        from lm_eval.models.huggingface import HFLM
    except ImportError:
        print("lm_eval is not installed: pip install 'flanlab[bench]' (or pip install lm_eval)", file=sys.stderr)
        return 2
    from flanlab.eval.config import EvalConfig
    from flanlab.eval.engine import Engine
    from flanlab.eval.runner import generation_settings
    from flanlab.models import load
    from flanlab.settings import require_data_dir

    data_dir = require_data_dir(args.data_dir, "bench/generate_vs_lmeval.py (BBH and MGSM files)")
    lm = load(args.model, device="cpu", verbose=False)
    engine = Engine(lm, batch_size=args.engine_batch_size or EvalConfig().batch_size)
    hflm = HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=args.batch_size, device="cpu",
                add_bos_token=bool(engine.bos))
    count = lm.tokenizer

    def n_tokens(texts) -> int:
        return sum(len(count(t, add_special_tokens=False)["input_ids"]) for t in texts)

    print(f"model {lm.name} ({lm.info.get('parameters', 0) / 1e6:.1f}M params, {lm.info.get('dtype')}), torch "
          f"threads {torch.get_num_threads()}, batch size flanlab {engine.batch_size} / lm-eval {args.batch_size}, "
          f"lm_eval {lm_eval.__version__}", flush=True)
    ours_s = theirs_s = 0.0
    ours_tok = theirs_tok = ours_steps = 0
    n_items = same = 0
    mismatches = []
    for g, (bench, items) in enumerate(groups(data_dir, args)):
        settings = generation_settings(bench, items[0].mode, 1, 0.0, 0)
        requests = [Instance(request_type="generate_until", doc={}, idx=i,
                             arguments=(it.prompt, {"until": list(settings.stop), "max_gen_toks": settings.max_new_tokens,
                                                    "do_sample": False}))
                     for i, it in enumerate(items)]

        def run_ours():
            t = time.perf_counter()
            out: list = [None] * len(items)
            for batch in engine.plan(items, max_new_tokens=settings.max_new_tokens):  # as run_items plans
                for i, gens in zip(batch, engine.generate_detailed([items[i] for i in batch], settings)):
                    out[i] = gens[0]
            return out, time.perf_counter() - t

        def run_theirs():
            t = time.perf_counter()
            out = hflm.generate_until(requests, disable_tqdm=True)
            return out, time.perf_counter() - t

        if g % 2 == 0:
            (ours, dt_ours), (theirs, dt_theirs) = run_ours(), run_theirs()
        else:
            (theirs, dt_theirs), (ours, dt_ours) = run_theirs(), run_ours()
        ours_s += dt_ours
        theirs_s += dt_theirs
        texts = [o.text for o in ours]
        ours_tok += n_tokens(texts)
        theirs_tok += n_tokens(theirs)
        ours_steps += sum(o.new_tokens for o in ours)
        n_items += len(items)
        for it, a, b in zip(items, texts, theirs):
            if a == b:
                same += 1
            else:
                mismatches.append(f"{it.benchmark}/{it.subtask}/{it.mode}#{it.item_id}: "
                                  + divergence(engine, it.prompt, a, b))
        print(f"  {bench.name}/{items[0].mode:<7} {len(items):3d} items  "
              f"flanlab {len(items) / dt_ours:6.3f} items/s  lm-eval {len(items) / dt_theirs:6.3f} items/s  "
              f"(x{dt_theirs / dt_ours:.2f})  identical {sum(a == b for a, b in zip(texts, theirs))}/{len(items)}",
              flush=True)

    ratio = theirs_s / ours_s
    print(f"items: {n_items}")
    print(f"flanlab engine:         {n_items / ours_s:7.3f} items/s  {ours_tok / ours_s:7.1f} generated tokens/s  "
          f"({ours_s:.1f}s; {ours_steps} tokens decoded, EOS included)")
    print(f"lm-eval generate_until: {n_items / theirs_s:7.3f} items/s  {theirs_tok / theirs_s:7.1f} generated tokens/s  "
          f"({theirs_s:.1f}s)")
    print(f"ratio (flanlab / lm-eval, items/s): {ratio:.2f}x   target >= 4x")
    print(f"identical outputs after the cut: {same}/{n_items} = {100 * same / n_items:.1f}%   target >= 99%")
    for m in mismatches:
        print(f"  mismatch {m}")
    print(f"peak RSS (the process, both tools): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
