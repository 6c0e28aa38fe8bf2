"""Every config field's valid range is declared next to the field (flanlab.config: Range, NonEmpty, Literal sets)
and refused outside it with a message naming the field and the range: YAML, key=value overrides, configs built in
code and the command-line flags of `flanlab eval` all go through the same declarations (issue 11, item 3)."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path

import pytest

from flanlab.cli import build_parser, main
from flanlab.config import CONSTRAINTS, ConfigError, NonEmpty, Range, from_dict, load_config
from flanlab.eval.config import EvalConfig
from flanlab.data.mixture import MixtureConfig, load_mixture_config
from flanlab.demo import DemoConfig
from flanlab.scale import ScaleConfig, load_scale_config
from flanlab.train.config import LoraSettings, TrainConfig, load_train_config

PACKAGE = Path(__file__).resolve().parent.parent / "flanlab"

# The configs that are loaded (from_dict / load_config) or parsed from flags; the dataclasses nested in them are
# found from their field types. test_every_loaded_config_is_a_root keeps this list complete.
ROOTS = [TrainConfig, MixtureConfig, ScaleConfig, DemoConfig, EvalConfig]

# A valid value for every required field (by name) of any config dataclass.
REQUIRED = {"model": "m", "data": "d", "output_dir": "o", "models": ["m"], "mixtures": ["x.yaml"], "name": "n",
            "path": "p.jsonl", "submix": "t0"}


def _is_union(tp) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _children(tp) -> tuple:
    if typing.get_origin(tp) is typing.Annotated:
        return (typing.get_args(tp)[0],)
    if typing.get_origin(tp) is typing.Literal:
        return ()
    return typing.get_args(tp)


def _hints(cls) -> dict:
    return typing.get_type_hints(cls, include_extras=True)


def config_classes() -> list[type]:
    seen, todo = [], list(ROOTS)
    while todo:
        cls = todo.pop(0)
        if cls in seen:
            continue
        seen.append(cls)
        stack = list(_hints(cls).values())
        while stack:
            tp = stack.pop()
            if dataclasses.is_dataclass(tp):
                todo.append(tp)
            else:
                stack.extend(a for a in _children(tp) if a is not Ellipsis)
    return seen


def init_fields(cls) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.init]


def minimal(cls) -> dict:
    """The required fields of `cls` with valid values."""
    return {f.name: REQUIRED[f.name] for f in init_fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}


def positions(tp, wrap=lambda bad: bad):
    """(wrap, rule, base) for every declared constraint inside a field type: wrap(bad) puts a bad value at the
    constrained position (a list item, a dict value, every item of a fixed-length tuple); rule is a Range,
    NonEmpty or the Literal type itself; base is the type the bad value must have."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        for rule in args[1:]:
            if isinstance(rule, CONSTRAINTS):
                yield wrap, rule, typing.get_origin(args[0]) or args[0]
        yield from positions(args[0], wrap)
    elif origin is typing.Literal:
        yield wrap, tp, str
    elif _is_union(tp):
        for arg in args:
            yield from positions(arg, wrap)
    elif origin is list:
        yield from positions(args[0], lambda bad: wrap([bad]))
    elif origin is tuple and args and args[-1] is not Ellipsis:
        for arg in set(args):
            yield from positions(arg, lambda bad, n=len(args): wrap([bad] * n))
    elif origin is dict:
        key = "k"
        if typing.get_origin(args[0]) is typing.Literal:  # a key from a set; keys are checked before values
            yield from positions(args[0], lambda bad: wrap({bad: None}))
            key = typing.get_args(args[0])[0]
        yield from positions(args[1], lambda bad, key=key: wrap({key: bad}))


def violations(rule, base) -> list:
    if typing.get_origin(rule) is typing.Literal:
        return ["no-such-value"]
    return rule.violations(base)


def rule_words(rule) -> str:
    """What the error message must say about the valid range."""
    if typing.get_origin(rule) is typing.Literal:
        return "must be one of " + ", ".join(map(repr, typing.get_args(rule)))
    return "must be " + rule.text()


CASES = [
    (cls, f.name, wrap, rule, base, bad)
    for cls in config_classes() for f in init_fields(cls)
    for wrap, rule, base in positions(_hints(cls)[f.name])
    for bad in violations(rule, base)
]


