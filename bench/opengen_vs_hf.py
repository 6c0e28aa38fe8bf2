"""Open-ended generation (`flanlab open-gen`, `flanlab generate`): flanlab's engine vs transformers' generate.

    .venv/bin/python bench/opengen_vs_hf.py                                  # SmolLM2-135M-Instruct, 16 prompts
    .venv/bin/python bench/opengen_vs_hf.py --model tiny-llama --limit 2 --max-new-tokens 4   # quick check

Before issue 14, open-gen answered a batch of prompts with transformers' `generate` over one left-padded batch
(and `flanlab generate` with `generate` on one prompt); both now go through Engine.answer. This bench runs the
two back to back on the same model object and the same token ids (the built-in prompt set, taken round-robin
over the categories as `open-gen --limit` takes it, rendered through the chat template by Engine.answer_items):
  engine   Engine(lm, batch_size).answer(prompts, max_new_tokens), as open-gen calls it;
  hf       lm.model.generate on the same ids, left-padded, greedy, ending rows at the engine's EOS tokens.
Batches as open-gen cuts them: the prompts longest first, batch_size at a time. The two alternate from batch
to batch (engine then hf, hf then engine), so that both see the same machine load.

Printed: prompts/s and generated tokens/s of each (tokens up to and including EOS, counted alike), the ratio,
the number of answers that are identical (greedy: they should all be; fp32 near-ties can flip one), and the
peak RSS of the process.
"""

from __future__ import annotations

import argparse
import resource
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--limit", type=int, default=16, help="prompts of the built-in set (round-robin over categories)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--no-chat-template", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    return p.parse_args(argv)


def hf_answers(lm, engine, prompts: list[str], max_new_tokens: int, chat_template: bool) -> list[tuple[str, int]]:
    """transformers' greedy generate over one left-padded batch of the ids Engine.answer reads: (answer, new
    tokens up to and including EOS) per prompt."""
    import torch

    templated = engine.uses_template(chat_template)
    rows = [engine.answer_ids(it.prompt, templated) for it in engine.answer_items(prompts, chat_template)]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), engine.pad_id, dtype=torch.long)  # (B, S) left-padded
    mask = torch.zeros((len(rows), width), dtype=torch.long)  # (B, S)
    for r, row in enumerate(rows):
        ids[r, width - len(row):] = torch.tensor(row)
        mask[r, width - len(row):] = 1
    with torch.inference_mode():
        out = lm.model.generate(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device), do_sample=False,
                                max_new_tokens=max_new_tokens, pad_token_id=engine.pad_id,
                                eos_token_id=sorted(engine.eos_ids) or None)
    results = []
    for seq in out[:, width:].tolist():
        end = next((i for i, t in enumerate(seq) if t in engine.eos_ids), None)
        kept = seq if end is None else seq[:end]
        results.append((lm.tokenizer.decode(kept, skip_special_tokens=True).strip(), len(kept) + (end is not None)))
    return results


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from flanlab.eval.engine import Engine
    from flanlab.models import load
    from flanlab.rate.opengen import load_prompts, select_prompts

    lm = load(args.model, verbose=False)
    chat = not args.no_chat_template
    engine = Engine(lm, batch_size=args.batch_size)
    prompts = sorted((p.prompt for p in select_prompts(load_prompts(), args.limit)), key=lambda p: -len(p))
    print(f"model {lm.name} on {lm.device}, torch threads {torch.get_num_threads()}, {len(prompts)} prompts, "
          f"batch {args.batch_size}, max_new_tokens {args.max_new_tokens}, "
          f"{'chat template' if engine.uses_template(chat) else 'plain text'}", flush=True)
    seconds = {"engine": 0.0, "hf": 0.0}
    tokens = {"engine": 0, "hf": 0}
    same = 0
    mismatches = []
    for b, start in enumerate(range(0, len(prompts), args.batch_size)):
        batch = prompts[start:start + args.batch_size]
        got = {}
        for name in (("engine", "hf") if b % 2 == 0 else ("hf", "engine")):
            t = time.perf_counter()
            if name == "engine":
                got[name] = [(g.text.strip(), g.new_tokens) for g in engine.answer(batch, args.max_new_tokens, chat)]
            else:
                got[name] = hf_answers(lm, engine, batch, args.max_new_tokens, chat)
            seconds[name] += time.perf_counter() - t
            tokens[name] += sum(n for _, n in got[name])
        for p, ours, theirs in zip(batch, got["engine"], got["hf"]):
            same += ours == theirs
            if ours != theirs:
                mismatches.append((p, ours, theirs))
        print(f"batch {b}: engine {seconds['engine']:.1f}s, hf {seconds['hf']:.1f}s (cumulative)", flush=True)
    n = len(prompts)
    for name in ("engine", "hf"):
        print(f"{name:6s}: {n / seconds[name]:.3f} prompts/s, {tokens[name] / seconds[name]:.1f} generated tok/s "
              f"({tokens[name]} tokens in {seconds[name]:.1f}s)")
    print(f"ratio (engine / hf, prompts/s): {seconds['hf'] / seconds['engine']:.2f}x")
    print(f"identical answers (text and token count): {same}/{n}")
    for p, ours, theirs in mismatches[:5]:
        print(f"  differs: {p[:60]!r}\n    engine {ours[0][:80]!r} ({ours[1]} tok)\n    hf     {theirs[0][:80]!r} ({theirs[1]} tok)")
    print(f"peak RSS (the process, both paths): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
