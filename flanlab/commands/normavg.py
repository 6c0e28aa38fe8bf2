"""`flanlab normavg RESULTS.json ...`: the paper's normalized average from saved results.

For each file (or run folder holding results.json) prints the six components (MMLU direct and CoT, BBH direct
and CoT, TyDiQA direct, MGSM CoT) with raw score, random-guess rate and normalized score, marks the missing
ones, and the average (recomputed from the "benchmarks" section with flanlab.eval.metrics.normalized_average).
Each normalized score is shown with its standard error and 95% interval as results.json records them; the
average's are recomputed by the stratified bootstrap over the samples.jsonl beside the results file (none
without it: the interval needs the per-item scores).
"""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("results", nargs="+", metavar="RESULTS",
                        help="results.json files, or run folders that hold one")
    parser.add_argument("--json", action="store_true", help="print one JSON object per file instead of tables")


def load_results(path_str: str) -> tuple[str, dict]:
    """(path shown, parsed results.json); errors name the file."""
    import json
    from pathlib import Path

    path = Path(path_str)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such results file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), dict):
        raise ValueError(f"{path}: no 'benchmarks' section (is this a flanlab results.json?)")
    from flanlab.eval.schema import check_schema

    check_schema(data, str(path))  # schema 1 (or none: hand-made) is read without the components' intervals
    return str(path), data


def rows(data: dict) -> list[dict]:
    """One row per component: key, raw score, chance, normalized (None where missing)."""
    from flanlab.eval.metrics import NORMALIZED_AVERAGE_COMPONENTS

    out = []
    for bench, mode in NORMALIZED_AVERAGE_COMPONENTS:
        section = data["benchmarks"].get(bench, {}).get(mode)
        interval = ((section or {}).get("uncertainty") or {}).get("normalized") or {}
        out.append({"component": f"{bench}/{mode}",
                    "score": None if section is None else section.get("score"),
                    "chance": None if section is None else section.get("chance"),
                    "normalized": None if section is None else section.get("normalized"),
                    "scoring": None if section is None else section.get("scoring"),
                    "normalized_stderr": interval.get("stderr"), "normalized_ci95": interval.get("ci95")})
    return out


def samples_beside(path_str: str) -> list[dict] | None:
    """The rows of the samples.jsonl beside a results.json, or None when there is none."""
    from pathlib import Path

    from flanlab.fileio import read_jsonl

    samples = Path(path_str).parent / "samples.jsonl"
    return list(read_jsonl(samples)) if samples.is_file() else None


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def _interval(stderr, ci) -> str:
    if stderr is None:
        return "no interval"
    return f"± {stderr:.2f}" + (f"  [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def run(args) -> int:
    import json

    from flanlab.eval.metrics import normalized_average

    for i, path_str in enumerate(args.results):
        path, data = load_results(path_str)
        avg = normalized_average(data["benchmarks"], samples_beside(path))
        if args.json:
            print(json.dumps({"file": path, "model": data.get("model", {}).get("name"), "components": rows(data),
                              "normalized_average": avg}, ensure_ascii=False))
            continue
        if i:
            print()
        model = data.get("model", {}).get("name")
        print(f"{path}" + (f"  (model {model})" if model else ""))
        print(f"  {'component':<15}{'raw':>8}{'chance':>8}{'normalized':>12}  scoring   normalized ± SE  [95% CI]")
        for r in rows(data):
            if r["normalized"] is None:
                print(f"  {r['component']:<15}{'missing':>8}")
            else:
                print(f"  {r['component']:<15}{_fmt(r['score']):>8}{_fmt(r['chance']):>8}"
                      f"{_fmt(r['normalized']):>12}  {r['scoring'] or '':<9} "
                      f"{_interval(r['normalized_stderr'], r['normalized_ci95'])}")
        if avg["value"] is None:
            print(f"  normalized average: n/a (missing {', '.join(avg['missing'])})")
        else:
            est = avg["uncertainty"]["value"]
            shown = _interval(est["stderr"], est["ci95"]) if est["stderr"] is not None else f"(no interval: {est['method']})"
            print(f"  normalized average: {avg['value']:.2f} {shown}")
    return 0
