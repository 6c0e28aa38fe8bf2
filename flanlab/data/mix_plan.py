"""Planning a mixture: which tasks it draws from, and how many examples of each it writes. No record is read.

  select_tasks  the catalog's tasks each submixture names (nested mixtures flattened into leaves), held-out
                tasks excluded and reported, max_tasks applied: the only step that looks at the data dir
  allocate      pure arithmetic over what was selected: each task's usable formats and size, its weight
                min(size, cap) within its submixture (examples-proportional with a per-task cap, as in the paper:
                FLAN 30k, T0 20k, NIV2 5k, CoT 100k), the submixtures sharing the mixture by their rates, and an
                exact number of examples per task (largest-remainder rounding of size x share)
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flanlab.config import ConfigError
from flanlab.data import catalog
from flanlab.data.flan_collection import spec_tasks
from flanlab.data.mix_config import MixtureConfig, SubmixtureConfig, check_config, load_mixture_config, resolve_path
from flanlab.data.templates import TEMPLATE_SETS, TemplateSet, load_template_file
from flanlab.log import get_logger
from flanlab.registry import did_you_mean
from flanlab.settings import given_data_dir

log = get_logger(__name__)

VALIDATION_OVERSAMPLE = 3


@dataclass
class PlannedTask:
    task: catalog.Task
    submixture: str
    size: int  # records available (synthetic: the nominal size)
    weight: float  # min(size, cap)
    share: float  # expected proportion of the mixture
    formats: dict[str, tuple[float, list]]  # format -> (weight, usable templates)
    count: int = 0  # examples to write
    val_count: int = 0
    key: str = ""  # the stream's name: the task name, or "submixture:task" for its second and later submixtures
    json_task: str = field(default="", repr=False)  # encoded constant fields (see mix_write.json_line)
    json_tail: dict = field(default_factory=dict, repr=False)


@dataclass
class Plan:
    config: MixtureConfig
    data_dir: Path | None
    tasks: list[PlannedTask]
    submixtures: dict[str, dict]  # leaf name -> {rate_configured, rate, tasks, cap}
    size: int
    excluded: list[dict]  # {name, reason}
    warnings: list[str]
    template_sets: dict[str, TemplateSet]
    requested_tasks: int | None = None


@dataclass
class Leaf:
    name: str
    rate: float
    sub: SubmixtureConfig
    cfg: MixtureConfig  # the config file it comes from (for relative paths)


def mixture_leaves(cfg: MixtureConfig, prefix: str = "", scale: float = 1.0, stack: tuple | None = None) -> list[Leaf]:
    """Flatten nested mixtures: a submixture naming another YAML is replaced by that YAML's submixtures,
    their rates normalised and multiplied by its own. `stack`: the YAML files above (default: cfg's own)."""
    if stack is None:
        stack = (Path(cfg.source_path).resolve(),) if cfg.source_path else ()
    total = sum(s.rate for s in cfg.submixtures) or 1.0
    out = []
    for s in cfg.submixtures:
        rate = scale * s.rate / total
        name = prefix + s.name
        if s.mixture:
            path = resolve_path(cfg, s.mixture).resolve()
            if path in stack:
                raise ConfigError(f"{cfg.source_path}: submixtures.{s.name}: nesting cycle through {path}")
            child = load_mixture_config(path)
            out += mixture_leaves(child, name + "/", rate, stack + (path,))
        else:
            out.append(Leaf(name, rate, s, cfg))
    return out


def _select(leaf: Leaf, catalog_tasks: Callable[[str], list], all_names: dict, excluded: list, warnings: list,
            data_dir) -> list[catalog.Task]:
    s = leaf.sub
    chosen: list[catalog.Task] = []
    for src in s.sources:
        found = catalog_tasks(src)
        if not found:
            warnings.append(f"submixture {leaf.name}: source {src!r} has no tasks here"
                            + (" (no data dir)" if data_dir is None else f" (nothing under {data_dir})"))
        chosen += found
    for pattern in s.tasks:
        if any(c in pattern for c in "*?["):
            hits = [t for name, t in all_names.items() if fnmatch.fnmatchcase(name, pattern)]
            if not hits:
                warnings.append(f"submixture {leaf.name}: pattern {pattern!r} matches no task here")
            chosen += hits
        elif pattern in all_names:
            t = all_names[pattern]
            if t.held_out:
                raise ConfigError(f"submixture {leaf.name}: task {pattern!r} is held out ({t.held_out}) "
                                  "and can never be mixed into training")
            chosen.append(t)
        else:
            where = "" if data_dir else " (no data dir: pass --data-dir for real tasks)"
            raise ConfigError(f"submixture {leaf.name}: unknown task {pattern!r}.{did_you_mean(pattern, all_names)}{where}")
    for f in s.files:
        path = f.path if f.format == "hf" else resolve_path(leaf.cfg, f.path)
        data_files = str(resolve_path(leaf.cfg, f.data_files)) if f.data_files else None
        chosen.append(catalog.file_task(f.name, path, fields=f.fields or None, format=f.format, category=f.category,
                                        instruction=f.instruction, hf_split=f.split, hf_data_files=data_files))
    for spec in s.flan_collection:
        chosen += spec_tasks(spec, lambda p: resolve_path(leaf.cfg, p), data_dir)
    kept = []
    for t in chosen:
        if any(fnmatch.fnmatchcase(t.name, p) for p in s.exclude):
            continue
        if t.held_out:
            excluded.append({"name": t.name, "submixture": leaf.name, "reason": t.held_out})
            continue
        kept.append(t)
    if s.max_tasks is not None:
        kept = kept[: s.max_tasks]
    return kept


def _largest_remainder(total: int, shares: list[float]) -> list[int]:
    """Integers summing to `total` (when shares sum to 1), each within 1 of total * share; ties by order."""
    raw = [total * p for p in shares]
    counts = [int(x) for x in raw]
    left = total - sum(counts)
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: max(0, left)]:
        counts[i] += 1
    return counts



