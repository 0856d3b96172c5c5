"""Parzen-window negative log-likelihood of test images under generated samples (table 1).

The protocol of Breuleux et al. (2011) and Goodfellow et al. (2014) that the paper's table 1
follows: a Gaussian kernel density estimate is fitted on M generated samples s_j,

    log p(x) = logsumexp_j(-|x - s_j|^2 / (2 sigma^2)) - log M - (D / 2) log(2 pi sigma^2),

its bandwidth sigma is the one of a grid that maximises the likelihood of validation images, and
the mean of -log p(x) over the test images is reported in nats. The validation images are a seeded,
class-stratified draw of `parzen_valid` images from the training split. M is `parzen_samples`, by
default min(10,000, 10 N) for a test split of N images: the paper's 10,000, fewer where the test
split is small.

Pixels are in [0, 1], so the numbers are per image on that scale (the paper does not state its
pixel scale; values are comparable between models evaluated here, not with table 1 as printed).

The result carries warnings when its number is not to be trusted: a test split of fewer than 500
images (a large standard error) or a bandwidth at the edge of the grid (the best one may lie
outside it).

Memory is bounded: distances are computed for blocks of images against blocks of samples and the
log-sum-exp is accumulated across sample blocks, never holding an N x M matrix.
"""

import math
from collections.abc import Sequence
from typing import Any

import torch

from vimae.metrics.base import MetricContext, metric

# Generated samples at most by default, per test image by default, and the test split below which
# the mean NLL is unreliable.
DEFAULT_SAMPLES = 10_000
SAMPLES_PER_TEST_IMAGE = 10
SMALL_TEST_SPLIT = 500


def _squared_distances(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """|x_i - s_j|^2 for x: (n, D), s: (m, D) -> (n, m), as one fused matrix product."""
    d2 = torch.addmm((x * x).sum(1, keepdim=True) + (s * s).sum(1), x, s.T, alpha=-2.0)
    return d2.clamp_min_(0.0)


@torch.no_grad()
def parzen_log_density(
    x: torch.Tensor,
    samples: torch.Tensor,
    bandwidths: Sequence[float],
    block_size: int = 1000,
) -> torch.Tensor:
    """log p(x_i) of the Gaussian KDE on `samples`, for each bandwidth: (len(bandwidths), n).

    x: (n, ...) and samples: (m, ...) are flattened to D features. Distances are float32 (the
    log-sum-exp subtracts its maximum, so nothing overflows); sums across blocks are float64.
    """
    x = x.flatten(1).float()
    samples = samples.flatten(1).float()
    n, dim = x.shape
    m = samples.shape[0]
    out = torch.full((len(bandwidths), n), -math.inf, dtype=torch.float64)
    for i in range(0, n, block_size):
        xb = x[i : i + block_size]
        for j in range(0, m, block_size):
            d2 = _squared_distances(xb, samples[j : j + block_size])  # (b, m_block)
            for k, sigma in enumerate(bandwidths):
                part = torch.logsumexp(d2 * (-0.5 / sigma**2), dim=1).double()
                out[k, i : i + block_size] = torch.logaddexp(out[k, i : i + block_size], part)
    sig = torch.tensor(list(bandwidths), dtype=torch.float64)
    norm = math.log(m) + 0.5 * dim * torch.log(2.0 * math.pi * sig**2)
    return out - norm.view(-1, 1)


def select_bandwidth(
    samples: torch.Tensor, valid: torch.Tensor, bandwidths: Sequence[float], block_size: int = 1000
) -> tuple[float, list[float]]:
    """The bandwidth of the grid with the lowest mean NLL of `valid`, and every grid NLL."""
    nll = (-parzen_log_density(valid, samples, bandwidths, block_size).mean(1)).tolist()
    best = min(range(len(nll)), key=nll.__getitem__)
    return float(bandwidths[best]), nll


def parzen_nll(
    samples: torch.Tensor,
    test: torch.Tensor,
    valid: torch.Tensor,
    bandwidths: Sequence[float],
    block_size: int = 1000,
) -> dict[str, Any]:
    """Mean NLL (nats) of `test` under the KDE of `samples`, sigma chosen on `valid`."""
    sigma, _ = select_bandwidth(samples, valid, bandwidths, block_size)
    nll = -parzen_log_density(test, samples, [sigma], block_size)[0]
    return {
        "parzen_nll": nll.mean().item(),
        "parzen_nll_sem": (nll.std() / math.sqrt(nll.numel())).item(),
        "parzen_bandwidth": sigma,
        "parzen_bandwidth_at_grid_edge": sigma in (min(bandwidths), max(bandwidths)),
    }


def sample_count(requested: int | None, test_images: int) -> int:
    """Generated samples of the Parzen window: `requested`, or by default scaled to the test split,
    min(DEFAULT_SAMPLES, SAMPLES_PER_TEST_IMAGE * N)."""
    if requested is None:
        return min(DEFAULT_SAMPLES, SAMPLES_PER_TEST_IMAGE * test_images)
    return requested


def parzen_warnings(
    test_images: int, bandwidth: float, bandwidths: Sequence[float], nll_sem: float
) -> list[str]:
    """Sentences saying why this Parzen NLL is not to be trusted; [] when none."""
    warnings = []
    if test_images < SMALL_TEST_SPLIT:
        warnings.append(
            f"the test split has only {test_images} images (fewer than {SMALL_TEST_SPLIT}), so "
            f"the mean NLL has a large standard error ({nll_sem:.3g} nats)"
        )
    if bandwidth in (min(bandwidths), max(bandwidths)):
        warnings.append(
            f"the chosen bandwidth {bandwidth:g} is at the edge of the grid "
            f"[{min(bandwidths):g}, {max(bandwidths):g}], so the best one may lie outside it; "
            "widen --parzen-bandwidths"
        )
    return warnings


@metric(
    "parzen",
    position=6,
    needs=("train",),
    options=("batch_size", "seed", "parzen_samples", "parzen_valid", "parzen_bandwidths"),
)
def _parzen(ctx: MetricContext) -> dict[str, Any]:
    opts = ctx.options
    valid = ctx.train().subset(opts.parzen_valid, seed=opts.seed).images
    n_samples = sample_count(opts.parzen_samples, len(ctx.test))
    samples = ctx.generated(n_samples)
    out = parzen_nll(samples, ctx.test.images, valid, opts.parzen_bandwidths)
    out |= {"parzen_samples": samples.shape[0], "parzen_valid_images": valid.shape[0]}
    warnings = parzen_warnings(
        len(ctx.test), out["parzen_bandwidth"], opts.parzen_bandwidths, out["parzen_nll_sem"]
    )
    if warnings:
        out["warnings"] = warnings
    return out
