"""k-NN entropy and KL(q(z) || p(z)) against closed forms."""

import math

import pytest
import torch

from vimae.metrics import kl_to_prior, knn_entropy
from vimae.prior import build_prior

N = 5000


@pytest.mark.parametrize("name", ["normal", "logistic"])
@pytest.mark.parametrize("d", [2, 8])
def test_knn_entropy_within_3_percent_of_exact(name: str, d: int) -> None:
    prior = build_prior(name, d)
    z = prior.sample(N, generator=torch.Generator().manual_seed(d))
    exact = prior.entropy()  # normal: d/2 log(2 pi e); logistic: d (log s + 2)
    assert knn_entropy(z, k=5) == pytest.approx(exact, rel=0.03)


def test_knn_entropy_of_scaled_samples_shifts_by_d_log_scale() -> None:
    z = torch.randn(N, 3, generator=torch.Generator().manual_seed(0))
    # h(aZ) = h(Z) + d log a, exactly for the estimator too (distances scale by a).
    assert knn_entropy(2.0 * z) - knn_entropy(z) == pytest.approx(3 * math.log(2.0), abs=1e-9)


def test_kl_of_normal_against_itself_is_near_zero() -> None:
    prior = build_prior("normal", 4)
    z = prior.sample(N, generator=torch.Generator().manual_seed(1))
    assert abs(kl_to_prior(z, prior)) < 0.05


@pytest.mark.parametrize("shift", [1.0, 2.0])
def test_kl_of_shifted_normal_matches_closed_form(shift: float) -> None:
    d = 4
    prior = build_prior("normal", d)
    z = torch.randn(N, d, generator=torch.Generator().manual_seed(2)) + shift
    exact = 0.5 * d * shift**2  # KL(N(m, I) || N(0, I)) = |m|^2 / 2
    assert kl_to_prior(z, prior) == pytest.approx(exact, abs=0.05 + 0.03 * exact)


def test_kl_of_logistic_codes_against_normal_prior_is_positive_and_small() -> None:
    # Same mean and variance, different shape: KL = -h(logistic) + h(normal) per dim (exact,
    # since E log N(z) depends only on the second moment).
    d = 2
    z = build_prior("logistic", d).sample(N, generator=torch.Generator().manual_seed(3))
    exact = build_prior("normal", d).entropy() - build_prior("logistic", d).entropy()
    assert kl_to_prior(z, build_prior("normal", d)) == pytest.approx(exact, abs=0.05)
