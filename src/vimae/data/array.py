"""`array`: images from a .npy or .npz file, given as the data directory itself (`--data-dir FILE`).

Accepted contents:
- FILE.npy: one image array, no labels, split as a pool (below);
- FILE.npz with x_train and x_test (and optionally y_train, y_test): the two splits;
- FILE.npz with x (and optionally y), or with one array only: one pool.
A pool is split by `PoolSplit`: a seeded, class-stratified fraction (--test-fraction, default
0.1) is the test split, the rest the training split.
Images are uint8 in 0..255 (divided by 255), or float/bool in [0, 1]; shaped (N, H, W),
(N, H, W, C) or (N, C, H, W) with C = 1 or 3 (the layout is read from where the 1 or 3 is). Labels
are non-negative integers, one per image. Files are opened without pickle support, so loading an
array cannot run code, and of a .npz only the arrays of the split asked for are read, each within
the size its member declares (see `npz`).
"""

from pathlib import Path

import numpy as np
import torch

from vimae.data.base import DATASETS, DEFAULT_POOL, ImageData, PoolSplit
from vimae.data.npz import NpyError, NpyTooLargeError, Npz, read_npy
from vimae.errors import VimaeError

CHANNELS = (1, 3)


def to_images(array: np.ndarray, source: str) -> torch.Tensor:
    """A validated image array -> (N, C, H, W) pixels: uint8 as they are (0..255, a quarter of
    float32's memory; see ImageData), floats as float32 in [0, 1]; VimaeError naming `source`."""
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4:
        first, last = array.shape[1] in CHANNELS, array.shape[3] in CHANNELS
        if first == last:
            raise VimaeError(
                f"{source} has shape {array.shape}, where the channel axis (1 or 3 channels) "
                "cannot be told from the others; store it as (N, H, W, C) or (N, C, H, W)."
            )
        if last:
            array = array.transpose(0, 3, 1, 2)
    else:
        raise VimaeError(
            f"{source} has shape {array.shape}; images must be (N, H, W), (N, H, W, C) or "
            "(N, C, H, W)."
        )
    if len(array) == 0:
        raise VimaeError(f"{source} holds no images.")
    if array.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(array))
    if array.dtype != np.bool_ and not np.issubdtype(array.dtype, np.floating):
        raise VimaeError(
            f"{source} holds {array.dtype} values; store images as uint8 in 0..255 or as floats "
            "in [0, 1]."
        )
    images = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if not torch.isfinite(images).all():
        bad = int((~torch.isfinite(images)).flatten(1).any(1).sum())
        raise VimaeError(
            f"{source} holds NaN or infinite values in {bad} of its {len(images)} images; "
            "replace them (images must lie in [0, 1])."
        )
    if images.min() < 0 or images.max() > 1:
        raise VimaeError(
            f"{source} has float values from {images.min().item():g} to {images.max().item():g}; "
            "scale them to [0, 1] or store uint8 in 0..255."
        )
    return images


def to_labels(array: np.ndarray, n: int, source: str) -> torch.Tensor:
    """A validated label array of n non-negative integers -> int64 (n,)."""
    if array.shape != (n,) or not np.issubdtype(array.dtype, np.integer) or (array < 0).any():
        raise VimaeError(
            f"{source} must hold {n} non-negative integer labels, one per image, but has "
            f"{array.dtype} values of shape {array.shape}."
        )
    return torch.from_numpy(array.astype(np.int64))


def _choose(path: Path, names: list[str], split: str) -> tuple[str, str, bool]:
    """(images name, labels name, whether the arrays are one pool to split) among `names`."""
    if "x_train" in names and "x_test" in names:
        return f"x_{split}", f"y_{split}", False
    if "x" in names:
        return "x", "y", True
    if len(names) == 1:
        return names[0], "", True
    raise VimaeError(
        f"{path} holds {', '.join(sorted(names))}; name the arrays x_train, x_test (and "
        "y_train, y_test) or x (and y)."
    )


def _read(path: Path, split: str) -> tuple[dict[str, np.ndarray], str, str, bool]:
    """The arrays `split` needs ({name: array}), the images' and labels' names and whether they
    are a pool; of a .npz only those two arrays are read, after every split's header was checked
    against the others (images of one shape in both splits, one label per image)."""
    try:
        if path.suffix == ".npy":
            return {"x": read_npy(path)}, "x", "y", True
        with Npz(path) as npz:
            x_key, y_key, pooled = _choose(path, npz.names, split)
            if not pooled:
                _check_splits(path, npz)
            images = npz.read(x_key)
            arrays = {x_key: images}
            if y_key in npz.names:
                arrays[y_key] = npz.read(y_key, expect=(len(images),))
            return arrays, x_key, y_key, pooled
    except NpyTooLargeError as err:
        raise VimaeError(
            f"{path} is too large to load ({err}); load a smaller part of it, or convert it with "
            "`vimae shards`, which streams it from disk."
        ) from err
    except NpyError as err:
        raise VimaeError(
            f"{path} is not a readable .npy/.npz file ({err}); save it with numpy.save or "
            "numpy.savez, without Python objects."
        ) from err


def _check_splits(path: Path, npz: Npz) -> None:
    """x_train and x_test hold images of one shape, and each y_* one label per image, read from
    the headers alone: a mismatch is one sentence now, not an error when the run is evaluated."""
    headers = {name: npz.header(name) for name in npz.names}
    train, test = headers["x_train"].shape, headers["x_test"].shape
    if train[1:] != test[1:]:
        raise VimaeError(
            f"{path} holds x_train images of shape {train[1:]} but x_test images of shape "
            f"{test[1:]}; both splits must hold images of one shape."
        )
    for split, shape in (("train", train), ("test", test)):
        labels = headers.get(f"y_{split}")
        if labels is not None and labels.shape != shape[:1]:
            raise VimaeError(
                f"{path} holds {shape[0]} x_{split} images but y_{split} of shape "
                f"{labels.shape}; give one label per image."
            )


@DATASETS.register("array")
def load_array(split: str, data_dir: Path, pool: PoolSplit = DEFAULT_POOL) -> ImageData:
    """The images (and labels) of the .npy/.npz file `data_dir`; see the module doc."""
    path = data_dir
    if path.suffix not in (".npy", ".npz") or not path.is_file():
        raise VimaeError(f"{path} is not a .npy or .npz file; point --data-dir at one.")
    arrays, x_key, y_key, pooled = _read(path, split)
    images = to_images(arrays[x_key], f"{path}:{x_key}")
    labels = to_labels(arrays[y_key], len(images), f"{path}:{y_key}") if y_key in arrays else None
    data = ImageData(f"array {path.name}", images, labels)
    if pooled:
        data = data.take(pool.indices(len(data), split, labels))
    return ImageData(data.name, data.pixels.contiguous(), data.labels)
