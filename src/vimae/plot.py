"""Pictures as PNG files: a function of arrays in, a file out (no model, no training)."""

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def _save(fig: plt.Figure, path: Path, tight: bool = True) -> Path:
    """Lay out (unless the figure places its own colorbar), write as PNG, free the figure."""
    if tight:
        fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


@dataclass
class CodePanel:
    """One panel of figure 1: 2-d codes (N, 2), their labels (N,), a title."""

    title: str
    codes: np.ndarray
    labels: np.ndarray


def plot_codes(panels: list[CodePanel], path: Path, prior_std: float = 1.0) -> Path:
    """Figure 1: scatter of 2-d codes per model coloured by label, with the prior's 1 and 2 std
    circles dashed, on a shared square window so that spreads compare across panels."""
    reach = max(4.0 * prior_std, *(float(np.quantile(np.abs(p.codes), 0.99)) for p in panels))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4), squeeze=False)
    theta = np.linspace(0, 2 * np.pi, 200)
    for ax, panel in zip(axes[0], panels, strict=True):
        ax.scatter(
            panel.codes[:, 0],
            panel.codes[:, 1],
            c=panel.labels,
            cmap="tab10",
            s=3,
            vmin=0,
            vmax=9,
            rasterized=True,
        )
        for r in (1.0, 2.0):
            ax.plot(r * prior_std * np.cos(theta), r * prior_std * np.sin(theta), "k--", lw=0.7)
        ax.set_xlim(-reach, reach)
        ax.set_ylim(-reach, reach)
        ax.set_aspect("equal")
        ax.set_title(panel.title, fontsize=9)
        ax.tick_params(labelsize=7)
    return _save(fig, path)


@dataclass
class ImagePanel:
    """One panel of a picture grid: images (N, C, H, W) in [0, 1] laid out `columns` wide."""

    title: str
    images: np.ndarray
    columns: int = 8


def interleave_rows(originals: np.ndarray, reconstructions: np.ndarray, columns: int) -> np.ndarray:
    """Figures 2-3 layout: rows of `columns` originals, each followed by its reconstructions, so
    that odd rows are originals and even rows reconstructions. (N, C, H, W) x2 -> (2N, C, H, W)."""
    rows = []
    for i in range(0, len(originals) - columns + 1, columns):
        rows += [originals[i : i + columns], reconstructions[i : i + columns]]
    return np.concatenate(rows)


def _tile(images: np.ndarray, columns: int) -> np.ndarray:
    """(N, C, H, W) -> one (rows * H, columns * W, C) mosaic with a 1-pixel white grid."""
    n, c, h, w = images.shape
    rows = -(-n // columns)
    canvas = np.ones((rows * (h + 1) + 1, columns * (w + 1) + 1, c), dtype=np.float32)
    for k in range(n):
        r, col = divmod(k, columns)
        top, left = 1 + r * (h + 1), 1 + col * (w + 1)
        canvas[top : top + h, left : left + w] = images[k].transpose(1, 2, 0)
    return canvas


def plot_image_grids(panels: list[ImagePanel], path: Path, title: str = "") -> Path:
    """Figures 2-3: one mosaic per model (reconstructions or prior samples) side by side."""
    fig, axes = plt.subplots(
        1, len(panels), figsize=(2.9 * len(panels), 3.5), squeeze=False, layout="constrained"
    )
    for ax, panel in zip(axes[0], panels, strict=True):
        mosaic = np.clip(_tile(panel.images, panel.columns), 0.0, 1.0)
        ax.imshow(mosaic[..., 0] if mosaic.shape[-1] == 1 else mosaic, cmap="gray", vmin=0, vmax=1)
        ax.set_title(panel.title, fontsize=8)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path, tight=False)


@dataclass
class AccuracyCurve:
    """Semi-supervised accuracy (%) of one model against one corruption family's level."""

    model: str
    family: str  # "gauss" (sigma) or "mask" (p)
    levels: list[float]
    means: list[float]
    stds: list[float]


def plot_accuracy_vs_noise(curves: list[AccuracyCurve], path: Path, title: str = "") -> Path:
    """One panel per corruption family: accuracy against noise level (0 = clean), one line per
    model, the spread over labelled subsets as error bars."""
    families = sorted({c.family for c in curves})
    fig, axes = plt.subplots(1, len(families), figsize=(4.2 * len(families), 3.4), squeeze=False)
    names = {"gauss": "Gaussian noise sigma", "mask": "Bernoulli masking p"}
    for ax, family in zip(axes[0], families, strict=True):
        for curve in (c for c in curves if c.family == family):
            ax.errorbar(curve.levels, curve.means, yerr=curve.stds, marker="o", ms=4, capsize=2,
                        label=curve.model)  # fmt: skip
        ax.set_xlabel(names.get(family, family))
        ax.set_ylabel("accuracy %")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


@dataclass
class RatePoint:
    """One run in the rate-distortion plane: its group (dataset), model and three measurements."""

    group: str
    model: str
    rate: float
    reconstruction: float
    mmd: float


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def plot_rate_distortion(points: list[RatePoint], path: Path) -> Path:
    """Every model together: rate (nats) on x, reconstruction error on y, colour log10 MMD to the
    prior; one panel per dataset, since distortions of different image sizes do not compare."""
    groups = list(dict.fromkeys(p.group for p in points))
    models = list(dict.fromkeys(p.model for p in points))
    log_mmd = np.log10(np.maximum([p.mmd for p in points], 1e-6))
    norm = matplotlib.colors.Normalize(vmin=float(log_mmd.min()), vmax=float(log_mmd.max()) + 1e-9)
    fig, axes = plt.subplots(
        1, len(groups), figsize=(4.2 * len(groups) + 1.0, 3.8), squeeze=False, layout="constrained"
    )
    for ax, group in zip(axes[0], groups, strict=True):
        for p, value in zip(points, log_mmd, strict=True):
            if p.group != group:
                continue
            marker = MARKERS[models.index(p.model) % len(MARKERS)]
            ax.scatter(p.rate, p.reconstruction, c=[value], cmap="viridis", norm=norm, s=60,
                       marker=marker, edgecolors="k", linewidths=0.5)  # fmt: skip
            ax.annotate(p.model, (p.rate, p.reconstruction), fontsize=7, xytext=(4, 3),
                        textcoords="offset points")  # fmt: skip
        ax.set_title(group, fontsize=9)
        ax.set_xlabel("rate E_x KL(q(z|x) || p(z)) (nats)")
        ax.set_ylabel("reconstruction (sum sq. err.)")
        ax.grid(alpha=0.3)
    mappable = matplotlib.cm.ScalarMappable(norm=norm, cmap="viridis")
    fig.colorbar(mappable, ax=axes[0].tolist(), label="log10 MMD(q(z), p(z))")
    return _save(fig, path, tight=False)
