"""Running an evaluation: benchmarks x modes through the engine, scored, summarized, written. And rescoring.

`evaluate(model, config, out_dir=...)` is what `flanlab eval`, `flanlab scale`, the demo and training's eval_suite
call, with one EvalConfig (flanlab/eval/config.py: what is evaluated and how; its fields may also be given as
keyword arguments):
    for each benchmark, for each mode it supports:
        build the items of every subtask (Benchmark.items, at most `limit` per subtask)
        choose the scoring per subtask (rank / generate; see `choose_scoring`)
        run the items not already in the resume cache through the engine, batch by batch, appending each
            finished batch to the cache (under `accelerate launch` each process takes every world-th batch
            and the outputs are gathered, so every process ends with all of them)
        extract answers (self-consistency: k samples, each extracted, majority vote), score, summarize
    normalized average, provenance, timings; the main process writes out_dir/results.json and samples.jsonl.

`rescore(benchmark, predictions, out_dir)` recomputes the same results.json from saved generations with no
model (our own samples.jsonl, or any JSONL with task/subtask, prediction/output and target per line, and a mode
per line or for the file).

Scoring "auto" is rank classification for the direct mode of benchmarks offering choices, generation
otherwise; "rank" is the same (rank needs choices, and only direct prompts end where an option can follow);
"generate" generates everywhere. results.json says which was used per mode ("rank", "generate", or "mixed"
when some subtasks have no choices, each subtask then carrying its own "scoring").
Self-consistency (k > 1) applies to the CoT modes: k samples at `temperature`, majority vote.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from flanlab.eval.chat import ChatOptions, check_template, templated_items
from flanlab.eval.chat import messages as chat_messages
from flanlab.eval.config import COT_MODES, EvalConfig, config_from_options
from flanlab.eval.results import SCHEMA, ResultCache, cache_key, model_section, provenance, write_run
from flanlab.eval.spec import Benchmark, EvalItem, EvalOptions
from flanlab.log import get_logger
from flanlab.runlock import locks_folder

if TYPE_CHECKING:
    from flanlab.eval.engine import Engine

log = get_logger(__name__)

# ----------------------------------------------------------------------------------------------------------
# distributed helpers: a no-op single-process state unless launched with accelerate/torchrun


class _Single:
    num_processes = 1
    process_index = 0
    is_main_process = True
    device = None

    def wait_for_everyone(self) -> None:
        pass


def distributed_state():
    """accelerate's PartialState when launched with several processes (WORLD_SIZE > 1), else a single-process one.

    Launch with `torchrun --nproc_per_node N -m flanlab.cli eval ...` or `accelerate launch --multi_gpu
    --num_processes N -m flanlab.cli eval ...`; without CUDA the processes talk over gloo on the CPU. (Plain
    `accelerate launch --cpu --num_processes N` starts a single process unless an MPI hostfile is configured.)"""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return _Single()
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def _gather(state, objects: list) -> list:
    if state.num_processes == 1:
        return objects
    from accelerate.utils import gather_object

    return gather_object(objects)


# ----------------------------------------------------------------------------------------------------------
# choices


def resolve_benchmarks(benchmarks=None, suite: str | None = None) -> list[Benchmark]:
    """Benchmark objects from names and/or Benchmark objects, or a suite name."""
    from flanlab.eval.benchmarks import get_benchmark, get_suite

    if benchmarks and suite:
        raise ValueError("give either benchmarks or a suite, not both")
    if suite:
        return get_suite(suite)
    if not benchmarks:
        raise ValueError("no benchmarks: give benchmarks=[...] or suite=... (e.g. 'synthetic')")
    if isinstance(benchmarks, (str, Benchmark)):
        benchmarks = [benchmarks]
    return [b if isinstance(b, Benchmark) else get_benchmark(b) for b in benchmarks]


def choose_scoring(bench: Benchmark, mode: str, items: Sequence[EvalItem], scoring: str) -> str:
    """"rank" or "generate" for the items of one subtask in one mode (see the module docstring)."""
    if scoring not in ("auto", "rank", "generate"):
        raise ValueError(f"scoring must be auto, rank or generate, not {scoring!r}")
    if scoring == "generate":
        return "generate"
    can_rank = "rank" in bench.scorings and mode == "direct" and bool(items) and all(it.choices for it in items)
    return "rank" if can_rank else "generate"


def generation_settings(bench: Benchmark, mode: str, self_consistency: int, temperature: float, seed: int):
    from flanlab.eval.engine import GenerationSettings

    max_new = bench.max_new_tokens.get(mode) or bench.max_new_tokens.get("cot" if mode in COT_MODES else "direct") or 64
    k = self_consistency if (self_consistency > 1 and mode in COT_MODES) else 1
    return GenerationSettings(
        max_new_tokens=int(max_new), stop=tuple(bench.stop), num_samples=k,
        temperature=float(temperature) if k > 1 else 0.0, seed=seed,
    )


# ----------------------------------------------------------------------------------------------------------
# running items, with the resume cache and sharding


def run_items(engine, bench: Benchmark, items: list[EvalItem], op: str, settings,
              cache: ResultCache, fingerprint: str, state, bar=None, chat: ChatOptions = ChatOptions()) -> list[dict]:
    """The engine's output for every item: {"outputs": [...]} (generate) or rank fields; cached items are reused.
    With a chat template `items` are the rendered ones (flanlab.eval.chat.templated_items) and `chat` goes into
    the cache key too."""
    settings_key = {"op": op} if op == "rank" else {
        "max_new_tokens": settings.max_new_tokens, "stop": list(settings.stop), "k": settings.num_samples,
        "temperature": settings.temperature, "seed": settings.seed,
    }
    if chat.apply_chat_template:  # plain runs keep their keys (and their existing caches)
        settings_key = {**settings_key, "chat": chat.settings()}
    keys = [cache_key(fingerprint, bench, it, op, settings_key) for it in items]
    todo = [i for i, k in enumerate(keys) if k not in cache]
    batches = engine.plan([items[i] for i in todo], rank=op == "rank",  # indices into todo
                          max_new_tokens=settings.max_new_tokens if op == "generate" else None)
    mine = batches[state.process_index::state.num_processes]
    if bar is not None and len(todo) < len(items):
        bar.update(len(items) - len(todo))  # served from the resume cache
    computed = []
    for batch in mine:
        batch_items = [items[todo[j]] for j in batch]
        if op == "rank":
            values = [
                {"logprobs": list(r.logprobs), "num_tokens": list(r.num_tokens), "normalized": list(r.normalized),
                 "best": r.best}
                for r in engine.rank_batch(batch_items)
            ]
        else:
            values = [{"outputs": outs} for outs in engine.generate_batch(batch_items, settings)]
        pairs = [(keys[todo[j]], v) for j, v in zip(batch, values)]
        cache.put_many(pairs)
        computed.extend(pairs)
        if bar is not None:
            bar.update(len(batch))
    if state.num_processes > 1:
        cache.put_many(_gather(state, computed), persist=False)
    missing = [items[i].item_id for i, k in enumerate(keys) if k not in cache]
    if missing:
        raise RuntimeError(f"{bench.name}: no output for items {missing[:5]} (a process failed?)")
    return [cache.get(k) for k in keys]


# ----------------------------------------------------------------------------------------------------------
# scoring


def score_item(bench: Benchmark, item: EvalItem, op: str, value: dict) -> dict:
    """One samples.jsonl row from the engine's output for an item."""
    from flanlab.eval.metrics import majority_vote, vote_counts, vote_margin

    row = {"benchmark": item.benchmark, "subtask": item.subtask, "mode": item.mode, "item_id": item.item_id,
           "prompt": item.prompt, "shots": item.shots}
    if op == "rank":
        output = item.choices[value["best"]]
        extracted = bench.extract(output, item)
        extras = {"choices": list(item.choices), "logprobs": value["logprobs"], "normalized": value["normalized"]}
    else:
        outputs = value["outputs"]
        answers = [bench.extract(o, item) for o in outputs]
        output = outputs[0]
        extracted = answers[0] if len(answers) == 1 else majority_vote(answers)
        extras = {}
        if len(outputs) > 1:  # self-consistency: the samples, their answers and how clear the vote was
            extras = {"outputs": outputs, "answers": answers, "votes": dict(vote_counts(answers)),
                      "vote_margin": vote_margin(answers)}
    metrics = bench.score(extracted, item)
    row.update(output=output, extracted=extracted, target=item.target,
               correct=bool(metrics.get(bench.metric, 0.0) >= 1.0))
    row.update(scoring=op, metrics=metrics, chance=item.chance, **extras)
    if item.choices and "choices" not in row:
        row["choices"] = list(item.choices)
    if item.aliases:
        row["aliases"] = list(item.aliases)
    return row


