"""Priors against their closed forms."""

import math

import pytest
import torch

from vimae.models.prior import PRIORS, build_prior


def test_logistic_prior_has_unit_variance():
    torch.manual_seed(0)
    z = build_prior("logistic", 1).sample(1_000_000)
    assert abs(z.var().item() - 1.0) < 0.02
    assert abs(z.mean().item()) < 0.01


@pytest.mark.parametrize("name", PRIORS.names())
def test_every_prior_has_unit_variance(name):
    torch.manual_seed(1)
    z = build_prior(name, 4).sample(200_000)
    assert torch.allclose(z.var(0), torch.ones(4), atol=0.03)


@pytest.mark.parametrize("name", PRIORS.names())
def test_log_prob_integrates_to_one(name):
    prior = build_prior(name, 1)
    grid = torch.linspace(-30, 30, 600_001, dtype=torch.float64).unsqueeze(1)
    density = prior.log_prob(grid).exp()
    assert torch.trapezoid(density, grid[:, 0]).item() == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize("name", PRIORS.names())
def test_entropy_equals_monte_carlo(name):
    torch.manual_seed(2)
    prior = build_prior(name, 3)
    z = prior.sample(400_000).double()
    assert -prior.log_prob(z).mean().item() == pytest.approx(prior.entropy(), rel=5e-3)


def test_normal_entropy_closed_form():
    assert build_prior("normal", 8).entropy() == pytest.approx(4 * math.log(2 * math.pi * math.e))


def test_logistic_scale_is_sqrt3_over_pi():
    prior = build_prior("logistic", 1)
    # Density at 0 of Logistic(0, s) is 1 / (4 s).
    at_zero = prior.log_prob(torch.zeros(1, 1)).exp().item()
    assert at_zero == pytest.approx(math.pi / (4 * math.sqrt(3)))
