"""Input corruptions of the robustness experiments (paper section 5.3, tables 2-4).

The paper measures how well features survive corrupted inputs, z ~ q(z | x + nu), with two kinds
of noise: additive Gaussian nu ~ N(0, sigma^2) per pixel (sigma in {0.2, 0.3, 0.4}) and Bernoulli
masking, each pixel (all channels of a colour pixel together) forced to 0 with probability p
(p in {0.2, 0.5}).

Choice made here (the paper is silent): Gaussian-noised images are clamped back to [0, 1] by
default, because every network of the toolkit was trained on inputs in [0, 1] and a sigmoid decoder
cannot produce anything outside it; `clamp=False` gives the raw x + nu.

A corruption is named by a short spec that the command line and result files share: "clean",
"gauss:0.2", "mask:0.5". `parse_corruption` turns a spec into a function of (x, generator).
"""

import math
from collections.abc import Callable

import torch

from vimae.errors import VimaeError
from vimae.registry import Registry

# A corruption maps (images (N, C, H, W), generator) to corrupted images of the same shape.
Corruption = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]
# A family maps its one parameter (sigma, p, ...) to a corruption.
CORRUPTIONS: Registry[Callable[[float], Corruption]] = Registry("corruption")

# The corruptions of SPEC section 6 (tables 3-4; table 2 uses a subset), in the paper's order.
PAPER_CORRUPTIONS = ("clean", "gauss:0.2", "gauss:0.3", "gauss:0.4", "mask:0.2", "mask:0.5")


def gaussian_noise(
    x: torch.Tensor, sigma: float, generator: torch.Generator | None = None, clamp: bool = True
) -> torch.Tensor:
    """x + nu with nu ~ N(0, sigma^2) i.i.d. per pixel; clamped to [0, 1] unless `clamp=False`."""
    if sigma < 0:
        raise VimaeError(f"the Gaussian noise level must be >= 0, got sigma={sigma}.")
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    out = x + sigma * noise
    return out.clamp_(0.0, 1.0) if clamp else out


def bernoulli_mask(
    x: torch.Tensor, p: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Each pixel set to 0 with probability p, all its channels together, otherwise kept.

    x: (N, C, H, W); one Bernoulli draw per (image, row, column), shared by the C channels, so a
    masked colour pixel is black rather than a random change of hue.
    """
    if not 0.0 <= p <= 1.0:
        raise VimaeError(f"the masking probability must lie in [0, 1], got p={p}.")
    shape = (x.shape[0], 1, *x.shape[2:]) if x.dim() == 4 else x.shape
    keep = torch.rand(shape, generator=generator, device=x.device) >= p
    return x * keep.to(x.dtype)


def _identity(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return x


@CORRUPTIONS.register("clean")
def _clean(_: float) -> Corruption:
    return _identity


@CORRUPTIONS.register("gauss")
def _gauss(sigma: float) -> Corruption:
    def corruption(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return gaussian_noise(x, sigma, generator)

    return corruption


@CORRUPTIONS.register("mask")
def _mask(p: float) -> Corruption:
    def corruption(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return bernoulli_mask(x, p, generator)

    return corruption


def parse_corruption(spec: str) -> Corruption:
    """The corruption named by `spec`: "clean", "gauss:SIGMA" or "mask:P"."""
    family, _, value = spec.partition(":")
    if family == "clean":
        if value:
            raise VimaeError(f"corruption 'clean' takes no parameter, got {spec!r}.")
        return CORRUPTIONS["clean"](0.0)
    try:
        parameter = float(value)
    except ValueError:
        raise VimaeError(
            f"cannot read corruption {spec!r}; write 'clean', 'gauss:SIGMA' or 'mask:P'."
        ) from None
    if not math.isfinite(parameter):
        raise VimaeError(f"corruption {spec!r} needs a finite level, got {value!r}.")
    make = CORRUPTIONS[family]
    corruption = make(parameter)
    corruption(torch.zeros(1), None)  # validates the parameter now, not mid-evaluation
    return corruption


def corrupt(x: torch.Tensor, spec: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply the corruption named by `spec` to images x: (N, C, H, W)."""
    return parse_corruption(spec)(x, generator)