def test_the_walk_finds_every_config():
    names = {cls.__name__ for cls in config_classes()}
    assert {"TrainConfig", "LoraSettings", "MixtureConfig", "SubmixtureConfig", "FileSpec", "FlanCollectionSpec",
            "ScaleConfig", "TrainPart", "EvalPart", "DemoConfig", "EvalConfig"} <= names
    assert len(CASES) > 100


def test_every_loaded_config_is_a_root():
    """A config class loaded anywhere in the package is one of ROOTS (or nested in one), so the walk covers it."""
    known = {cls.__name__ for cls in config_classes()}
    loaded = set()
    for path in PACKAGE.rglob("*.py"):
        if path != PACKAGE / "config.py":  # the loader itself
            text = path.read_text(encoding="utf-8")
            loaded |= set(re.findall(r"\b(?:from_dict|load_config|arg_type)\(([A-Z]\w*)", text))
    assert loaded and loaded <= known, f"not walked by this test: {loaded - known}; add them to ROOTS"


@pytest.mark.parametrize("cls, name, wrap, rule, base, bad", CASES,
                         ids=[f"{c[0].__name__}.{c[1]}={c[5]!r}" for c in CASES])
def test_out_of_range_value_is_refused(cls, name, wrap, rule, base, bad):
    data = minimal(cls) | {name: wrap(bad)}
    with pytest.raises(ConfigError) as e:
        from_dict(cls, data, "x.yaml")
    message = str(e.value)
    assert message.startswith(f"x.yaml: {name}"), message
    assert rule_words(rule) in message, message


@pytest.mark.parametrize("cls", config_classes(), ids=lambda c: c.__name__)
def test_defaults_are_valid(cls):
    """Each default lies in its own declared range (the loader round-trips it unchanged)."""
    built = from_dict(cls, minimal(cls))
    again = from_dict(cls, {f.name: dataclasses.asdict(built)[f.name] for f in init_fields(cls)})
    assert again == built


def _unconstrained_numbers(tp, where: str, constrained=False):
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        has_range = any(isinstance(m, Range) for m in args[1:])
        yield from _unconstrained_numbers(args[0], where, constrained or has_range)
    elif tp in (int, float):
        if not constrained:
            yield where
    else:
        for arg in _children(tp):
            if arg is not Ellipsis and not dataclasses.is_dataclass(arg):
                yield from _unconstrained_numbers(arg, where)


def test_every_number_has_a_declared_range():
    """A new numeric field (or a number inside a list, tuple or dict) cannot forget its range."""
    missing = [where for cls in config_classes() for name, tp in _hints(cls).items()
               if name in {f.name for f in init_fields(cls)}
               for where in _unconstrained_numbers(tp, f"{cls.__name__}.{name}")]
    assert not missing, f"numeric fields without a declared Range: {missing}"


def test_range_texts():
    assert Range(ge=1).text() == ">= 1"
    assert Range(gt=0).text() == "> 0"
    assert Range(ge=0, lt=1).text() == "in [0, 1)"
    assert Range(ge=0, le=1).text() == "in [0, 1]"
    assert Range(ge=0, note="0 = no clipping").text() == ">= 0 (0 = no clipping)"
    assert NonEmpty().text() == "non-empty"


# --- the cases, end to end ----------------------------------------------------------------------------


TRAIN_BASE = "model: tiny-llama\ndata: d\noutput_dir: o\n"


@pytest.mark.parametrize("line, message", [
    ("clip_grad: -1", "x.yaml: clip_grad: must be >= 0 (0 = no clipping), got -1"),
    ("weight_decay: -1", "x.yaml: weight_decay: must be >= 0, got -1"),
    ("min_lr_ratio: 5", "x.yaml: min_lr_ratio: must be in [0, 1], got 5"),
    ("device: tpu", "x.yaml: device: must be one of 'cpu', 'cuda' or null, got 'tpu'. Did you mean 'cpu'?"),
    ("threads: 0", "x.yaml: threads: must be >= 1 or null, got 0"),
    ("adam_betas: [0.9]", "x.yaml: adam_betas: expected a list of exactly 2 values (float, float), got [0.9]"),
    ("adam_betas: [0.9, 1.5]", "x.yaml: adam_betas[1]: must be in [0, 1), got 1.5"),
    ("lr: .nan", "x.yaml: lr: must be > 0, got nan"),
    ("lora: {r: 0}", "x.yaml: lora.r: must be >= 1, got 0"),
])
def test_train_yaml_values_refused(tmp_path, line, message):
    path = tmp_path / "x.yaml"
    path.write_text(TRAIN_BASE + line + "\n")
    with pytest.raises(ConfigError) as e:
        load_train_config(path)
    assert str(e.value).replace(str(tmp_path) + "/", "").startswith(message), str(e.value)


