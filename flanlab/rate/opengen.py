"""Open-ended generation: answer a prompt set with two or more models, for blind pairwise rating.

The prompt set is JSONL, one prompt a line:
    {"id": "planning-03", "category": "planning", "variant": "zero_shot", "prompt": "Make a four-week plan ..."}
`variant` is one of zero_shot | cot | few_shot; an optional `base` names the prompt a CoT variant was made from.
The built-in set (flanlab/rate/prompts.jsonl, written for flanlab) follows the paper's design: 20 zero-shot
prompts in each of five categories, a chain-of-thought trigger variant ("Let's think step by step." and
similar) of every contextual-reasoning, complex-reasoning, planning and explanation prompt, and few-shot inputs.
Users bring their own file with --prompts; every line is validated and errors name the file and line.

`open_gen(models, out_dir, ...)` writes
    out_dir/answers.jsonl   one answer a line (model, prompt id, category, variant, prompt, answer, ...),
                            appended and flushed per batch, so a killed run keeps what it finished;
    out_dir/settings.json   the settings used (prompt source, decoding, models and whether they are UNTRAINED),
                            written atomically.
A rerun skips every (model, prompt id) pair already answered; adding a model or a larger --limit answers only
what is missing. Rerunning with different generation settings is refused (it would mix incomparable answers).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from flanlab.fileio import atomic_write_json, atomic_write_text
from flanlab.log import get_logger
from flanlab.registry import did_you_mean

log = get_logger(__name__)

VARIANTS = ("zero_shot", "cot", "few_shot")
CATEGORIES = ("creativity", "contextual_reasoning", "complex_reasoning", "planning", "explanation")
PROMPT_KEYS = ("id", "category", "variant", "prompt", "base")
REQUIRED_KEYS = ("id", "category", "variant", "prompt")
FORMAT = "flanlab-open-gen/1"
ANSWERS_FILE = "answers.jsonl"
SETTINGS_FILE = "settings.json"


@dataclass(frozen=True)
class Prompt:
    id: str
    category: str
    variant: str  # zero_shot | cot | few_shot
    prompt: str
    base: str | None = None  # for a CoT variant: the id of the prompt it was made from


# ----------------------------------------------------------------------------------------------------------
# prompt files


def builtin_prompts_path() -> Path:
    """The prompt set shipped with flanlab (package data)."""
    return Path(str(resources.files("flanlab.rate") / "prompts.jsonl"))


def _prompt_from_row(obj, where: str) -> Prompt:
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a JSON object with keys {', '.join(REQUIRED_KEYS)}")
    for key in obj:
        if key not in PROMPT_KEYS:
            raise ValueError(f"{where}: unknown key {key!r}.{did_you_mean(key, PROMPT_KEYS)} "
                             f"Known keys: {', '.join(PROMPT_KEYS)}")
    for key in REQUIRED_KEYS:
        if key not in obj:
            raise ValueError(f"{where}: missing key {key!r} (each line needs {', '.join(REQUIRED_KEYS)})")
        if not isinstance(obj[key], str) or not obj[key].strip():
            raise ValueError(f"{where}: {key!r} must be a non-empty string, got {obj[key]!r}")
    if obj["variant"] not in VARIANTS:
        raise ValueError(f"{where}: variant {obj['variant']!r} is not one of {', '.join(VARIANTS)}."
                         f"{did_you_mean(obj['variant'], VARIANTS)}")
    base = obj.get("base")
    if base is not None and (not isinstance(base, str) or not base.strip()):
        raise ValueError(f"{where}: 'base' must be a non-empty string (the id of the original prompt) or absent")
    return Prompt(id=obj["id"].strip(), category=obj["category"].strip(), variant=obj["variant"],
                  prompt=obj["prompt"], base=base)


def load_prompts(path: str | os.PathLike | None = None) -> list[Prompt]:
    """The prompts of a JSONL file (the built-in set when `path` is None), validated line by line."""
    path = Path(path) if path is not None else builtin_prompts_path()
    if not path.is_file():
        raise FileNotFoundError(f"prompt file not found: {path}")
    prompts: list[Prompt] = []
    first_line: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
            p = _prompt_from_row(obj, where)
            if p.id in first_line:
                raise ValueError(f"{where}: duplicate id {p.id!r} (first used on line {first_line[p.id]})")
            first_line[p.id] = lineno
            prompts.append(p)
    if not prompts:
        raise ValueError(f"{path}: no prompts (expected one JSON object per line)")
    for p in prompts:
        if p.base is not None and p.base not in first_line:
            raise ValueError(f"{path}:{first_line[p.id]}: base {p.base!r} is not the id of any prompt in the file")
    return prompts


def select_prompts(prompts: list[Prompt], limit: int | None) -> list[Prompt]:
    """The first `limit` prompts taken round-robin over categories (in file order within each category), so a
    small limit still covers every category; all prompts, in file order, when limit is None."""
    if limit is None or limit >= len(prompts):
        return list(prompts)
    if limit < 1:
        raise ValueError(f"--limit must be at least 1, got {limit}")
    by_category: dict[str, list[Prompt]] = {}
    for p in prompts:
        by_category.setdefault(p.category, []).append(p)
    chosen: list[Prompt] = []
    queues = [list(v) for v in by_category.values()]
    while len(chosen) < limit:
        for q in queues:
            if q and len(chosen) < limit:
                chosen.append(q.pop(0))
    return chosen


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------------------------------------
# answers file: read (repairing a torn last line), append


def read_answers(out_dir: str | os.PathLike, repair: bool = False) -> list[dict]:
    """The answer rows of out_dir/answers.jsonl ([] when absent).

    A last line without a newline is what a killed writer leaves: it is ignored, and with repair=True cut
    from the file. Any other broken line raises ValueError naming file and line."""
    path = Path(out_dir) / ANSWERS_FILE
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    torn = lines.pop() if lines else ""  # "" when the file ends with a newline
    rows = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
        for key in ("model", "prompt_id", "category", "variant", "prompt", "answer"):
            if key not in row:
                raise ValueError(f"{path}:{lineno}: answer row lacks {key!r}")
        rows.append(row)
    if torn.strip() and repair:
        atomic_write_text(path, "".join(line + "\n" for line in lines))
    return rows


def _append_rows(path: Path, rows: list[dict]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


# ----------------------------------------------------------------------------------------------------------
# generation


def generate_batch(lm, prompts: list[str], max_new_tokens: int, use_chat_template: bool = True,
                   engine=None) -> list[dict]:
    """Greedy answers to several prompts; the batched form of flanlab.models.generate_one, on the same engine
    (flanlab.eval.engine.Engine.answer: chat template, batching, prefix cache and EOS handled there; pass
    `engine` to reuse one across batches). Returns {"answer", "new_tokens", "stopped"} per prompt, stopped being
    "eos" or "max_new_tokens"; new_tokens counts the EOS that ended an answer."""
    from flanlab.eval.engine import Engine

    engine = engine or Engine(lm, batch_size=len(prompts))
    return [{"answer": g.text.strip(), "new_tokens": g.new_tokens, "stopped": g.stopped}
            for g in engine.answer(prompts, max_new_tokens, chat_template=use_chat_template)]


# ----------------------------------------------------------------------------------------------------------
# the run


def _versions() -> dict:
    import torch
    import transformers

    from flanlab import __version__

    return {"flanlab": __version__, "torch": torch.__version__, "transformers": transformers.__version__}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def load_settings(out_dir: str | os.PathLike) -> dict | None:
    path = Path(out_dir) / SETTINGS_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None


def open_gen(
    models: list[str],
    out_dir: str | os.PathLike,
    prompts_file: str | os.PathLike | None = None,
    limit: int | None = None,
    max_new_tokens: int = 256,
    batch_size: int = 8,
    use_chat_template: bool = True,
    device: str | None = None,
    trust_remote_code: bool = False,
) -> dict:
    """Answer every selected prompt with every model (skipping pairs already in out_dir); return a summary
    {"answered": {model: n new}, "skipped": {model: n already there}, "out_dir": str}."""
    from flanlab.eval.engine import Engine
    from flanlab.models import check_local_model, load

    if len(models) < 2:
        raise ValueError(f"open-gen needs at least two models to compare, got {len(models)}: {models}")
    duplicates = sorted({m for m in models if models.count(m) > 1})
    if duplicates:
        raise ValueError(f"model given more than once: {', '.join(duplicates)}")
    if max_new_tokens < 1 or batch_size < 1:
        raise ValueError("--max-new-tokens and --batch-size must be at least 1")
    for name in models:  # a broken model folder fails now, not after the models before it have answered
        check_local_model(name)
    source = Path(prompts_file) if prompts_file is not None else builtin_prompts_path()
    prompts = select_prompts(load_prompts(source), limit)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir} is a file; give an output folder with -o")
    # The folder is created by the first write (settings.json, once a model has loaded), so that a model that
    # fails to load leaves no empty output folder behind.
    generation = {"decoding": "greedy", "max_new_tokens": max_new_tokens, "chat_template": use_chat_template}
    settings = load_settings(out_dir)
    if settings is not None:
        if settings.get("format") != FORMAT:
            raise ValueError(f"{out_dir / SETTINGS_FILE}: not an open-gen settings file (format {settings.get('format')!r})")
        if settings.get("generation") != generation:
            raise ValueError(
                f"{out_dir} holds answers made with {settings.get('generation')}, but this run asks for {generation}; "
                "use another output folder (mixing them would compare answers made under different settings)")
    else:
        settings = {"format": FORMAT, "created": _now(), "generation": generation, "prompt_sources": [], "models": {}}

    existing = read_answers(out_dir, repair=True)
    done = {(r["model"], r["prompt_id"]) for r in existing}
    stored_text = {r["prompt_id"]: r["prompt"] for r in existing}
    for p in prompts:
        if p.id in stored_text and stored_text[p.id] != p.prompt:
            raise ValueError(f"{source}: prompt {p.id!r} differs from the one already answered in "
                             f"{out_dir / ANSWERS_FILE}; give it a new id or use another output folder")

    source_entry = {"path": str(source), "builtin": prompts_file is None, "sha256": file_sha256(source),
                    "selected": len(prompts), "limit": limit}
    if source_entry not in settings["prompt_sources"]:
        settings["prompt_sources"].append(source_entry)
    settings["versions"] = _versions()
    settings["batch_size"] = batch_size

    answers_path = out_dir / ANSWERS_FILE
    summary = {"answered": {}, "skipped": {}, "out_dir": str(out_dir)}
    for name in models:
        todo = [p for p in prompts if (name, p.id) not in done]
        summary["skipped"][name] = len(prompts) - len(todo)
        summary["answered"][name] = 0
        if not todo:
            log.info("open-gen %s: all %d prompts already answered", name, len(prompts))
            continue
        lm = load(name, device=device, trust_remote_code=trust_remote_code)
        engine = Engine(lm, batch_size=batch_size)
        settings["models"][name] = {
            "untrained": lm.untrained,
            "kind": lm.kind,
            "prompt_format": "chat template" if engine.uses_template(use_chat_template) else "plain text",
            "info": lm.info,
        }
        settings["updated"] = _now()
        atomic_write_json(out_dir / SETTINGS_FILE, settings)
        if lm.untrained:  # a warning: --quiet keeps it
            log.warning("open-gen %s is UNTRAINED: random weights, answers are meaningless", name)
        log.info("open-gen %s: %d prompts to answer, %d already done", name, len(todo), summary["skipped"][name])
        # Longest prompts first: batches of similar length waste less padding.
        ordered = sorted(todo, key=lambda p: -len(p.prompt))
        t0 = time.time()
        for start in range(0, len(ordered), batch_size):
            batch = ordered[start: start + batch_size]
            results = generate_batch(lm, [p.prompt for p in batch], max_new_tokens, use_chat_template, engine)
            rows = [{
                "model": name, "prompt_id": p.id, "category": p.category, "variant": p.variant,
                "prompt": p.prompt, "answer": r["answer"], "untrained": lm.untrained,
                "new_tokens": r["new_tokens"], "stopped": r["stopped"],
            } for p, r in zip(batch, results)]
            _append_rows(answers_path, rows)
            summary["answered"][name] += len(rows)
            log.info("open-gen %s: %d/%d answered (%.0fs)", name, summary["answered"][name], len(todo),
                     time.time() - t0)
        del lm
    settings["updated"] = _now()
    atomic_write_json(out_dir / SETTINGS_FILE, settings)
    return summary
