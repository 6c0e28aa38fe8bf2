"""Typed configs: YAML files load into dataclasses; `key=value` overrides; did-you-mean on unknown keys.

Every config kind (mixture, train, scale, ...) is a dataclass. `load_config(Cls, path, overrides)` reads the
YAML, applies overrides such as `optim.lr=1e-4` or `steps=20`, and builds the dataclass recursively
(nested dataclasses, lists of dataclasses, Optional fields). An unknown key fails naming the file, the key
path and the closest known key; a value of the wrong type fails naming the key and the expected type.

Valid ranges are declared in the field's type, next to the field, and checked by the same loader:

    steps: Annotated[int, Range(ge=1)] = 100
    clip_grad: Annotated[float, Range(ge=0, note="0 = no clipping")] = 1.0
    output_dir: Annotated[str, NonEmpty()]
    adam_betas: tuple[Beta, Beta] = (0.9, 0.999)      # element types carry their own range

A value outside its range fails as `configs/train/x.yaml: clip_grad: must be >= 0 (0 = no clipping), got -1`.
Sets of valid strings are `Literal[...]` types. `rule_text(cls, name)` gives a field's rule for help texts, and
`arg_type(cls, name)` turns a field into an argparse `type=` callable, so command-line flags are checked by the
same declarations.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import types
import typing
from pathlib import Path

import yaml

from flanlab.registry import did_you_mean


class ConfigError(ValueError):
    pass


class RangeError(ConfigError):
    """A value of the right type outside its field's declared range or set."""

    def __init__(self, where: str, rule: str, value, hint: str = ""):
        self.where, self.rule, self.value, self.hint = where, rule, value, hint
        super().__init__(f"{where}: must be {rule}, got {value!r}{hint}")


# --- declared constraints: metadata of an Annotated type ------------------------------------------------------


