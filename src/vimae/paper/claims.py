"""The paper's claims as stated comparisons, judged on our numbers and on the paper's own.

Each claim is the paper's sentence (SPEC section 8), the comparisons that test it and the rule of
`vimae.paper.verdict` (2 standard errors, conjunction over pairs, closeness within a margin). A
builder turns a table of values, model -> quantity -> `Estimate`, into comparisons; the same builder
runs on our means over seeds and on the paper's published numbers (no error bars: the sign decides),
so that the report can say where the paper's tables do not support its own sentence. A builder that
lacks a value raises KeyError and the claim is "not measured" (or "not in the paper's tables").

Claims are one-sided where the paper is, and no stricter than its words: "VIMAE does not have
h(q) >> h(p)" is tested for each VIMAE against a margin, not as "every VIMAE gap below every ELBO
gap". The thresholds that turn words into numbers are constants here, stated in the report.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vimae.paper import numbers as paper
from vimae.paper.verdict import UNMEASURED, Comparison, Estimate, close, combine, mean_of

Values = dict[str, dict[str, Estimate]]  # model -> quantity -> estimate
Builder = Callable[[Values], list[Comparison]]

MUCH_NATS = 1.0  # ">>" in "h(q(z)) >> h(p(z))": more than 1 nat above
RECON_TOLERANCE = 0.05  # "at least as well": at most 5% more squared error
RATE_RATIO = (1.5, 3.0)  # "about twice its rate"
CLOSE_POINTS = 2.0  # "comparable" accuracies: within 2 points
CLOSE_FID = 0.10  # "close" FIDs: within 10% of their mean
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


def judge(
    source: str,
    statement: str,
    rule: str,
    build: Builder,
    ours: Values,
    published: Values | None = None,
    note: str = "",
) -> Claim:
    """Run `build` on our values and on the paper's; each gives a verdict and its evidence."""
    status, evidence = _verdict(build, ours, "needs")
    if published is None:
        paper_status, paper_evidence = UNMEASURED, "the paper gives no numbers for this"
    else:
        paper_status, paper_evidence = _verdict(build, published, "not in the paper's tables:")
    return Claim(source, statement, rule, status, evidence, paper_status, paper_evidence, note)


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


def every(*builders: Builder) -> Builder:
    """All comparisons of several builders together."""

    def build(v: Values) -> list[Comparison]:
        return [c for b in builders for c in b(v)]

    return build
