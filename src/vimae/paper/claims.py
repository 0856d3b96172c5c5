"""The paper's claims as stated comparisons, judged on our numbers and on the paper's own.

Each claim is a sentence of the paper (quoted or closely paraphrased; SPEC section 8), the
comparisons that test it and the rule of `vimae.paper.verdict` (Student's t over seeds, conjunction
over pairs, closeness within a margin). A builder turns a table of values, model -> quantity ->
`Estimate`, into comparisons; the same builder runs on our means over seeds and on the paper's
published numbers (no error bars: the sign decides), so that the report can say where the paper's
tables do not support its own sentence. A builder that lacks a value raises KeyError and the claim
is "not measured" (or "not in the paper's tables").

Every claim has an origin: PAPER, the paper's own sentence, or PROJECT, a question this project asks
(the encoder-noise sweep, the decoder likelihood, a variant of a paper's claim judged another way,
or what a table shows that the text does not say). The report counts the two apart, so that nothing
the paper does not say is counted as its words.

Claims are one-sided where the paper is, and no stricter than its words: "VIMAE does not have
h(q) >> h(p)" is tested for each VIMAE against a margin, not as "every VIMAE gap below every ELBO
gap". The thresholds that turn words into numbers are constants here, stated in the report, and so
is the rule that says when a table of the paper is at chance (`chance_reason`): its differences are
then noise, and its verdict is CANNOT DECIDE.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from vimae.paper import numbers as paper
from vimae.paper.verdict import (
    UNDECIDABLE,
    UNMEASURED,
    Comparison,
    Estimate,
    close,
    combine,
    mean_of,
    welch,
)

Values = dict[str, dict[str, Estimate]]  # model -> quantity -> estimate
Builder = Callable[[Values], list[Comparison]]

MUCH_NATS = 1.0  # ">>" in "h(q(z)) >> h(p(z))": more than 1 nat above
RECON_TOLERANCE = 0.05  # "at least as well": at most 5% more squared error
RATE_RATIO = (1.5, 3.0)  # "about twice its rate"
CLOSE_POINTS = 2.0  # "comparable" accuracies: within 2 points
CLOSE_FID = 0.10  # "close" FIDs: within 10% of their mean
# A table of accuracies is "at chance" when every accuracy lies within CHANCE_SE binomial standard
# errors, 100 sqrt(c (1 - c) / n) points, of the chance level c on the n codes it was measured on.
CHANCE_SE = 2.0
PAPER, PROJECT = "paper", "project"  # a claim's origin: the paper's sentence, or our question
L = paper.LABELS


@dataclass
class Claim:
    """A claim, its rule, and its verdicts on our numbers and on the paper's."""

    source: str
    statement: str
    rule: str
    status: str
    evidence: str
    paper_status: str
    paper_evidence: str
    note: str = ""
    origin: str = PAPER


def judge(
    source: str,
    statement: str,
    rule: str,
    build: Builder,
    ours: Values,
    published: Values | None = None,
    note: str = "",
    origin: str = PAPER,
    undecidable: str = "",
) -> Claim:
    """Run `build` on our values and on the paper's; each gives a verdict and its evidence.
    `undecidable` says why the paper's numbers cannot decide (its table at chance): their verdict
    is then UNDECIDABLE, with what their sign alone would have said as evidence."""
    status, evidence = _verdict(build, ours, "needs")
    if published is None:
        paper_status, paper_evidence = UNMEASURED, "the paper gives no numbers for this"
    else:
        paper_status, paper_evidence = _verdict(build, published, "not in the paper's tables:")
        if undecidable and paper_status != UNMEASURED:
            paper_evidence = (
                f"{undecidable}; by its sign alone it would read {paper_status.upper()}: "
                f"{paper_evidence}"
            )
            paper_status = UNDECIDABLE
    return Claim(
        source, statement, rule, status, evidence, paper_status, paper_evidence, note, origin
    )