def test_train_override_and_api_refused():
    with pytest.raises(ConfigError, match=r"^train config: output_dir: must be non-empty, got ''$"):
        load_train_config(None, ["output_dir="], model="m", data="d")
    with pytest.raises(ConfigError, match=r"clip_grad: must be >= 0"):
        TrainConfig(model="m", data="d", output_dir="o", clip_grad=-1).check()  # built in code: check() refuses
    with pytest.raises(ConfigError, match=r"^api: lora.r: must be >= 1, got 0$"):
        TrainConfig(model="m", data="d", output_dir="o", lora=LoraSettings(r=0)).check("api")
    with pytest.raises(ConfigError, match=r"^train config: lora.r: must be >= 1, got 0$"):  # a section built in code
        load_train_config(None, model="m", data="d", output_dir="o", lora=LoraSettings(r=0))
    TrainConfig(model="m", data="d", output_dir="o").check()


MIXTURE_BASE = "submixtures:\n  - name: s\n    sources: [synthetic]\n"


@pytest.mark.parametrize("text, message", [
    ("size: -10\n", "size: must be >= 1 or null, got -10"),
    ("size: 0\n", "size: must be >= 1 or null, got 0"),
    ("fewshot: -2\n", "fewshot: must be >= 1, got -2"),
    ("max_input_tokens: 0\n", "max_input_tokens: must be >= 1, got 0"),
    ("shard_size: 0\n", "shard_size: must be >= 1, got 0"),
    ("output: [jsonl, csv]\n", "output[1]: must be one of 'jsonl', 'parquet', got 'csv'"),
    ("formats: {zs_opt: -1}\n", "formats.zs_opt: must be >= 0, got -1"),
    ("validation_fraction: 1\n", "validation_fraction: must be in (0, 1), got 1"),
])
def test_mixture_yaml_values_refused(tmp_path, text, message):
    path = tmp_path / "m.yaml"
    path.write_text(MIXTURE_BASE + text)
    with pytest.raises(ConfigError, match=re.escape(f"{path}: {message}")):
        load_mixture_config(path)


@pytest.mark.parametrize("sub, message", [
    ("cap: 0", "submixtures[0].cap: must be >= 1 or null, got 0"),
    ("cap: -5", "submixtures[0].cap: must be >= 1 or null, got -5"),
    ("rate: -1", "submixtures[0].rate: must be >= 0, got -1"),
    ("synthetic_size: 0", "submixtures[0].synthetic_size: must be >= 1, got 0"),
])
def test_submixture_values_refused(tmp_path, sub, message):
    path = tmp_path / "m.yaml"
    path.write_text(MIXTURE_BASE + f"    {sub}\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: {message}")):
        load_mixture_config(path)


