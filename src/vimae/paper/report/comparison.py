"""The report's section that puts the paper's tables 1-5 (`vimae.paper.numbers`) beside ours:
one table row per column of a paper's table, each model's number ours / paper with both ranks, and
the agreement of the two orders (Spearman's rho); and a figure, ours against the paper's, one panel
per table. Accuracies (tables 2-4) share the paper's scale; Parzen NLL and FID come from smaller
networks, fewer images and possibly other features here, so only their order is compared."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from vimae.paper import claims as C
from vimae.paper import numbers as paper
from vimae.paper.page import Block
from vimae.paper.report.blocks import image_block, ok_settings
from vimae.paper.report.records import SettingResult, setting_values
from vimae.plotting.curves import ComparisonPanel, ComparisonPoint, plot_comparison


@dataclass(frozen=True)
class Column:
    """One column of one of the paper's tables and the quantity of ours it is compared with."""

    table: str  # "table 3"
    experiment: str  # the experiment that reproduces it ("table3")
    name: str  # the column ("clean", "cifar10", "Parzen NLL")
    quantity: str  # its key in `setting_values`
    numbers: dict[str, float | None]  # model -> the paper's number
    higher_is_better: bool
    same_scale: bool  # ours and the paper's directly comparable


def paper_columns() -> list[Column]:
    """Every column of tables 1-5, in the paper's order."""
    columns = [
        Column("table 1", "table1", "Parzen NLL (nats)", "parzen", paper.PARZEN_NLL, False, False)
    ]
    for name, dataset in (("table2", "CIFAR10"), ("table3", "MNIST"), ("table4", "Omniglot")):
        for spec in paper.SEMI_SUPERVISED_COLUMNS[name]:
            numbers = {m: row[spec] for m, row in paper.SEMI_SUPERVISED[name].items()}
            columns.append(
                Column(
                    f"table {name[-1]} ({dataset})", name, spec, f"acc:{spec}", numbers, True, True
                )
            )
    for dataset, numbers in paper.FID.items():
        columns.append(Column("table 5 (FID)", "table5", dataset, "fid", numbers, False, False))
    return columns


def ours_for(column: Column, results: dict[str, list[SettingResult]]) -> C.Values:
    """Our values for a column: the experiment's first setting that ran (for table 5, the one of
    the column's dataset)."""
    settings = ok_settings(results, column.experiment)
    if column.experiment == "table5":
        settings = [s for s in settings if s.setting.get("dataset") == column.name]
    return setting_values(settings[0]) if settings else {}


def ranks(values: dict[str, float], higher_is_better: bool, method: str) -> dict[str, float]:
    """model -> rank (1 = best) among `values`; ties share a rank per `method` (scipy's)."""
    models = list(values)
    x = np.array([values[m] for m in models], dtype=float)
    return dict(zip(models, rankdata(-x if higher_is_better else x, method=method), strict=True))


def spearman(ours: dict[str, float], theirs: dict[str, float]) -> float | None:
    """Spearman's rho of two orders of the same models (None: fewer than 3, or a constant one)."""
    models = [m for m in ours if m in theirs]
    a = rankdata([ours[m] for m in models])
    b = rankdata([theirs[m] for m in models])
    if len(models) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def _number(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def comparison_row(column: Column, values: C.Values) -> list[str]:
    """[table, column, better, a cell per model, agreement] of one column."""
    theirs = {m: float(v) for m, v in column.numbers.items() if v is not None}
    ours = {m: q[column.quantity] for m, q in values.items() if column.quantity in q}
    both = [m for m in paper.MODELS if m in theirs and m in ours]
    ours_rank = ranks({m: ours[m].mean for m in both}, column.higher_is_better, "min")
    paper_rank = ranks({m: theirs[m] for m in both}, column.higher_is_better, "min")
    cells = []
    for m in paper.MODELS:
        mine = ours[m].text(3) if m in ours else "–"
        published = _number(theirs[m]) if m in theirs else "–"
        cell = f"{mine} / {published}"
        if m in both:
            cell += f" (#{ours_rank[m]:.0f} / #{paper_rank[m]:.0f})"
        cells.append(cell)
    rho = spearman({m: ours[m].mean for m in both}, {m: theirs[m] for m in both})
    agreement = "–" if rho is None else f"ρ = {rho:+.2f}"
    if both and column.same_scale:
        gap = np.mean([abs(ours[m].mean - theirs[m]) for m in both])
        agreement += f"; mean |ours − paper| = {gap:.3g}"
    elif both:
        agreement += " (order only: different scales)"
    better = "higher" if column.higher_is_better else "lower"
    return [column.table, column.name, better, *cells, agreement]


def section_comparison(out: Path, results: dict[str, list[SettingResult]]) -> list[Block]:
    """The table of every column of tables 1-5, ours / paper, and the figure (drawn into
    OUT/figures/paper-vs-ours.png when any of ours is measured)."""
    rows, panels = [], {}
    for column in paper_columns():
        values = ours_for(column, results)
        rows.append(comparison_row(column, values))
        for model, number in column.numbers.items():
            estimate = values.get(model, {}).get(column.quantity)
            if number is None or estimate is None:
                continue
            panel = panels.setdefault(
                column.table, ComparisonPanel(column.table, [], column.same_scale)
            )
            point = ComparisonPoint(
                paper.LABELS[model], column.name, float(number), estimate.mean, estimate.se
            )
            panel.points.append(point)
    blocks = [
        Block(
            "p",
            "Every number of the paper's tables 1-5 beside ours: cells are ours (mean ± se over "
            "seeds) / the paper's, then each model's rank among the models both measure, ours / "
            "the paper's (#1 = best: highest accuracy, lowest Parzen NLL or FID; ties share the "
            "better rank). Ranks are of means: a difference within a standard error leaves the "
            "order uncertain, which the verdicts above take into account. Accuracies (%) are on "
            "the paper's scale; Parzen NLL and FID are not (smaller networks, fewer images and "
            "possibly other FID features here), so only their order is compared. Agreement: "
            "Spearman's ρ of the two orders (+1 the same order, −1 reversed).",
        ),
        Block(
            "table",
            header=[
                "table",
                "column",
                "better",
                *(paper.LABELS[m] for m in paper.MODELS),
                "agreement",
            ],
            rows=rows,
        ),
    ]
    if panels:
        path = plot_comparison(
            list(panels.values()),
            out / "figures" / "paper-vs-ours.png",
            [paper.LABELS[m] for m in paper.MODELS],
        )
        blocks.append(
            image_block(
                out,
                path,
                "Ours (mean ± se over seeds) against the paper's number, one panel per table, a "
                "colour per model and a marker per column; on the accuracy panels the dashed line "
                "is ours = paper; Parzen NLL and FID are on other scales: compare the order only.",
            )
        )
    return blocks