def unmeasurable(
    source: str, statement: str, rule: str, why: str, paper_why: str, origin: str = PAPER
) -> Claim:
    """A claim no run here can test: "not measured" on both sides, each with its reason."""
    return Claim(source, statement, rule, UNMEASURED, why, UNMEASURED, paper_why, "", origin)


def chance_reason(table: str) -> str:
    """Why the paper's accuracies of `table` cannot decide a claim: every one lies within
    CHANCE_SE binomial standard errors of chance (`numbers.CHANCE`) on the codes it was measured
    on (`numbers.EVALUATED`); "" when the table is above chance."""
    chance, n = paper.CHANCE[table], paper.EVALUATED[table]
    band = CHANCE_SE * 100.0 * math.sqrt(chance / 100.0 * (1.0 - chance / 100.0) / n)
    values = [v for row in paper.SEMI_SUPERVISED[table].values() for v in row.values()]
    if max(abs(v - chance) for v in values) >= band:
        return ""
    return (
        f"the paper's table is at chance: every accuracy ({min(values):g}-{max(values):g}%) lies "
        f"within {band:.2g} points of chance, {chance:g}% ({CHANCE_SE:g} binomial standard errors "
        f"on its {n:,} held-out codes), so its differences are noise"
    )


def _verdict(build: Builder, values: Values, missing: str) -> tuple[str, str]:
    try:
        comparisons = build(values)
    except KeyError as err:
        return UNMEASURED, f"{missing} {err.args[0]}"
    status, deciding = combine(comparisons)
    if deciding is None:
        return UNMEASURED, "no comparison"
    others = [c.text() for c in comparisons if c is not deciding]
    text = deciding.text()
    if others:
        text += f" (deciding; also {'; '.join(others)})"
    return status, text


def value_of(values: Values, model: str, key: str) -> Estimate:
    """values[model][key], or KeyError naming what is missing in words."""
    try:
        return values[model][key]
    except KeyError:
        raise KeyError(f"{key} of {L.get(model, model)}") from None


def above(key: str, a: str, b: str, what: str | None = None) -> Builder:
    """a's `key` is above b's."""

    def build(v: Values) -> list[Comparison]:
        return [
            Comparison(what or f"{key} {L[a]} − {L[b]}", value_of(v, a, key) - value_of(v, b, key))
        ]

    return build


def all_above(key: str, high: Sequence[str], low: Sequence[str]) -> Builder:
    """Every model of `high` has a larger `key` than every model of `low` (pairwise)."""

    def build(v: Values) -> list[Comparison]:
        return [above(key, a, b)(v)[0] for a in high for b in low if a != b]

    return build


def exceeds(key: str, models: Sequence[str], margin: float) -> Builder:
    """Each model's `key` exceeds `margin`."""

    def build(v: Values) -> list[Comparison]:
        return [
            Comparison(f"{key} {L[m]} − {margin:g}", value_of(v, m, key) - Estimate(margin))
            for m in models
        ]

    return build


def below(key: str, models: Sequence[str], margin: float) -> Builder:
    """Each model's `key` stays below `margin`."""

    def build(v: Values) -> list[Comparison]:
        return [
            Comparison(f"{margin:g} − {key} {L[m]}", Estimate(margin) - value_of(v, m, key))
            for m in models
        ]

    return build


def group_above(key: str, high: Sequence[str], low: Sequence[str], what: str) -> Builder:
    """The mean `key` of the `high` models is above the mean of the `low` models."""

    def build(v: Values) -> list[Comparison]:
        if not high or not low:  # every model of a side left out (collapsed)
            raise KeyError(f"a model on each side of '{what}' (the others collapsed)")
        a = mean_of([value_of(v, m, key) for m in high])
        b = mean_of([value_of(v, m, key) for m in low])
        return [Comparison(what, a - b)]

    return build


