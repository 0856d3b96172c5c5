"""Verdicts with an uncertainty and a rule: means and standard errors over seeds, and the three-way
rule every claim of the report is judged by.

A number of the report is the mean over seeds with its standard error (sd / sqrt(n), sd with n - 1
degrees of freedom). A claim compares numbers: the difference is oriented so that a positive value
favours the paper's claim, its standard error combines those of the two sides (independent runs:
sqrt(se_a^2 + se_b^2)), and its degrees of freedom are Welch-Satterthwaite's. The rule is a
two-sided test at the 5% level for the number of seeds used, each comparison on its own (no
correction across the report's family of claims, which is stated beside the counts):

- HOLDS when the difference favours the claim by more than t standard errors,
- DOES NOT HOLD when it goes against the claim by more than t standard errors,
- INCONCLUSIVE otherwise,

with t the 97.5% quantile of Student's t at those degrees of freedom (2.78 for 3 seeds a side,
2.31 for 5), not a fixed 2: with few seeds a standard error is itself uncertain, and 2 standard
errors would hold a true-null claim about 12% of the time with 3 seeds instead of 5%.

A claim about several models ("VIMAE has the highest rate") is the conjunction of its pairwise
comparisons: it holds when every one holds, does not hold when any one goes against it, and is
inconclusive otherwise; the report shows the deciding comparison. A claim of closeness ("the two
VIMAEs have close FIDs") holds when |difference| + t se is within a stated margin and does not
hold when |difference| - t se exceeds it.

The same rules judge the paper's own numbers, which have no error bars (se = 0): there the rule is
the sign of the difference, and the report says so. Where a table of the paper sits at chance (every
accuracy within sampling noise of guessing, `vimae.paper.claims.chance_reason`), its differences are
noise and its verdict is CANNOT DECIDE rather than the sign of that noise.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

HOLDS, FAILS, INCONCLUSIVE, UNMEASURED = "holds", "does not hold", "inconclusive", "not measured"
UNDECIDABLE = "cannot decide"  # the numbers exist but cannot bear on the claim (a table at chance)
STATUSES = (HOLDS, FAILS, INCONCLUSIVE, UNDECIDABLE, UNMEASURED)  # the order counts are printed in
LEVEL = 0.05  # two-sided level of each comparison


def threshold(df: float) -> float:
    """The standard errors a difference must exceed to decide: Student's t quantile at 1 - LEVEL/2
    for `df` degrees of freedom (the normal's 1.96 for published numbers, df = inf)."""
    if not df > 0:
        return math.inf  # one seed: nothing can be decided
    return float(stats.t.ppf(1 - LEVEL / 2, df))


@dataclass(frozen=True)
class Estimate:
    """A mean over n seeds and its standard error (0 for a published number, nan for one seed)."""

    mean: float
    se: float = 0.0
    n: int = 1
    df: float = math.inf  # degrees of freedom of `se` (n - 1 for a mean over n seeds)

    @classmethod
    def of(cls, values: Iterable[float]) -> "Estimate":
        """Mean and standard error of per-seed values; one seed has no standard error (nan), so
        nothing can be decided from it."""
        x = np.asarray(list(values), dtype=np.float64)
        if x.size == 0:
            raise ValueError("an estimate needs at least one value")
        se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan
        return cls(float(x.mean()), se, int(x.size), float(x.size - 1))

    def __sub__(self, other: "Estimate") -> "Estimate":
        """The difference of two independent estimates (Welch-Satterthwaite degrees of freedom)."""
        se = math.hypot(self.se, other.se)
        return Estimate(self.mean - other.mean, se, min(self.n, other.n), welch(self, other))

    def scaled(self, factor: float) -> "Estimate":
        return Estimate(factor * self.mean, abs(factor) * self.se, self.n, self.df)

    def text(self, digits: int = 3) -> str:
        """'mean ± se' (just the mean for a published number; "(n = 1)" for one seed)."""
        shown = _fmt(self.mean, digits)
        if self.se == 0:
            return shown
        if self.se != self.se:
            return f"{shown} (n = 1)"
        return f"{shown} ± {_fmt(self.se, 2)}"


def welch(*estimates: Estimate) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum or difference of independent estimates."""
    if any(e.se != e.se for e in estimates):
        return 0.0  # a one-seed side: nothing to decide
    parts = [(e.se**2, e.df) for e in estimates if e.se > 0]
    if any(not df > 0 for _, df in parts):
        return 0.0
    if not parts:
        return math.inf  # published numbers
    total = sum(se2 for se2, _ in parts)
    denominator = sum(se2**2 / df for se2, df in parts if math.isfinite(df))
    return math.inf if denominator == 0 else total**2 / denominator


def _fmt(x: float, digits: int = 3) -> str:
    if not math.isfinite(x):
        return str(x)
    return f"{x:.{digits}g}" if abs(x) < 10**digits else f"{x:.0f}"


def mean_of(estimates: Sequence[Estimate]) -> Estimate:
    """The average of independent estimates (e.g. a group of models)."""
    m = len(estimates)
    se = math.sqrt(sum(e.se**2 for e in estimates)) / m
    n = min(e.n for e in estimates)
    return Estimate(sum(e.mean for e in estimates) / m, se, n, welch(*estimates))


@dataclass(frozen=True)
class Comparison:
    """One comparison: `difference` favours the claim when positive; `what` says it in words."""

    what: str
    difference: Estimate

    @property
    def status(self) -> str:
        d = self.difference  # a nan mean or se compares False: inconclusive
        t = threshold(d.df) if d.se > 0 else 0.0  # published numbers: the sign decides
        if d.mean > t * d.se:
            return HOLDS
        if d.mean < -t * d.se:
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
        if d.se != d.se or not d.df > 0:
            return f"{self.what}: {_fmt(d.mean)} (n = 1: no standard error)"
        t = threshold(d.df)
        return f"{self.what}: {_fmt(d.mean)} ± {_fmt(d.se, 2)} ({self.z:+.1f} se; t = {t:.2f})"


def close(what: str, a: Estimate, b: Estimate, margin: float) -> Comparison:
    """ "a and b are close": margin - |a - b| favours the claim; its se is that of a - b."""
    diff = a - b
    return Comparison(what, Estimate(margin - abs(diff.mean), diff.se, diff.n, diff.df))


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
