"""Flan-style mixtures: tasks rendered through templates, mixed examples-proportionally with caps, held-out data
kept out, written as deterministic shards in bounded memory.

A mixture config (MixtureConfig, from YAML) lists submixtures, each with a rate and the tasks it draws from
(catalog source kinds, task names or patterns, files, Flan collection submixes, or another mixture YAML nested
under it). The build:

  1. plan: resolve every submixture's tasks (held-out tasks excluded by name and reported), give each task
     the weight min(size, cap) — examples-proportional with a per-task cap, as in the paper (FLAN 30k, T0 20k,
     NIV2 5k, CoT 100k) — within its submixture; the submixtures share the mixture by their rates. A synthetic
     family is an endless stream, so its size is the submixture's `synthetic_size`. Each task then gets an
     exact number of examples (largest-remainder rounding of size x share). Templates are checked here,
     before anything is read.
  2. stream: one iterator per task (its records, through a small seeded shuffle buffer that also supplies
     few-shot exemplars; a finite task repeats with fresh template draws once it runs out; a pre-rendered Flan
     collection task draws each row's format by the format weights, then that format's next row), merged by
     deterministic stratified interleaving: the k-th example of a task with n examples gets the key
     (k + u)/n, u uniform in [0, 1) from the task's seeded RNG, and a heap emits keys in order. Only the
     buffers and one 8-byte digest per written example (exact-duplicate removal; DigestSet keeps all but the
     newest million in a sorted numpy array, 8 bytes each) stay in memory.
  3. filter: records sharing a 13-gram with a benchmark item, or equal to a short benchmark item, are dropped
     (flanlab/data/decontam.py); a rationale, which only chain-of-thought examples show, is checked when one
     shows it (a CoT example, or a CoT exemplar, whose rationale overlaps is dropped); rendered examples that
     duplicate one already written are dropped and the task draws again; over-long inputs are pruned (fewer
     exemplars), then dropped or truncated. All removals are counted by reason with a few examples.
  4. write: train-00000-of-0000N.jsonl (and/or .parquet) shards with fields inputs, targets, task, category,
     template_id, format, source; validation.jsonl (held-apart records: a hash bucket of each finite task's
     records, the "validation" stream of each synthetic family); stats.json — all into a temporary folder
     renamed into place at the end (flanlab.fileio.atomic_dir). Same config and seed: byte-identical files.

The pieces, in the order a build uses them (seqio's cut: plan, source, preprocessors, writer):
  flanlab/data/mix_config.py   MixtureConfig and its checks
  flanlab/data/mix_plan.py     step 1: select_tasks (the only step that looks at the catalog), then the pure allocate
  flanlab/data/mix_records.py  a task's records: epochs, the record cache under its shared budget, the validation split
  flanlab/data/mix_render.py   renderers: TemplateRenderer (shuffle buffer, formats, templates, few-shot exemplars)
                               and PassThroughRenderer (pre-rendered Flan collection rows)
  flanlab/data/mix_filters.py  step 3: record and example filters, each reporting into one Removed record
  flanlab/data/mix_stream.py   step 2: a TaskStream per task (records -> renderer -> filters), their interleaving
  flanlab/data/mix_write.py    step 4: the shards
This module builds, previews and reports (stats.json).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from flanlab.data import catalog
from flanlab.data.example import Example
from flanlab.data.flan_collection import FlanCollectionSpec, spec_tasks
from flanlab.data.mix_config import (
    DEFAULT_FORMATS, FileSpec, MixtureConfig, SubmixtureConfig, load_mixture_config, resolve_path,
)
from flanlab.data.mix_filters import Decontaminator, DigestSet, Removed, lengths_for
from flanlab.data.mix_plan import Plan, PlannedTask, mixture_leaves, plan_mixture
from flanlab.data.mix_records import RecordBudget
from flanlab.data.mix_stream import Interleave, StreamParts
from flanlab.data.mix_write import OUTPUT_FIELDS, ShardWriter, json_line
from flanlab.data.templates import FORMATS
from flanlab.runlock import locks_folder
from flanlab.settings import given_data_dir

_ShardWriter = ShardWriter  # the name tests/test_run_safety.py patches (to hold a build at its first row)


def _stream_parts(plan: Plan) -> tuple[StreamParts, dict]:
    """The pieces the task streams share (the decontamination index built or loaded here), and the index's
    summary for stats.json."""
    from flanlab.data.decontam import build_index

    cfg = plan.config
    info: dict = {"enabled": cfg.decontaminate}
    index = None
    if cfg.decontaminate:
        index, how = build_index(plan.data_dir, n=cfg.ngram)
        info.update(index.summary())
        info["index"] = how  # not written to stats.json (it names the cache path)
    parts = StreamParts(config=cfg, template_sets=plan.template_sets, decontam=Decontaminator(index),
                        lengths=lengths_for(cfg), removed=Removed(), budget=RecordBudget(cfg.record_cache_mb))
    return parts, info


# --- public API --------------------------------------------------------------------------------------------------


def flan_collection_tasks(config: MixtureConfig, data_dir=None) -> list[catalog.Task]:
    """The tasks of the config's flan_collection entries, nested mixtures included (for `flanlab tasks --mixture`)."""
    d = given_data_dir(data_dir)
    tasks: list[catalog.Task] = []
    for leaf in mixture_leaves(config):
        for spec in leaf.sub.flan_collection:
            tasks += spec_tasks(spec, lambda p, cfg=leaf.cfg: resolve_path(cfg, p), d)
    return tasks


