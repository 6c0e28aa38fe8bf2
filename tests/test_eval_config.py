"""One eval config (issue 14): `EvalConfig` is what `flanlab eval`, `evaluate()`, `flanlab scale`, the demo and
training's eval_suite evaluate; results.json's settings are written from it (with the keys they always had), and
the scale/demo "finished with other settings" checks see every one of its fields."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from flanlab.cli import build_parser
from flanlab.config import ConfigError, to_dict
from flanlab.eval import runner
from flanlab.eval.config import EvalConfig
from flanlab.scale import EvalPart, _cell_settings, eval_finished, load_scale_config

REPO = Path(__file__).resolve().parents[1]
FIELDS = [f.name for f in dataclasses.fields(EvalConfig)]

# results.json "settings" keys written before issue 14 (old runs load; reports read them by these names)
SETTINGS_KEYS = {"benchmarks", "suite", "modes", "limit", "scoring", "zero_shot_cot", "shots", "self_consistency",
                 "self_consistency_modes", "temperature", "batch_size", "seed", "prefix_cache", "processes",
                 "apply_chat_template", "fewshot_as_multiturn", "system_instruction", "rank_argmax",
                 "benchmark_versions", "uncertainty", "engine",  # engine: the engine's levers (runner.engine_settings)
                 "context_length"}  # the model's context: longer inputs lose their first tokens (tests/test_context_length.py)


# --- the command line -----------------------------------------------------------------------------------------


def _cli_config(monkeypatch, argv: list[str]) -> tuple[EvalConfig, dict]:
    """The EvalConfig (and the other arguments) `flanlab eval ARGV` hands evaluate()."""
    from flanlab.commands import eval as eval_command

    seen = {}
    monkeypatch.setattr(runner, "evaluate", lambda model, config, **kw: seen.update(config=config, kw=kw) or {})
    monkeypatch.setattr(runner, "summary_text", lambda results: "")
    eval_command.run(build_parser("eval").parse_args(["eval", "--model", "m", "-o", "out"] + argv))
    return seen["config"], seen["kw"]


def test_every_field_is_a_flag_with_the_configs_default(monkeypatch):
    config, kw = _cli_config(monkeypatch, ["--suite", "synthetic"])
    assert config == EvalConfig(suite="synthetic")
    assert kw == {"out_dir": "out", "data_dir": None, "cache_dir": None, "progress": True}


def test_flags_reach_evaluate_as_one_config(monkeypatch):
    config, kw = _cli_config(monkeypatch, [
        "--benchmark", "bbh", "--benchmark", "mmlu", "--modes", "cot", "--limit", "3", "--scoring", "generate",
        "--shots", "0", "--zero-shot-cot", "--self-consistency", "5", "--temperature", "0.5", "--batch-size", "2",
        "--seed", "7", "--no-prefix-cache", "--apply-chat-template", "--system-instruction", "Be brief.",
        "--no-cache", "--no-progress"])
    assert config == EvalConfig(benchmarks=["bbh", "mmlu"], modes=["cot"], limit=3, scoring="generate", shots=0,
                                zero_shot_cot=True, self_consistency=5, temperature=0.5, batch_size=2, seed=7,
                                prefix_cache=False, apply_chat_template=True, system_instruction="Be brief.")
    assert kw["cache_dir"] is False and kw["progress"] is False


@pytest.mark.parametrize("argv, words", [
    (["--modes", "direct,cott"], "argument --modes: must be one of 'direct', 'cot'"),
    (["--scoring", "ranked"], "argument --scoring: must be one of 'auto', 'rank', 'generate'"),
    (["--system-instruction", " "], "argument --system-instruction: must be non-empty"),
])
def test_flags_refused_by_the_configs_declarations(capsys, argv, words):
    with pytest.raises(SystemExit) as e:
        build_parser("eval").parse_args(["eval", "--model", "m", "--suite", "synthetic", "-o", "o"] + argv)
    assert e.value.code == 2
    assert words in capsys.readouterr().err


def test_modes_flag_parses_a_comma_list(monkeypatch):
    config, _ = _cli_config(monkeypatch, ["--suite", "synthetic", "--modes", "direct, cot"])
    assert config.modes == ["direct", "cot"]


# --- the Python API -------------------------------------------------------------------------------------------


def test_config_or_keywords_not_both(tmp_path):
    with pytest.raises(TypeError, match="not both"):
        runner.evaluate("no-such-model", EvalConfig(suite="synthetic"), out_dir=tmp_path / "o", limit=3)
    with pytest.raises(ConfigError, match=r"evaluate\(\): unknown key 'limt'. Did you mean 'limit'"):
        runner.evaluate("no-such-model", suite="synthetic", limt=3, out_dir=tmp_path / "o")
    with pytest.raises(ConfigError, match=r"evaluate\(\): modes\[0\]: must be one of 'direct', 'cot'"):
        runner.evaluate("no-such-model", suite="synthetic", modes="zs_cot", out_dir=tmp_path / "o")
    with pytest.raises(ConfigError, match=r"evaluate\(\): batch_size: must be >= 1, got 0"):  # built in code
        runner.evaluate("no-such-model", EvalConfig(suite="synthetic", batch_size=0), out_dir=tmp_path / "o")
    with pytest.raises(ValueError, match="need --apply-chat-template"):
        runner.evaluate("no-such-model", EvalConfig(suite="synthetic", system_instruction="x"), out_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_settings_are_written_from_the_config(tmp_path, tiny_llama):
    """evaluate(m, EvalConfig(...)) and evaluate(m, **the same fields) give the same results; results.json's
    settings hold every EvalConfig field under its own name, and exactly the keys they had before."""
    config = EvalConfig(suite="synthetic", modes=["direct"], limit=1, scoring="generate", shots=0, seed=3,
                        batch_size=4)
    by_config = runner.evaluate(tiny_llama, config, out_dir=tmp_path / "a", progress=False, cache_dir=False)
    fields = {k: v for k, v in to_dict(config).items() if k != "suite"}
    by_keywords = runner.evaluate(tiny_llama, suite="synthetic", **fields, out_dir=tmp_path / "b", progress=False,
                                  cache_dir=False)
    settings = json.loads((tmp_path / "a" / "results.json").read_text())["settings"]
    assert set(settings) == SETTINGS_KEYS and set(FIELDS) <= set(settings)
    assert {k: settings[k] for k in FIELDS if k not in ("benchmarks", "temperature")} == \
        {k: v for k, v in to_dict(config).items() if k not in ("benchmarks", "temperature")}
    assert settings["temperature"] is None  # nothing sampled
    assert by_keywords["settings"] == by_config["settings"]
    assert by_keywords["benchmarks"] == by_config["benchmarks"]


def test_training_evaluates_through_an_eval_config():
    from flanlab.train.config import TrainConfig

    config = TrainConfig(model="m", data="d", output_dir="o", eval_suite="synthetic", eval_limit=3,
                         eval_modes=["direct", "cot"])
    assert config.eval_config() == EvalConfig(suite="synthetic", limit=3, modes=["direct", "cot"])
    assert TrainConfig(model="m", data="d", output_dir="o").eval_config() is None


# --- scale and the demo -----------------------------------------------------------------------------------------


def test_an_eval_part_is_an_eval_config():
    part = EvalPart(benchmarks=["bbh"], modes=["direct", "cot"], limit=6, mode_limits={"cot": 1},
                    zero_shot_cot=True, self_consistency=3)
    assert isinstance(part, EvalConfig)
    assert part.for_mode("cot") == EvalConfig(benchmarks=["bbh"], modes=["cot"], limit=1, zero_shot_cot=True,
                                              self_consistency=3)
    # self-consistency samples the cot mode only: the direct mode's config runs (and records) greedy decoding
    assert part.for_mode("direct") == EvalConfig(benchmarks=["bbh"], modes=["direct"], limit=6)
    part.for_mode("direct").check()
    assert EvalPart().suite == "synthetic" and EvalPart().limit == 20  # a grid's defaults


def test_evaluate_refuses_a_part_whose_mode_limits_it_would_ignore(tmp_path):
    with pytest.raises(TypeError, match=r"not EvalPart \(evaluate each mode's part.for_mode"):
        runner.evaluate("no-such-model", EvalPart(mode_limits={"cot": 1}), out_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "scale").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_scale_configs_still_load(path):
    assert load_scale_config(path).eval


def test_scale_yaml_takes_every_eval_option(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("models: [tiny-llama]\nmixtures: [x.yaml]\n"
                    "eval: {suite: synthetic, self_consistency: 3, temperature: 0.5, seed: 2}\n")
    assert load_scale_config(path).eval.for_mode("cot").self_consistency == 3
    path.write_text("models: [tiny-llama]\nmixtures: [x.yaml]\neval:\n  - {suite: synthetic}\n"
                    "  - {benchmarks: [bbh], fewshot_as_multiturn: true}\n")
    with pytest.raises(ConfigError, match=r"eval\[1\]: --fewshot-as-multiturn and --system-instruction need"):
        load_scale_config(path)


# the eval part of a cell as run_info.json recorded it before issue 14 (the laptop study's format)
OLD_PART = {"suite": "synthetic", "benchmarks": ["bbh"], "modes": ["direct", "cot"], "limit": 6,
            "mode_limits": {"cot": 1}, "scoring": "auto", "batch_size": 8, "shots": None, "zero_shot_cot": False}


def _finished(folder: Path, settings) -> Path:
    folder.mkdir(parents=True)
    (folder / "results.json").write_text("{}")
    (folder / "run_info.json").write_text(json.dumps({"settings": settings}))
    return folder


def test_cells_finished_before_the_new_fields_are_still_recognised(tmp_path):
    """A cell recorded without the options EvalPart gained (self_consistency, seed, chat, ...) ran at their
    defaults: it is skipped for the same config, and refused when the config now sets one of them otherwise."""
    config = load_scale_config_text(tmp_path, "eval:\n  - " + json.dumps(OLD_PART) + "\n")
    settings = _cell_settings(config, None)
    eval_dir = _finished(tmp_path / "cell" / "eval", {"eval": [OLD_PART]})
    assert eval_finished(eval_dir, settings)
    changed = load_scale_config_text(tmp_path, "eval:\n  - " + json.dumps({**OLD_PART, "self_consistency": 5}) + "\n")
    with pytest.raises(ValueError, match="finished with other settings"):
        eval_finished(eval_dir, _cell_settings(changed, None))
    unrecorded = _finished(tmp_path / "other" / "eval", None)
    with pytest.raises(ValueError, match="older flanlab that did not record its settings"):
        eval_finished(unrecorded, settings)


def test_templated_cells_recorded_before_the_chat_format_version_are_refused(tmp_path):
    """A templated cell finished before today's change of templated prompts (rank choices scored as "A", not " A";
    a zero-shot multiturn description in the system turn) recorded no chat_format: it is read as format 1 and
    refused, not paired with cells evaluated on today's prompts. A plain cell records no chat_format, as before,
    and an old plain cell is still reused."""
    from flanlab.eval.config import CHAT_FORMAT

    templated = {**OLD_PART, "apply_chat_template": True}
    config = load_scale_config_text(tmp_path, "eval:\n  - " + json.dumps(templated) + "\n")
    settings = _cell_settings(config, None)
    assert settings["eval"][0]["chat_format"] == CHAT_FORMAT == 2
    old = _finished(tmp_path / "old" / "eval", {"eval": [templated]})
    with pytest.raises(ValueError, match=r"finished with other settings.*eval\[0\]\.chat_format \(1 -> 2\)"):
        eval_finished(old, settings)
    assert eval_finished(_finished(tmp_path / "new" / "eval", settings), settings)  # recorded today: reused

    plain = _cell_settings(load_scale_config_text(tmp_path, "eval:\n  - " + json.dumps(OLD_PART) + "\n"), None)
    assert "chat_format" not in plain["eval"][0]
    assert eval_finished(_finished(tmp_path / "plain" / "eval", {"eval": [OLD_PART]}), plain)
    assert "chat_format" not in EvalConfig().settings()  # results.json: the plain keys as before
    assert EvalConfig(apply_chat_template=True).settings()["chat_format"] == 2


def test_a_demo_stage_with_templated_prompts_of_the_old_format_is_refused(tmp_path):
    from flanlab.demo import _eval_settings, load_demo_config

    now = _eval_settings(load_demo_config(None, ["synthetic.apply_chat_template=true"]), None)
    before_today = {"eval": [{k: v for k, v in part.items() if k != "chat_format"} for part in now["eval"]]}
    with pytest.raises(ValueError, match=r"eval\[0\]\.chat_format \(1 -> 2\)"):
        eval_finished(_finished(tmp_path / "before", before_today), now)
    assert eval_finished(_finished(tmp_path / "again", now), now)
    plain = _eval_settings(load_demo_config(None, []), None)
    assert "chat_format" not in plain["eval"][0]


def load_scale_config_text(tmp_path: Path, eval_yaml: str):
    path = tmp_path / "grid.yaml"
    path.write_text("models: [tiny-llama]\nmixtures: [x.yaml]\n" + eval_yaml)
    return load_scale_config(path)


def test_demo_stage_finished_with_other_eval_settings_is_refused(tmp_path):
    """The demo skips a finished before/after evaluation only for the eval settings it ran with (it used to skip
    any results.json, reporting old numbers under a changed synthetic.limit)."""
    from flanlab.demo import _eval_settings, load_demo_config

    ran = _eval_settings(load_demo_config(None, ["synthetic.limit=1"]), None)
    before = _finished(tmp_path / "before", ran)
    assert eval_finished(before, _eval_settings(load_demo_config(None, ["synthetic.limit=1"]), None))
    for override in ("synthetic.limit=2", "synthetic.seed=1", "synthetic.apply_chat_template=true"):
        with pytest.raises(ValueError, match="finished with other settings"):
            eval_finished(before, _eval_settings(load_demo_config(None, ["synthetic.limit=1", override]), None))
    # with a data dir the real benchmarks are part of the stage too
    assert _eval_settings(load_demo_config(None, []), "/data") != _eval_settings(load_demo_config(None, []), None)


# --- the resume cache sees every option that changes outputs ------------------------------------------------------


def _items(data_dir, subtask: str, mode: str, options):
    from flanlab.eval.spec import EvalItem

    if options.zero_shot_cot and mode == "cot":
        mode = "zs_cot"
    shots = 0 if mode == "zs_cot" else options.shots_or(1)
    prefix = "Add the numbers.\n\nQ: 1 + 1?\nA: 2\n\n" if shots else ""
    tail = "" if mode == "direct" else " Let's think step by step."
    return [EvalItem("adds", subtask, mode, str(i), prefix, f"Q: {i} + 2?\nA:{tail}", str(i + 2), shots=shots,
                     choices=tuple(f" {i + 2 + d}" for d in (0, 1)) if mode == "direct" else ())
            for i in range(2)][: options.limit]


def _benchmark():
    from flanlab.eval.metrics import exact_match
    from flanlab.eval.spec import Benchmark

    return Benchmark(
        name="adds", version="1", description="test sums", modes=("direct", "cot"), metric="accuracy",
        scorings=("generate", "rank"), subtasks=lambda data_dir: ["small"], items=_items,
        extract=lambda output, item: output.strip().split("\n")[0].strip(),
        score=lambda extracted, item: {"accuracy": exact_match(extracted, item.target)},
        max_new_tokens={"direct": 4, "cot": 6, "zs_cot": 6}, stop=("\n",))


# field -> (the options of a first run, the options of a second run changing that field only): the second run's
# items must miss the resume cache the first one filled (their outputs may differ)
KEYED = {
    "scoring": ({"modes": ["direct"]}, {"scoring": "generate"}),
    "shots": ({"modes": ["direct"]}, {"shots": 0}),
    "zero_shot_cot": ({"modes": ["cot"]}, {"zero_shot_cot": True}),
    "self_consistency": ({"modes": ["cot"]}, {"self_consistency": 2}),
    "temperature": ({"modes": ["cot"], "self_consistency": 2}, {"temperature": 0.3}),
    "seed": ({"modes": ["cot"], "self_consistency": 2}, {"seed": 1}),
    "apply_chat_template": ({"modes": ["direct"]}, {"apply_chat_template": True}),
    "system_instruction": ({"modes": ["direct"], "apply_chat_template": True}, {"system_instruction": "Be brief."}),
    "fewshot_as_multiturn": ({"modes": ["direct"], "apply_chat_template": True, "shots": 0},
                             {"fewshot_as_multiturn": True}),
}
# which items are evaluated (each item keeps its key)
NOT_KEYED = {"suite": None, "benchmarks": None, "modes": None, "limit": None}
# outputs meant to be identical (not keyed), but fp32 rounding may differ: the cache records them (engine.json) and
# a run with another value is refused instead of served (flanlab.eval.results.ResultCache.check_engine)
ENGINE = {"batch_size": ({"modes": ["direct"]}, {"batch_size": 1}),
          "prefix_cache": ({"modes": ["cot"]}, {"prefix_cache": False})}


def test_every_option_is_classified_for_the_cache():
    assert set(KEYED) | set(NOT_KEYED) | set(ENGINE) == set(FIELDS)
    assert not set(KEYED) & set(NOT_KEYED) and not (set(KEYED) | set(NOT_KEYED)) & set(ENGINE)


@pytest.fixture(scope="module")
def chat_lm(lively_tiny_llama):
    lm = lively_tiny_llama
    lm.tokenizer.chat_template = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
                                  "{% if add_generation_prompt %}<assistant>{% endif %}")
    return lm


def _computed(results: dict) -> int:
    """Forward calls the run made (0: every item served from the resume cache)."""
    return sum(t["forward_calls"] for name, t in results["timings"].items() if name != "total_s")


@pytest.mark.parametrize("name", [n for n in FIELDS if (KEYED | NOT_KEYED | ENGINE)[n]])
def test_a_changed_option_misses_the_cache_exactly_when_it_changes_outputs(tmp_path, chat_lm, name):
    first, change = (KEYED | NOT_KEYED | ENGINE)[name]
    cache = tmp_path / "cache"

    def run(options, out):
        return runner.evaluate(chat_lm, benchmarks=[_benchmark()], **options, out_dir=tmp_path / out,
                               cache_dir=cache, progress=False)

    assert _computed(run(first, "a")) > 0
    assert _computed(run(first, "again")) == 0  # the cache serves an unchanged run whole
    if name in ENGINE:
        with pytest.raises(ValueError, match=f"other engine settings: .*{name} "):
            run({**first, **change}, "b")
        return
    changed = _computed(run({**first, **change}, "b"))
    assert (changed > 0) == (name in KEYED), f"{name}: {changed} forward calls"


def test_self_consistency_with_temperature_zero_is_refused():
    """K greedy samples are K copies of one output: a vote over them is the greedy score labelled as
    self-consistency. Refused before any model is loaded, naming the two settings."""
    EvalConfig(suite="synthetic", self_consistency=5, temperature=0.7).check()
    EvalConfig(suite="synthetic", self_consistency=1, temperature=0).check()
    with pytest.raises(ValueError, match=r"flanlab eval: self_consistency 5 with temperature 0 .*identical greedy"):
        EvalConfig(suite="synthetic", self_consistency=5, temperature=0).check("flanlab eval")
