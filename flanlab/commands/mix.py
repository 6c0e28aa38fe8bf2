"""`flanlab mix CONFIG -o DIR [key=value ...]`: build an instruction-tuning mixture; `--preview N` prints examples."""

from __future__ import annotations

import argparse

from flanlab.log import get_logger

log = get_logger(__name__)


class _IntermixedParser(argparse.ArgumentParser):
    """Parses options and positionals intermixed, so overrides may follow options: `CONFIG -o DIR size=5000`."""

    _inside = False

    def parse_known_args(self, args=None, namespace=None):
        if self._inside:  # parse_known_intermixed_args calls back into parse_known_args
            return super().parse_known_args(args, namespace)
        self._inside = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inside = False


def add_arguments(parser) -> None:
    from flanlab.config import add_config_help
    from flanlab.data.mixture import MixtureConfig

    parser.__class__ = _IntermixedParser
    add_config_help(parser, MixtureConfig)
    parser.add_argument("config", help="mixture YAML, e.g. configs/mixtures/offline.yaml")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. size=5000 seed=1")
    parser.add_argument("-o", "--output", default=None, help="output folder (written atomically)")
    parser.add_argument("--data-dir", default=None, help="real data folder (default: $FLANLAB_DATA_DIR)")
    parser.add_argument("--preview", type=int, default=None, metavar="N", help="print N rendered examples, write nothing")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.add_argument("--top", type=int, default=15, help="tasks shown in the proportions table")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _print_preview(examples) -> None:
    for i, ex in enumerate(examples):
        print(f"=== [{i}] task={ex.task} format={ex.format} template={ex.template_id} source={ex.source}")
        print(ex.inputs)
        print("--- target:")
        print(ex.targets)
        print()


def _print_tables(stats: dict, top: int) -> None:
    total = stats["size"]["written"]
    planned = stats.get("planned_tasks", stats["num_tasks"])
    unused = f", {planned - stats['num_tasks']} more planned gave none" if planned != stats["num_tasks"] else ""
    print(f"\n{total} training examples from {stats['num_tasks']} tasks{unused}"
          f" ({stats['size']['validation']} validation examples); lengths: {stats['length_measure']}")
    print(f"\n{'submixture':<30}{'tasks':>6}{'rate':>9}{'measured':>10}{'examples':>10}")
    for name, s in stats["submixtures"].items():
        print(f"{name:<30}{s['tasks']:>6}{s['rate']:>9.3f}{s['proportion']:>10.3f}{s['examples']:>10}")
    tasks = sorted(stats["tasks"].items(), key=lambda kv: (-kv[1]["examples"], kv[0]))
    print(f"\n{'task (top ' + str(min(top, len(tasks))) + ' of ' + str(len(tasks)) + ')':<48}{'expected':>10}{'measured':>10}{'examples':>10}")
    for name, t in tasks[:top]:
        print(f"{name[:47]:<48}{t['expected_proportion']:>10.4f}{t['proportion']:>10.4f}{t['examples']:>10}")
    print(f"\n{'format':<12}{'measured':>10}{'examples':>10}")
    for fmt, f in stats["formats"].items():
        print(f"{fmt:<12}{f['proportion']:>10.3f}{f['examples']:>10}")
    removed = stats["removed"]
    if removed:
        print("\nremoved: " + ", ".join(f"{r} {v['count']}" for r, v in removed.items()))
        if "decontaminated" in removed:
            print("  decontaminated by benchmark: " + ", ".join(f"{b} {n}" for b, n in removed["decontaminated"]["by"].items()))
    if stats["excluded_tasks"]:
        names = [e["name"] for e in stats["excluded_tasks"]]
        print(f"held-out tasks excluded by name: {len(names)} ({', '.join(names[:6])}{', ...' if len(names) > 6 else ''}; "
              "see stats.json excluded_tasks)")
    for w in stats["warnings"]:  # on stderr, after the tables: --quiet keeps them
        log.warning("%s", w)


def run(args) -> int:
    import sys

    from flanlab.data.mixture import build_mixture, load_mixture_config, preview_mixture
    from flanlab.settings import data_dir

    config = load_mixture_config(args.config, args.overrides)
    data = data_dir(args.data_dir)  # --data-dir, else FLANLAB_DATA_DIR: read here, passed down
    if args.preview is not None:
        _print_preview(preview_mixture(config, args.preview, data_dir=data))
        return 0
    if not args.output:
        print("flanlab mix: error: give an output folder with -o DIR (or --preview N)", file=sys.stderr)
        return 2
    import time

    start = time.perf_counter()
    try:
        stats = build_mixture(config, args.output, data_dir=data, progress=not args.no_progress,
                              overwrite=args.overwrite)
    except FileExistsError as e:
        print(f"flanlab mix: error: {e}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    _print_tables(stats, args.top)
    d = stats["decontamination"]
    if d.get("enabled"):
        print(f"decontamination: {d.get('n')}-grams of {', '.join(d.get('benchmarks', {}))} ({d.get('index', '')})")
    print(f"\nwrote {args.output} in {seconds:.1f} s (including setup: task discovery, decontamination index)")
    return 0
