"""Reconstruction error: the paper's ||x - x_g||^2 (figures 2-3 captions, SPEC section 6).

Beside it, the error of the best constant guess, the mean image of the same images (their total
pixel variance): a model whose error comes close to it has learned nothing about the input
(`learned_nothing`), whatever its other numbers say.
"""

from typing import Any

import torch

from vimae.metrics.base import MetricContext, metric
from vimae.models import reconstruction_error as per_image_error
from vimae.models.batched import batched, model_device

CHUNK = 256  # images converted to float64 at a time: the error needs no float64 copy of a split


def reconstruction_error(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Mean over images of the sum over pixels of (x - x_hat)^2; x, x_hat: (N, C, H, W)."""
    if x.shape != x_hat.shape:
        raise ValueError(f"images {tuple(x.shape)} and reconstructions {tuple(x_hat.shape)} differ")
    total = sum(
        per_image_error(x[i : i + CHUNK].double(), x_hat[i : i + CHUNK].double()).sum().item()
        for i in range(0, len(x), CHUNK)
    )
    return total / len(x)


def mean_image_error(x: torch.Tensor) -> float:
    """The reconstruction error of predicting every image by their mean image: the sum over
    pixels of the variance of x (N, C, H, W) (with 1/N), the error of a model that learned
    nothing about the input."""
    mean = x.sum(0, keepdim=True, dtype=torch.float64) / len(x)
    total = sum(
        per_image_error(x[i : i + CHUNK].double(), mean).sum().item()
        for i in range(0, len(x), CHUNK)
    )
    return total / len(x)


# A reconstruction error within this fraction of the mean image's: the decoder outputs about the
# mean image whatever the input (issue 23: beta_H-VAE's 53.0 against MNIST's 52.85).
LEARNED_NOTHING_FRACTION = 0.95


def learned_nothing(reconstruction: float, baseline: float) -> bool:
    """Whether a reconstruction error is no better than 5% below the mean image's."""
    return reconstruction >= LEARNED_NOTHING_FRACTION * baseline


def reconstruct(model: Any, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """D(E(x)) with the evaluation encoder (no noise / posterior mean): (N, C, H, W)."""
    return batched(model.reconstruct, images, batch_size, model_device(model))


@metric("reconstruction", position=1, options=("batch_size",))
def _reconstruction(ctx: MetricContext) -> dict[str, Any]:
    x_hat = reconstruct(ctx.model, ctx.test.images, ctx.options.batch_size)
    return {
        "reconstruction": reconstruction_error(ctx.test.images, x_hat),
        "reconstruction_mean_image": mean_image_error(ctx.test.images),
    }
