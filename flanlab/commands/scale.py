"""`flanlab scale CONFIG [key=value ...]`: the models x mixtures grid; finished cells are skipped on rerun."""

from __future__ import annotations


def add_arguments(parser) -> None:
    from flanlab.config import add_config_help
    from flanlab.scale import ScaleConfig

    add_config_help(parser, ScaleConfig)
    parser.add_argument("config", help="a scale config, e.g. configs/scale/tiny.yaml")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. output_dir=runs/x")
    parser.add_argument("-o", "--output-dir", default=None, help="the grid's folder (default: output_dir of the config)")
    parser.add_argument("--data-dir", default=None, help="real data (default: FLANLAB_DATA_DIR; none: synthetic only)")
    parser.add_argument("--table", action="store_true", help="only print the table of the finished cells")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args) -> int:
    from pathlib import Path

    from flanlab.scale import aggregate, format_table, load_scale_config, run_scale

    overrides = list(args.overrides) + ([f"output_dir={args.output_dir}"] if args.output_dir else [])
    config = load_scale_config(args.config, overrides)
    if args.table:
        print(format_table(aggregate(Path(config.output_dir))))
        return 0
    run_scale(config, config_path=args.config, data_dir=args.data_dir, progress=not args.no_progress)
    return 0
