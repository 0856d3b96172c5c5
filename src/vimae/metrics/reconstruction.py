"""Reconstruction error: the paper's ||x - x_g||^2 (figures 2-3 captions, SPEC section 6)."""

from typing import Any

import torch

from vimae.metrics.base import MetricContext, metric
from vimae.models import reconstruction_error as per_image_error
from vimae.models.batched import batched, model_device


def reconstruction_error(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Mean over images of the sum over pixels of (x - x_hat)^2; x, x_hat: (N, C, H, W)."""
    if x.shape != x_hat.shape:
        raise ValueError(f"images {tuple(x.shape)} and reconstructions {tuple(x_hat.shape)} differ")
    return per_image_error(x.double(), x_hat.double()).mean().item()


def reconstruct(model: Any, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """D(E(x)) with the evaluation encoder (no noise / posterior mean): (N, C, H, W)."""
    return batched(model.reconstruct, images, batch_size, model_device(model))


@metric("reconstruction", position=1, options=("batch_size",))
def _reconstruction(ctx: MetricContext) -> dict[str, Any]:
    x_hat = reconstruct(ctx.model, ctx.test.images, ctx.options.batch_size)
    return {"reconstruction": reconstruction_error(ctx.test.images, x_hat)}
