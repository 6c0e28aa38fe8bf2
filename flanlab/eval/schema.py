"""results.json as typed dataclasses: read, checked and written in one place.

`Results.from_json(data, where)` reads a parsed results.json and checks it; `Results.to_json()` writes it back
(keys it does not model are kept as they were, in `extra`). The shape is described in flanlab/eval/spec.py.

Schema versions:
  flanlab.results/2  every score carries its uncertainty: an "uncertainty" mapping beside the numbers of each
                     subtask and mode section ({"score": Interval, "normalized": ..., "metrics": {name: ...}},
                     a mode also "micro" and "macro"), and {"value": Interval} in the averages. An Interval is
                     {"stderr": float|null, "ci95": [lo, hi]|null, "method": str, "n": int}
                     (flanlab/eval/stats.py says how each is computed).
  flanlab.results/1  (and hand-written files with no "schema"): read without intervals (every interval None);
                     re-score its samples.jsonl (`flanlab eval score`) or rerun the evaluation to get them.
Any other schema is refused with a message naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SCHEMA = "flanlab.results/2"
READ_WITHOUT_INTERVALS = ("flanlab.results/1", None)


def check_schema(data: dict, where: str) -> bool:
    """True when the file carries intervals (schema 2), False for a schema-1 file; ValueError otherwise."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: not a JSON object")
    schema = data.get("schema")
    if schema == SCHEMA:
        return True
    if schema in READ_WITHOUT_INTERVALS:
        return False
    raise ValueError(f"{where}: schema is {schema!r}; this flanlab reads {SCHEMA!r} (and 'flanlab.results/1' "
                     "without intervals)")


def _need(d: dict, key: str, where: str, kinds=(int, float)):
    if key not in d:
        raise ValueError(f"{where}: missing field {key!r}")
    value = d[key]
    if kinds is not None and not isinstance(value, kinds):
        raise ValueError(f"{where}: field {key!r} is {type(value).__name__}, expected {kinds}")
    return value


def _rest(d: dict, known: set[str]) -> dict:
    return {k: v for k, v in d.items() if k not in known}


@dataclass(frozen=True)
class Interval:
    stderr: float | None
    ci95: tuple[float, float] | None
    method: str
    n: int | None = None

    @staticmethod
    def from_json(d, where: str) -> Interval:
        if not isinstance(d, dict) or "method" not in d:
            raise ValueError(f"{where}: an interval needs 'stderr', 'ci95' and 'method'")
        ci = d.get("ci95")
        if ci is not None and not (isinstance(ci, list) and len(ci) == 2):
            raise ValueError(f"{where}: ci95 must be [low, high] or null")
        return Interval(d.get("stderr"), tuple(ci) if ci is not None else None, str(d["method"]), d.get("n"))

    def to_json(self) -> dict:
        return {"stderr": self.stderr, "ci95": list(self.ci95) if self.ci95 is not None else None,
                "method": self.method, "n": self.n}


def _intervals(d: dict, where: str, required: bool) -> tuple[dict[str, Interval], dict[str, Interval]]:
    """(number name -> Interval, metric name -> Interval) from a section's "uncertainty"."""
    u = d.get("uncertainty")
    if u is None:
        if required:
            raise ValueError(f"{where}: missing field 'uncertainty' (schema {SCHEMA} gives every score one)")
        return {}, {}
    own = {k: Interval.from_json(v, f"{where}.uncertainty.{k}") for k, v in u.items() if k != "metrics"}
    metrics = {k: Interval.from_json(v, f"{where}.uncertainty.metrics.{k}") for k, v in (u.get("metrics") or {}).items()}
    return own, metrics


def _intervals_json(own: dict[str, Interval], metrics: dict[str, Interval]) -> dict:
    return {**{k: v.to_json() for k, v in own.items()}, "metrics": {k: v.to_json() for k, v in metrics.items()}}


@dataclass
class SubtaskResult:
    score: float
    n: int
    chance: float
    normalized: float
    metrics: dict[str, float]
    uncertainty: dict[str, Interval] = field(default_factory=dict)  # "score", "normalized"
    metric_uncertainty: dict[str, Interval] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # scoring, excluded_from_mean, ...

    KNOWN = {"score", "n", "chance", "normalized", "metrics", "uncertainty"}

    @staticmethod
    def from_json(d: dict, where: str, intervals: bool) -> SubtaskResult:
        own, metrics = _intervals(d, where, intervals)
        return SubtaskResult(
            score=float(_need(d, "score", where)), n=int(_need(d, "n", where, int)),
            chance=float(d.get("chance") or 0.0), normalized=float(d.get("normalized", 0.0) or 0.0),
            metrics=dict(d.get("metrics") or {}), uncertainty=own, metric_uncertainty=metrics,
            extra=_rest(d, SubtaskResult.KNOWN))

    def to_json(self) -> dict:
        out = {"score": self.score, "n": self.n, "chance": self.chance, "normalized": self.normalized,
               "metrics": dict(self.metrics)}
        if self.uncertainty or self.metric_uncertainty:
            out["uncertainty"] = _intervals_json(self.uncertainty, self.metric_uncertainty)
        return {**out, **self.extra}


