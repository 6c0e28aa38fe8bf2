"""Uncertainty of scores: standard errors, 95% intervals and paired comparisons. Pure functions on numpy arrays.

Every score flanlab reports is an affine combination of per-stratum means of per-item scores, a stratum being
one subtask (of one benchmark in one mode): a subtask's accuracy is 100 * mean; a micro average weighs each
subtask's mean by its share of the items; a macro average by 1/K; a normalized score is affine in the score;
the normalized average is the mean of six such combinations. `Linear` holds such a combination (terms keyed by
stratum, per-item values in 0..1) and `estimate` gives its value with a standard error and a 95% interval:

- one stratum (a mean of per-item scores, or an affine function of one): analytic, as lm-evaluation-harness's
  mean_stderr: sample standard deviation (ddof=1) / sqrt(n), times |weight|. The 95% interval: for 0/1 scores
  the Wilson score interval (inside 0..100, and not [p, p] when every item agrees, where the SE is 0);
  otherwise value +- 1.96 SE, clipped to the range the score can take (per-item scores lie in 0..1). No SE or
  interval for n < 2.
- several strata (macro and micro averages, a benchmark's normalized score, the normalized average): a seeded
  bootstrap, resampling items within each stratum (stratified), `n_boot` resamples, percentile interval, SE the
  standard deviation of the replicates. Where a stratum has fewer than 2 items there is no within-stratum
  variance to resample, and the bootstrap resamples all items together instead (each item keeping its weight
  w/n of its stratum), which counts the spread between subtasks as noise: wider, never narrower, and the method
  string says so.

Each stratum's resampling indices come from a generator seeded by (seed, the stratum's draw key): strata given
the same draw key and size draw the same indices (the direct and CoT modes of a benchmark over the same items,
so their correlation is kept in the normalized average), and every result is reproducible.

`paired_diff` compares two runs over the items both scored: per stratum, the per-item differences
w_a * a_i - w_b * b_i, resampled together (the paired bootstrap, stratified), a percentile interval and the
two-sided p-value of the same distribution, p = min(1, 2 (1 + #{rep on the other side of 0}) / (1 + B)), so that
p < 0.05 exactly when the interval excludes 0. For 0/1 scores of one mode the exact McNemar test (a two-sided
binomial test on the discordant pairs) is computed beside it. A difference is significant only when its interval
excludes 0 and, where McNemar applies, McNemar's p is below 0.05 too: on a few dozen 0/1 items the percentile
bootstrap is too ready to exclude 0 (5 of 27 items changing one way reads [-37.0, -3.7] while McNemar's p is
0.125), and a verdict that one of the two tests contradicts is not given.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054
N_BOOT = 2000
SEED = 0
_TOL = 1e-9  # differences this close to 0 (percent points) are float noise, not a change
_CHUNK = 1 << 22  # resampled values held at once (indices, int64): ~32 MB


# ----------------------------------------------------------------------------------------------------------
# typed results


@dataclass(frozen=True)
class Estimate:
    """A score with its standard error and 95% interval (None where there is none, e.g. a single item)."""

    value: float | None
    stderr: float | None
    ci_low: float | None
    ci_high: float | None
    n: int  # items behind it
    method: str

    def to_json(self) -> dict:
        ci = [self.ci_low, self.ci_high] if self.ci_low is not None and self.ci_high is not None else None
        return {"stderr": self.stderr, "ci95": ci, "method": self.method, "n": self.n}

    def text(self, digits: int = 1) -> str:
        """"28.0 ± 1.7" (value ± one standard error), "28.0 ± n/a" without one, "—" without a value."""
        if self.value is None:
            return "—"
        return f"{self.value:.{digits}f} ± " + (f"{self.stderr:.{digits}f}" if self.stderr is not None else "n/a")


@dataclass(frozen=True)
class PairedDiff:
    """a - b over the items both runs scored, with its interval, p-value and whether it is significant."""

    diff: float
    stderr: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    n_paired: int
    n_only_a: int  # items only run a scored: left out
    n_only_b: int
    method: str
    significant: bool  # the 95% interval excludes 0 (and McNemar's p < 0.05 where it applies)
    mcnemar_p: float | None = None  # exact McNemar on the pooled paired items, when every value is 0 or 1

    def to_json(self) -> dict:
        ci = [self.ci_low, self.ci_high] if self.ci_low is not None and self.ci_high is not None else None
        return {"diff": self.diff, "stderr": self.stderr, "ci95": ci, "p_value": self.p_value,
                "significant": self.significant, "n_paired": self.n_paired, "n_only_a": self.n_only_a,
                "n_only_b": self.n_only_b, "mcnemar_p": self.mcnemar_p, "method": self.method}

    def verdict(self) -> str:
        """"gain", "loss" or "no significant change"."""
        if not self.significant:
            return "no significant change"
        return "gain" if self.diff > 0 else "loss"

    def text(self, digits: int = 1) -> str:
        """"+2.0 [-3.1, +7.2], p=0.52: no significant change (20 paired)"."""
        if self.ci_low is None or self.ci_high is None:
            return f"{self.diff:+.{digits}f} (no interval: {self.method}; {self.n_paired} paired)"
        p = f", p={self.p_value:.2g}" if self.p_value is not None else ""
        return (f"{self.diff:+.{digits}f} [{self.ci_low:+.{digits}f}, {self.ci_high:+.{digits}f}]{p}: "
                f"{self.verdict()} ({self.n_paired} paired)")


@dataclass(frozen=True)
class Linear:
    """offset + sum(weight * mean(values of the stratum)) over `terms` (stratum key -> weight)."""

    terms: tuple[tuple[str, float], ...]
    offset: float = 0.0

    @staticmethod
    def of(terms: Mapping[str, float], offset: float = 0.0) -> Linear:
        return Linear(tuple(terms.items()), float(offset))

    def scaled(self, factor: float, shift: float = 0.0) -> Linear:
        """factor * self + shift."""
        return Linear(tuple((k, w * factor) for k, w in self.terms), self.offset * factor + shift)

    def value(self, strata: Mapping[str, np.ndarray]) -> float:
        return self.offset + sum(w * float(np.mean(strata[k])) for k, w in self.terms)


def mean_of(linears: Sequence[Linear]) -> Linear:
    """The unweighted mean of several combinations (their strata must be distinct or shared on purpose)."""
    terms: dict[str, float] = {}
    for lin in linears:
        for k, w in lin.terms:
            terms[k] = terms.get(k, 0.0) + w / len(linears)
    return Linear.of(terms, sum(lin.offset for lin in linears) / len(linears))


# ----------------------------------------------------------------------------------------------------------
# the estimators


def mean_stderr(values) -> float | None:
    """Sample standard deviation (ddof=1) / sqrt(n); None for fewer than 2 values (lm-eval's mean_stderr)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        return None
    return float(np.std(x, ddof=1) / math.sqrt(x.size))


def analytic_mean(values, scale: float = 100.0, shift: float = 0.0) -> Estimate:
    """scale * mean(values) + shift with the analytic standard error and a normal 95% interval."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return Estimate(None, None, None, None, 0, "no items")
    value = scale * float(x.mean()) + shift
    se = mean_stderr(x)
    if se is None:
        return Estimate(value, None, None, None, int(x.size), "analytic: no standard error from a single item")
    se *= abs(scale)
    if is_binary(x):
        # 0/1 scores: the Wilson interval, which stays inside 0..100 and is not [p, p] when every item agrees
        low, high = sorted(shift + scale * b for b in wilson_interval(float(x.sum()), int(x.size)))
        return Estimate(value, se, low, high, int(x.size),
                        "analytic: sample SD (ddof=1) / sqrt(n); 95% Wilson score interval (0/1 scores)")
    # per-item scores lie in 0..1, so the score lies between shift and shift + scale: the interval is clipped there
    low, high = sorted((shift, shift + scale))
    return Estimate(value, se, max(low, value - Z95 * se), min(high, value + Z95 * se), int(x.size),
                    "analytic: sample SD (ddof=1) / sqrt(n), normal 95% interval clipped to the score's range")


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval (0..1) for `successes` out of `n` trials."""
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def stratum_rng(seed: int, draw_key: str) -> np.random.Generator:
    """The generator a stratum's resampling indices come from: the same (seed, key) draws the same indices."""
    return np.random.default_rng([int(seed), zlib.crc32(draw_key.encode("utf-8"))])


def bootstrap_means(values, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot,) means of resamples of `values` with replacement (vectorised in chunks)."""
    x = np.asarray(values, dtype=np.float64)
    n = x.size
    out = np.empty(n_boot, dtype=np.float64)
    step = max(1, _CHUNK // max(n, 1))
    for start in range(0, n_boot, step):
        stop = min(n_boot, start + step)
        idx = rng.integers(0, n, size=(stop - start, n))  # (chunk, n)
        out[start:stop] = x[idx].mean(axis=1)
    return out


def replicates(linear: Linear, strata: Mapping[str, np.ndarray], n_boot: int = N_BOOT, seed: int = SEED,
               draw_keys: Mapping[str, str] | None = None) -> tuple[np.ndarray, str]:
    """Bootstrap replicates of `linear` over the items of `strata`, and the method in words (module docstring)."""
    arrays = {k: np.asarray(strata[k], dtype=np.float64) for k, _ in linear.terms}
    if any(a.size == 0 for a in arrays.values()):
        raise ValueError(f"empty strata: {[k for k, a in arrays.items() if a.size == 0]}")
    if all(a.size >= 2 for a in arrays.values()):
        reps = np.full(n_boot, linear.offset, dtype=np.float64)
        for k, w in linear.terms:
            key = (draw_keys or {}).get(k, k)
            reps += w * bootstrap_means(arrays[k], n_boot, stratum_rng(seed, f"{key}#{arrays[k].size}"))
        return reps, (f"bootstrap: {n_boot} resamples within each of {len(arrays)} subtasks (stratified), "
                      f"seed {seed}, percentile 95% interval")
    # a stratum of one item: resample all items together, each carrying its weight w / n_stratum
    pooled = np.concatenate([w * arrays[k] / arrays[k].size for k, w in linear.terms])
    reps = linear.offset + pooled.size * bootstrap_means(pooled, n_boot, stratum_rng(seed, "#pooled"))
    return reps, (f"bootstrap: {n_boot} resamples over all {pooled.size} items, not stratified (a subtask has "
                  f"fewer than 2 items), seed {seed}, percentile 95% interval")


def estimate(linear: Linear, strata: Mapping[str, np.ndarray], n_boot: int = N_BOOT, seed: int = SEED,
             draw_keys: Mapping[str, str] | None = None) -> Estimate:
    """The value of `linear` with its SE and 95% interval: analytic for one stratum, else the bootstrap."""
    if not linear.terms:
        return Estimate(None, None, None, None, 0, "no items")
    n = int(sum(np.asarray(strata[k]).size for k, _ in linear.terms))
    if len(linear.terms) == 1:
        (k, w), = linear.terms
        return analytic_mean(strata[k], scale=w, shift=linear.offset)
    value = linear.value(strata)
    reps, method = replicates(linear, strata, n_boot, seed, draw_keys)
    lo, hi = np.quantile(reps, [0.025, 0.975])
    return Estimate(value, float(np.std(reps, ddof=1)), float(lo), float(hi), n, method)


# ----------------------------------------------------------------------------------------------------------
# paired comparisons


def mcnemar_exact(a, b) -> float:
    """Two-sided exact McNemar p-value for paired 0/1 outcomes: binomial test of the discordant pairs at 1/2."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    only_a = int(np.sum((a == 1) & (b == 0)))
    only_b = int(np.sum((a == 0) & (b == 1)))
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    # P(X <= k) for X ~ Binomial(n, 1/2), doubled (the distribution is symmetric), capped at 1
    tail = sum(math.comb(n, i) for i in range(k + 1)) / (1 << n)  # exact integers: 2.0 ** n overflows past n = 1023
    return min(1.0, 2.0 * tail)


def is_binary(values) -> bool:
    x = np.asarray(values, dtype=np.float64)
    return bool(np.all((x == 0.0) | (x == 1.0)))


def paired_diff(linear_a: Linear, linear_b: Linear, strata_a: Mapping[str, np.ndarray],
                strata_b: Mapping[str, np.ndarray], n_only_a: int = 0, n_only_b: int = 0,
                n_boot: int = N_BOOT, seed: int = SEED, draw_keys: Mapping[str, str] | None = None,
                mcnemar: bool = True) -> PairedDiff:
    """linear_a(strata_a) - linear_b(strata_b), where strata_a[k][i] and strata_b[k][i] are the same item.

    Both combinations must be over the same strata (built over the shared items). See the module docstring.
    draw_keys: strata that hold the same items (one subtask in two modes) share a key, so they draw the same
    resamples and their correlation is kept. mcnemar=False when the strata repeat items (several modes): the
    test assumes independent pairs."""
    keys = [k for k, _ in linear_a.terms]
    if sorted(keys) != sorted(k for k, _ in linear_b.terms):
        raise ValueError("paired_diff: the two combinations are over different strata")
    wa, wb = dict(linear_a.terms), dict(linear_b.terms)
    a = {k: np.asarray(strata_a[k], dtype=np.float64) for k in keys}
    b = {k: np.asarray(strata_b[k], dtype=np.float64) for k in keys}
    for k in keys:
        if a[k].shape != b[k].shape:
            raise ValueError(f"paired_diff: stratum {k!r} has {a[k].size} items in a and {b[k].size} in b")
    n_paired = int(sum(a[k].size for k in keys))
    if n_paired == 0:
        return PairedDiff(0.0, None, None, None, None, 0, n_only_a, n_only_b, "no shared items", False)
    d = {k: wa[k] * a[k] - wb[k] * b[k] for k in keys}  # per-item contributions to the difference
    diff_linear = Linear(tuple((k, 1.0) for k in keys), linear_a.offset - linear_b.offset)
    diff = diff_linear.value(d)
    pooled_a, pooled_b = np.concatenate(list(a.values())), np.concatenate(list(b.values()))
    mcnemar = mcnemar_exact(pooled_a, pooled_b) if mcnemar and is_binary(pooled_a) and is_binary(pooled_b) else None
    if n_paired < 2:
        return PairedDiff(diff, None, None, None, None, n_paired, n_only_a, n_only_b,
                          "a single paired item: no interval", False, mcnemar)
    reps, method = replicates(diff_linear, d, n_boot, seed, draw_keys)
    lo, hi = (float(v) for v in np.quantile(reps, [0.025, 0.975]))
    other_side = int(np.sum(reps <= _TOL)) if diff > 0 else int(np.sum(reps >= -_TOL))
    p = 1.0 if abs(diff) <= _TOL else min(1.0, 2 * (1 + other_side) / (1 + n_boot))
    significant = (lo > _TOL or hi < -_TOL) and (mcnemar is None or mcnemar < 0.05)
    return PairedDiff(diff, float(np.std(reps, ddof=1)), lo, hi, p, n_paired, n_only_a, n_only_b,
                      "paired " + method, significant, mcnemar)
