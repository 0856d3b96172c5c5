"""Pictures as PNG files: a function of arrays in, a file out (no model, no training).

Each picture has a `*_figure` builder that returns the matplotlib figure unsaved (so that tests and
notebooks can inspect its axes and legends) and a `plot_*` function that writes it as a PNG. Image
grids of a trained model's pictures (`vimae.plotting.imagegrid`, which needs no matplotlib) are
written pixel for pixel instead, with no axes, so that a picture's size follows from its rows and
columns.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, NullLocator

from vimae.files import atomic_write
from vimae.plotting.imagegrid import tile

DPI = 120


def _save(fig: plt.Figure, path: Path, tight: bool = False) -> Path:
    """Write as PNG (the figure's own layout engine places everything; `tight` also grows the
    canvas to whatever lies outside it, such as a legend below the panels) and free the figure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return path


@dataclass
class CodePanel:
    """One panel of figure 1: 2-d codes (N, 2), their integer class labels (N,), a title."""

    title: str
    codes: np.ndarray
    labels: np.ndarray


def _class_colour(label: int) -> tuple[float, float, float, float]:
    """tab10 colour of an integer class label (labels past 9 wrap around)."""
    return plt.get_cmap("tab10")(int(label) % 10)


def codes_figure(
    panels: list[CodePanel], prior_std: float = 1.0, class_names: Sequence[str] | None = None
) -> plt.Figure:
    """Figure 1 unsaved: scatter of 2-d codes per model coloured by class, with the prior's 1 and
    2 std circles dashed, on a shared square window so that spreads compare across panels (the
    window holds 99% of every panel's coordinates; a panel says how many codes fall outside), and
    one colour legend (an entry per class present in any panel, named by `class_names[label]`
    when given) to the right of the row, where it covers no codes."""
    reach = max(4.0 * prior_std, *(float(np.quantile(np.abs(p.codes), 0.99)) for p in panels))
    fig, axes = plt.subplots(
        1, len(panels), figsize=(3.0 * len(panels) + 1.2, 3.4), squeeze=False, layout="constrained"
    )
    theta = np.linspace(0, 2 * np.pi, 200)
    rng = np.random.default_rng(0)
    for ax, panel in zip(axes[0], panels, strict=True):
        labels = np.asarray(panel.labels).astype(int)
        # A random drawing order, so that no class systematically hides the ones drawn before it.
        order = rng.permutation(len(labels))
        colours = np.array([_class_colour(k) for k in range(10)])[labels[order] % 10]
        ax.scatter(panel.codes[order, 0], panel.codes[order, 1], c=colours, s=3, rasterized=True)
        for r in (1.0, 2.0):
            ax.plot(r * prior_std * np.cos(theta), r * prior_std * np.sin(theta), "k--", lw=0.7)
        ax.set_xlim(-reach, reach)
        ax.set_ylim(-reach, reach)
        ax.set_aspect("equal")
        outside = int((np.abs(panel.codes) > reach).any(axis=1).sum())
        clipped = f"; {outside} of {len(panel.codes)} outside the window" if outside else ""
        ax.set_title(panel.title + clipped, fontsize=9)
        ax.tick_params(labelsize=7)
    present = sorted({int(k) for p in panels for k in np.unique(np.asarray(p.labels).astype(int))})
    handles = [
        Line2D(
            [],
            [],
            marker="o",
            linestyle="none",
            markersize=6,
            color=_class_colour(k),
            label=class_names[k] if class_names is not None else str(k),
        )
        for k in present
    ]
    fig.legend(
        handles=handles,
        loc="outside right center",
        title="class",
        fontsize=8,
        title_fontsize=8,
        frameon=False,
        ncols=1 if len(handles) <= 12 else 2,
    )
    return fig


def plot_codes(
    panels: list[CodePanel],
    path: Path,
    prior_std: float = 1.0,
    class_names: Sequence[str] | None = None,
) -> Path:
    """Figure 1 as a PNG (see `codes_figure`)."""
    return _save(codes_figure(panels, prior_std, class_names), path)


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


# Inches: outer margin, gap between panels, height of a text line at `pt` points.
_MARGIN, _GAP = 0.05, 0.12


