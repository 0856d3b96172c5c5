"""The verdict rule and the claims built on it, on hand-made numbers and on the paper's tables."""

import math

import pytest

from vimae.paper import claims as C
from vimae.paper import numbers as paper
from vimae.paper import report
from vimae.paper.verdict import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    UNMEASURED,
    Comparison,
    Estimate,
    close,
    combine,
)


def test_estimate_is_the_mean_and_standard_error_over_seeds():
    e = Estimate.of([1.0, 2.0, 3.0])
    assert e.mean == 2.0 and e.se == pytest.approx(1.0 / math.sqrt(3)) and e.n == 3
    assert math.isnan(Estimate.of([5.0]).se)  # one seed: no uncertainty, nothing decided
    d = Estimate(3.0, 0.3) - Estimate(1.0, 0.4)
    assert (d.mean, d.se) == (2.0, pytest.approx(0.5))


@pytest.mark.parametrize(
    "mean, se, df, status",
    [
        (1.0, 0.4, 8, HOLDS),  # 2.5 se, more than t(8) = 2.31
        (1.0, 0.4, 4, INCONCLUSIVE),  # 2.5 se, less than t(4) = 2.78: 3 seeds a side
        (1.0, 0.5, math.inf, HOLDS),  # 2 se, more than the normal's 1.96
        (-1.0, 0.3, 4, FAILS),  # 3.3 se against
        (0.1, 0.0, math.inf, HOLDS),  # a published number: the sign decides
        (0.0, 0.0, math.inf, INCONCLUSIVE),
        (5.0, math.nan, 0, INCONCLUSIVE),  # one seed
    ],
)
def test_the_t_quantile_rule(mean, se, df, status):
    assert Comparison("x", Estimate(mean, se, 3, df)).status == status


def test_differences_carry_welch_degrees_of_freedom():
    a, b = Estimate.of([1.0, 2.0, 3.0]), Estimate.of([0.0, 0.5, 1.0])  # df 2 each
    d = a - b
    expected = (a.se**2 + b.se**2) ** 2 / (a.se**4 / 2 + b.se**4 / 2)
    assert d.df == pytest.approx(expected) and 2 < d.df <= 4
    assert (Estimate.of([1.0]) - b).df == 0.0  # one seed on a side: nothing decided
    assert Estimate.of([5.0]).text() == "5 (n = 1)"  # never "± nan"
    # the threshold that holds a true null at 5% with 3 seeds a side is t(4), not 2
    from vimae.paper.verdict import threshold

    assert threshold(4) == pytest.approx(2.776, abs=1e-3)
    assert threshold(math.inf) == pytest.approx(1.96, abs=1e-2)


def test_several_comparisons_need_all_and_report_the_deciding_one():
    good = Comparison("a", Estimate(3.0, 1.0))
    weak = Comparison("b", Estimate(1.0, 1.0))
    bad = Comparison("c", Estimate(-3.0, 1.0))
    assert combine([good, good]) == (HOLDS, good)
    assert combine([good, weak]) == (INCONCLUSIVE, weak)
    assert combine([good, weak, bad]) == (FAILS, bad)
    assert combine([]) == (UNMEASURED, None)


def test_closeness_is_judged_against_a_margin():
    assert close("c", Estimate(10.0, 0.1), Estimate(10.5, 0.1), 2.0).status == HOLDS
    assert close("c", Estimate(10.0, 0.1), Estimate(15.0, 0.1), 2.0).status == FAILS
    assert close("c", Estimate(10.0, 1.0), Estimate(11.5, 1.0), 2.0).status == INCONCLUSIVE


def _values(rows: dict[str, dict[str, tuple[float, float]]]) -> C.Values:
    return {m: {k: Estimate(*v) for k, v in q.items()} for m, q in rows.items()}


def test_one_sided_claims_are_no_stricter_than_the_paper():
    # VIMAE-n's entropy gap (0.3) is larger than the VAE's would need for "every VIMAE gap below
    # every ELBO gap" to fail, but "VIMAE does not have h(q) >> h(p)" only asks gap < 1 nat.
    v = _values({"vimae-n": {"entropy_gap": (0.3, 0.1)}, "vimae-l": {"entropy_gap": (0.1, 0.1)}})
    claim = C.judge("f1", "VIMAE no >>", "", C.below("entropy_gap", paper.VIMAE_MODELS, 1.0), v)
    assert claim.status == HOLDS and claim.paper_status == UNMEASURED
    v["vimae-n"]["entropy_gap"] = Estimate(0.9, 0.3)
    assert C.judge("f1", "", "", C.below("entropy_gap", ["vimae-n"], 1.0), v).status == INCONCLUSIVE


def test_a_missing_value_is_not_measured_and_named():
    claim = C.judge("t", "s", "r", C.above("fid", "vae", "vimae-l"), {"vae": {}}, {})
    assert claim.status == UNMEASURED and "fid of VAE" in claim.evidence
    assert claim.paper_status == UNMEASURED


def test_the_paper_s_own_table_3_supports_its_robustness_sentences():
    v = report.published_accuracy("table3")
    claims = {c.statement: c for c in report.robustness_claims("table3", v, "")}
    assert claims["VIMAE-l is the most robust"].paper_status == HOLDS
    assert claims["VIMAE-n suffers under large noise"].paper_status == HOLDS  # 86 vs 88 at 0.4
    elbo = claims[
        "the ELBO-based models learnt good representations, but not when corrupted data is "
        "given as input"
    ]
    assert elbo.paper_status == HOLDS
    # ours equal the paper's here, so the same verdicts: published numbers decide by sign
    assert all(c.status == c.paper_status for c in claims.values())


def test_the_paper_s_table_1_does_not_support_all_of_its_sentence():
    theirs = report.published(paper.PARZEN_NLL, "parzen")
    claim = C.judge(
        "table 1", "VAE and beta_H-VAE do not generate good samples", "",
        C.all_above("parzen", ["vae", "beta-vae-h"], paper.VIMAE_MODELS), theirs, theirs,
    )  # fmt: skip
    # VIMAE-n's 1228 is above the VAE's 1223 and beta_H-VAE's 1224: the table contradicts it
    assert claim.paper_status == FAILS and "VIMAE-n" in claim.paper_evidence


def test_noise_helps_vimae_l_on_cifar_in_the_paper_s_table_2():
    v = report.published_accuracy("table2")
    claims = {c.statement: c for c in report.robustness_claims("table2", v, "")}
    assert claims["noise even helps VIMAE-l (CIFAR-10)"].paper_status == HOLDS  # 34 > 32