def summarize(bench: Benchmark, mode: str, rows: list[dict], scorings: dict[str, str]) -> dict:
    """The per-mode section of results.json from the mode's sample rows (see flanlab.eval.metrics.summarize_mode)."""
    from flanlab.eval.metrics import summarize_mode

    per_item: dict[str, list[dict]] = {}
    chance: dict[str, float] = {}
    for row in rows:
        per_item.setdefault(row["subtask"], []).append(row["metrics"])
        chance[row["subtask"]] = float(row.get("chance") or 0.0)
    used = set(scorings.values())
    scoring = used.pop() if len(used) == 1 else "mixed"
    section = summarize_mode(bench, mode, scoring, per_item, chance)
    if scoring == "mixed":
        for name, entry in section["subtasks"].items():
            entry["scoring"] = scorings.get(name)
    _record_shots(section, rows)
    _record_cuts(section, rows)
    return section


def _record_cuts(section: dict, rows: list[dict]) -> None:
    """How many items' inputs were longer than the model's context and lost their first tokens (the rows'
    "prompt_cut", set by _run_mode): per subtask and over the mode as "prompts_cut", absent where none was."""
    cut: dict[str, int] = {}
    for row in rows:
        if row.get("prompt_cut"):
            cut[row["subtask"]] = cut.get(row["subtask"], 0) + 1
    for name, n in cut.items():
        section["subtasks"][name]["prompts_cut"] = n
    if cut:
        section["prompts_cut"] = sum(cut.values())