def _line(pt: float) -> float:
    return pt * 1.3 / 72


def image_grids_figure(
    panels: list[ImagePanel], title: str = "", panel_width: float = 2.9
) -> plt.Figure:
    """Figures 2-3 unsaved: one mosaic per model (reconstructions or prior samples) side by side,
    `panel_width` inches each. The figure's height follows the tallest mosaic's aspect plus the
    caption lines and title, and axes are placed by hand, so the picture has no empty bands."""
    mosaics = [np.clip(tile(p.images, p.columns), 0.0, 1.0) for p in panels]
    heights = [panel_width * m.shape[0] / m.shape[1] for m in mosaics]
    lines = max(p.title.count("\n") + 1 if p.title else 0 for p in panels)
    caption = lines * _line(8) + (0.06 if lines else 0.0)
    head = _line(10) if title else 0.0
    width = 2 * _MARGIN + len(panels) * panel_width + (len(panels) - 1) * _GAP
    height = 2 * _MARGIN + head + caption + max(heights)
    fig = plt.figure(figsize=(width, height))
    for k, (panel, mosaic, h) in enumerate(zip(panels, mosaics, heights, strict=True)):
        # Top-aligned: a shorter mosaic leaves its space below, under the captions' common line.
        bottom = _MARGIN + max(heights) - h
        left = _MARGIN + k * (panel_width + _GAP)
        ax = fig.add_axes((left / width, bottom / height, panel_width / width, h / height))
        ax.imshow(mosaic[..., 0] if mosaic.shape[-1] == 1 else mosaic, cmap="gray", vmin=0, vmax=1)
        ax.set_title(panel.title, fontsize=8, pad=3)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10, y=1 - _MARGIN / height, va="top")
    return fig


def plot_image_grids(panels: list[ImagePanel], path: Path, title: str = "") -> Path:
    """Figures 2-3 as a PNG (see `image_grids_figure`)."""
    return _save(image_grids_figure(panels, title), path)


@dataclass
class AccuracyCurve:
    """Semi-supervised accuracy (%) of one model against one corruption family's level: the mean,
    the spread over labelled subsets (`stds`) and, where several training seeds were run, the
    standard error of the mean over seeds (`sems`), which is then what the error bars show."""

    model: str
    family: str  # "gauss" (sigma) or "mask" (p)
    levels: list[float]
    means: list[float]
    stds: list[float]
    sems: list[float] | None = None


