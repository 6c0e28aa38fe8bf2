"""Results of pairwise rating: win/tie/loss per model pair and category, confidence intervals, plot, exports.

For a pair (model_a, model_b), model_a being the alphabetically first, over n ratings:
    win rate of model_a = (wins_a + ties / 2) / n          (a tie counts as half a win for each side)
    95% interval: the Wilson score interval on that rate with n trials, z = 1.96:
        centre = (p + z^2 / 2n) / (1 + z^2 / n)
        half   = z * sqrt(p (1 - p) / n + z^2 / 4n^2) / (1 + z^2 / n)
The interval treats the n ratings as independent trials (several raters rating the same item are not
independent; with few raters the interval is too narrow). model_b's win rate is 1 - model_a's, its interval
the mirror image. One row is produced per pair for all categories together ("all") and one per category.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from pathlib import Path

from flanlab.fileio import atomic_write_text
from flanlab.rate.opengen import CATEGORIES, load_settings
from flanlab.rate.store import Store

Z95 = 1.959963984540054
METHOD = ("win rate of model_a = (wins_a + ties/2) / n; 95% Wilson score interval on that rate with n trials "
          "(z = 1.96); ratings treated as independent")
SUMMARY_FIELDS = ("model_a", "model_b", "category", "n", "wins_a", "ties", "wins_b", "win_rate_a", "ci_low", "ci_high")
RATING_FIELDS = ("id", "rater", "prompt_id", "category", "variant", "model_a", "model_b", "left_model", "right_model",
                 "choice", "winner", "created")


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for `successes` out of `n` (successes may be fractional: ties count 1/2)."""
    if n <= 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def _category_order(categories) -> list[str]:
    known = [c for c in CATEGORIES if c in categories]
    return ["all"] + known + sorted(set(categories) - set(known))


def summarize(ratings: list[dict]) -> list[dict]:
    """One row per (model pair, category) with counts, win rate of model_a and its Wilson interval; the
    category "all" pools every category. Rows are sorted by pair, then "all", then the five categories."""
    counts: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])  # wins_a, ties, wins_b
    for r in ratings:
        a, b = r["model_a"], r["model_b"]
        slot = 1 if r["winner"] is None else (0 if r["winner"] == a else 2)
        if r["winner"] not in (None, a, b):
            raise ValueError(f"rating {r.get('id')}: winner {r['winner']!r} is neither {a!r} nor {b!r}")
        for category in ("all", r["category"]):
            counts[(a, b, category)][slot] += 1
    rows = []
    for a, b in sorted({(a, b) for a, b, _ in counts}):
        categories = {c for (x, y, c) in counts if (x, y) == (a, b) and c != "all"}
        for category in _category_order(categories):
            wins_a, ties, wins_b = counts[(a, b, category)]
            n = wins_a + ties + wins_b
            rate = (wins_a + ties / 2) / n
            low, high = wilson_interval(wins_a + ties / 2, n)
            rows.append({"model_a": a, "model_b": b, "category": category, "n": n, "wins_a": wins_a, "ties": ties,
                         "wins_b": wins_b, "win_rate_a": rate, "ci_low": low, "ci_high": high})
    return rows


# ----------------------------------------------------------------------------------------------------------
# exports


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet reads as the start of a formula


def _csv_cell(value):
    """A text cell as spreadsheets should show it: one starting like a formula (a rater name such as
    `=HYPERLINK(...)`) gets a leading apostrophe, the OWASP guidance against CSV formula injection, so a
    spreadsheet shows it as text and never evaluates it. Numbers and other values pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_text(fields: tuple[str, ...], rows: list[dict]) -> str:
    """A CSV document: a header of `fields`, then one line per row. Every cell is quoted (QUOTE_ALL): under
    the minimal quoting with "\n" line ends, Python's csv writer leaves a cell holding "\r" unquoted, and a
    reader then splits that row in two; quoted, "\r", "\n", "," and '"' all read back as written."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def summary_csv(rows: list[dict]) -> str:
    return csv_text(SUMMARY_FIELDS, [{k: (f"{row[k]:.6f}" if isinstance(row[k], float) else _csv_cell(row[k]))
                                      for k in SUMMARY_FIELDS} for row in rows])


