"""A trained model applied to many images or codes in batches: encode, decode, generate.

Each function runs without autograd, moves each batch to the model's device and gathers the
results on the CPU in float32, so that a test split of 10,000 images never sits on a GPU at once.
These are the one way vimae encodes a dataset (the metrics, the commands, the scikit-learn
transformer) and decodes sampled codes.
"""

from collections.abc import Callable
from typing import Any

import torch

from vimae.models.sampler import PriorSampler, Sampler

BATCH_SIZE = 500  # images per forward pass


def model_device(model: Any) -> torch.device:
    """The device of the model's parameters (CPU for a parameter-free stand-in)."""
    params = getattr(model, "parameters", None)
    first = next(iter(params()), None) if params is not None else None
    return first.device if first is not None else torch.device("cpu")


@torch.no_grad()
def batched(
    fn: Callable[[torch.Tensor], Any],
    x: torch.Tensor,
    batch_size: int = BATCH_SIZE,
    device: torch.device | None = None,
) -> Any:
    """fn applied to consecutive batches of x (moved to `device`), outputs gathered on the CPU.

    Tuples of tensors (e.g. (mu, logvar)) are concatenated element-wise.
    """
    outs = []
    for i in range(0, x.shape[0], batch_size):
        out = fn(x[i : i + batch_size].to(device) if device is not None else x[i : i + batch_size])
        outs.append(tuple(o.cpu() for o in out) if isinstance(out, tuple) else out.cpu())
    if isinstance(outs[0], tuple):
        return tuple(torch.cat(parts) for parts in zip(*outs, strict=True))
    return torch.cat(outs)


def encode(
    model: Any,
    images: torch.Tensor,
    batch_size: int = BATCH_SIZE,
    draw: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Codes of images, (N, C, H, W) -> (N, d) float32 on the CPU.

    By default the evaluation codes (VIMAE without input noise, a VAE's posterior mean: the
    feature extractor); with `draw`, one z ~ q(z|x) per image (`Autoencoder.draw_codes`), the
    samples of the aggregate posterior q(z), drawn from `generator` (the deterministic code for
    VIMAE).
    """
    device = model_device(model)
    if draw and getattr(model, "codes_are_random", False):
        fn = lambda x: model.draw_codes(x, generator)  # noqa: E731
        return batched(fn, images, batch_size, device).float()
    return batched(model.encode, images, batch_size, device).float()


def draw_codes_outside_range(
    model: Any,
    images: torch.Tensor,
    generator: torch.Generator | None = None,
    batch_size: int = BATCH_SIZE,
) -> torch.Tensor:
    """One z ~ q(z|x) per image, as `encode(draw=True)`, for images that may leave [0, 1] (the
    unclamped Gaussian noise of a robustness reading): the model's networks are called past the
    public methods' range check, which would refuse them."""
    fn = lambda x: model.sampled_codes(x, generator)  # noqa: E731
    return batched(fn, images, batch_size, model_device(model)).float()


def decode(model: Any, z: torch.Tensor, batch_size: int = BATCH_SIZE) -> torch.Tensor:
    """Images (N, C, H, W) float32 on the CPU decoded from codes z (N, d)."""
    return batched(model.decode, z, batch_size, model_device(model)).float()


def generate(
    model: Any,
    n: int,
    generator: torch.Generator | None = None,
    batch_size: int = BATCH_SIZE,
    sampler: Sampler | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """n codes from `sampler` (the prior p(z) by default), drawn with `generator` on the CPU, and
    their decoded images: ((n, d), (n, C, H, W)) on the CPU."""
    sampler = sampler if sampler is not None else PriorSampler(model.prior)
    z = sampler.sample_codes(n, generator)
    return z, decode(model, z, batch_size)
