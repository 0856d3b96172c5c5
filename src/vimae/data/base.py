"""What every dataset loader returns, the dataset registry, and where data files live.

Every loader maps its real file format to one in-memory `ImageData`: pixels of shape (N, C, H, W),
uint8 where the source is 8-bit and float32 in [0, 1] otherwise, and integer labels where the
dataset has them. Keeping the tensors in memory (every paper dataset fits as uint8) means a CPU
epoch is spent training, not in a DataLoader.
"""

import dataclasses
import hashlib
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vimae.config import DataConfig
from vimae.data.split import class_counts, stratified_indices, stratified_split
from vimae.errors import VimaeError
from vimae.registry import Registry

DATA_DIR_ENV = "VIMAE_DATA_DIR"
SPLITS = ("train", "test")


@dataclass
class ImageData:
    """A whole split in memory: `pixels` (N, C, H, W) and labels (N,) int64.

    `pixels` are uint8 (0..255) where the source is 8-bit, a quarter of float32's memory (CelebA
    at 64x64: 2.5 GB instead of 10), or float32 in [0, 1] (16-bit or float sources, arrays given
    by a user). Training converts each batch on its device (`batch`); `images` is the float32
    view in [0, 1] that the metrics read, made once on first use and kept.
    """

    name: str
    pixels: torch.Tensor
    labels: torch.Tensor | None = None
    # Which source drawing each image comes from, where one source gives several images (Omniglot's
    # four rotations of a drawing): held-out images must not share a drawing with labelled ones.
    groups: torch.Tensor | None = None
    # The generating factors of each image (N, K) as integer indices, where they are known (the
    # shapes dataset): what the disentanglement metrics compare the codes with.
    factors: torch.Tensor | None = None
    _unit: torch.Tensor | None = field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return self.pixels.shape[0]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.pixels.shape[1:]
        return (int(c), int(h), int(w))

    @property
    def images(self) -> torch.Tensor:
        """float32 (N, C, H, W) in [0, 1] (for uint8 pixels a copy, made once and kept)."""
        if self.pixels.dtype != torch.uint8:
            return self.pixels
        if self._unit is None:
            self._unit = to_unit(self.pixels)
        return self._unit

    def batch(
        self, index: torch.Tensor | slice, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """float32 images at `index` in [0, 1] on `device`: 8-bit pixels travel as uint8 and are
        converted there (a quarter of the copy), with the same values as `images`."""
        return to_unit(self.pixels[index].to(device, non_blocking=True))

    def subset(self, n: int | None, seed: int = 0) -> "ImageData":
        """A seeded draw of `n` examples, class-stratified when there are labels (see
        `vimae.data.split`); all of them when n is None. Never the first n: data is often ordered.
        """
        if n is None or n >= len(self):
            return self
        return self.take(stratified_indices(len(self), n, self.labels, seed))

    def take(self, index: np.ndarray | torch.Tensor) -> "ImageData":
        """The examples at `index`, in that order."""
        index = torch.as_tensor(index, dtype=torch.int64)
        labels = None if self.labels is None else self.labels[index]
        groups = None if self.groups is None else self.groups[index]
        factors = None if self.factors is None else self.factors[index]
        return ImageData(self.name, self.pixels[index], labels, groups, factors)

    def resized(self, size: int) -> "ImageData":
        """The same examples with square images of `size` (see `resize`), in the same dtype."""
        return dataclasses.replace(self, pixels=resize(self.pixels, size))

    def digest(self) -> str:
        """sha256 (hex) over the images' and labels' dtypes, shapes and bytes: identical data
        gives the same digest, any changed pixel or label another."""
        h = hashlib.sha256()
        for t in (self.pixels, self.labels):
            if t is None:
                h.update(b"no labels")
                continue
            arr = np.ascontiguousarray(t.detach().cpu().numpy())
            h.update(f"{arr.dtype}{arr.shape}".encode())
            h.update(arr)
        return h.hexdigest()

    def describe(self) -> dict[str, Any]:
        """What this data is, for the records of a run or an evaluation: name, image count and
        shape, and with labels the number of classes, the count of each and the extremes."""
        return describe_data(self)


def describe_data(data: Any) -> dict[str, Any]:
    """The record of `describe` for any split with name, len, image_shape and labels."""
    record: dict[str, Any] = {
        "name": data.name,
        "images": len(data),
        "image_shape": list(data.image_shape),
    }
    counts = class_counts(data.labels)
    if counts is not None:
        record["classes"] = len(counts)
        record["smallest_class"] = min(counts.values(), default=0)
        record["largest_class"] = max(counts.values(), default=0)
        record["class_counts"] = {str(k): v for k, v in counts.items()}
    return record


@dataclass(frozen=True)
class PoolSplit:
    """How data that comes as one pool (a folder without train/ and test/, an array without
    x_train and x_test) is split: a seeded, class-stratified `test_fraction` is the test split."""

    test_fraction: float = 0.1
    seed: int = 0

    @classmethod
    def of(cls, data: DataConfig) -> "PoolSplit":
        """The split a run's data settings ask for (training and evaluation must agree)."""
        return cls(data.test_fraction, data.seed)

    def indices(self, n: int, split: str, labels: torch.Tensor | None) -> np.ndarray:
        """Indices of `split` among the n pooled examples (train and test never overlap)."""
        train, test = stratified_split(n, self.test_fraction, labels, self.seed)
        return test if split == "test" else train


DEFAULT_POOL = PoolSplit()

# A loader takes (split, data_dir) and returns the split at its native resolution; loaders of
# pooled data also take `pool: PoolSplit`, and a loader may take `image_size` to resize as it
# decodes.
Loader = Callable[..., ImageData]
DATASETS: Registry[Loader] = Registry("dataset")


def default_data_dir() -> Path:
    """$VIMAE_DATA_DIR when set, else ./data: the place `--data-dir` overrides."""
    return Path(os.environ.get(DATA_DIR_ENV, "data"))


def to_unit(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float32 in [0, 1] (on their device); float pixels as they are."""
    if pixels.dtype != torch.uint8:
        return pixels
    return pixels.to(torch.float32).div_(255.0)


def to_pixels(images: torch.Tensor) -> torch.Tensor:
    """The inverse of `to_unit`: uint8 pixels as they are, floats in [0, 1] rounded to 8 bits."""
    if images.dtype == torch.uint8:
        return images
    return images.mul(255).round().clamp(0, 255).to(torch.uint8)


# Images resized per chunk: a uint8 split is never held as float32 whole.
RESIZE_CHUNK = 4096


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Square-resize (N, C, H, W) images with antialiased bilinear interpolation, kept in [0, 1]
    (float) or rounded back to 0..255 (uint8, chunk by chunk)."""
    if images.shape[-2:] == (size, size):
        return images
    out = torch.empty(
        (*images.shape[:2], size, size),
        dtype=torch.uint8 if images.dtype == torch.uint8 else torch.float32,
    )
    for start in range(0, images.shape[0], RESIZE_CHUNK):
        chunk = to_unit(images[start : start + RESIZE_CHUNK])
        small = F.interpolate(
            chunk, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        ).clamp_(0.0, 1.0)
        out[start : start + RESIZE_CHUNK] = to_pixels(small) if out.dtype == torch.uint8 else small
    return out


def load_dataset(
    name: str,
    split: str = "train",
    data_dir: str | Path | None = None,
    image_size: int | None = None,
    pool: PoolSplit | None = None,
    resize_all: bool = True,
) -> ImageData:
    """Load split `split` of dataset `name`, resized to `image_size` when the network needs it.

    `pool` says how a dataset that comes as one pool is split (default: a seeded stratified 10%
    is the test split); datasets with their own splits ignore it. With `resize_all=False` only
    images that cannot be loaded otherwise (a folder's files of many sizes) are resized, as they
    are decoded: the caller resizes the rest, after drawing a subset, say.
    """
    if split not in SPLITS:
        raise VimaeError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}.")
    loader = DATASETS[name]
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    options: dict[str, Any] = {}
    parameters = inspect.signature(loader).parameters
    if "pool" in parameters:
        options["pool"] = pool or DEFAULT_POOL
    if "image_size" in parameters:  # a loader that resizes as it decodes (images of many sizes)
        options["image_size"] = image_size
    data = loader(split, folder, **options)
    if image_size is not None and resize_all:
        data = data.resized(image_size)
    return data
