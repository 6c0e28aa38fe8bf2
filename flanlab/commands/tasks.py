"""`flanlab tasks [--category C] [--data-dir D] [--all] [--mixture CONFIG]`: the task catalog with categories,
sources and counts; --mixture adds the Flan collection tasks a mixture config names (hub datasets or files)."""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--category", default=None, help="only tasks of this category")
    parser.add_argument("--data-dir", default=None, help="real data folder (default: $FLANLAB_DATA_DIR)")
    parser.add_argument("--all", action="store_true",
                        help="also list the NIV2 metadata's tasks whose instances are not in the data dir")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--mixture", default=None, metavar="CONFIG",
                        help="also list the tasks of this mixture config's flan_collection entries")


def run(args) -> int:
    import dataclasses
    import json
    from collections import Counter

    from flanlab.data.catalog import list_tasks
    from flanlab.settings import data_dir

    d = data_dir(args.data_dir)
    extra = []
    if args.mixture:
        from flanlab.data.mixture import flan_collection_tasks, load_mixture_config

        extra = flan_collection_tasks(load_mixture_config(args.mixture), d)
    rows = list_tasks(d, category=args.category, include_unavailable=args.all, extra_tasks=extra)
    if args.json:
        print(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
        return 0
    width = max([len(r.name) for r in rows] + [4]) + 2
    src_width = max([len(r.source) for r in rows] + [9]) + 2
    print(f"{'task':<{width}}{'category':<26}{'source':<{src_width}}{'count':>8}  status")
    for r in rows:
        if not r.available:
            status = "not in data dir" + (f" (upstream {r.upstream_count})" if r.upstream_count is not None else "")
        else:
            status = "trainable"
        if r.held_out:
            status = f"HELD OUT: {r.reason}" + ("" if r.available else ", not in data dir")
        print(f"{r.name:<{width}}{r.category[:25]:<26}{r.source:<{src_width}}{str(r.count):>8}  {status}")
    here = [r for r in rows if r.available]
    by_source = Counter(r.source for r in here)
    trainable = sum(1 for r in here if not r.held_out)
    print(f"\n{len(here)} tasks here ({', '.join(f'{n} {s}' for s, n in by_source.items())}): "
          f"{trainable} trainable, {len(here) - trainable} held out.")
    if d is None:
        print("No data dir: only the built-in synthetic families. Pass --data-dir (or set FLANLAB_DATA_DIR) for "
              "NIV2, FLAN CoT, GSM8K and Flan collection tasks (--mixture CONFIG: a config's Flan collection).")
    missing = [r for r in rows if not r.available]
    if missing:
        print(f"{len(missing)} further NIV2 tasks are listed in the metadata without instances here "
              f"({sum(1 for r in missing if r.held_out)} of them held out by name).")
    elif d is not None and not args.all:
        print("--all also lists the NIV2 metadata's tasks that have no instances here.")
    return 0
