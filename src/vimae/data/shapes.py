"""A dSprites-like dataset drawn by vimae itself: white shapes on black, 28x28, with their five
generating factors known exactly (for the disentanglement metrics, `vimae.metrics.disentanglement`).

Factors (all discrete, each drawn uniformly and independently per image):

| factor | values |
|---|---|
| shape | square, ellipse (axes 1 and 1/2), equilateral triangle |
| scale | half-size 3, 4, 5 or 6 pixels |
| orientation | 6 angles in [0, pi/2): a range in which no shape looks the same at two angles |
| x, y | 8 positions each, centre 8 to 20 pixels |

Each pixel is the fraction of its 4 x 4 sub-pixel points inside the shape (anti-aliased edges).
Splits are deterministic: "train" is 20,000 images drawn with seed 0, "test" 5,000 with seed 1;
`render_shapes(n, seed)` makes any number. Labels are the shape; `ImageData.factors` holds all
five factors (N, 5) as integer indices. Nothing is downloaded.
"""

from pathlib import Path

import numpy as np
import torch

from vimae.data.base import DATASETS, ImageData

FACTORS = ("shape", "scale", "orientation", "x", "y")
SHAPES = ("square", "ellipse", "triangle")
SCALES = (3.0, 4.0, 5.0, 6.0)
ORIENTATIONS = tuple(np.pi / 2 * k / 6 for k in range(6))
POSITIONS = tuple(np.linspace(8.0, 20.0, 8))
SIZES = {"train": (20_000, 0), "test": (5_000, 1)}
SIDE = 28
SUPERSAMPLE = 4
_TRIANGLE_NORMALS = np.array([[np.cos(a), np.sin(a)] for a in np.deg2rad([270.0, 30.0, 150.0])])


def _inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether points (u, v) in the shape's own frame (unit half-size) lie inside it."""
    if shape == 0:
        return np.maximum(np.abs(u), np.abs(v)) <= 1.0
    if shape == 1:
        return u**2 + (v / 0.5) ** 2 <= 1.0
    # equilateral triangle inscribed in the unit circle: three half-planes at distance 1/2
    return np.all(
        u[..., None] * _TRIANGLE_NORMALS[:, 0] + v[..., None] * _TRIANGLE_NORMALS[:, 1] <= 0.5,
        axis=-1,
    )


def draw_factors(n: int, seed: int) -> np.ndarray:
    """n seeded, independent uniform draws of the five factor indices: (n, 5) int64."""
    rng = np.random.default_rng(seed)
    sizes = (len(SHAPES), len(SCALES), len(ORIENTATIONS), len(POSITIONS), len(POSITIONS))
    return np.stack([rng.integers(0, m, n) for m in sizes], axis=1).astype(np.int64)


def render(factors: np.ndarray) -> np.ndarray:
    """Images (n, 1, 28, 28) float32 in [0, 1] of factor indices (n, 5)."""
    offsets = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE
    grid = (np.arange(SIDE)[:, None] + offsets[None, :]).reshape(-1)  # sub-pixel coordinates
    ys, xs = np.meshgrid(grid, grid, indexing="ij")
    images = np.empty((len(factors), 1, SIDE, SIDE), dtype=np.float32)
    for i, (shape, scale, angle, x, y) in enumerate(factors):
        s, theta = SCALES[scale], ORIENTATIONS[angle]
        dx, dy = xs - POSITIONS[x], ys - POSITIONS[y]
        u = (np.cos(theta) * dx + np.sin(theta) * dy) / s  # rotate by -theta, then scale
        v = (-np.sin(theta) * dx + np.cos(theta) * dy) / s
        inside = _inside(int(shape), u, v).astype(np.float32)
        images[i, 0] = inside.reshape(SIDE, SUPERSAMPLE, SIDE, SUPERSAMPLE).mean(axis=(1, 3))
    return images


def render_shapes(n: int, seed: int = 0) -> ImageData:
    """n images of seeded factor draws, with labels (the shape) and all factors."""
    factors = draw_factors(n, seed)
    return ImageData(
        "shapes",
        torch.from_numpy(render(factors)),
        torch.from_numpy(factors[:, 0].copy()),
        factors=torch.from_numpy(factors),
    )


@DATASETS.register("shapes")
def load_shapes(split: str, data_dir: Path) -> ImageData:
    """The deterministic train (20,000) or test (5,000) split; `data_dir` is unused."""
    n, seed = SIZES["test" if split == "test" else "train"]
    return render_shapes(n, seed)