def _num(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


@dataclasses.dataclass(frozen=True)
class Range:
    """A number's valid range (bounds inclusive with ge/le, exclusive with gt/lt); NaN and infinities never pass.
    `note` says what a boundary value means, e.g. "0 = no clipping"."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    note: str = ""

    def text(self) -> str:
        low = (f"[{_num(self.ge)}" if self.ge is not None else f"({_num(self.gt)}" if self.gt is not None else None)
        high = (f"{_num(self.le)}]" if self.le is not None else f"{_num(self.lt)})" if self.lt is not None else None)
        if low and high:
            rule = f"in {low}, {high}"
        elif low:
            rule = f">= {_num(self.ge)}" if self.ge is not None else f"> {_num(self.gt)}"
        elif high:
            rule = f"<= {_num(self.le)}" if self.le is not None else f"< {_num(self.lt)}"
        else:
            rule = "a finite number"
        return f"{rule} ({self.note})" if self.note else rule

    def allows(self, value) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        return ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))

    def violations(self, base: type) -> list:
        """Values of type `base` (int or float) just outside the range (for tests)."""
        step = 1 if base is int else 0.5
        out = [] if base is int else [float("nan"), float("inf")]
        if self.ge is not None:
            out.append(self.ge - step)
        if self.gt is not None:
            out.append(self.gt)
        if self.le is not None:
            out.append(self.le + step)
        if self.lt is not None:
            out.append(self.lt)
        return out


@dataclasses.dataclass(frozen=True)
class NonEmpty:
    """A string (not only whitespace) or list that must not be empty."""

    note: str = ""

    def text(self) -> str:
        return f"non-empty ({self.note})" if self.note else "non-empty"

    def allows(self, value) -> bool:
        return bool(value.strip()) if isinstance(value, str) else len(value) > 0

    def violations(self, base: type) -> list:
        """Empty values of type `base` (str or list; for tests)."""
        return [[]] if base is list else ["", "  "]


CONSTRAINTS = (Range, NonEmpty)  # the kinds of declared constraint _coerce checks

# Ranges used by many fields
Count = typing.Annotated[int, Range(ge=1)]  # a number of things or steps: at least 1
Count0 = typing.Annotated[int, Range(ge=0)]  # the same, 0 allowed
Seed = typing.Annotated[int, Range(ge=0)]  # a random seed (numpy refuses negative ones)
Rate = typing.Annotated[float, Range(ge=0, lt=1)]  # a dropout rate, a beta
Weight = typing.Annotated[float, Range(ge=0)]  # a sampling weight or rate (normalised where it is used)
Text = typing.Annotated[str, NonEmpty()]  # a name, path or id: not empty


def read_yaml(path: str | os.PathLike) -> dict:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"config file not found: {path}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: invalid YAML ({getattr(e, 'problem', e)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    return data


def parse_override(text: str) -> tuple[list[str], object]:
    """'a.b=3' -> (['a', 'b'], 3); the value is parsed as YAML (numbers, booleans, lists, null)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key=value")
    key, value = text.split("=", 1)
    return key.strip().split("."), yaml.safe_load(value) if value.strip() else ""


def apply_overrides(data: dict, overrides: list[str] | None) -> dict:
    for text in overrides or []:
        keys, value = parse_override(text)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {k} is not a mapping")
        node[keys[-1]] = value
    return data


def _type_name(tp) -> str:
    if typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _constraints(tp) -> list:
    """The declared constraints of an Annotated type (none for a plain type)."""
    if typing.get_origin(tp) is not typing.Annotated:
        return []
    return [m for m in typing.get_args(tp)[1:] if isinstance(m, CONSTRAINTS)]


def _coerce(value, tp, where: str):
    """Check/convert `value` to the annotated type `tp`; raise ConfigError naming `where`."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is typing.Any:
        return value
    if origin is typing.Annotated:
        coerced = _coerce(value, args[0], where)
        for rule in _constraints(tp):
            if not rule.allows(coerced):
                raise RangeError(where, rule.text(), value)
        return coerced
    if origin in (typing.Union, types.UnionType):
        nullable = type(None) in args
        if value is None and nullable:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except RangeError as e:  # the type fitted, the value did not: say why
                if nullable and e.where == where:
                    raise RangeError(where, f"{e.rule} or null", e.value, e.hint) from None
                raise
            except ConfigError:
                if len(args) == 2 and nullable:  # X | None: X's own message is the clearest
                    raise
        raise ConfigError(f"{where}: expected {' or '.join(_type_name(a) for a in args)}, got {value!r}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):  # built in code: checked like loaded data (rebuilt from its fields)
            init = {f.name for f in dataclasses.fields(tp) if f.init}
            value = {k: v for k, v in dataclasses.asdict(value).items() if k in init}
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, where, nested=True)
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if (origin or tp) is tuple and args and args[-1] is not Ellipsis:  # fixed length: tuple[float, float]
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected a list of exactly {len(args)} values "
                                  f"({', '.join(_type_name(a) for a in args)}), got {value!r}")
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item_tp = args[0] if args else typing.Any
        items = [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin or tp) is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        key_tp, val_tp = args if len(args) == 2 else (typing.Any, typing.Any)
        if typing.get_origin(key_tp) is typing.Literal:  # e.g. dict[Literal["direct", "cot"], int]
            for k in value:
                _coerce(k, key_tp, f"{where} (key)")
        return {k: _coerce(v, val_tp, f"{where}.{k}") for k, v in value.items()}
    if origin is typing.Literal:
        if value not in args:
            hint = did_you_mean(str(value), [str(a) for a in args]) if isinstance(value, str) else ""
            raise RangeError(where, f"one of {', '.join(map(repr, args))}", value, f".{hint}" if hint else "")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if tp is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if isinstance(value, (dict, list)) or value is None:
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value


def from_dict(cls, data: dict, where: str = "config", *, nested: bool = False):
    """Build dataclass `cls` from a mapping, recursively; unknown keys fail with a did-you-mean, values outside
    their declared range name the key and the range. `where` is the file (or "config"); errors read
    `FILE: key.sub[0].key: ...` (`nested`: `where` is already a key path inside the file)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(f"{where}: unknown key {key!r}.{did_you_mean(key, fields)} Known keys: {', '.join(fields)}")
        kwargs[key] = _coerce(value, hints[key], f"{where}.{key}" if nested else f"{where}: {key}")
    missing = [
        name for name, f in fields.items()
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{where}: missing required key(s): {', '.join(missing)}")
    return cls(**kwargs)


def load_config(cls, path: str | os.PathLike | None = None, overrides: list[str] | None = None, data: dict | None = None):
    """YAML file (and/or a dict) + key=value overrides -> dataclass `cls`. Errors name the file and key."""
    raw = dict(data or {})
    where = "config"
    if path is not None:
        raw.update(read_yaml(path))
        where = str(path)
    apply_overrides(raw, overrides)
    return from_dict(cls, raw, where)


def to_dict(obj) -> dict:
    """A dataclass config as plain data (for results.json and saved run configs)."""
    return dataclasses.asdict(obj)


def check_fields(obj, where: str = "config") -> None:
    """Check a dataclass config built in code (not loaded) against its declared types and ranges."""
    init = {f.name for f in dataclasses.fields(obj) if f.init}
    from_dict(type(obj), {k: v for k, v in dataclasses.asdict(obj).items() if k in init}, where)


# --- the same declarations for --help texts and command-line flags -------------------------------------------


def field_type(cls, name: str):
    """The annotated type of field `name` of dataclass `cls`, constraints included."""
    return typing.get_type_hints(cls, include_extras=True)[name]


def _describe_type(tp) -> str:
    """A field type in words with its declared rules: "int >= 1", "'cpu' | 'cuda' | null", "list of str"."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        rules = [rule.text() for rule in _constraints(tp)]
        return " ".join([_describe_type(args[0])] + rules)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_describe_type(a) for a in args)
    if origin is typing.Literal:
        return " | ".join(map(repr, args))
    if origin in (list, tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"[{', '.join(_describe_type(a) for a in args)}]"
        return f"list of ({_describe_type(args[0])})" if args else "list"
    if origin is dict:
        return f"mapping of {_describe_type(args[0])} -> ({_describe_type(args[1])})" if args else "mapping"
    return _type_name(tp)


def _as_yaml(value) -> str:
    return json.dumps(value, ensure_ascii=False)  # JSON is YAML: null, true, [0.9, 0.999], "\n"


def field_help(cls, prefix: str = "", defaults=None) -> str:
    """One line per field (nested dataclasses as key.sub): its type, declared range and default; for the
    epilog of a command's --help, which takes these keys as key=value overrides. `defaults`: an instance whose
    values are the defaults (a nested section's default may differ from its class's own)."""
    lines = []
    hints = typing.get_type_hints(cls, include_extras=True)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp = hints[f.name]
        if defaults is not None:
            default = getattr(defaults, f.name)
        elif f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        if typing.get_origin(tp) in (typing.Union, types.UnionType):  # a section, or a list of such sections
            section = next((a for a in typing.get_args(tp) if dataclasses.is_dataclass(a)), None)
            if section is not None:
                lines.append(f"  {prefix}{f.name}: a section with these keys, or a list of such sections:")
                lines.append(field_help(section, f"{prefix}{f.name}.", default if isinstance(default, section) else None))
                continue
        if dataclasses.is_dataclass(tp):
            lines.append(field_help(tp, f"{prefix}{f.name}.", None if default is dataclasses.MISSING else default))
            continue
        item = typing.get_args(tp)[0] if typing.get_origin(tp) is list else None
        if dataclasses.is_dataclass(item):  # a list of sections: their keys as name[].key
            lines.append(f"  {prefix}{f.name}: a list of sections with these keys:")
            lines.append(field_help(item, f"{prefix}{f.name}[]."))
            continue
        said = "required" if default is dataclasses.MISSING else f"default {_as_yaml(default)}"
        lines.append(f"  {prefix}{f.name}: {_describe_type(tp)} ({said})")
    return "\n".join(lines)


def add_config_help(parser: argparse.ArgumentParser, cls) -> None:
    """Show a command's config keys (field_help) after its --help: they are what key=value overrides set."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = f"config keys (in the YAML, or as key=value overrides), valid values and defaults:\n{field_help(cls)}"


def _without_null(tp):
    """X for `X | None` (a flag's null is its absence), else tp itself."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def rule_text(cls, name: str, *, flag: bool = False) -> str:
    """A field's declared rule in words, e.g. ">= 1" or ">= 1 or null" (`flag`: without "or null"), for help texts."""
    tp = field_type(cls, name)
    if flag:
        tp = _without_null(tp)
    args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    rules = [rule.text() for arg in args for rule in _constraints(arg)]
    if type(None) in args and rules:
        rules[-1] += " or null"
    return "; ".join(rules)


def arg_type(cls, name: str):
    """An argparse `type=` callable: parse a flag's text as field `name` of `cls` (its `X | None` as X: leaving the
    flag out gives null) and check the declared range; argparse then fails with `argument --flag: must be >= 1,
    got 0`."""
    tp = _without_null(field_type(cls, name))

    def parse(text: str):
        try:
            value = yaml.safe_load(text) if text.strip() else text
            return _coerce(value, tp, "value")
        except RangeError as e:
            raise argparse.ArgumentTypeError(f"must be {e.rule}, got {text}") from None
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e).removeprefix("value: ")) from None
        except yaml.YAMLError:
            raise argparse.ArgumentTypeError(f"cannot parse {text!r}") from None

    parse.__name__ = name
    return parse
