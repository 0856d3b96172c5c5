"""Pictures from small synthetic arrays: each writes a real PNG, and the properties the eye checks
(legends present and off the data, no empty bands, error bars of the given length, one axes per
panel) hold."""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.container import ErrorbarContainer
from PIL import Image

from vimae.plotting.charts import (
    AccuracyCurve,
    CodePanel,
    ImagePanel,
    RatePoint,
    SweepSeries,
    accuracy_figure,
    codes_figure,
    image_grids_figure,
    interleave_rows,
    noise_sweep_figure,
    plot_accuracy_vs_noise,
    plot_codes,
    plot_image_grids,
    plot_noise_sweep,
    plot_rate_distortion,
    rate_distortion_figure,
)

LEVELS = [0.0, 0.0025, 0.005, 0.01, 0.02, 0.05]


@pytest.fixture(autouse=True)
def _close_figures():
    """Builders return open figures; close them so tests do not leak memory into each other."""
    yield
    plt.close("all")


def _png(path: Path) -> np.ndarray:
    """A written picture as (H, W, 3) floats in [0, 1], after checking it is a PNG of real size."""
    assert path.exists() and path.stat().st_size > 1024
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def _bar_lengths(ax: plt.Axes, axis: str) -> list[float]:
    """Full lengths (2 x the half-width) of the x or y error bars drawn on an axes."""
    lengths = []
    for container in ax.containers:
        if not isinstance(container, ErrorbarContainer):
            continue
        for collection in container.lines[2]:
            for segment in collection.get_segments():
                (x0, y0), (x1, y1) = segment
                if axis == "y" and x0 == x1:
                    lengths.append(abs(y1 - y0))
                if axis == "x" and y0 == y1:
                    lengths.append(abs(x1 - x0))
    return lengths


def _overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("classes", [10, 3])
def test_codes_legend_one_entry_per_class_beside_the_panels(tmp_path: Path, classes: int) -> None:
    rng = np.random.default_rng(0)
    panels = []
    for title in ("VAE", "VIMAE"):
        labels = rng.integers(0, classes, 300)
        codes = rng.normal(size=(300, 2)) + labels[:, None] * 0.3
        panels.append(CodePanel(title, codes, labels))
    names = [f"digit {k}" for k in range(10)]

    fig = codes_figure(panels, class_names=names)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == names[:classes]
    colours = {tuple(np.round(h.get_color(), 3)) for h in legend.legend_handles}
    assert len(colours) == classes
    fig.canvas.draw()
    box = legend.get_window_extent()
    assert not any(_overlaps(box, ax.get_window_extent()) for ax in fig.axes)

    image = _png(plot_codes(panels, tmp_path / f"codes-{classes}.png"))
    assert image.shape[1] > image.shape[0]


def test_a_codes_panel_says_how_many_codes_fall_outside_the_shared_window() -> None:
    """The window holds 99% of the coordinates; a long arm beyond it is counted in the title,
    and a panel without any says nothing."""
    rng = np.random.default_rng(0)
    tails = rng.normal(size=(1000, 2))
    tails[:30] += 40.0  # 3% of the codes far out
    panels = [
        CodePanel("tails", tails, np.zeros(1000, dtype=int)),
        CodePanel("inside", rng.normal(size=(1000, 2)) * 0.5, np.zeros(1000, dtype=int)),
    ]
    fig = codes_figure(panels)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].endswith("outside the window") and "of 1000" in titles[0]
    outside = int(titles[0].split("; ")[1].split(" of ")[0])
    assert 10 <= outside <= 30  # the window cuts into the arm, not the bulk
    assert titles[1] == "inside"


def test_codes_legend_without_names_lists_labels_present() -> None:
    panels = [CodePanel("a", np.zeros((4, 2)), np.array([7, 2, 2, 7]))]
    (legend,) = codes_figure(panels).legends
    assert [t.get_text() for t in legend.get_texts()] == ["2", "7"]


def _longest_white_run(image: np.ndarray) -> int:
    """Longest stretch of consecutive rows that are white across the whole width."""
    white = (image > 0.97).all(axis=(1, 2))
    longest = run = 0
    for row in white:
        run = run + 1 if row else 0
        longest = max(longest, run)
    return longest


@pytest.mark.parametrize(
    ("count", "columns", "channels", "title", "caption"),
    [
        (32, 8, 1, "prior samples", "VAE"),  # 4 x 8: a wide grid, the old blank bands
        (64, 8, 3, "odd rows originals, even rows reconstructions", "VAE\nrecon 238, rate 53"),
    ],
)
def test_image_grid_height_follows_the_grid(
    tmp_path: Path, count: int, columns: int, channels: int, title: str, caption: str
) -> None:
    rng = np.random.default_rng(0)
    # Mid-grey images, so that only layout (never content) can make a white row.
    images = rng.uniform(0.2, 0.8, size=(count, channels, 16, 16)).astype(np.float32)
    panels = [ImagePanel(caption, images, columns) for _ in range(4)]
    image = _png(plot_image_grids(panels, tmp_path / f"grid-{channels}.png", title))

    height, width = image.shape[:2]
    rows = count // columns  # each 16-pixel image plus its 1-pixel white line
    grid_aspect = (rows * 17 + 1) / (columns * 17 + 1)
    # Four mosaics side by side, plus at most half an inch per caption line and title.
    lines = caption.count("\n") + 2
    low = grid_aspect / 4
    high = (grid_aspect * 2.9 + 0.25 * lines + 0.2) / (4 * 2.9)
    assert low * 0.8 < height / width < high * 1.2
    # The old layout left bands of a quarter of the height above and below wide grids.
    assert _longest_white_run(image) < 0.08 * height


