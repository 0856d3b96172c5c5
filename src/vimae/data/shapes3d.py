"""DeepMind's 3dshapes from its HDF5 file: 480,000 rendered scenes, 64x64 colour, with the six
factors that drew each one (for the disentanglement metrics, `vimae.metrics.disentanglement`).

Layout: DATA_DIR/3dshapes/3dshapes.h5, the file of https://github.com/deepmind/3d-shapes
(nothing is downloaded: place it there). It holds `images` (N, 64, 64, 3) uint8 and `labels`
(N, 6) float64, the factor values in the order floor hue (10 values), wall hue (10), object hue
(10), scale (8), shape (4), orientation (15). Each column's values become integer indices (the
rank of the value among the column's distinct values, so the indices follow the values' order);
labels are the shape. Reading HDF5 needs h5py (`pip install 'vimae[h5]'`). The split is
`vimae.data.factorial`'s: a seeded tenth for "test", $VIMAE_FACTORS_LIMIT to cap each split; the
images of a split are read in blocks, so memory holds the split and one block, never the file.
"""

from pathlib import Path
from typing import Any

import numpy as np
import torch

from vimae.data.base import DATASETS, ImageData
from vimae.data.factorial import LIMIT_ENV, split_indices
from vimae.data.image import to_tensor
from vimae.data.memory import require_memory
from vimae.data.split import capped_name
from vimae.errors import VimaeError

FILE = "3dshapes.h5"
SOURCE = "https://github.com/deepmind/3d-shapes"
FACTORS = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
FACTOR_SIZES = (10, 10, 10, 8, 4, 15)
SHAPE = (64, 64, 3)
BLOCK = 10_000  # images read at a time (120 MB)


def _open(path: Path) -> Any:
    """The file opened read-only with h5py; one sentence when h5py or the file is missing."""
    try:
        import h5py
    except ImportError as err:
        raise VimaeError(
            f"Reading {path.name} needs h5py, which is not installed; run pip install 'vimae[h5]'."
        ) from err
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise VimaeError(
            f"{path} is not a readable HDF5 file ({err}); fetch {FILE} again from {SOURCE}."
        ) from err


def factor_indices(labels: np.ndarray, path: Path) -> np.ndarray:
    """(N, 6) factor values -> (N, 6) int64 indices: each value's rank within its column."""
    columns = []
    for name, size, values in zip(FACTORS, FACTOR_SIZES, labels.T, strict=True):
        distinct, index = np.unique(values, return_inverse=True)
        if len(distinct) > size:
            raise VimaeError(
                f"{path}: labels column {name} takes {len(distinct)} values, but 3dshapes' "
                f"{name} takes {size}; use the file from {SOURCE}."
            )
        columns.append(index.reshape(-1))
    return np.stack(columns, axis=1).astype(np.int64)


def _read_rows(images: Any, index: np.ndarray) -> np.ndarray:
    """images[index] for sorted `index`, read BLOCK rows at a time (only blocks that hold some)."""
    out = np.empty((len(index), *SHAPE), dtype=np.uint8)
    starts = index // BLOCK
    for block in np.unique(starts):
        rows = np.flatnonzero(starts == block)
        first = int(block) * BLOCK
        chunk = images[first : min(first + BLOCK, images.shape[0])]
        out[rows] = chunk[index[rows] - first]
    return out


@DATASETS.register("3dshapes")
def load_shapes3d(split: str, data_dir: Path) -> ImageData:
    """3dshapes' `split` (see the module doc): 3x64x64 images, labels the shape, six factors."""
    path = data_dir / "3dshapes" / FILE
    if not path.is_file():
        raise VimaeError(
            f"3dshapes needs {path}; download {FILE} from {SOURCE} and put it there (vimae "
            "cannot download it), or use the dataset 'shapes', which vimae draws itself."
        )
    with _open(path) as f:
        missing = [a for a in ("images", "labels") if a not in f]
        if missing:
            raise VimaeError(
                f"{path} has no dataset {' or '.join(missing)} (it has {', '.join(f)}); it is "
                f"not the 3dshapes file, which comes from {SOURCE}."
            )
        images, labels = f["images"], f["labels"]
        if images.shape[1:] != SHAPE or images.dtype != np.uint8:
            raise VimaeError(
                f"{path}: images is {images.dtype} of shape {images.shape}, but 3dshapes holds "
                f"uint8 images (N, 64, 64, 3); use the file from {SOURCE}."
            )
        n = images.shape[0]
        if labels.shape != (n, len(FACTORS)):
            raise VimaeError(
                f"{path}: labels has shape {labels.shape}, but 3dshapes has ({n}, "
                f"{len(FACTORS)}) factor values, one row per image; use the file from {SOURCE}."
            )
        try:
            factors = factor_indices(np.asarray(labels[...], dtype=np.float64), path)
            index, total = split_indices(n, split)
            require_memory(
                len(index) * int(np.prod(SHAPE)),
                f"3dshapes' {len(index)} {split} images",
                "set $VIMAE_FACTORS_LIMIT to read fewer of them.",
            )
            pixels = _read_rows(images, index)
        except OSError as err:
            raise VimaeError(
                f"{path} is damaged ({err}); fetch {FILE} again from {SOURCE}."
            ) from err
    chosen = torch.from_numpy(factors[index])
    return ImageData(
        capped_name("3dshapes", split, len(index), total, LIMIT_ENV),
        to_tensor(pixels),
        chosen[:, FACTORS.index("shape")].clone(),
        factors=chosen,
    )
