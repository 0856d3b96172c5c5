"""Parzen-window NLL against the closed form for Gaussian data; the Parzen metric's validation
images, sample count and warnings."""

import math

import pytest
import torch
from conftest import Memorizer

from vimae.data import ImageData, load_dataset
from vimae.data.split import class_counts
from vimae.metrics import (
    METRICS,
    MetricContext,
    MetricOptions,
    parzen_log_density,
    parzen_nll,
    select_bandwidth,
)
from vimae.metrics import parzen as parzen_module


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


# --- the Parzen metric: validation images, sample count and warnings ---


def _parzen(test: ImageData, train: ImageData | None = None, **options) -> dict:
    bank = load_dataset("digits", "train").images
    ctx = MetricContext(Memorizer(bank), test, "digits", options=MetricOptions(**options))
    if train is not None:
        ctx._train = train  # the training split the metric draws its validation images from
    return METRICS["parzen"](ctx)


def test_parzen_validation_images_are_a_stratified_draw_of_the_training_split(
    monkeypatch, digits_train: ImageData
) -> None:
    ordered = digits_train.take(torch.argsort(digits_train.labels, stable=True))
    seen = []

    def spy(samples, test, valid, bandwidths, block_size=1000):
        seen.append(valid)
        return parzen_nll(samples, test, valid, bandwidths, block_size)

    monkeypatch.setattr(parzen_module, "parzen_nll", spy)
    test = load_dataset("digits", "test")
    out = _parzen(test, ordered, parzen_valid=100, parzen_samples=300)
    out_again = _parzen(test, ordered, parzen_valid=100, parzen_samples=300)
    _parzen(test, ordered, parzen_valid=100, parzen_samples=300, seed=1)
    assert out["parzen_valid_images"] == 100
    valid, again, other_seed = seen
    match = (valid.flatten(1)[:, None] == ordered.images.flatten(1)[None]).all(-1)  # (100, 1500)
    assert (match.sum(1) == 1).all() and (match.sum(0) <= 1).all()  # distinct training images
    counts = class_counts(ordered.labels[match.float().argmax(1)])
    shares = class_counts(ordered.labels)
    # Stratified: every class within one image of its share (a random draw strays further).
    assert all(abs(counts[c] - 100 * n / len(ordered)) < 1 for c, n in shares.items())
    assert torch.equal(valid, again) and not torch.equal(valid, other_seed)
    assert out == out_again


def test_parzen_sample_count_scales_to_the_test_split() -> None:
    assert parzen_module.sample_count(None, 297) == 2_970
    assert parzen_module.sample_count(None, 10_000) == 10_000
    assert parzen_module.sample_count(500, 297) == 500
    out = _parzen(load_dataset("digits", "test"), parzen_valid=100)
    assert out["parzen_samples"] == 2_970
    assert (
        _parzen(load_dataset("digits", "test"), parzen_valid=100, parzen_samples=400)[
            "parzen_samples"
        ]
        == 400
    )


def test_parzen_warnings_appear_exactly_when_they_should() -> None:
    grid = (0.1, 0.2, 0.3)
    assert parzen_module.parzen_warnings(500, 0.2, grid, 1.0) == []
    (small,) = parzen_module.parzen_warnings(499, 0.2, grid, 1.0)
    assert "499 images" in small
    for edge in (0.1, 0.3):
        (at_edge,) = parzen_module.parzen_warnings(500, edge, grid, 1.0)
        assert "edge of the grid" in at_edge


def test_parzen_metric_warns_of_a_small_test_split_and_an_edge_bandwidth(
    digits_train: ImageData,
) -> None:
    test = load_dataset("digits", "test")  # 297 images
    big_test = digits_train.subset(600, seed=1)
    fine = _parzen(big_test, parzen_valid=200, parzen_samples=1_000)
    assert not fine["parzen_bandwidth_at_grid_edge"] and "warnings" not in fine
    (small,) = _parzen(test, parzen_valid=200, parzen_samples=1_000)["warnings"]
    assert "297 images" in small
    edge = _parzen(big_test, parzen_valid=200, parzen_samples=1_000, parzen_bandwidths=(2.0, 3.0))
    assert edge["parzen_bandwidth"] == 2.0
    (at_edge,) = edge["warnings"]
    assert "edge of the grid" in at_edge
