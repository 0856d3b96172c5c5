"""DeepMind's dSprites from its .npz file: 737,280 white shapes on black, 64x64, with the five
factors that drew each one (for the disentanglement metrics, `vimae.metrics.disentanglement`).

Layout: DATA_DIR/dsprites/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz, the file of
https://github.com/deepmind/dsprites-dataset (nothing is downloaded: place it there). Only its
arrays `imgs` (N, 64, 64) uint8 in {0, 1} and `latents_classes` (N, 6) integer indices are read;
its `metadata` is a pickled dict and is never loaded (unpickling can run code). The factors kept
are the five that vary (colour is always white): shape (3), scale (6), orientation (40), x (32)
and y (32), as integer indices; labels are the shape. The split is `vimae.data.factorial`'s: a
seeded tenth for "test", $VIMAE_FACTORS_LIMIT to cap each split.
"""

from pathlib import Path

import numpy as np
import torch

from vimae.data.base import DATASETS, ImageData
from vimae.data.factorial import LIMIT_ENV, split_indices
from vimae.data.image import to_tensor
from vimae.data.npz import NpyError, Npz
from vimae.data.split import capped_name
from vimae.errors import VimaeError

FILE = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
SOURCE = "https://github.com/deepmind/dsprites-dataset"
# The six latents of the file, in its column order, and how many values each takes.
LATENTS = ("color", "shape", "scale", "orientation", "x", "y")
LATENT_SIZES = (1, 3, 6, 40, 32, 32)
FACTORS = LATENTS[1:]
SIDE = 64


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """`imgs` and `latents_classes` of the file, their shapes, dtypes and ranges checked."""
    try:
        with Npz(path) as npz:
            missing = [a for a in ("imgs", "latents_classes") if a not in npz.names]
            if missing:
                raise VimaeError(
                    f"{path} has no array {' or '.join(missing)} (it has {', '.join(npz.names)}); "
                    f"it is not the dSprites file, which comes from {SOURCE}."
                )
            images = npz.header("imgs")
            if (
                len(images.shape) != 3
                or images.shape[1:] != (SIDE, SIDE)
                or images.dtype != np.uint8
            ):
                raise VimaeError(
                    f"{path}: imgs is {images.dtype} of shape {images.shape}, but dSprites holds "
                    f"uint8 images (N, {SIDE}, {SIDE}); use the file from {SOURCE}."
                )
            n = images.shape[0]
            classes = npz.read("latents_classes")
            imgs = npz.read("imgs")
    except NpyError as err:
        raise VimaeError(
            f"{path} is damaged or not the dSprites file ({err}); fetch it again from {SOURCE}."
        ) from err
    if classes.shape != (n, len(LATENTS)) or not np.issubdtype(classes.dtype, np.integer):
        raise VimaeError(
            f"{path}: latents_classes is {classes.dtype} of shape {classes.shape}, but dSprites "
            f"has integer indices ({n}, {len(LATENTS)}); use the file from {SOURCE}."
        )
    low, high = classes.min(axis=0), classes.max(axis=0)
    bad = [
        f"{name} ({lo}..{hi}, expected 0..{size - 1})"
        for name, lo, hi, size in zip(LATENTS, low, high, LATENT_SIZES, strict=True)
        if lo < 0 or hi >= size
    ]
    if bad:
        raise VimaeError(
            f"{path}: latents_classes out of range for {', '.join(bad)}; it is not "
            f"the dSprites file ({SOURCE})."
        )
    if n and imgs.max() > 1:
        raise VimaeError(
            f"{path}: imgs holds values up to {imgs.max()}, but dSprites' pixels are "
            f"0 or 1; use the file from {SOURCE}."
        )
    return imgs, classes


@DATASETS.register("dsprites")
def load_dsprites(split: str, data_dir: Path) -> ImageData:
    """dSprites' `split` (see the module doc): 1x64x64 images, labels the shape, five factors."""
    path = data_dir / "dsprites" / FILE
    if not path.is_file():
        raise VimaeError(
            f"dSprites needs {path}; download {FILE} from {SOURCE} and put it there (vimae "
            "cannot download it), or use the dataset 'shapes', which vimae draws itself."
        )
    imgs, classes = _read(path)
    index, total = split_indices(len(imgs), split)
    pixels = imgs[index]
    np.multiply(pixels, 255, out=pixels)  # {0, 1} -> {0, 255}: ImageData's 8-bit pixels
    factors = torch.from_numpy(classes[index, 1:].astype(np.int64))
    return ImageData(
        capped_name("dSprites", split, len(index), total, LIMIT_ENV),
        to_tensor(pixels),
        factors[:, 0].clone(),
        factors=factors,
    )