def preview_mixture(config: MixtureConfig, n: int, data_dir=None) -> list[Example]:
    """The first n training examples the build would write (same plan, filters and rendering)."""
    plan = plan_mixture(config, data_dir)
    parts, _ = _stream_parts(plan)
    mixed = Interleave(plan, parts, "train", DigestSet() if config.dedup else None)
    out = []
    for pt, (inputs, targets, tid, fmt) in mixed:
        out.append(Example(inputs=inputs, targets=targets, task=pt.task.name, template_id=tid, format=fmt,
                           source=pt.task.source, category=pt.task.category))
        if len(out) >= n:
            break
    if not out and n > 0:  # as build_mixture: no example is an error that says why, not an empty preview
        names = {pt.key: pt.task.name for pt in plan.tasks}
        reasons = [f"task {key} produced none ({_shortfall_reasons(parts, names.get(key, key))})"
                   for key in mixed.shortfall]
        raise ValueError(f"{config.source_path or config.name}: the mixture has no training examples: "
                         + "; ".join(reasons or ["every task's records were removed"]))
    return out


def _proportions(counts: dict[str, int], total: int) -> dict[str, dict]:
    return {k: {"examples": v, "proportion": round(v / total, 6) if total else 0.0} for k, v in counts.items()}


@locks_folder("mix", lambda config, out_dir, *args, **kwargs: out_dir)
def build_mixture(config: MixtureConfig, out_dir, data_dir=None, progress: bool = True, overwrite: bool = False) -> dict:
    """Build the mixture into out_dir (atomically); returns the stats written to out_dir/stats.json.

    Holds out_dir's run lock (flanlab.runlock), which first removes the temporary folders a killed build left
    beside it; SIGTERM and Ctrl-C remove this build's own."""
    from flanlab.fileio import atomic_dir, atomic_write_json

    if Path(out_dir).exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already exists (pass overwrite=True / --overwrite to replace it)")
    plan = plan_mixture(config, data_dir)
    parts, decontam_info = _stream_parts(plan)
    seen: DigestSet | None = DigestSet(capacity=plan.size + config.validation_size) if config.dedup else None
    task_counts = {pt.key: 0 for pt in plan.tasks}
    sub_counts = {name: 0 for name in plan.submixtures}
    fmt_counts = {f: 0 for f in FORMATS}

    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        n_val = 0
        if config.validation_size > 0:
            with open(tmp / "validation.jsonl", "w", encoding="utf-8") as f:
                for pt, ex in Interleave(plan, parts, "validation", seen):
                    f.write(json_line(pt, ex))
                    n_val += 1
                    if n_val >= config.validation_size:
                        break
        writer = ShardWriter(tmp, config.output, config.shard_size)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=plan.size, unit="ex", desc=f"mix {config.name}", mininterval=0.5)
        written = 0
        mixed = Interleave(plan, parts, "train", seen)  # its shortfall is reported (validation's is not)
        for pt, ex in mixed:
            writer.write(pt, ex)
            task_counts[pt.key] += 1
            sub_counts[pt.submixture] += 1
            fmt_counts[ex[3]] += 1
            written += 1
            if bar is not None and written % 1000 == 0:
                bar.update(1000)
        if bar is not None:
            bar.update(written % 1000)
            bar.close()
        shards = writer.close()

        stats = _stats(plan, parts, mixed.shortfall, decontam_info, written, n_val, task_counts, sub_counts, fmt_counts, shards)
        if written == 0:  # never an empty mixture with a success status: say why (nothing is left behind)
            raise ValueError(f"{config.source_path or config.name}: the mixture has no training examples: "
                             + "; ".join(stats["warnings"] or ["every task's records were removed"]))
        atomic_write_json(tmp / "stats.json", stats)
    stats["decontamination"]["index"] = decontam_info.get("index", "")
    return stats


