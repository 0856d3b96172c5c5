"""What a model accepts from a user: images and codes checked once, with one sentence each.

`vimae.fit` (through `vimae.as_image_data`) and a trained model's `encode`, `reconstruct`,
`draw_codes` and `decode` take what a notebook holds: a tensor or array of images (N, C, H, W) or
(N, H, W) as floats in [0, 1] of any precision, or uint8 in 0..255 (divided by 255). Values
outside [0, 1], NaN or infinity, an empty batch or a wrong shape are refused with the same
sentence wherever they are given, instead of codes around 100 or NaN codes.
"""

from typing import Any

import numpy as np
import torch

from vimae.errors import VimaeError

CHANNELS = (1, 3)


def unit_images(data: Any, what: str = "images") -> torch.Tensor:
    """`data` as float32 images (N, C, H, W) in [0, 1] on its own device, or one sentence.

    A tensor or array (N, C, H, W) or (N, H, W), C = 1 or 3, of floats in [0, 1] (any float
    dtype) or uint8 in 0..255. The result carries no autograd history.
    """
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(np.ascontiguousarray(data))
    if not isinstance(data, torch.Tensor):
        raise VimaeError(
            f"{what} must be a tensor or array (N, C, H, W) or (N, H, W), got a "
            f"{type(data).__name__}."
        )
    images = data.detach()
    if images.dim() == 3:
        images = images.unsqueeze(1)  # (N, H, W) -> (N, 1, H, W)
    if images.dim() != 4 or images.shape[1] not in CHANNELS:
        raise VimaeError(
            f"{what} must have shape (N, C, H, W) with C = 1 or 3, or (N, H, W); got "
            f"{tuple(data.shape)}."
        )
    if images.shape[0] == 0:
        raise VimaeError(f"{what} hold no images (shape {tuple(data.shape)}); give at least one.")
    if images.dtype == torch.uint8:
        return images.float() / 255
    if not images.is_floating_point():
        raise VimaeError(f"{what} must be floats in [0, 1] or uint8 in 0..255, got {images.dtype}.")
    images = images.float()
    if not torch.isfinite(images).all():
        raise VimaeError(f"{what} hold NaN or infinite values; images must lie in [0, 1].")
    low, high = images.min().item(), images.max().item()
    if low < 0 or high > 1:
        hint = " (they look like 0..255: divide by 255)" if high > 1.5 else ""
        raise VimaeError(
            f"{what} have values from {low:g} to {high:g}{hint}; images must lie in [0, 1]."
        )
    return images


def model_images(
    data: Any, image_shape: tuple[int, int, int], device: torch.device
) -> torch.Tensor:
    """`unit_images(data)` checked against the model's input shape (C, H, W), on `device`."""
    images = unit_images(data)
    if tuple(images.shape[1:]) != tuple(image_shape):
        raise VimaeError(
            f"the images are {tuple(images.shape[1:])} (C, H, W) but the model takes "
            f"{tuple(image_shape)}; give images of the kind it was trained on."
        )
    return images.to(device)


def model_codes(data: Any, latent_dim: int, device: torch.device) -> torch.Tensor:
    """Codes (N, d) as float32 on `device`, or one sentence: a tensor or array of finite
    numbers, one row of `latent_dim` values per image."""
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(np.ascontiguousarray(data))
    if not isinstance(data, torch.Tensor) or not (data.is_floating_point() or data.dtype.is_signed):
        raise VimaeError(f"codes must be a float tensor or array (N, {latent_dim}).")
    codes = data.detach().float()
    if codes.dim() == 1 and codes.shape[0] == latent_dim:
        codes = codes.unsqueeze(0)
    if codes.dim() != 2 or codes.shape[1] != latent_dim or codes.shape[0] == 0:
        raise VimaeError(f"codes must have shape (N, {latent_dim}); got {tuple(data.shape)}.")
    if not torch.isfinite(codes).all():
        raise VimaeError("codes hold NaN or infinite values.")
    return codes.to(device)
