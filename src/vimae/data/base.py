"""What every dataset loader returns, the dataset registry, and where data files live.

Every loader maps its real file format to one in-memory `ImageData`: float32 images in [0, 1] of
shape (N, C, H, W) and integer labels where the dataset has them. Keeping the tensors in memory
(all paper datasets but CelebA fit) means a CPU epoch is spent training, not in a DataLoader.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from vimae.errors import VimaeError
from vimae.registry import Registry

DATA_DIR_ENV = "VIMAE_DATA_DIR"
SPLITS = ("train", "test")


@dataclass
class ImageData:
    """A whole split in memory. images: (N, C, H, W) float32 in [0, 1]; labels: (N,) int64."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.images.shape[1:]
        return (int(c), int(h), int(w))

    def subset(self, n: int | None) -> "ImageData":
        """The first `n` examples (all of them when n is None)."""
        if n is None or n >= len(self):
            return self
        labels = None if self.labels is None else self.labels[:n]
        return ImageData(self.name, self.images[:n], labels)


# A loader takes (split, data_dir) and returns the split at its native resolution.
Loader = Callable[[str, Path], ImageData]
DATASETS: Registry[Loader] = Registry("dataset")


def default_data_dir() -> Path:
    """$VIMAE_DATA_DIR when set, else ./data: the place `--data-dir` overrides."""
    return Path(os.environ.get(DATA_DIR_ENV, "data"))


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Square-resize (N, C, H, W) images with antialiased bilinear interpolation, kept in [0, 1]."""
    if images.shape[-2:] == (size, size):
        return images
    out = F.interpolate(
        images, size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
    return out.clamp_(0.0, 1.0)


def load_dataset(
    name: str,
    split: str = "train",
    data_dir: str | Path | None = None,
    image_size: int | None = None,
) -> ImageData:
    """Load split `split` of dataset `name`, resized to `image_size` when the network needs it."""
    if split not in SPLITS:
        raise VimaeError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}.")
    loader = DATASETS[name]
    data = loader(split, Path(data_dir) if data_dir is not None else default_data_dir())
    if image_size is not None:
        data = ImageData(data.name, resize(data.images, image_size), data.labels)
    return data