@dataclass
class ModeResult:
    score: float
    metric: str
    n: int
    scoring: str
    normalized: float
    subtasks: dict[str, SubtaskResult]
    chance: float = 0.0
    uncertainty: dict[str, Interval] = field(default_factory=dict)  # "score", "normalized", "micro", "macro"
    metric_uncertainty: dict[str, Interval] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # aggregation, micro, macro, metrics, excluded_from_mean, ...

    KNOWN = {"score", "metric", "n", "scoring", "normalized", "subtasks", "chance", "uncertainty"}

    @staticmethod
    def from_json(d: dict, where: str, intervals: bool) -> ModeResult:
        if not isinstance(d, dict):
            raise ValueError(f"{where}: expected an object")
        subtasks = d.get("subtasks") or {}
        return ModeResult(
            score=float(_need(d, "score", where)), metric=str(_need(d, "metric", where, str)),
            n=int(_need(d, "n", where, int)), scoring=str(d.get("scoring") or ""),
            normalized=float(_need(d, "normalized", where)), chance=float(d.get("chance") or 0.0),
            subtasks={k: SubtaskResult.from_json(v, f"{where}.subtasks.{k}", intervals) for k, v in subtasks.items()},
            uncertainty=_intervals(d, where, intervals)[0], metric_uncertainty=_intervals(d, where, intervals)[1],
            extra=_rest(d, ModeResult.KNOWN))

    def to_json(self) -> dict:
        out = {"score": self.score, "metric": self.metric, "n": self.n, "scoring": self.scoring,
               "chance": self.chance, "normalized": self.normalized}
        if self.uncertainty or self.metric_uncertainty:
            out["uncertainty"] = _intervals_json(self.uncertainty, self.metric_uncertainty)
        out.update(self.extra)
        out["subtasks"] = {k: v.to_json() for k, v in self.subtasks.items()}
        return out


@dataclass
class AverageResult:
    value: float | None
    components: dict[str, float]
    missing: list[str]
    uncertainty: Interval | None = None
    extra: dict = field(default_factory=dict)

    @staticmethod
    def from_json(d: dict, where: str, intervals: bool) -> AverageResult:
        if not isinstance(d, dict):
            raise ValueError(f"{where}: expected an object")
        u = d.get("uncertainty")
        if intervals and "uncertainty" not in d:
            raise ValueError(f"{where}: missing field 'uncertainty'")
        return AverageResult(
            value=d.get("value"), components=dict(d.get("components") or {}), missing=list(d.get("missing") or []),
            uncertainty=Interval.from_json(u["value"], f"{where}.uncertainty.value") if u else None,
            extra=_rest(d, {"value", "components", "missing", "uncertainty"}))

    def to_json(self) -> dict:
        return {"value": self.value, "components": dict(self.components), "missing": list(self.missing),
                "uncertainty": {"value": self.uncertainty.to_json()} if self.uncertainty else None, **self.extra}


@dataclass
class Results:
    schema: str | None
    benchmarks: dict[str, dict[str, ModeResult]]
    normalized_average: AverageResult | None
    synthetic_average: AverageResult | None = None
    model: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # provenance, timings, skipped, ...

    @property
    def has_intervals(self) -> bool:
        return self.schema == SCHEMA

    @staticmethod
    def from_json(data: dict, where: str) -> Results:
        """A parsed results.json, checked (schema, required fields); errors name `where` and the field."""
        intervals = check_schema(data, where)
        benchmarks = data.get("benchmarks")
        if not isinstance(benchmarks, dict):
            raise ValueError(f"{where}: no 'benchmarks' mapping; is this a flanlab results.json?")
        norm, synth = data.get("normalized_average"), data.get("synthetic_average")
        return Results(
            schema=data.get("schema"),
            benchmarks={b: {m: ModeResult.from_json(sec, f"{where}: benchmarks.{b}.{m}", intervals)
                            for m, sec in (modes or {}).items()} for b, modes in benchmarks.items()},
            normalized_average=AverageResult.from_json(norm, f"{where}: normalized_average", intervals)
            if norm is not None else None,
            synthetic_average=AverageResult.from_json(synth, f"{where}: synthetic_average", intervals)
            if synth is not None else None,
            model=dict(data.get("model") or {}), settings=dict(data.get("settings") or {}),
            extra=_rest(data, {"schema", "benchmarks", "normalized_average", "synthetic_average", "model", "settings"}))

    def to_json(self) -> dict:
        out = {"schema": self.schema, "model": self.model, "settings": self.settings,
               "benchmarks": {b: {m: sec.to_json() for m, sec in modes.items()} for b, modes in self.benchmarks.items()},
               "normalized_average": self.normalized_average.to_json() if self.normalized_average else None}
        out["synthetic_average"] = self.synthetic_average.to_json() if self.synthetic_average else None
        return {**out, **self.extra}

    def interval(self, bench: str, mode: str, name: str = "score") -> Interval | None:
        """The interval of benchmarks[bench][mode].<name> ("score", "normalized", "micro", "macro"), if any."""
        sec = (self.benchmarks.get(bench) or {}).get(mode)
        return sec.uncertainty.get(name) if sec is not None else None