def _record_shots(section: dict, rows: list[dict]) -> None:
    """The exemplars the prompts really had (the rows' "shots"): per subtask, and the fewest and most over the
    mode ("shots", "shots_max"); null where any row does not say (predictions from elsewhere)."""
    used: dict[str, set] = {}
    for row in rows:
        used.setdefault(row["subtask"], set()).add(row.get("shots"))

    def span(values: set) -> tuple[int | None, int | None]:
        return (None, None) if None in values or not values else (min(values), max(values))

    for name, entry in section["subtasks"].items():
        entry["shots"] = span(used.get(name, set()))[0]
    section["shots"], section["shots_max"] = span(set().union(*used.values()) if used else set())


# ----------------------------------------------------------------------------------------------------------
# evaluate


def _config_and_benchmarks(config: EvalConfig | None, options: dict) -> tuple[EvalConfig, list[Benchmark] | None]:
    """evaluate()'s EvalConfig, from `config` or from keyword options (not both), and the Benchmark objects given
    in options["benchmarks"] (custom benchmarks; the config then names them), else None."""
    if config is not None:
        if options:
            raise TypeError(f"evaluate(): give config=EvalConfig(...) or its fields as keywords, not both "
                            f"(got config and {', '.join(sorted(options))})")
        if type(config) is not EvalConfig:  # a subclass (scale's EvalPart) has fields evaluate() would not apply
            raise TypeError(f"evaluate(): config must be an EvalConfig, not {type(config).__name__}"
                            + (" (evaluate each mode's part.for_mode(mode), or use flanlab.scale.evaluate_cell)"
                               if hasattr(config, "for_mode") else ""))
        return config, None
    wanted = options.get("benchmarks")
    if isinstance(wanted, (str, Benchmark)):
        wanted = [wanted]
    custom = None
    if wanted and any(isinstance(b, Benchmark) for b in wanted):
        custom = [b if isinstance(b, Benchmark) else resolve_benchmarks([b])[0] for b in wanted]
        wanted = [b.name for b in custom]
    if wanted is not None:
        options = {**options, "benchmarks": list(wanted)}
    return config_from_options("evaluate()", **options), custom


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What one evaluate() call runs, resolved and checked before any model is loaded."""

    config: EvalConfig
    benches: list[Benchmark]
    data_path: Path | None
    item_options: EvalOptions
    chat: ChatOptions


@dataclasses.dataclass(frozen=True)
class _Runner:
    """What runs the items of every (benchmark, mode): the engine, the resume cache, the processes."""

    engine: Engine
    cache: ResultCache
    fingerprint: str  # the model's, part of every cache key
    state: object  # distributed_state()
    progress: bool


def _plan(config: EvalConfig | None, options: dict, data_dir) -> _Plan:
    """evaluate()'s config resolved and checked, its benchmarks, and every prompt built before any work: one a
    benchmark cannot build stops the run now, not after an hour of others."""
    from flanlab.settings import data_dir as resolve_data_dir

    config, custom = _config_and_benchmarks(config, options)
    config.check("evaluate()")  # the same declared ranges as the command line's flags, before any model is loaded
    plan = _Plan(
        config=config, benches=resolve_benchmarks(custom or config.benchmarks, config.suite),
        data_path=resolve_data_dir(data_dir), chat=config.chat(),
        item_options=EvalOptions(limit=config.limit, zero_shot_cot=config.zero_shot_cot, shots=config.shots),
    )
    for bench in plan.benches:
        for requested in (m for m in config.modes if m in bench.modes):
            for subtask in bench.subtasks(plan.data_path):
                for item in bench.items(plan.data_path, subtask, requested, plan.item_options):
                    if plan.chat.fewshot_as_multiturn:
                        chat_messages(item, plan.chat)  # a ValueError for a prompt whose exemplars are one text
    return plan


def _engine(model, plan: _Plan, state):
    """The model (a name/path loaded on this process's device, or a LoadedModel) in an Engine; torch seeded."""
    import torch

    from flanlab.eval.engine import Engine
    from flanlab.models import LoadedModel, load

    lm = model if isinstance(model, LoadedModel) else load(model, device=str(state.device) if state.device else None)
    if plan.chat.apply_chat_template:
        check_template(lm.tokenizer, lm.name)
    torch.manual_seed(plan.config.seed)
    return Engine(lm, batch_size=plan.config.batch_size, prefix_cache=plan.config.prefix_cache,
                  templated=plan.chat.apply_chat_template)


def draft_settings(draft_tokens: int | None = None) -> dict:
    """engine_settings' record of the drafts: the tokens drafted a step (None: the code's default,
    speculative.DRAFT_TOKENS; 0: none) and the n-grams they are drafted from (speculative.NGRAMS; [] without drafts)."""
    from flanlab.eval import speculative

    drafts = speculative.DRAFT_TOKENS if draft_tokens is None else draft_tokens
    return {"draft_tokens": drafts, "draft_ngrams": list(speculative.NGRAMS) if drafts else []}


def engine_settings(engine) -> dict:
    """The engine's settings that are not in a cache key but can change an output, as the engine applies them
    (a lever the model cannot use is off): the batch size (padding), the prefix cache, shared-prefix attention
    and the draft tokens (greedy rows draft only in shared-prefix batches: 0 without them). Each is meant to
    leave outputs unchanged; fp32 rounding can still flip a near tie. results.json records them under
    settings.engine, the resume cache in its engine.json. The draft n-grams (speculative.NGRAMS) are recorded
    too: they decide which tokens one forward checks together, so a release that changes them must not resume a
    cache of the old ones; so are the kernel shared-prefix attention runs on (prefix_attention.fused_kernel: the
    fused and explicit paths round differently) and the model's context length, past which an input loses its
    first tokens (a cache from before that rule holds outputs of the whole input). engine.REVISION stands for the
    engine's code: a change of it that can move an output bumps it."""
    from flanlab.eval.engine import REVISION
    from flanlab.eval.prefix_attention import fused_kernel

    kernel = None
    if engine.shared_attention:
        param = next(engine.model.parameters())
        kernel = "fused_cpu" if fused_kernel(param.device.type, param.dtype) else "explicit"
    return {"batch_size": engine.batch_size, "prefix_cache": engine.prefix_cache,
            "shared_attention": engine.shared_attention, "attention_kernel": kernel,
            **draft_settings(engine.draft_tokens if engine.shared_attention else 0),
            "context_length": engine.max_length, "engine_revision": REVISION}


def _results_head(plan: _Plan, model_info: dict, engine, state) -> dict:
    """results.json's schema, model and settings sections, its benchmarks and timings still empty."""
    from flanlab.eval.stats import N_BOOT, SEED

    return {
        "schema": SCHEMA,
        "model": model_info,
        "settings": {
            **plan.config.settings(),  # every EvalConfig field under its own name; then what the run resolved and used
            "benchmarks": [b.name for b in plan.benches], "prefix_cache": engine.prefix_cache,
            "engine": engine_settings(engine),
            "context_length": engine.max_length,  # longer inputs lose their first tokens (counted: prompts_cut)
            "processes": state.num_processes,
            "rank_argmax": "summed log-probability of the choice tokens (lm-eval acc)",
            "benchmark_versions": {b.name: b.version for b in plan.benches},
            "uncertainty": {"n_boot": N_BOOT, "seed": SEED, "see": "flanlab/eval/stats.py"},
        },
        "benchmarks": {},
        "timings": {},
    }


def _mode_items(bench: Benchmark, requested: str, plan: _Plan) -> dict[str, list[EvalItem]]:
    """The items of one (benchmark, mode) per subtask, at most `limit` each; subtasks without items left out."""
    limit = plan.config.limit
    by_subtask = {s: bench.items(plan.data_path, s, requested, plan.item_options) for s in bench.subtasks(plan.data_path)}
    by_subtask = {s: its[:limit] if limit is not None else its for s, its in by_subtask.items()}
    return {s: its for s, its in by_subtask.items() if its}


def _run_mode(bench: Benchmark, by_subtask: dict[str, list[EvalItem]], plan: _Plan,
              runner: _Runner) -> tuple[str, list[dict], dict[str, str]]:
    """One (benchmark, mode): each subtask's scoring chosen, its items run (the rank ones, then the generate
    ones; the resume cache serves those done before) and scored. Returns the mode the items carry, the sample
    rows in subtask order (items in their order within) and the scoring per subtask."""
    config, chat = plan.config, plan.chat
    mode = next(iter(by_subtask.values()))[0].mode  # "zs_cot" when zero_shot_cot turned cot into it
    scorings = {s: choose_scoring(bench, mode, its, config.scoring) for s, its in by_subtask.items()}
    settings = generation_settings(bench, mode, config.self_consistency, config.sampling_temperature() or 0.0,
                                   config.seed)
    n_items = sum(len(its) for its in by_subtask.values())
    bar = _progress(f"{bench.name}/{mode}", n_items, runner.progress and runner.state.is_main_process)
    rows = []
    for op in ("rank", "generate"):
        op_items = [it for s, its in by_subtask.items() if scorings[s] == op for it in its]
        if not op_items:
            continue
        # the engine sees the rendered prompts; scoring reads the plain items (extractors may use the query)
        shown = templated_items(op_items, runner.engine.tokenizer, chat)
        values = run_items(runner.engine, bench, shown, op, settings if op == "generate" else None,
                           runner.cache, runner.fingerprint, runner.state, bar, chat)
        cuts = 0
        for it, seen, v in zip(op_items, shown, values):
            rows.append(score_item(bench, it, op, v))
            if chat.apply_chat_template:
                rows[-1]["chat_prompt"] = seen.prompt  # what the model really read
            cut = runner.engine.input_cut(seen, op, settings.max_new_tokens)  # first tokens the model did not read
            if cut:
                rows[-1]["prompt_cut"] = cut
                cuts += 1
        if cuts:
            log.warning(f"{bench.name}/{mode}: {cuts} of {len(op_items)} inputs are longer than the model's context "
                        f"({runner.engine.max_length} tokens, less the new tokens) and lost their first tokens, as "
                        "lm-evaluation-harness cuts them; results.json counts them per subtask (prompts_cut)")
    if bar is not None:
        bar.close()
    order = {s: i for i, s in enumerate(by_subtask)}
    rows.sort(key=lambda r: order[r["subtask"]])
    return mode, rows, scorings


@locks_folder("eval", lambda *args, out_dir, **kwargs: out_dir)  # the main process only, under accelerate
def evaluate(
    model,
    config: EvalConfig | None = None,
    *,
    out_dir,
    data_dir=None,
    cache_dir=None,
    progress: bool = True,
    **options,
) -> dict:
    """Evaluate `model` (a name/path for flanlab.models.load, or a LoadedModel); write and return results.json.

    config: what to evaluate and how (flanlab.eval.config.EvalConfig), or its fields as keyword `options` (the
    thin layer: evaluate(m, suite="synthetic", limit=5, out_dir=d) is evaluate(m, EvalConfig(suite="synthetic",
    limit=5), out_dir=d)); not both. Under `options`, `benchmarks` may also hold Benchmark objects (custom
    benchmarks, not in the registry) and `modes` a comma-separated string.
    cache_dir: the resume cache (default out_dir/cache; False disables it). See the module docstring."""
    from flanlab.eval.metrics import normalized_average, synthetic_average

    t_start = time.time()
    state = distributed_state()
    plan = _plan(config, options, data_dir)
    engine = _engine(model, plan, state)
    out = Path(out_dir)
    folder = None if cache_dir is False else Path(cache_dir) if cache_dir else out / "cache"
    cache = ResultCache(folder, rank=state.process_index)
    n_cached = cache.load()
    cache.check_engine(engine_settings(engine), record=state.is_main_process)  # refuses entries of other settings
    state.wait_for_everyone()  # every process has read the cache before any appends to it
    model_info = model_section(engine.lm)  # hashes the weights, tokenizer and config once
    runner = _Runner(engine, cache, model_info["fingerprint"], state, progress)

    results = _results_head(plan, model_info, engine, state)
    samples: list[dict] = []
    skipped = []
    for bench in plan.benches:
        for requested in plan.config.modes:
            t0, calls0 = time.time(), engine.forward_calls
            by_subtask = _mode_items(bench, requested, plan) if requested in bench.modes else {}
            if not by_subtask:
                skipped.append(f"{bench.name}/{requested}")
                continue
            mode, rows, scorings = _run_mode(bench, by_subtask, plan, runner)
            samples.extend(rows)
            results["benchmarks"].setdefault(bench.name, {})[mode] = summarize(bench, mode, rows, scorings)
            seconds, n_items = time.time() - t0, sum(len(its) for its in by_subtask.values())
            results["timings"][f"{bench.name}/{mode}"] = {
                "seconds": round(seconds, 3), "items": n_items, "items_per_s": round(n_items / seconds, 3) if seconds else None,
                "forward_calls": engine.forward_calls - calls0,
            }
    cache.close()
    results["normalized_average"] = normalized_average(results["benchmarks"], samples)
    results["synthetic_average"] = synthetic_average(results["benchmarks"], samples)
    results["skipped"] = skipped
    results["provenance"] = provenance(plan.benches, plan.data_path)
    results["provenance"]["cache"] = {"folder": str(folder) if folder else None, "entries_at_start": n_cached}
    results["timings"]["total_s"] = round(time.time() - t_start, 3)
    if state.is_main_process:
        write_run(out, results, samples)
    state.wait_for_everyone()
    return results


def _progress(desc: str, total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="item", dynamic_ncols=True)


# ----------------------------------------------------------------------------------------------------------
# rescore saved generations


def _prediction_rows(path: Path):
    """(line number, row) pairs of a predictions JSONL, with the accepted field names checked."""
    from flanlab.fileio import read_jsonl_numbered

    for lineno, row in read_jsonl_numbered(path):
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{lineno}: expected a JSON object")
        subtask = row.get("subtask", row.get("task"))
        output = row.get("output", row.get("prediction"))
        if subtask is None or output is None or "target" not in row:
            raise ValueError(f"{path}:{lineno}: needs 'task' (or 'subtask'), 'prediction' (or 'output') and 'target'")
        yield lineno, row


def rescore_modes(bench: Benchmark) -> tuple[str, ...]:
    """The modes a predictions row of `bench` may carry: the benchmark's, plus zero-shot CoT where it has CoT."""
    return tuple(bench.modes) + (("zs_cot",) if "cot" in bench.modes else ())


def _row_mode(row: dict, mode: str | None, bench: Benchmark, where: str) -> str:
    """The row's mode: its "mode" field, else the --mode given; neither, or the two disagreeing, is an error."""
    own = row.get("mode")
    if own is None and mode is None:
        raise ValueError(f"{where}: no 'mode' field and no --mode given: say how these predictions were made "
                         f"(--mode {' or --mode '.join(bench.modes)}); a chain-of-thought output scored as direct, "
                         f"or the reverse, is misread")
    if own is not None and mode is not None and str(own) != mode:
        raise ValueError(f"{where}: the row's mode {own!r} disagrees with --mode {mode}")
    found = str(own if own is not None else mode)
    if found not in rescore_modes(bench):
        raise ValueError(f"{where}: mode {found!r} is not one of {bench.name}'s ({', '.join(rescore_modes(bench))})")
    return found


@locks_folder("eval score", lambda benchmark_name, predictions_path, out_dir=None, *args, **kwargs: out_dir)
def rescore(benchmark_name: str, predictions_path, out_dir=None, data_dir=None, mode: str | None = None) -> dict:
    """Results from saved generations, no model: re-extract each output with today's extractor, score, summarize.

    Every row must belong to the benchmark (a "benchmark" field, if present, names it; the subtask must be one of
    its subtasks) and say its mode (a "mode" field, or `mode` for rows without one): otherwise ValueError naming
    file:line. A row without "item_id" is given its position among its subtask's rows of its mode (as the
    benchmarks number items, but TyDiQA, whose ids are its own). Items are rebuilt from the benchmark where its
    data is available (for aliases); otherwise from the row (fields choices, aliases). Chance rates come from the benchmark's own table (Benchmark.chance), which
    needs no data; a benchmark without one takes them from the rebuilt items, else the rows' "chance"."""
    from flanlab.eval.metrics import normalized_average, synthetic_average
    from flanlab.registry import did_you_mean
    from flanlab.settings import data_dir as resolve_data_dir

    t0 = time.time()
    bench = resolve_benchmarks([benchmark_name])[0]
    path = Path(predictions_path)
    if mode is not None and mode not in rescore_modes(bench):
        raise ValueError(f"--mode {mode}: {bench.name} has modes {', '.join(rescore_modes(bench))}")
    data_path = resolve_data_dir(data_dir)
    known_subtasks = list(bench.subtasks(data_path))
    rebuilt: dict[tuple[str, str], dict[str, EvalItem] | None] = {}

    def known_item(subtask: str, mode: str, item_id: str) -> EvalItem | None:
        if (subtask, mode) not in rebuilt:
            try:
                its = bench.items(data_path, subtask, mode, EvalOptions(zero_shot_cot=mode == "zs_cot"))
                rebuilt[(subtask, mode)] = {it.item_id: it for it in its}
            except FileNotFoundError:  # no data here (and no hub): the row's own fields stand in
                rebuilt[(subtask, mode)] = None
        table = rebuilt[(subtask, mode)]
        return table.get(item_id) if table else None

    by_mode: dict[str, list[dict]] = {}
    scorings: dict[str, dict[str, str]] = {}
    positions: dict[tuple[str, str], int] = {}  # (subtask, mode) -> rows of it so far
    for lineno, row in _prediction_rows(path):
        where = f"{path}:{lineno}"
        if row.get("benchmark") not in (None, bench.name):
            raise ValueError(f"{where}: a row of benchmark {row['benchmark']!r}, not {bench.name!r} "
                             f"(score it with --benchmark {row['benchmark']}, each benchmark's rows on their own)")
        subtask = str(row.get("subtask", row.get("task")))
        if subtask not in known_subtasks:
            hint = did_you_mean(subtask, known_subtasks)
            raise ValueError(f"{where}: unknown {bench.name} subtask {subtask!r}.{hint} {bench.name} has "
                             f"{len(known_subtasks)}: {', '.join(known_subtasks[:6])}"
                             f"{', ...' if len(known_subtasks) > 6 else ''}")
        row_mode = _row_mode(row, mode, bench, where)
        # an item id is a position in its subtask (bbh, mgsm, mmlu, synthetic): a row without one is the next of
        # its subtask and mode in file order (its line number in the whole file named another item)
        position = positions.get((subtask, row_mode), 0)
        positions[(subtask, row_mode)] = position + 1
        item_id = str(row.get("item_id", position))
        item = known_item(subtask, row_mode, item_id)
        if item is None or str(item.target) != str(row["target"]):
            item = EvalItem(
                benchmark=bench.name, subtask=subtask, mode=row_mode, item_id=item_id, prefix="",
                query=str(row.get("prompt", "")), target=str(row["target"]),
                choices=tuple(row.get("choices") or ()), aliases=tuple(row.get("aliases") or ()),
                chance=float(row.get("chance") or 0.0),
            )
        if bench.chance is not None:
            item = dataclasses.replace(item, chance=float(bench.chance(subtask)))
        outputs = row.get("outputs") or [row.get("output", row.get("prediction"))]
        op = row.get("scoring") or "generate"
        # a rank-scored row's output is the chosen option, and extract(option) is the option's answer text
        # (the benchmarks' convention), so every row is rescored through extract + score
        new = score_item(bench, item, "generate", {"outputs": [str(o) for o in outputs]})
        new["scoring"] = op
        new["prompt"] = row.get("prompt", item.prompt)
        new["shots"] = row.get("shots")  # as run (a rebuilt item has today's default shots)
        for key in ("choices", "logprobs", "normalized"):
            if key in row:
                new[key] = row[key]
        by_mode.setdefault(row_mode, []).append(new)
        scorings.setdefault(row_mode, {})[subtask] = op
    if not by_mode:
        raise ValueError(f"{path}: no predictions for benchmark {bench.name!r}")

    beside = path.parent / "results.json"
    previous = None
    if beside.is_file():
        try:
            from flanlab.eval.results import read_results

            previous = read_results(beside)
        except ValueError:
            previous = None
    results = {
        "schema": SCHEMA,
        "model": (previous or {}).get("model") or {"name": None, "kind": None, "parameters": None, "untrained": None},
        "settings": {**((previous or {}).get("settings") or {}), "rescored_from": str(path.resolve()),
                     "benchmark_versions": {bench.name: bench.version}},
        "benchmarks": {bench.name: {m: summarize(bench, m, rows, scorings[m]) for m, rows in by_mode.items()}},
    }
    samples = [r for rows in by_mode.values() for r in rows]
    results["normalized_average"] = normalized_average(results["benchmarks"], samples)
    results["synthetic_average"] = synthetic_average(results["benchmarks"], samples)
    results["provenance"] = provenance([bench], data_path)
    results["timings"] = {"total_s": round(time.time() - t0, 3)}
    if out_dir is not None:
        write_run(out_dir, results, samples)
    return results


# ----------------------------------------------------------------------------------------------------------
# the printed summary


def summary_text(results: dict) -> str:
    """A few lines for the terminal: one per benchmark/mode, then the averages; every score "value ± SE"."""
    model = results.get("model") or {}
    lines = []
    label = model.get("name") or "(rescored predictions)"
    if model.get("untrained"):
        label += "  [UNTRAINED: random weights, every score below is meaningless]"
    lines.append(f"model: {label}")
    lines.append("  (± one standard error; 95% intervals and methods in results.json)")
    for bench, modes in results.get("benchmarks", {}).items():
        for mode, sec in modes.items():
            timing = results.get("timings", {}).get(f"{bench}/{mode}") or {}
            speed = f"  {timing['items_per_s']:.2f} items/s" if timing.get("items_per_s") else ""
            left_out = [f"{name} n={(sec.get('subtasks') or {}).get(name, {}).get('n', '?')}"
                        for name in sec.get("excluded_from_mean") or ()]  # English in MGSM, TyDiQA (the paper's)
            lines.append(f"  {bench + '/' + mode:<22} {sec['metric']} {_pm(sec, 'score', 12)}"
                         f"  normalized {_pm(sec, 'normalized', 13)}  (n={sec['n']}, {sec['scoring']}"
                         f"{_shots_label(sec)}"
                         + (f"; not averaged: {', '.join(left_out)}" if left_out else "") + f"){speed}")
    for key, name in (("synthetic_average", "synthetic suite average"), ("normalized_average", "normalized average")):
        avg = results.get(key) or {}
        if key == "synthetic_average" and not avg:
            continue
        if avg.get("value") is not None:
            lines.append(f"{name}: {_pm(avg, 'value')}")
        else:
            lines.append(f"{name}: n/a (missing {', '.join(avg.get('missing', [])) or 'components'})")
    for s in results.get("skipped") or []:
        lines.append(f"  skipped {s} (mode not offered by the benchmark or no items)")
    return "\n".join(lines)


def _shots_label(section: dict) -> str:
    """", 5-shot", ", 4-5-shot" (subtasks differ, e.g. MMLU's published CoT prompts), or "" when not known."""
    low, high = section.get("shots"), section.get("shots_max")
    if low is None:
        return ""
    return f", {low}-shot" if high in (None, low) else f", {low}-{high}-shot"


def _pm(section: dict, name: str, width: int = 0) -> str:
    """section[name] as "28.00 ± 1.70" (its standard error from section["uncertainty"]), right-aligned to width."""
    se = ((section.get("uncertainty") or {}).get(name) or {}).get("stderr")
    text = f"{section[name]:.2f} ± " + (f"{se:.2f}" if se is not None else "n/a")
    return f"{text:>{width}}"
