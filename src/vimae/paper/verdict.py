"""Verdicts with an uncertainty and a rule: means and standard errors over seeds, and the three-way
rule every claim of the report is judged by.

A number of the report is the mean over training seeds with its standard error
(sd / sqrt(n), sd with n - 1 degrees of freedom). A claim compares numbers: the difference is
oriented so that a positive value favours the paper's claim, its standard error combines those of
the two sides (independent runs: sqrt(se_a^2 + se_b^2)), and the rule is

- HOLDS when the difference favours the claim by more than K = 2 standard errors,
- DOES NOT HOLD when it goes against the claim by more than 2 standard errors,
- INCONCLUSIVE otherwise.

A claim about several models ("VIMAE has the highest rate") is the conjunction of its pairwise
comparisons: it holds when every one holds, does not hold when any one goes against it, and is
inconclusive otherwise; the report shows the deciding comparison. A claim of closeness ("the two
VIMAEs have close FIDs") holds when |difference| + 2 se is within a stated margin and does not hold
when |difference| - 2 se exceeds it.

The same rules judge the paper's own numbers, which have no error bars (se = 0): there the rule is
the sign of the difference, and the report says so.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

HOLDS, FAILS, INCONCLUSIVE, UNMEASURED = "holds", "does not hold", "inconclusive", "not measured"
K = 2.0  # standard errors a difference must exceed to decide


@dataclass(frozen=True)
class Estimate:
    """A mean over n seeds and its standard error (0 for a published number, nan for one seed)."""

    mean: float
    se: float = 0.0
    n: int = 1

    @classmethod
    def of(cls, values: Iterable[float]) -> "Estimate":
        """Mean and standard error of per-seed values; one seed has no standard error (nan), so
        nothing can be decided from it."""
        x = np.asarray(list(values), dtype=np.float64)
        if x.size == 0:
            raise ValueError("an estimate needs at least one value")
        se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan
        return cls(float(x.mean()), se, int(x.size))

    def __sub__(self, other: "Estimate") -> "Estimate":
        """The difference of two independent estimates."""
        return Estimate(self.mean - other.mean, math.hypot(self.se, other.se), min(self.n, other.n))

    def scaled(self, factor: float) -> "Estimate":
        return Estimate(factor * self.mean, abs(factor) * self.se, self.n)

    def text(self, digits: int = 3) -> str:
        """'mean ± se' (just the mean for a published number)."""
        shown = _fmt(self.mean, digits)
        return shown if self.se == 0 else f"{shown} ± {_fmt(self.se, 2)}"


def _fmt(x: float, digits: int = 3) -> str:
    if not math.isfinite(x):
        return str(x)
    return f"{x:.{digits}g}" if abs(x) < 10**digits else f"{x:.0f}"


def mean_of(estimates: Sequence[Estimate]) -> Estimate:
    """The average of independent estimates (e.g. a group of models)."""
    m = len(estimates)
    se = math.sqrt(sum(e.se**2 for e in estimates)) / m
    return Estimate(sum(e.mean for e in estimates) / m, se, min(e.n for e in estimates))


@dataclass(frozen=True)
class Comparison:
    """One comparison: `difference` favours the claim when positive; `what` says it in words."""

    what: str
    difference: Estimate

    @property
    def status(self) -> str:
        d = self.difference  # a nan mean or se compares False: inconclusive
        if d.mean > K * d.se:
            return HOLDS
        if d.mean < -K * d.se:
            return FAILS
        return INCONCLUSIVE

    @property
    def z(self) -> float:
        """The difference in standard errors (inf for published numbers with no spread)."""
        d = self.difference
        if not (math.isfinite(d.mean) and d.se == d.se):
            return 0.0  # undecidable: no standard error
        if d.se == 0:
            return math.copysign(math.inf, d.mean) if d.mean else 0.0
        return d.mean / d.se

    def text(self) -> str:
        d = self.difference
        if d.se == 0:
            return f"{self.what}: {_fmt(d.mean)}"
        if d.se != d.se:
            return f"{self.what}: {_fmt(d.mean)} (one seed, no standard error)"
        return f"{self.what}: {_fmt(d.mean)} ± {_fmt(d.se, 2)} ({self.z:+.1f} se)"


def close(what: str, a: Estimate, b: Estimate, margin: float) -> Comparison:
    """ "a and b are close": margin - |a - b| favours the claim; its se is that of a - b."""
    diff = a - b
    return Comparison(what, Estimate(margin - abs(diff.mean), diff.se, diff.n))


def combine(comparisons: Sequence[Comparison]) -> tuple[str, Comparison | None]:
    """The verdict of all comparisons together and the one that decides it: the strongest
    counter-evidence when any goes against the claim, else the weakest support."""
    if not comparisons:
        return UNMEASURED, None
    statuses = [c.status for c in comparisons]
    if FAILS in statuses:
        return FAILS, min((c for c in comparisons if c.status == FAILS), key=lambda c: c.z)
    deciding = min(comparisons, key=lambda c: c.z)
    return (HOLDS if all(s == HOLDS for s in statuses) else INCONCLUSIVE), deciding