@dataclass
class Selection:
    """What select_tasks found: (leaf, task) pairs in config then catalog order, each task at most once a leaf."""

    pairs: list[tuple[Leaf, catalog.Task]]
    excluded: list[dict]  # {name, submixture, reason}, once per task (its first mention)
    warnings: list[str]


def select_tasks(config: MixtureConfig, leaves: list[Leaf], data_dir: Path | None) -> Selection:
    """Every leaf's tasks from the catalog (discovered once per source kind), less the held-out ones (reported),
    cut to the config's max_tasks. A task may serve several submixtures (e.g. a synthetic family directly and in a
    nested CoT mixture): each pair becomes its own stream."""
    cache: dict[str, list] = {}

    def catalog_tasks(src: str) -> list:
        if src not in cache:
            cache[src] = catalog.discover(src, data_dir)
        return cache[src]

    all_names = {t.name: t for src in catalog.CATALOG_SOURCES for t in catalog_tasks(src)}
    excluded: list[dict] = []
    warnings: list[str] = []
    pairs: list[tuple[Leaf, catalog.Task]] = []
    for leaf in leaves:
        names_here: set[str] = set()
        for t in _select(leaf, catalog_tasks, all_names, excluded, warnings, data_dir):
            if t.name not in names_here:
                names_here.add(t.name)
                pairs.append((leaf, t))
    excluded += _niv2_held_out_elsewhere(leaves, {t.name for t in catalog_tasks("niv2")}, data_dir)
    if config.max_tasks is not None:
        pairs = _first_tasks(pairs, config.max_tasks, warnings)
    excluded = list({e["name"]: e for e in reversed(excluded)}.values())[::-1]  # once per task, first mention
    return Selection(pairs=pairs, excluded=excluded, warnings=warnings)


def _niv2_held_out_elsewhere(leaves: list[Leaf], here: set[str], data_dir: Path | None) -> list[dict]:
    """The NIV2 metadata's other tasks are not in the data dir, but say which of them the name rule would exclude."""
    niv2_leaves = [leaf.name for leaf in leaves if "niv2" in leaf.sub.sources]
    meta = data_dir / "niv2" / "task_metadata.json" if data_dir is not None else None
    if not niv2_leaves or meta is None or not meta.is_file():
        return []
    out = []
    for name in json.loads(meta.read_text(encoding="utf-8")):
        reason = catalog.held_out_reason(name)
        if reason and name not in here:
            out.append({"name": name, "submixture": niv2_leaves[0], "reason": reason + "; not in the data dir either"})
    return out


def _first_tasks(pairs: list[tuple[Leaf, catalog.Task]], requested: int, warnings: list[str]) -> list:
    """The pairs of the first `requested` distinct task names (all of them, with a warning, when fewer exist)."""
    order = list(dict.fromkeys(t.name for _, t in pairs))
    if len(order) < requested:
        warnings.append(f"max_tasks is {requested} but only {len(order)} tasks are available here: using all {len(order)}")
    keep = set(order[:requested])
    return [(leaf, t) for leaf, t in pairs if t.name in keep]


@dataclass
class Allocation:
    tasks: list[PlannedTask]  # each with its share, count and val_count
    submixtures: dict[str, dict]  # leaf name -> {rate_configured, rate, tasks, cap, weight}
    size: int


def allocate(config: MixtureConfig, leaves: list[Leaf], pairs: list[tuple[Leaf, catalog.Task]],
             sets: dict[str, TemplateSet], warnings: list[str], no_tasks_note: str = "") -> Allocation:
    """Weights, shares and exact counts for the selected tasks; pure (reads nothing). Raises ValueError when no
    submixture has a trainable task (the message ends with `no_tasks_note` and the warnings so far)."""
    planned = _planned_tasks(config, leaves, pairs, sets, warnings)
    subs = _submixture_rates(leaves, planned, warnings)
    if not any(s["rate"] for s in subs.values()):
        raise ValueError(f"{config.source_path or 'mixture'}: no trainable tasks here{no_tasks_note}; "
                         + "; ".join(warnings))
    for p in planned:
        s = subs[p.submixture]
        p.share = s["rate"] * p.weight / s["weight"] if s["rate"] else 0.0
    planned = [p for p in planned if p.share > 0]
    if config.size is not None:
        size = config.size
    else:  # the largest size at which no task needs more records than its (capped) weight
        size = int(min(s["weight"] / s["rate"] for s in subs.values() if s["rate"]))
    counts = _largest_remainder(size, [p.share for p in planned])
    # validation is planned at VALIDATION_OVERSAMPLE x its size and cut at its size: small finite tasks often
    # hold no record in the validation bucket, and the others fill their slots
    val = _largest_remainder(config.validation_size * VALIDATION_OVERSAMPLE, [p.share for p in planned])
    for p, c, v in zip(planned, counts, val):
        p.count, p.val_count = c, v
    return Allocation(tasks=planned, submixtures=subs, size=size)