def test_every_rate_zero_refused(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(MIXTURE_BASE + "    rate: 0\n")
    with pytest.raises(ConfigError, match="every rate is 0"):
        load_mixture_config(path)


def test_scale_values_refused(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("models: [tiny-llama]\nmixtures: [x.yaml]\neval: {limit: 0, batch_size: 8}\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: eval.limit: must be >= 1 or null, got 0")):
        load_scale_config(path)
    path.write_text("models: [tiny-llama]\nmixtures: [x.yaml]\neval: {scoring: ranked}\n")
    with pytest.raises(ConfigError, match="eval.scoring: must be one of 'auto', 'rank', 'generate'"):
        load_scale_config(path)
    path.write_text("models: [tiny-llama]\nmixtures: [x.yaml]\neval: {mode_limits: {cott: 3}}\n")
    with pytest.raises(ConfigError, match=r"eval.mode_limits \(key\): must be one of 'direct', 'cot', got 'cott'"):
        load_scale_config(path)
    path.write_text("models: [tiny-llama]\nmixtures: [x.yaml]\neval: {suite: null}\n")
    with pytest.raises(ConfigError, match="eval: give a suite or benchmarks"):
        load_scale_config(path)


def test_demo_override_refused():
    from flanlab.demo import load_demo_config

    with pytest.raises(ConfigError, match=re.escape("demo config: real.batch_size: must be >= 1, got 0")):
        load_demo_config(None, ["real.batch_size=0"])


def test_unconstrained_loader_unchanged():
    """load_config still builds a plain dataclass with no declarations (tests/test_config.py's kind)."""

    @dataclasses.dataclass
    class Plain:
        n: int = 1

    assert load_config(Plain, data={"n": -5}).n == -5


# --- `flanlab eval` flags ----------------------------------------------------------------------------------------


# a model that does not exist: were a flag let through, the command would stop at once instead of evaluating
EVAL = ["eval", "--model", "/nonexistent/model", "--suite", "synthetic", "-o", "/nonexistent/out"]


@pytest.mark.parametrize("flag, value, words", [
    ("--batch-size", "0", "must be >= 1, got 0"),
    ("--temperature", "-1", "must be >= 0 (0 = greedy), got -1"),
    ("--limit", "-1", "must be >= 1, got -1"),
    ("--limit", "0", "must be >= 1, got 0"),
    ("--shots", "-3", "must be >= 0, got -3"),
    ("--self-consistency", "0", "must be >= 1, got 0"),
    ("--seed", "-1", "must be >= 0, got -1"),
    ("--limit", "abc", "expected an integer, got 'abc'"),
])
def test_eval_flags_refused(capsys, flag, value, words):
    with pytest.raises(SystemExit) as e:
        main(EVAL + [flag, value])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: {words}" in err, err


def test_eval_flags_parse_and_defaults():
    args = build_parser(only="eval").parse_args(
        EVAL + ["--limit", "3", "--shots", "0", "--temperature", "0", "--batch-size", "2", "--self-consistency", "5"])
    assert (args.limit, args.shots, args.temperature, args.batch_size, args.self_consistency) == (3, 0, 0.0, 2, 5)
    defaults = build_parser(only="eval").parse_args(EVAL)
    assert (defaults.limit, defaults.shots, defaults.temperature, defaults.batch_size, defaults.self_consistency,
            defaults.seed) == (None, None, None, 8, 1, 0)  # temperature: not given (0.7 when K > 1)


def test_eval_help_shows_ranges(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "valid: >= 1" in out and "valid: >= 0 (0 = greedy)" in out


@pytest.mark.parametrize("command, cls, line", [
    ("train", TrainConfig, "clip_grad: float >= 0 (0 = no clipping) (default 1.0)"),
    ("mix", MixtureConfig, "submixtures[].cap: int >= 1 | null (default null)"),
    ("scale", ScaleConfig, "eval.limit: int >= 1 | null (default 20)"),
    ("demo", DemoConfig, "real.limit: int >= 1 | null (default 1)"),  # the demo's own default, not EvalPart's
])
def test_config_help_lists_every_key_with_its_range(capsys, command, cls, line):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    listed = out.split("config keys (in the YAML, or as key=value overrides), valid values and defaults:\n")[1]
    assert f"  {line}\n" in listed
    top_keys = {text.split(":")[0].strip().split(".")[0].split("[")[0] for text in listed.splitlines()}
    assert {f.name for f in init_fields(cls)} <= top_keys


@pytest.mark.parametrize("kwargs, field", [
    ({"limit": -1}, "limit"), ({"shots": -3}, "shots"), ({"batch_size": 0}, "batch_size"),
    ({"temperature": -1.0}, "temperature"), ({"self_consistency": 0}, "self_consistency"),
])
def test_the_python_api_checks_the_same_ranges(tmp_path, kwargs, field):
    """evaluate() called from Python refuses what the command line refuses, before any model is loaded."""
    from flanlab.eval.runner import evaluate

    with pytest.raises(ConfigError, match=rf"evaluate\(\): {field}: must be"):
        evaluate("no-such-model-dir", suite="synthetic", out_dir=tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()
