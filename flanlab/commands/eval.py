"""`flanlab eval`: evaluate a model on held-out benchmarks; `flanlab eval score`: rescore saved generations.

    flanlab eval --model M (--suite S | --benchmark B [--benchmark B2 ...]) [--modes direct,cot] [--limit N]
                 [--data-dir D] -o DIR [--scoring auto|generate|rank] [--zero-shot-cot]
                 [--self-consistency K --temperature T] [--batch-size N]
                 [--apply-chat-template [--fewshot-as-multiturn] [--system-instruction TEXT]]
    flanlab eval score --benchmark NAME --predictions FILE.jsonl [--mode direct|cot] [-o DIR] [--data-dir D]

Both call one library function (flanlab.eval.runner.evaluate / rescore) and print a summary; the files are
out_dir/results.json and out_dir/samples.jsonl. Under `accelerate launch` the items are sharded over processes.
"""

from __future__ import annotations

import dataclasses
import typing

from flanlab.config import arg_type, field_type, from_dict, rule_text
from flanlab.eval.config import EvalConfig

DEFAULTS = EvalConfig()
# every EvalConfig field is a flag whose dest is the field's name; the command hands them to evaluate() as one
# EvalConfig (a field added without its flag fails here at the first `flanlab eval`, and in tests/test_eval_config.py)
CONFIG_FLAGS = tuple(f.name for f in dataclasses.fields(EvalConfig))


def _flag(name: str, text: str) -> dict:
    """argparse keywords for the EvalConfig field `name`: its type check, default and range in the help."""
    rule = rule_text(EvalConfig, name, flag=True)
    return {"type": arg_type(EvalConfig, name), "default": getattr(DEFAULTS, name),
            "help": (f"{text}; valid: {rule}" if rule else text).replace("%", "%%")}


def _modes(text: str) -> list[str]:
    """--modes direct,cot -> ["direct", "cot"], each checked against EvalConfig.modes."""
    return arg_type(EvalConfig, "modes")("[" + text + "]")


def add_arguments(parser) -> None:
    parser.add_argument("--model", help="preset name, local folder, or hub id")
    parser.add_argument("--suite", help="a benchmark suite: flan-heldout, synthetic, all")
    parser.add_argument("--benchmark", action="append", dest="benchmarks", metavar="B",
                        help="a benchmark (repeatable): mmlu, bbh, tydiqa, mgsm, synthetic")
    parser.add_argument("--modes", type=_modes, default=DEFAULTS.modes, help="comma-separated: direct, cot (default both)")
    parser.add_argument("--limit", **_flag("limit", "at most N items per subtask (the first N)"))
    parser.add_argument("--data-dir", default=None, help="real data in original formats (default FLANLAB_DATA_DIR)")
    parser.add_argument("-o", "--out", dest="out_dir", help="output folder for results.json and samples.jsonl")
    parser.add_argument("--scoring", metavar="{" + ",".join(typing.get_args(field_type(EvalConfig, "scoring"))) + "}",
                        **_flag("scoring", "auto: rank classification for direct modes with choices, generation "
                                           "otherwise"))
    parser.add_argument("--zero-shot-cot", action="store_true", help="cot mode without exemplars + \"Let's think step by step.\"")
    parser.add_argument("--self-consistency", metavar="K", **_flag("self_consistency", "K samples per CoT item, majority vote"))
    parser.add_argument("--temperature", **_flag("temperature", "sampling temperature for self-consistency, with "
                                                 "--self-consistency K > 1 only (default 0.7 then)"))
    parser.add_argument("--batch-size", **_flag("batch_size", "items per forward pass"))
    parser.add_argument("--shots", **_flag("shots", "override the benchmarks' number of exemplars"))
    parser.add_argument("--seed", **_flag("seed", "sampling seed"))
    parser.add_argument("--cache-dir", default=None, help="resume cache folder (default OUT/cache)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the resume cache")
    parser.add_argument("--no-prefix-cache", action="store_false", dest="prefix_cache",
                        help="recompute the few-shot prefix for every item")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--apply-chat-template", action="store_true",
                        help="prompts as a user turn through the model's chat template (default: the paper's plain prompts)")
    parser.add_argument("--fewshot-as-multiturn", action="store_true",
                        help="with --apply-chat-template: each exemplar as a user/assistant turn pair, the task "
                             "description in the system turn (lm-eval's --fewshot_as_multiturn)")
    parser.add_argument("--system-instruction", type=arg_type(EvalConfig, "system_instruction"), default=None, metavar="TEXT",
                        help="with --apply-chat-template: a system turn with TEXT")
    # `eval score --mode` must reach the score parser: with abbreviations on, this parser would take "--mode"
    # for an ambiguous abbreviation of --model/--modes and stop
    parser.allow_abbrev = False
    sub = parser.add_subparsers(dest="eval_action", metavar="{score}")
    score = sub.add_parser("score", help="rescore saved generations with no model (writes the same results.json)",
                           description="Rescore saved generations (our samples.jsonl, or JSONL rows with task, "
                                       "prediction, target and mode, or --mode) with today's extractors; no model "
                                       "is loaded.")
    score.add_argument("--benchmark", required=True, dest="score_benchmark", metavar="NAME")
    score.add_argument("--predictions", required=True, metavar="FILE.jsonl")
    score.add_argument("-o", "--out", dest="score_out", default=None, help="write results.json + samples.jsonl here")
    score.add_argument("--mode", dest="score_mode", choices=("direct", "cot"), default=None,
                       help="how the predictions were made, for rows without a 'mode' field (required then)")
    score.add_argument("--data-dir", dest="score_data_dir", default=None,
                       help="rebuild items from the data for aliases (default FLANLAB_DATA_DIR; chance rates come "
                            "from the benchmark's own table, data or not)")


def run(args) -> int:
    from flanlab.eval.runner import evaluate, rescore, summary_text

    if getattr(args, "eval_action", None) == "score":
        results = rescore(args.score_benchmark, args.predictions, args.score_out,
                          data_dir=args.score_data_dir or args.data_dir, mode=args.score_mode)
        print(summary_text(results))
        if args.score_out:
            print(f"wrote {args.score_out}/results.json and samples.jsonl")
        else:
            print("(not written: pass -o DIR to write results.json and samples.jsonl)")
        return 0

    missing = [flag for flag, value in (("--model", args.model), ("-o/--out", args.out_dir)) if not value]
    if missing:
        raise ValueError(f"flanlab eval needs {' and '.join(missing)} (or use `flanlab eval score ...`)")
    if bool(args.suite) == bool(args.benchmarks):
        raise ValueError("give exactly one of --suite S or --benchmark B [--benchmark B2 ...]")
    config = from_dict(EvalConfig, {name: getattr(args, name) for name in CONFIG_FLAGS}, "flanlab eval")
    config.check("flanlab eval")
    results = evaluate(args.model, config, out_dir=args.out_dir, data_dir=args.data_dir,
                       cache_dir=False if args.no_cache else args.cache_dir, progress=not args.no_progress)
    from flanlab.eval.runner import distributed_state

    if distributed_state().is_main_process:
        print(summary_text(results))
        print(f"wrote {args.out_dir}/results.json and samples.jsonl")
    return 0