def _planned_tasks(config: MixtureConfig, leaves: list[Leaf], pairs: list[tuple[Leaf, catalog.Task]],
                   sets: dict[str, TemplateSet], warnings: list[str]) -> list[PlannedTask]:
    """Each pair's usable formats (the submixture's weights over the ones its templates or rows serve), size,
    weight min(size, cap) and stream key; pairs with no usable format or no record are left out (warned)."""
    first_leaf: dict[str, str] = {}
    for leaf, t in pairs:
        first_leaf.setdefault(t.name, leaf.name)
    planned: list[PlannedTask] = []
    no_format: dict[str, list[str]] = {}
    for leaf, t in pairs:
        weights = leaf.sub.formats or config.formats
        usable = t.formats(sets)
        fmts = {f: (w, usable[f]) for f, w in weights.items() if w > 0 and f in usable}
        if not fmts:
            no_format.setdefault(leaf.name, []).append(t.name)
            continue
        size = t.count if t.count is not None else leaf.sub.synthetic_size
        if t.prerendered is not None:  # pre-rendered rows: only those of the formats this submixture draws
            size = sum(t.prerendered[f] for f in fmts)
        if size <= 0:
            warnings.append(f"task {t.name} has no records: left out")
            continue
        weight = float(min(size, leaf.sub.cap) if leaf.sub.cap else size)
        key = t.name if first_leaf[t.name] == leaf.name else f"{leaf.name}:{t.name}"
        planned.append(PlannedTask(task=t, submixture=leaf.name, size=size, weight=weight, share=0.0, formats=fmts, key=key))
    shared = sorted({p.task.name for p in planned if p.key != p.task.name})
    if shared:
        warnings.append(f"{len(shared)} task(s) serve more than one submixture (one stream each): {', '.join(shared[:10])}"
                        + (", ..." if len(shared) > 10 else ""))
    for leaf in leaves:
        if leaf.name in no_format:
            names = no_format[leaf.name]
            wanted = ", ".join(f for f, w in (leaf.sub.formats or config.formats).items() if w > 0)
            warnings.append(f"submixture {leaf.name}: {len(names)} task(s) have none of the formats {wanted} "
                            f"and are left out: {', '.join(names)}")
    return planned


def _submixture_rates(leaves: list[Leaf], planned: list[PlannedTask], warnings: list[str]) -> dict[str, dict]:
    """leaf name -> {rate_configured, rate, tasks, cap, weight}: the configured rates renormalised over the
    submixtures that have tasks (a submixture with none gives its rate to the others, warned)."""
    subs: dict[str, dict] = {}
    for leaf in leaves:
        members = [p for p in planned if p.submixture == leaf.name]
        subs[leaf.name] = {"rate_configured": leaf.rate, "rate": 0.0, "tasks": len(members), "cap": leaf.sub.cap,
                           "weight": sum(p.weight for p in members)}
        if not members:
            warnings.append(f"submixture {leaf.name} has no tasks here: its rate {leaf.rate:.4g} goes to the others")
    live = {n: s for n, s in subs.items() if s["tasks"] and s["rate_configured"] > 0}
    total_rate = sum(s["rate_configured"] for s in live.values())
    for s in live.values():
        s["rate"] = s["rate_configured"] / total_rate
    return subs


def plan_mixture(config: MixtureConfig, data_dir=None) -> Plan:
    """Resolve tasks, weights, shares, exact example counts and templates; fails before reading any record."""
    check_config(config, config.source_path or "mixture config")  # also for configs built in code
    d = given_data_dir(data_dir)
    log.debug("mixture %s: data dir %s", config.name, d if d else "none (the synthetic families only)")
    sets = load_template_file(resolve_path(config, config.template_file)) if config.template_file else TEMPLATE_SETS
    leaves = mixture_leaves(config)
    selection = select_tasks(config, leaves, d)
    note = "" if d else " (no data dir; the synthetic source needs no data)"
    alloc = allocate(config, leaves, selection.pairs, sets, selection.warnings, note)
    return Plan(config=config, data_dir=d, tasks=alloc.tasks, submixtures=alloc.submixtures, size=alloc.size,
                excluded=selection.excluded, warnings=selection.warnings, template_sets=sets,
                requested_tasks=config.max_tasks)