def comparable(keys: Sequence[str], a: str, b: str, margin: float) -> Builder:
    """a and b are within `margin` of each other on every key."""

    def build(v: Values) -> list[Comparison]:
        return [
            close(
                f"{margin:g} − |{k} {L[a]} − {L[b]}|", value_of(v, a, k), value_of(v, b, k), margin
            )
            for k in keys
        ]

    return build


def close_relative(key: str, a: str, b: str, fraction: float) -> Builder:
    """a and b are within `fraction` of their mean of each other."""

    def build(v: Values) -> list[Comparison]:
        x, y = value_of(v, a, key), value_of(v, b, key)
        margin = fraction * 0.5 * (x.mean + y.mean)
        return [close(f"{margin:.3g} − |{key} {L[a]} − {L[b]}|", x, y, margin)]

    return build


def reconstructs_as_well(reference: str, models: Sequence[str]) -> Builder:
    """Each model's reconstruction error is at most (1 + tolerance) times the reference's."""

    def build(v: Values) -> list[Comparison]:
        ref = value_of(v, reference, "reconstruction").scaled(1.0 + RECON_TOLERANCE)
        return [
            Comparison(
                f"{1 + RECON_TOLERANCE:g} × recon {L[reference]} − recon {L[m]}",
                ref - value_of(v, m, "reconstruction"),
            )
            for m in models
        ]

    return build


def rate_ratio(reference: str, models: Sequence[str]) -> Builder:
    """Each model's rate lies between RATE_RATIO times the reference's rate."""
    low, high = RATE_RATIO

    def build(v: Values) -> list[Comparison]:
        ref = value_of(v, reference, "rate")
        out = []
        for m in models:
            rate = value_of(v, m, "rate")
            out.append(
                Comparison(f"rate {L[m]} − {low:g} × {L[reference]}", rate - ref.scaled(low))
            )
            out.append(
                Comparison(f"{high:g} × rate {L[reference]} − {L[m]}", ref.scaled(high) - rate)
            )
        return out

    return build


def linear(terms: Sequence[tuple[float, Estimate]]) -> Estimate:
    """sum_i c_i x_i of independent estimates (Welch-Satterthwaite degrees of freedom)."""
    scaled = [x.scaled(c) for c, x in terms]
    se = math.sqrt(sum(x.se**2 for x in scaled))
    mean = sum(x.mean for x in scaled)
    return Estimate(mean, se, min(x.n for x in scaled), welch(*scaled))


def pair_closer_than_others(key: str, a: str, b: str, others: Sequence[str]) -> Builder:
    """ "The difference between a and b is small, the difference with the others is high": for
    each other model m, |m − mean(a, b)| − |a − b| > 0. Free of any offset common to all models
    (a Parzen NLL moves with the pixel scale), so it needs no margin in the quantity's units. The
    standard error linearises each |.| at the sign of its mean."""

    def build(v: Values) -> list[Comparison]:
        x, y = value_of(v, a, key), value_of(v, b, key)
        s_pair = 1.0 if x.mean >= y.mean else -1.0
        out = []
        for m in others:
            z = value_of(v, m, key)
            s_m = 1.0 if z.mean >= 0.5 * (x.mean + y.mean) else -1.0
            # s_m (z − (x + y) / 2) − s_pair (x − y), in terms of the independent z, x, y
            d = linear([(s_m, z), (-0.5 * s_m - s_pair, x), (-0.5 * s_m + s_pair, y)])
            out.append(Comparison(f"|{key} {L[m]} − mean| − |{L[a]} − {L[b]}|", d))
        return out

    return build


def ordered(key: str, models: Sequence[str]) -> Builder:
    """`key` decreases along `models` (each one's above the next one's)."""

    def build(v: Values) -> list[Comparison]:
        return [above(key, a, b)(v)[0] for a, b in pairwise(models)]

    return build


def every(*builders: Builder) -> Builder:
    """All comparisons of several builders together."""

    def build(v: Values) -> list[Comparison]:
        return [c for b in builders for c in b(v)]

    return build
