"""`flanlab demo [--data-dir D] [-o DIR] [--limit N] [key=value ...]`: the end-to-end demo (see flanlab/demo.py)."""

from __future__ import annotations


def add_arguments(parser) -> None:
    from flanlab.config import add_config_help
    from flanlab.demo import DemoConfig

    add_config_help(parser, DemoConfig)
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="change the embedded defaults, e.g. model=tiny-llama train.overrides=[steps=5]")
    parser.add_argument("--data-dir", default=None,
                        help="real data: adds the real benchmarks and training sources (default: FLANLAB_DATA_DIR)")
    parser.add_argument("-o", "--output-dir", default=None, help="where to write (default: runs/demo; runs/demo-data with a data dir)")
    parser.add_argument("--limit", type=int, default=None,
                        help="items per subtask of the real benchmarks, with --data-dir (default: 1)")
    parser.add_argument("--model", default=None, help="the model to fine-tune (default: smollm2-135m-instruct)")
    parser.add_argument("--config", default=None, help="a YAML of DemoConfig fields instead of the embedded defaults")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args) -> int:
    from flanlab.demo import load_demo_config, run_demo

    overrides = list(args.overrides)
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    if args.limit is not None:
        overrides.append(f"real.limit={args.limit}")
    if args.model:
        overrides.append(f"model={args.model}")
    config = load_demo_config(args.config, overrides)
    run_demo(config, data_dir=args.data_dir, progress=not args.no_progress)
    return 0
