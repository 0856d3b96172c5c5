"""Image mosaics written pixel for pixel: rows of a model's pictures (samples, reconstructions,
interpolations, traversals) as one PNG with a 1-pixel white grid, enlarged by a whole factor so
that small images stay visible and nothing is resampled. No matplotlib here: the commands that
write these start faster without it.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from vimae.files import atomic_write


def tile(images: np.ndarray, columns: int) -> np.ndarray:
    """(N, C, H, W) -> one (rows * H, columns * W, C) mosaic with a 1-pixel white grid."""
    n, c, h, w = images.shape
    rows = -(-n // columns)
    canvas = np.ones((rows * (h + 1) + 1, columns * (w + 1) + 1, c), dtype=np.float32)
    for k in range(n):
        r, col = divmod(k, columns)
        top, left = 1 + r * (h + 1), 1 + col * (w + 1)
        canvas[top : top + h, left : left + w] = images[k].transpose(1, 2, 0)
    return canvas


def grid_scale(height: int, min_cell: int = 32) -> int:
    """The whole factor that enlarges images `height` pixels high to at least `min_cell`."""
    return max(1, -(-min_cell // height))


def image_grid(rows: Sequence[np.ndarray], min_cell: int = 32) -> np.ndarray:
    """Rows of images, each (k, C, H, W) in [0, 1], as one uint8 mosaic (H', W', C): as many
    columns as the longest row (shorter rows end in blank cells), 1-pixel white lines between
    cells (see `tile`), the whole enlarged by `grid_scale(H, min_cell)` with nearest-neighbour
    pixels, so that 8x8 digits stay visible and nothing is resampled. A mosaic of r rows and c
    columns is scale * (r * (H + 1) + 1) pixels high and scale * (c * (W + 1) + 1) wide."""
    columns = max(len(row) for row in rows)
    c, h, w = np.asarray(rows[0]).shape[1:]
    blank = np.ones((1, c, h, w), dtype=np.float32)
    padded = [
        np.concatenate([np.asarray(r, np.float32)] + [blank] * (columns - len(r))) for r in rows
    ]
    mosaic = tile(np.concatenate(padded), columns)
    scale = grid_scale(h, min_cell)
    mosaic = mosaic.repeat(scale, axis=0).repeat(scale, axis=1)
    # A diverged model's NaN would cast to an arbitrary byte: show it black.
    return np.round(np.clip(np.nan_to_num(mosaic, nan=0.0), 0.0, 1.0) * 255).astype(np.uint8)


def save_image_grid(rows: Sequence[np.ndarray], path: Path, min_cell: int = 32) -> Path:
    """`image_grid(rows)` as a grey (one channel) or RGB PNG, written atomically."""
    mosaic = image_grid(rows, min_cell)
    picture = Image.fromarray(mosaic[..., 0] if mosaic.shape[-1] == 1 else mosaic)
    atomic_write(Path(path), lambda tmp: picture.save(tmp, format="PNG"))
    return Path(path)
