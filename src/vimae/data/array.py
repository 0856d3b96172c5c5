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
array cannot run code.
"""

from pathlib import Path

import numpy as np
import torch

from vimae.data.base import DATASETS, DEFAULT_POOL, ImageData, PoolSplit
from vimae.errors import VimaeError

CHANNELS = (1, 3)


def to_images(array: np.ndarray, source: str) -> torch.Tensor:
    """A validated image array -> float32 (N, C, H, W) in [0, 1]; VimaeError naming `source`."""
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
        return torch.from_numpy(np.ascontiguousarray(array)).float().div_(255.0)
    if array.dtype != np.bool_ and not np.issubdtype(array.dtype, np.floating):
        raise VimaeError(
            f"{source} holds {array.dtype} values; store images as uint8 in 0..255 or as floats "
            "in [0, 1]."
        )
    images = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if not torch.isfinite(images).all() or images.min() < 0 or images.max() > 1:
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


def _read(path: Path) -> dict[str, np.ndarray]:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise VimaeError(f"{path} is not a readable .npy/.npz file ({err}).") from err
    if isinstance(loaded, np.ndarray):
        return {"x": loaded}
    with loaded:
        try:
            return {key: loaded[key] for key in loaded.files}
        except (OSError, ValueError, EOFError) as err:
            raise VimaeError(f"{path} is a damaged or pickled .npz file ({err}).") from err


@DATASETS.register("array")
def load_array(split: str, data_dir: Path, pool: PoolSplit = DEFAULT_POOL) -> ImageData:
    """The images (and labels) of the .npy/.npz file `data_dir`; see the module doc."""
    path = data_dir
    if path.suffix not in (".npy", ".npz") or not path.is_file():
        raise VimaeError(f"{path} is not a .npy or .npz file; point --data-dir at one.")
    arrays = _read(path)
    if "x_train" in arrays and "x_test" in arrays:
        x_key, y_key, pooled = f"x_{split}", f"y_{split}", False
    elif "x" in arrays or len(arrays) == 1:
        x_key, y_key = ("x", "y") if "x" in arrays else (next(iter(arrays)), "")
        pooled = True
    else:
        raise VimaeError(
            f"{path} holds {', '.join(sorted(arrays))}; name the arrays x_train, x_test (and "
            "y_train, y_test) or x (and y)."
        )
    images = to_images(arrays[x_key], f"{path}:{x_key}")
    labels = to_labels(arrays[y_key], len(images), f"{path}:{y_key}") if y_key in arrays else None
    data = ImageData(f"array {path.name}", images, labels)
    if pooled:
        data = data.take(pool.indices(len(data), split, labels))
    return ImageData(data.name, data.images.contiguous(), data.labels)