def ratings_csv(ratings: list[dict]) -> str:
    return csv_text(RATING_FIELDS, [{k: _csv_cell(r[k]) for k in RATING_FIELDS} for r in ratings])


def results_json(ratings: list[dict], untrained: dict[str, bool] | None = None) -> str:
    """Summary rows, the method, which models are untrained, and every rating, as one JSON document."""
    doc = {
        "method": METHOD,
        "untrained_models": sorted(m for m, u in (untrained or {}).items() if u),
        "summary": summarize(ratings),
        "ratings": [{k: r[k] for k in RATING_FIELDS} for r in ratings],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


# ----------------------------------------------------------------------------------------------------------
# plot


def _short(name: str, width: int = 32) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1):]


def plot_png(rows: list[dict], untrained: dict[str, bool] | None = None) -> bytes:
    """A PNG: per (pair, category) a stacked bar of wins_a / ties / wins_b shares, and model_a's win rate
    (ties half) with its 95% Wilson interval. Drawn with matplotlib's Agg canvas (no pyplot state, so it is
    safe in a threaded server)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    untrained = untrained or {}

    def label(m: str) -> str:
        return _short(m) + (" (UNTRAINED)" if untrained.get(m) else "")

    height = 1.8 + 0.34 * max(1, len(rows))
    fig = Figure(figsize=(11, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if not rows:
        ax.text(0.5, 0.5, "no ratings yet", ha="center", va="center", fontsize=14)
        ax.set_axis_off()
    else:
        ys = list(range(len(rows)))[::-1]
        wins = [r["wins_a"] / r["n"] for r in rows]
        ties = [r["ties"] / r["n"] for r in rows]
        losses = [r["wins_b"] / r["n"] for r in rows]
        ax.barh(ys, wins, color="#4c72b0", label="model_a wins")
        ax.barh(ys, ties, left=wins, color="#c8c8c8", label="tie")
        ax.barh(ys, losses, left=[w + t for w, t in zip(wins, ties)], color="#dd8452", label="model_b wins")
        rate = [r["win_rate_a"] for r in rows]
        err = [[r["win_rate_a"] - r["ci_low"] for r in rows], [r["ci_high"] - r["win_rate_a"] for r in rows]]
        ax.errorbar(rate, ys, xerr=err, fmt="o", color="black", capsize=3, label="model_a win rate, 95% Wilson")
        ax.axvline(0.5, color="black", linewidth=0.6, linestyle=":")
        ax.set_yticks(ys)
        ax.set_yticklabels([f"{label(r['model_a'])} vs {label(r['model_b'])} · {r['category']} (n={r['n']})"
                            for r in rows], fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of ratings")
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    ax.set_title("Blind pairwise ratings: model_a vs model_b (ties count half)", fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------------------
# export without a server (`flanlab rate DIR --export FILE`)


def export(run_dir, out_path, db_path=None, what: str = "summary") -> int:
    """Write the results of the ratings database (default run_dir/ratings.sqlite) to out_path: .json -> the
    summary, method and every rating; .csv -> the summary table (what="summary") or every rating
    (what="ratings"). Returns the number of ratings."""
    run_dir, out_path = Path(run_dir), Path(out_path)
    store = Store(Path(db_path) if db_path else run_dir / "ratings.sqlite", readonly=True)
    try:
        ratings = store.ratings()
    finally:
        store.close()
    untrained = {m: bool(i.get("untrained")) for m, i in (load_settings(run_dir) or {}).get("models", {}).items()}
    suffix = out_path.suffix.lower()
    if suffix == ".json":
        atomic_write_text(out_path, results_json(ratings, untrained))
    elif suffix == ".csv":
        atomic_write_text(out_path, ratings_csv(ratings) if what == "ratings" else summary_csv(summarize(ratings)))
    else:
        raise ValueError(f"{out_path}: export format is chosen by the extension: .csv or .json")
    return len(ratings)