def accuracy_figure(curves: list[AccuracyCurve], title: str = "") -> plt.Figure:
    """Accuracy against noise unsaved: one panel per corruption family, accuracy against noise
    level (0 = clean), one line per model; error bars are the standard error over seeds where
    given, else the spread over labelled subsets, and the y label says which."""
    families = sorted({c.family for c in curves})
    fig, axes = plt.subplots(
        1, len(families), figsize=(4.2 * len(families), 3.4), squeeze=False, layout="tight"
    )
    names = {"gauss": "Gaussian noise sigma", "mask": "Bernoulli masking p"}
    for ax, family in zip(axes[0], families, strict=True):
        bars = set()
        for curve in (c for c in curves if c.family == family):
            spread = curve.sems if curve.sems is not None else curve.stds
            bars.add("s.e.m. over seeds" if curve.sems is not None else "std over subsets")
            ax.errorbar(
                curve.levels,
                curve.means,
                yerr=spread,
                marker="o",
                ms=4,
                capsize=2,
                label=curve.model,
            )
        ax.set_xlabel(names.get(family, family))
        ax.set_ylabel(f"accuracy % (bars: ± {', '.join(sorted(bars))})", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_accuracy_vs_noise(curves: list[AccuracyCurve], path: Path, title: str = "") -> Path:
    """Accuracy against noise as a PNG (see `accuracy_figure`)."""
    return _save(accuracy_figure(curves, title), path)


@dataclass
class RatePoint:
    """One run (or the mean over seeds) in the rate-distortion plane: its group (dataset), model,
    three measurements and, where several seeds were run, the standard errors drawn as bars."""

    group: str
    model: str
    rate: float
    reconstruction: float
    mmd: float
    rate_sem: float | None = None
    reconstruction_sem: float | None = None


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")


def rate_distortion_figure(points: list[RatePoint]) -> plt.Figure:
    """The rate-distortion plane unsaved: rate (nats) on x, reconstruction error on y, colour
    log10 MMD to the prior, one marker shape per model named in one legend below the panels
    (text labels beside points collide when models land together); one panel per dataset, since
    distortions of different image sizes do not compare, wrapped into rows beyond three."""
    groups = list(dict.fromkeys(p.group for p in points))
    models = list(dict.fromkeys(p.model for p in points))
    log_mmd = np.log10(np.maximum([p.mmd for p in points], 1e-6))
    norm = matplotlib.colors.Normalize(vmin=float(log_mmd.min()), vmax=float(log_mmd.max()) + 1e-9)
    columns = len(groups) if len(groups) <= 3 else int(np.ceil(np.sqrt(len(groups))))
    rows = -(-len(groups) // columns)
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(3.9 * columns + 1.0, 3.3 * rows + 0.5),
        squeeze=False,
        layout="constrained",
    )
    # Later models get smaller markers drawn on top: coincident runs show as nested shapes.
    sizes = np.linspace(110, 35, len(models)) if len(models) > 1 else np.array([70.0])
    used = axes.ravel()[: len(groups)]
    for ax in axes.ravel()[len(groups) :]:
        ax.remove()
    for k, (ax, group) in enumerate(zip(used, groups, strict=True)):
        for p, value in zip(points, log_mmd, strict=True):
            if p.group != group:
                continue
            if p.rate_sem is not None or p.reconstruction_sem is not None:
                ax.errorbar(
                    p.rate,
                    p.reconstruction,
                    xerr=p.rate_sem,
                    yerr=p.reconstruction_sem,
                    fmt="none",
                    ecolor="0.3",
                    elinewidth=0.8,
                    capsize=2,
                    zorder=2,
                )
            i = models.index(p.model)
            ax.scatter(
                p.rate,
                p.reconstruction,
                c=[value],
                cmap="viridis",
                norm=norm,
                s=sizes[i],
                marker=MARKERS[i % len(MARKERS)],
                edgecolors="k",
                linewidths=0.6,
                zorder=3 + i / len(models),
            )
        ax.set_title(group, fontsize=10)
        ax.set_xlabel("rate (nats)", fontsize=9)
        if k % columns == 0:
            ax.set_ylabel("reconstruction error", fontsize=9)
        # Few ticks, so that labels of wide values (hundreds of nats) never run into each other.
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    handles = [
        Line2D(
            [],
            [],
            marker=MARKERS[i % len(MARKERS)],
            linestyle="none",
            markersize=float(np.sqrt(sizes[i])),
            markerfacecolor="0.85",
            markeredgecolor="k",
            label=model,
        )
        for i, model in enumerate(models)
    ]
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=min(len(models), 6),
        fontsize=9,
        frameon=False,
        title="rate = E_x KL(q(z|x) || p(z))\nreconstruction: sum of squared errors per image",
        title_fontsize=8,
    )
    mappable = matplotlib.cm.ScalarMappable(norm=norm, cmap="viridis")
    bar = fig.colorbar(mappable, ax=used.tolist(), shrink=0.9)
    bar.set_label("log10 MMD(q(z), p(z))", fontsize=9)
    bar.ax.tick_params(labelsize=8)
    return fig


def plot_rate_distortion(points: list[RatePoint], path: Path) -> Path:
    """The rate-distortion plane as a PNG (see `rate_distortion_figure`), cropped to everything
    drawn so that the legend below the panels is never cut."""
    return _save(rate_distortion_figure(points), path, tight=True)


@dataclass
class SweepSeries:
    """One measurement against the encoder-noise standard deviation: mean and standard error per
    level. Series with the same `panel` share one axes (e.g. "accuracy" holds several
    corruptions)."""

    name: str  # e.g. "rate (nats)", "accuracy % clean", "accuracy % gauss:0.4"
    levels: list[float]  # noise std; 0 (a deterministic encoder) is a level
    means: list[float]
    sems: list[float]
    panel: str


