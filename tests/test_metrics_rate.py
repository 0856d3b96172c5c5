"""Rate, reconstruction and MMD to the prior against closed forms."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from vimae.metrics import (
    estimate_rate,
    gaussian_rate,
    mmd,
    monte_carlo_rate,
    reconstruction_error,
)
from vimae.models.prior import build_prior


def _posterior(n: int = 400, d: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=gen), 0.5 * torch.randn(n, d, generator=gen) - 1.0


def test_rate_of_gaussian_posterior_is_mean_analytic_kl() -> None:
    mu, logvar = _posterior()
    # KL(N(mu, s^2) || N(0, 1)) = (mu^2 + s^2 - 1 - log s^2) / 2 per dimension
    expected = np.mean(
        [
            0.5 * sum(m * m + math.exp(lv) - 1 - lv for m, lv in zip(mr, lr, strict=True))
            for mr, lr in zip(mu.tolist(), logvar.tolist(), strict=True)
        ]
    )
    assert gaussian_rate(mu, logvar) == pytest.approx(expected, rel=1e-9)
    value, how = estimate_rate(mu, logvar, build_prior("normal", 3))
    assert how == "closed form" and value == pytest.approx(expected, rel=1e-9)


def test_monte_carlo_rate_agrees_with_closed_form_for_normal_prior() -> None:
    mu, logvar = _posterior()
    mc = monte_carlo_rate(
        mu, logvar, build_prior("normal", 3), 64, torch.Generator().manual_seed(1)
    )
    assert mc == pytest.approx(gaussian_rate(mu, logvar), rel=0.02)


def test_monte_carlo_rate_against_logistic_prior_matches_quadrature() -> None:
    mu, logvar = torch.tensor([[0.3]]), torch.tensor([[math.log(0.25)]])
    q = stats.norm(0.3, 0.5)
    p = stats.logistic(scale=math.sqrt(3) / math.pi)
    exact, _ = integrate.quad(lambda z: q.pdf(z) * (q.logpdf(z) - p.logpdf(z)), -10, 10)
    value, how = estimate_rate(
        mu, logvar, build_prior("logistic", 1), 20_000, torch.Generator().manual_seed(2)
    )
    assert how.startswith("Monte Carlo") and value == pytest.approx(exact, abs=0.01)


def test_reconstruction_error_is_mean_sum_of_squares() -> None:
    x = torch.zeros(2, 1, 2, 2)
    x_hat = torch.stack([torch.full((1, 2, 2), 0.5), torch.ones(1, 2, 2)])
    assert reconstruction_error(x, x_hat) == pytest.approx((4 * 0.25 + 4 * 1.0) / 2)


def test_mmd_of_prior_samples_is_near_zero_and_grows_with_a_shift() -> None:
    prior = build_prior("normal", 4)
    z = prior.sample(2000, generator=torch.Generator().manual_seed(0))
    near = mmd(z, prior, block_size=512, generator=torch.Generator().manual_seed(1))
    far = mmd(z + 1.0, prior, block_size=512, generator=torch.Generator().manual_seed(1))
    assert abs(near) < 0.01 and far > 10 * max(abs(near), 1e-3)


def test_the_vimae_rate_is_fixed_by_the_evaluation_seed(digits_train):
    """VIMAE's rate fits a Gaussian to noisy copies: the noise comes from the evaluation's seed,
    not from torch's global RNG, so the same seed gives the same rate whatever ran before."""
    from vimae.config import ModelConfig
    from vimae.metrics import METRICS, MetricContext, MetricOptions
    from vimae.models import build_model, resolve

    config = resolve(ModelConfig(name="vimae-l", arch="mlp", latent_dim=2), "digits", (1, 8, 8))
    torch.manual_seed(0)
    model = build_model(config).eval()
    test = digits_train.subset(100)
    rates = []
    for seed, global_seed in ((0, 1), (0, 2), (1, 1)):
        torch.manual_seed(global_seed)
        options = MetricOptions(seed=seed, rate_images=100, rate_copies=8)
        rates.append(METRICS["rate"](MetricContext(model, test, "digits", options=options))["rate"])
    assert rates[0] == rates[1] and rates[0] != rates[2]
