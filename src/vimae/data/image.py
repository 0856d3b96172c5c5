"""Decoding image files to uint8 arrays and turning uint8 arrays into `ImageData` tensors.

Loaders keep images as uint8 (N, H, W, C) while they assemble a split, which is 4x smaller than
float32 and what the caches store, and convert once at the end.
"""

import io

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from vimae.errors import VimaeError


def open_image(data: bytes, name: str) -> Image.Image:
    """A decoded PIL image from file bytes; VimaeError naming `name` when they are no image."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise VimaeError(
            f"{name} is not a readable image ({err}); replace or remove that file."
        ) from err
    return image


def decode(data: bytes, name: str, mode: str) -> np.ndarray:
    """File bytes -> uint8 array (H, W) for mode "L" or (H, W, 3) for mode "RGB"."""
    return np.asarray(open_image(data, name).convert(mode), dtype=np.uint8)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) or (N, H, W, C) in 0..255 -> float32 (N, C, H, W) in [0, 1]."""
    if images.ndim == 3:
        images = images[..., None]
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    return x.to(torch.float32).div_(255.0).contiguous()
