"""5-shot MMLU log-likelihood scoring: flanlab's engine vs EleutherAI lm-evaluation-harness, back to back.

    .venv/bin/python bench/eval_vs_lmeval.py --data-dir ../shared/data                 # SmolLM2-135M-Instruct
    .venv/bin/python bench/eval_vs_lmeval.py --data-dir ../shared/data --model tiny-llama --limit 5   # quick check

Both tools score the same model object (loaded once by flanlab.models.load) on the same items: the test
questions of a few MMLU subjects read from the data dir's CSV files, 5-shot from dev, in flanlab's MMLU prompt
(flanlab/eval/benchmarks/mmlu.py, the original / lm-eval "mmlu" format). lm-eval gets those exact prompt
strings: for each subject the script writes a JSONL of {prompt, choices, gold} to a temporary folder and hands
lm-eval a task config (dataset_path "json" on that file, doc_to_text "prompt", doc_to_choice "choices",
target_delimiter "", 0-shot as the prompt already holds the 5 shots), so lm-eval's context/continuation pairs
are ("...Answer:", " A".." D"), the same as ours. lm-eval runs through its Python API with an HFLM wrapping
the loaded model, at the same batch size.

Subjects alternate ours -> lm-eval so that both see the same machine load. Printed: items/s of each (model
time: our Engine.rank vs lm-eval's HFLM.loglikelihood; and lm-eval's whole simple_evaluate), the ratio, the
per-example agreement of the argmax choice and the largest log-likelihood difference.
Target: ratio >= 3 with agreement >= 99%.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--subjects", default="astronomy,marketing,high_school_geography",
                   help="comma-separated MMLU subjects")
    p.add_argument("--limit", type=int, default=20, help="test items per subject")
    p.add_argument("--batch-size", type=int, default=8, help="the same for both tools")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    p.add_argument("--data-dir", default=None, help="the data dir holding mmlu/ (default FLANLAB_DATA_DIR)")
    return p.parse_args(argv)


def lmeval_task(name: str, data_file: Path) -> dict:
    """An lm-eval task config scoring our prompts as they are (multiple_choice on " A".." D")."""
    return {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data_file)}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "prompt",
        "doc_to_choice": "choices",
        "doc_to_target": "gold",
        "target_delimiter": "",
        "num_fewshot": 0,
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        import lm_eval
        from lm_eval.models.huggingface import HFLM
    except ImportError:
        print("lm_eval is not installed: pip install 'flanlab[bench]' (or pip install lm_eval)", file=sys.stderr)
        return 2
    from flanlab.eval.benchmarks import mmlu
    from flanlab.eval.engine import Engine
    from flanlab.eval.spec import EvalOptions
    from flanlab.models import load
    from flanlab.settings import require_data_dir

    data_dir = require_data_dir(args.data_dir, "bench/eval_vs_lmeval.py (MMLU CSV files)")
    subjects = [s.strip() for s in args.subjects.split(",") if s.strip()]
    lm = load(args.model, device="cpu", verbose=False)
    engine = Engine(lm, batch_size=args.batch_size)
    # the same special tokens as ours: BOS in front where the tokenizer adds one by default, nothing else
    # (lm-eval's default would let a tokenizer such as ByT5's append EOS to every context)
    hflm = HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=args.batch_size, device="cpu",
                add_bos_token=bool(engine.bos))

    lmeval_model_s = 0.0
    real_loglikelihood = hflm.loglikelihood

    def timed_loglikelihood(requests, *a, **kw):
        nonlocal lmeval_model_s
        t = time.perf_counter()
        out = real_loglikelihood(requests, *a, **kw)
        lmeval_model_s += time.perf_counter() - t
        return out

    hflm.loglikelihood = timed_loglikelihood

    ours_s = lmeval_total_s = 0.0
    n_items = agree = 0
    max_diff = 0.0
    print(f"model {lm.name} ({lm.info.get('parameters', 0) / 1e6:.1f}M params), torch threads "
          f"{torch.get_num_threads()}, batch size {args.batch_size}, lm_eval {lm_eval.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        for subject in subjects:
            items = mmlu.items(data_dir, subject, "direct", EvalOptions(limit=args.limit))
            gold = {it.item_id: "ABCD".index(it.target) for it in items}
            # flanlab
            t = time.perf_counter()
            ours = engine.rank(items)
            dt = time.perf_counter() - t
            ours_s += dt
            # lm-eval, on the same prompt strings
            data_file = Path(tmp) / f"{subject}.jsonl"
            data_file.write_text("".join(json.dumps({"prompt": it.prompt, "choices": list(it.choices),
                                                     "gold": gold[it.item_id]}) + "\n" for it in items))
            task = f"flanlab_mmlu_{subject}"
            t = time.perf_counter()
            out = lm_eval.simple_evaluate(model=hflm, tasks=[lmeval_task(task, data_file)], log_samples=True,
                                          bootstrap_iters=0, verbosity="ERROR")
            lmeval_total_s += time.perf_counter() - t
            samples = sorted(out["samples"][task], key=lambda s: s["doc_id"])
            assert len(samples) == len(items)
            for it, mine, theirs in zip(items, ours, samples):
                assert theirs["doc"]["prompt"] == it.prompt
                lls = [float(r[0]) for r in theirs["filtered_resps"]]
                their_best = max(range(len(lls)), key=lambda j: (lls[j], -j))
                agree += int(their_best == mine.best)
                max_diff = max(max_diff, max(abs(a - b) for a, b in zip(lls, mine.logprobs)))
            n_items += len(items)
            print(f"  {subject:<28} {len(items):3d} items  flanlab {len(items) / dt:6.2f} items/s  "
                  f"(lm-eval so far: model {lmeval_model_s:.1f}s, total {lmeval_total_s:.1f}s)", flush=True)

    ours_ips = n_items / ours_s
    lm_model_ips = n_items / lmeval_model_s
    lm_total_ips = n_items / lmeval_total_s
    print(f"items: {n_items} ({len(subjects)} subjects x {args.limit}, 5-shot)")
    print(f"flanlab engine:        {ours_ips:7.2f} items/s  ({ours_s:.1f}s)")
    print(f"lm-eval loglikelihood: {lm_model_ips:7.2f} items/s  ({lmeval_model_s:.1f}s);  "
          f"whole simple_evaluate {lm_total_ips:.2f} items/s ({lmeval_total_s:.1f}s)")
    print(f"ratio (flanlab / lm-eval loglikelihood): {ours_ips / lm_model_ips:.2f}x   "
          f"(vs whole simple_evaluate: {ours_ips / lm_total_ips:.2f}x)   target >= 3x")
    print(f"argmax agreement: {agree}/{n_items} = {100 * agree / n_items:.1f}%   target >= 99%;  "
          f"max |log-likelihood difference| {max_diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