def _shortfall_reasons(parts: StreamParts, task: str) -> str:
    """Why a task produced fewer examples than planned, from what was removed from it."""
    cfg = parts.config
    what = {"too_long": f"inputs over max_input_tokens {cfg.max_input_tokens} or targets over max_target_tokens "
                        f"{cfg.max_target_tokens}; lengths: {parts.lengths.desc}"}
    removed = parts.removed.by_task.get(task, {})
    reasons = [f"{r} {n}" + (f" ({what[r]})" if r in what else "") for r, n in sorted(removed.items())]
    return "removed: " + ", ".join(reasons) if reasons else "its records are used up"


def _stats(plan: Plan, parts: StreamParts, shortfall: dict[str, int], decontam_info: dict, written: int, n_val: int,
           task_counts: dict, sub_counts: dict, fmt_counts: dict, shards: list[dict]) -> dict:
    cfg = plan.config
    warnings = list(plan.warnings)
    if shortfall:
        names = {pt.key: pt.task.name for pt in plan.tasks}
        for name, short in shortfall.items():
            none = " and produced none" if task_counts.get(name) == 0 else ""
            warnings.append(f"task {name} ran out of new examples{none}: {short} fewer than planned "
                            f"({_shortfall_reasons(parts, names.get(name, name))})")
    tasks = {}  # keyed by stream: the task name ("submixture:task" where a task serves a second submixture)
    for pt in plan.tasks:
        t = pt.task
        n = task_counts[pt.key]
        tasks[pt.key] = {
            "task": t.name, "submixture": pt.submixture, "source": t.source, "category": t.category,
            "size": pt.size if t.finite else f"stream (nominal {pt.size})", "weight": pt.weight,
            "planned": pt.count, "examples": n,
            "epochs": round(pt.count / pt.size, 3) if t.finite else None,  # > 1: records repeat, re-rendered
            "expected_proportion": round(pt.share, 6),
            "proportion": round(n / written, 6) if written else 0.0,
            "validation_planned": pt.val_count,
        }
    subs = {}
    for name, s in plan.submixtures.items():
        subs[name] = {"rate_configured": round(s["rate_configured"], 6), "rate": round(s["rate"], 6), "cap": s["cap"],
                      "tasks": s["tasks"], "examples": sub_counts[name],
                      "proportion": round(sub_counts[name] / written, 6) if written else 0.0}
    by_category: dict[str, int] = {}
    for pt in plan.tasks:
        by_category[pt.task.category] = by_category.get(pt.task.category, 0) + task_counts[pt.key]
    decontam = {k: v for k, v in decontam_info.items() if k != "index"}
    return {
        "schema": "flanlab.mixture_stats/1",
        "name": cfg.name,
        "seed": cfg.seed,
        "data_dir": str(plan.data_dir) if plan.data_dir else None,
        "length_measure": parts.lengths.desc,
        # the tasks that gave the mixture training examples (what a grid's task axis counts); a planned task can
        # give none (every record pruned as too long, or used up): counted under planned_tasks only
        "num_tasks": len({pt.task.name for pt in plan.tasks if task_counts[pt.key] > 0}),
        "planned_tasks": len({pt.task.name for pt in plan.tasks}),
        "requested_tasks": plan.requested_tasks,
        "size": {"planned": plan.size, "written": written, "validation": n_val,
                 "validation_planned": cfg.validation_size},
        "submixtures": subs,
        "formats": _proportions({f: n for f, n in fmt_counts.items() if n}, written),
        "categories": _proportions(dict(sorted(by_category.items())), written),
        "tasks": tasks,
        "removed": parts.removed.to_dict(),
        "excluded_tasks": plan.excluded,
        "shortfall": shortfall,  # task -> training examples planned but not produced
        "decontamination": decontam,
        "warnings": warnings,
        "shards": shards,
        "config": dataclasses.asdict(cfg),
    }


__all__ = ["MixtureConfig", "SubmixtureConfig", "FileSpec", "FlanCollectionSpec", "load_mixture_config", "plan_mixture",
           "build_mixture", "preview_mixture", "flan_collection_tasks", "Plan", "PlannedTask", "DigestSet",
           "DEFAULT_FORMATS", "OUTPUT_FIELDS"]
