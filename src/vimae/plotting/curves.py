"""Charts of how runs went and how they compare with published numbers, each a function of arrays
in, a PNG out: loss curves against optimiser step (`loss_curves_figure`), and our numbers against
the paper's (`comparison_figure`).

As in `vimae.plotting.charts`, a `*_figure` builder returns the figure unsaved (tests read its axes
and legends) and a `plot_*` function writes it, here with bbox_inches="tight" so that legends
placed outside the panels are never cut.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from vimae.plotting.charts import DPI

TRAIN_COLOUR, VAL_COLOUR = "tab:blue", "tab:red"
MAX_COLUMNS = 5


def _save(fig: plt.Figure, path: Path) -> Path:
    """Write as PNG with every artist inside the picture, and free the figure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _grid(n: int, width: float, height: float) -> tuple[plt.Figure, list[plt.Axes]]:
    """n panels, at most MAX_COLUMNS a row, the unused ones hidden."""
    columns = max(1, min(n, MAX_COLUMNS))
    rows = max(1, math.ceil(n / columns))
    fig, axes = plt.subplots(
        rows, columns, figsize=(width * columns, height * rows), squeeze=False, layout="constrained"
    )
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


# ---------------------------------------------------------------- loss curves


@dataclass
class Curve:
    """One run's losses: training loss (N,) at steps (N,) and validation loss (M,) at steps (M,)
    (M = 0 for a run without held-out images)."""

    train_steps: np.ndarray
    train_loss: np.ndarray
    val_steps: np.ndarray
    val_loss: np.ndarray


@dataclass
class CurvePanel:
    """One model's panel: a curve per training seed."""

    title: str
    curves: list[Curve]


def _y_range(curves: Sequence[Curve]) -> tuple[float, float] | None:
    """A linear y range covering every point from each curve's second on (the first epoch's mean
    training loss, far above the rest, would flatten everything else), None when too few."""
    later = [
        np.asarray(y, dtype=float)[1:]
        for c in curves
        for y in (c.train_loss, c.val_loss)
        if len(y) > 2
    ]
    values = np.concatenate(later) if later else np.array([])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    low, high = float(values.min()), float(values.max())
    pad = 0.05 * (high - low) or 0.05 * abs(high) or 1.0
    return low - pad, high + pad


def loss_curves_figure(
    panels: list[CurvePanel], window: float | None = None, title: str = ""
) -> plt.Figure:
    """Training (solid) and validation (dashed) loss against optimiser step, one panel per
    model, one thin line per seed, on a linear y axis; `window` shades the last fraction of each
    panel's steps (where convergence is judged). One legend below the panels."""
    fig, axes = _grid(len(panels), 3.3, 2.7)
    for ax, panel in zip(axes, panels, strict=True):
        for curve in panel.curves:
            ax.plot(curve.train_steps, curve.train_loss, "-", color=TRAIN_COLOUR, lw=0.9, alpha=0.8)
            if len(curve.val_steps):
                ax.plot(curve.val_steps, curve.val_loss, "--", color=VAL_COLOUR, lw=0.9, alpha=0.8)
        last = max(
            (float(np.max(c.train_steps)) for c in panel.curves if len(c.train_steps)), default=0.0
        )
        if window and last > 0:
            ax.axvspan((1 - window) * last, last, color="0.85", zorder=0)
        limits = _y_range(panel.curves)
        if limits is not None:
            ax.set_ylim(*limits)
        ax.set_xlim(left=0)
        ax.set_title(panel.title, fontsize=9)
        ax.set_xlabel("optimiser step", fontsize=8)
        ax.set_ylabel("loss", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    handles = [
        Line2D([], [], color=TRAIN_COLOUR, ls="-", label="training loss (mean over each epoch)")
    ]
    if any(len(c.val_steps) for panel in panels for c in panel.curves):
        handles.append(
            Line2D([], [], color=VAL_COLOUR, ls="--", label="validation loss (end of each epoch)")
        )
    if window:
        handles.append(Patch(color="0.85", label=f"last {100 * window:g}% of steps"))
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=len(handles),
        fontsize=8,
        frameon=False,
    )
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_loss_curves(
    panels: list[CurvePanel], path: Path, window: float | None = None, title: str = ""
) -> Path:
    """The loss curves as a PNG (see `loss_curves_figure`)."""
    return _save(loss_curves_figure(panels, window, title), path)


# ---------------------------------------------------------------- ours against the paper


@dataclass
class ComparisonPoint:
    """One number of a paper's table: the paper's value, ours (mean) and our standard error (nan
    for one seed), the model and the table's column."""

    model: str
    column: str
    paper: float
    ours: float
    se: float


@dataclass
class ComparisonPanel:
    """One table: its points, and whether ours and the paper's share a scale (then the y = x
    line is drawn; else the title says to compare the order only)."""

    title: str
    points: list[ComparisonPoint]
    same_scale: bool


MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">")


def comparison_figure(panels: list[ComparisonPanel], models: Sequence[str]) -> plt.Figure:
    """Ours (y, with ± one standard error) against the paper's (x), one panel per table, a
    colour per model (in the order of `models`) and a marker per column, both named in legends
    below the panels; on a shared scale the line y = x is where a number is reproduced."""
    fig, axes = _grid(len(panels), 3.4, 3.2)
    colours = {m: plt.get_cmap("tab10")(k % 10) for k, m in enumerate(models)}
    columns = list(dict.fromkeys(p.column for panel in panels for p in panel.points))
    markers = {c: MARKERS[k % len(MARKERS)] for k, c in enumerate(columns)}
    for ax, panel in zip(axes, panels, strict=True):
        for p in panel.points:
            se = p.se if math.isfinite(p.se) else 0.0
            ax.errorbar(
                p.paper,
                p.ours,
                yerr=se,
                fmt=markers[p.column],
                color=colours.get(p.model, "k"),
                ms=5,
                capsize=2,
                lw=0.8,
            )
        if panel.same_scale and panel.points:
            values = [v for p in panel.points for v in (p.paper, p.ours)]
            low, high = min(values), max(values)
            pad = 0.05 * (high - low) or 1.0
            ax.plot([low - pad, high + pad], [low - pad, high + pad], "--", color="0.5", lw=0.8)
            ax.set_xlim(low - pad, high + pad)
            ax.set_ylim(low - pad, high + pad)
        ax.set_title(
            panel.title
            + ("" if panel.same_scale else "\n(different scales: compare the order only)"),
            fontsize=9,
        )
        ax.set_xlabel("paper", fontsize=8)
        ax.set_ylabel("ours (mean ± se)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    model_handles = [
        Line2D([], [], color=colours[m], marker="o", ls="none", label=m) for m in models
    ]
    column_handles = [
        Line2D([], [], color="0.3", marker=markers[c], ls="none", label=c) for c in columns
    ]
    diagonal = [Line2D([], [], color="0.5", ls="--", label="ours = paper")]
    fig.legend(
        handles=model_handles + diagonal,
        loc="outside lower center",
        ncols=len(model_handles) + 1,
        fontsize=8,
        frameon=False,
        title="model",
        title_fontsize=8,
    )
    fig.legend(
        handles=column_handles,
        loc="outside right center",
        fontsize=8,
        frameon=False,
        title="column",
        title_fontsize=8,
    )
    return fig


def plot_comparison(panels: list[ComparisonPanel], path: Path, models: Sequence[str]) -> Path:
    """Ours against the paper's as a PNG (see `comparison_figure`)."""
    return _save(comparison_figure(panels, models), path)