def test_image_grid_panels_of_different_shapes() -> None:
    wide = ImagePanel("wide", np.full((16, 1, 8, 8), 0.5), 8)
    tall = ImagePanel("tall", np.full((16, 1, 8, 8), 0.5), 4)
    fig = image_grids_figure([wide, tall])
    assert len(fig.axes) == 2
    for ax in fig.axes:
        x0, x1 = ax.get_xlim()
        y1, y0 = ax.get_ylim()
        box = ax.get_position()
        fig_w, fig_h = fig.get_size_inches()
        # Each axes box has its mosaic's aspect, so imshow fills it without letterboxing.
        assert box.height * fig_h / (box.width * fig_w) == pytest.approx((y1 - y0) / (x1 - x0))


def test_interleave_rows_alternates_originals_and_reconstructions() -> None:
    originals, reconstructions = np.zeros((16, 1, 2, 2)), np.ones((16, 1, 2, 2))
    rows = interleave_rows(originals, reconstructions, 8).reshape(4, 8, -1)
    assert rows[0::2].max() == 0 and rows[1::2].min() == 1


def _curves(sems: bool) -> list[AccuracyCurve]:
    curves = []
    for model in ("VAE", "VIMAE"):
        for family in ("gauss", "mask"):
            curves.append(
                AccuracyCurve(
                    model,
                    family,
                    [0.0, 0.2, 0.4],
                    [90.0, 85.0, 80.0],
                    [2.0, 2.0, 2.0],
                    [0.5, 0.5, 0.5] if sems else None,
                )
            )
    return curves


@pytest.mark.parametrize(("sems", "expected"), [(False, 4.0), (True, 1.0)])
def test_accuracy_error_bars_are_the_sem_when_given(
    tmp_path: Path, sems: bool, expected: float
) -> None:
    fig = accuracy_figure(_curves(sems), "title")
    assert len(fig.axes) == 2
    for ax in fig.axes:
        lengths = _bar_lengths(ax, "y")
        assert len(lengths) == 6 and np.allclose(lengths, expected)
        assert ("s.e.m." in ax.get_ylabel()) == sems
    _png(plot_accuracy_vs_noise(_curves(sems), tmp_path / "accuracy.png", "title"))


def _points(groups: int) -> list[RatePoint]:
    points = []
    for g in range(groups):
        # VIMAE-n and VIMAE-l land on the same spot, where text labels used to collide.
        points += [
            RatePoint(f"set{g}", "VAE", 10.0, 30.0, 0.03),
            RatePoint(f"set{g}", "beta_H-VAE", 0.1, 52.0, 1.6, 0.05, 0.8),
            RatePoint(f"set{g}", "VIMAE-n", 40.0, 15.0, 0.01, 1.5, 0.4),
            RatePoint(f"set{g}", "VIMAE-l", 40.2, 15.1, 0.008, rate_sem=1.0),
        ]
    return points


@pytest.mark.parametrize("groups", [1, 4, 5])
def test_rate_distortion_legend_colourbar_and_error_bars(tmp_path: Path, groups: int) -> None:
    fig = rate_distortion_figure(_points(groups))
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == groups
    for ax in panels:
        assert not ax.texts  # no labels beside points
        assert sorted(np.round(_bar_lengths(ax, "x"), 6)) == [0.1, 2.0, 3.0]
        assert sorted(np.round(_bar_lengths(ax, "y"), 6)) == [0.8, 1.6]
    (legend,) = fig.legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["VAE", "beta_H-VAE", "VIMAE-n", "VIMAE-l"]
    markers = {h.get_marker() for h in legend.legend_handles}
    assert len(markers) == 4
    (bar,) = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert "MMD" in bar.get_ylabel()
    fig.canvas.draw()
    box = legend.get_window_extent()
    assert not any(_overlaps(box, ax.get_window_extent()) for ax in panels)
    _png(plot_rate_distortion(_points(groups), tmp_path / f"rate-{groups}.png"))


def _sweep() -> list[SweepSeries]:
    rng = np.random.default_rng(0)

    def series(name: str, panel: str, start: float, slope: float) -> SweepSeries:
        means = [start + slope * np.log1p(v * 400) for v in LEVELS]
        return SweepSeries(name, LEVELS, means, list(rng.uniform(0.1, 0.5, len(LEVELS))), panel)

    return [
        series("rate (nats)", "rate", 40.0, -8.0),
        series("reconstruction", "reconstruction", 15.0, 3.0),
        series("accuracy % clean", "accuracy", 90.0, -1.0),
        series("MMD", "MMD", 0.05, -0.01),
        series("accuracy % gauss:0.4", "accuracy", 85.0, -1.5),
        series("accuracy % mask:0.5", "accuracy", 80.0, -2.0),
    ]


def test_noise_sweep_one_axes_per_panel_in_order(tmp_path: Path) -> None:
    fig = noise_sweep_figure(_sweep(), "sweep")
    assert [ax.get_title() for ax in fig.axes] == ["rate", "reconstruction", "accuracy", "MMD"]
    for ax in fig.axes:
        assert ax.get_xscale() == "symlog"
        assert np.allclose(ax.get_xticks(), LEVELS)
        assert ax.get_xlabel() == "encoder noise std"
    legends = [ax.get_legend() for ax in fig.axes]
    assert [legend is not None for legend in legends] == [False, False, True, False]
    assert len(legends[2].get_texts()) == 3
    assert len(_bar_lengths(fig.axes[2], "y")) == 3 * len(LEVELS)
    _png(plot_noise_sweep(_sweep(), tmp_path / "sweep.png", "sweep"))