def noise_sweep_figure(series: list[SweepSeries], title: str = "") -> plt.Figure:
    """The encoder-noise sweep unsaved: one panel per distinct `panel` (first-appearance order),
    each series a line with standard-error bars, x on a symlog scale so that 0 and levels decades
    apart both show (linear below the smallest positive level), ticks at the levels."""
    panels = list(dict.fromkeys(s.panel for s in series))
    levels = sorted({float(v) for s in series for v in s.levels})
    positive = [v for v in levels if v > 0]
    linthresh = min(positive) if positive else 1.0
    fig, axes = plt.subplots(
        1, len(panels), figsize=(3.4 * len(panels), 3.3), squeeze=False, layout="constrained"
    )
    for ax, panel in zip(axes[0], panels, strict=True):
        members = [s for s in series if s.panel == panel]
        for s in members:
            ax.errorbar(s.levels, s.means, yerr=s.sems, marker="o", ms=4, capsize=2, label=s.name)
        ax.set_xscale("symlog", linthresh=linthresh, linscale=0.6)
        ax.set_xticks(levels, labels=[f"{v:g}" for v in levels])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.tick_params(axis="x", labelsize=7, labelrotation=45)
        ax.tick_params(axis="y", labelsize=8)
        ax.set_xlabel("encoder noise std", fontsize=9)
        ax.set_ylabel(members[0].name if len(members) == 1 else panel, fontsize=9)
        ax.set_title(panel, fontsize=10)
        ax.grid(alpha=0.3)
        if len(members) > 1:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_noise_sweep(series: list[SweepSeries], path: Path, title: str = "") -> Path:
    """The encoder-noise sweep as a PNG (see `noise_sweep_figure`)."""
    return _save(noise_sweep_figure(series, title), path)


@dataclass
class Curve:
    """One line of a training-curve panel: `values` at training `steps`, drawn by `kind`: "step"
    (logged batches, a thin line), "epoch" (epoch means, dots) or "validation" (squares, dashed)."""

    label: str
    steps: list[int]
    values: list[float]
    kind: str = "step"


@dataclass
class CurvePanel:
    """One axes of the training curves: a quantity (e.g. "loss") and its curves."""

    title: str
    curves: list[Curve] = field(default_factory=list)


_CURVE_STYLES = {
    "step": {"lw": 0.8, "alpha": 0.55},
    "epoch": {"marker": "o", "ms": 3, "lw": 1.3},
    "validation": {"marker": "s", "ms": 3, "lw": 1.3, "ls": "--"},
}


def training_curves_figure(
    panels: list[CurvePanel], marks: Sequence[tuple[int, str]] = (), title: str = ""
) -> plt.Figure:
    """Training curves unsaved: one panel per quantity against the training step, three panels
    to a row; a log y axis where a panel's values are positive and span more than a factor of
    50 (the first steps' loss would flatten the rest); dotted vertical lines at `marks`
    (step, label), e.g. where a resume changed the learning rate, named in the first panel."""
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(4.0 * columns, 2.9 * rows + 0.3),
        squeeze=False,
        layout="constrained",
    )
    for ax in axes.ravel()[len(panels) :]:
        ax.remove()
    for k, (ax, panel) in enumerate(zip(axes.ravel(), panels, strict=False)):
        for curve in panel.curves:
            ax.plot(curve.steps, curve.values, label=curve.label, **_CURVE_STYLES[curve.kind])
        values = np.array([v for c in panel.curves for v in c.values], dtype=float)
        values = values[np.isfinite(values)]
        if len(values) and values.min() > 0 and values.max() / values.min() > 50:
            ax.set_yscale("log")
        for step, label in marks:
            ax.axvline(step, color="0.4", ls=":", lw=1.0, label=label if k == 0 else None)
        ax.set_title(panel.title, fontsize=10)
        ax.set_xlabel("step", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if len(panel.curves) > 1 or (marks and k == 0):
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_training_curves(
    panels: list[CurvePanel], path: Path, marks: Sequence[tuple[int, str]] = (), title: str = ""
) -> Path:
    """Training curves as a PNG written atomically (see `training_curves_figure`)."""
    fig = training_curves_figure(panels, marks, title)
    try:
        atomic_write(Path(path), lambda tmp: fig.savefig(tmp, dpi=DPI, format="png"))
    finally:
        plt.close(fig)
    return Path(path)
