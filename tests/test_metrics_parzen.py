"""Parzen-window NLL against the closed form for Gaussian data."""

import math

import pytest
import torch

from vimae.metrics import parzen_log_density, parzen_nll, select_bandwidth


def _normal(n: int, d: int, tau: float, seed: int) -> torch.Tensor:
    return tau * torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def _expected_nll(d: int, tau: float, sigma: float) -> float:
    # With many samples the KDE of N(0, tau^2 I) samples is N(0, (tau^2 + sigma^2) I); the mean
    # NLL of N(0, tau^2 I) test points under it is in closed form.
    v = tau**2 + sigma**2
    return 0.5 * d * math.log(2 * math.pi * v) + 0.5 * d * tau**2 / v


@pytest.mark.parametrize("sigma", [0.3, 0.6])
def test_parzen_nll_of_gaussian_matches_closed_form(sigma: float) -> None:
    d, tau = 2, 1.0
    samples, test = _normal(10_000, d, tau, 0), _normal(2_000, d, tau, 1)
    nll = -parzen_log_density(test, samples, [sigma], block_size=1000)[0].mean().item()
    assert nll == pytest.approx(_expected_nll(d, tau, sigma), abs=0.05)


def test_density_integrates_like_one_gaussian_for_one_sample() -> None:
    x = torch.tensor([[0.5, -1.0]])
    s = torch.zeros(1, 2)
    log_p = parzen_log_density(x, s, [0.7])[0, 0].item()
    exact = -1.25 / (2 * 0.49) - math.log(2 * math.pi * 0.49)
    assert log_p == pytest.approx(exact, abs=1e-6)


def test_bandwidth_selection_and_nll_near_true_entropy() -> None:
    d, tau = 2, 0.5
    samples = _normal(4_000, d, tau, 2)
    valid, test = _normal(1_000, d, tau, 3), _normal(1_000, d, tau, 4)
    grid = [0.01, 0.03, 0.1, 0.3, 1.0]
    sigma, grid_nll = select_bandwidth(samples, valid, grid)
    assert sigma == 0.1 and len(grid_nll) == len(grid)
    out = parzen_nll(samples, test, valid, grid)
    entropy = 0.5 * d * math.log(2 * math.pi * math.e * tau**2)  # the best any density can do
    assert out["parzen_bandwidth"] == 0.1 and not out["parzen_bandwidth_at_grid_edge"]
    assert entropy < out["parzen_nll"] < entropy + 0.1
