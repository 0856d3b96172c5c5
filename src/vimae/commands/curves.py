"""`vimae plot`: a run's training curves, a function of its metrics.jsonl.

One panel per logged quantity (every numeric key of the step and epoch rows: loss, recon, mmd,
kl, seconds ...) against the training step: the logged batches as a thin line, the epoch means as
dots, and the validation value `val_<key>` of epoch rows in the panel of `<key>`. Rows of kind
"lr" (a resume that changed the learning rate) are dotted vertical lines.
"""

import argparse
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vimae.commands.common import OUTPUTS, finish, out_path, output_file
from vimae.config import load_config
from vimae.errors import VimaeError
from vimae.files import special_kind
from vimae.runs.folder import METRICS_FILE, read_log

if (
    TYPE_CHECKING
):  # vimae.plotting.charts (matplotlib, 0.4 s) is imported to draw, not when `vimae` starts
    from vimae.plotting.charts import CurvePanel

NOT_PLOTTED = ("kind", "epoch", "step", "seconds", "batches")  # bookkeeping, not loss terms
VALIDATION = "val_"


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "plot",
        help="training curves of a run as a PNG",
        description="Draw every quantity of RUN/metrics.jsonl against the step: logged "
        "batches, epoch means and validation values.",
    )
    p.add_argument(
        "run_dir", type=Path, metavar="RUN", help="a run folder written by `vimae train`"
    )
    p.add_argument(
        "--out", type=out_path, help="a .png file (default RUN/outputs/training-curves.png)"
    )
    p.set_defaults(handler=run_plot)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def curve_panels(
    rows: list[dict[str, Any]],
) -> tuple[list["CurvePanel"], list[tuple[int, str]]]:
    """Panels (in the order keys first appear) and learning-rate marks of a log's rows."""
    from vimae.plotting.charts import Curve, CurvePanel

    panels: dict[str, CurvePanel] = {}
    curves: dict[tuple[str, str], Curve] = {}
    labels = {"step": "logged batches", "epoch": "epoch mean", "validation": "validation"}
    marks = []
    for row in rows:
        if row.get("kind") == "lr":
            if _is_number(row.get("lr")):
                marks.append((row["step"], f"lr -> {row['lr']:g}"))
            continue
        if row.get("kind") not in ("step", "epoch"):
            continue
        for key, value in row.items():
            if key in NOT_PLOTTED or not _is_number(value):
                continue
            kind = row["kind"]
            name = key
            if key.startswith(VALIDATION):
                kind, name = "validation", key.removeprefix(VALIDATION)
            panel = panels.setdefault(name, CurvePanel(name))
            if (name, kind) not in curves:
                curves[name, kind] = Curve(labels[kind], [], [], kind)
                panel.curves.append(curves[name, kind])
            curves[name, kind].steps.append(row["step"])
            curves[name, kind].values.append(float(value))
    return list(panels.values()), marks


def run_plot(args: argparse.Namespace) -> int:
    from vimae.plotting.charts import plot_training_curves

    started = time.perf_counter()
    run_dir = Path(args.run_dir)
    config = load_config(run_dir)  # one sentence when this is no run folder
    if not (run_dir / METRICS_FILE).is_file() and special_kind(run_dir / METRICS_FILE) is None:
        raise VimaeError(
            f"{run_dir} has no {METRICS_FILE} (an exported model keeps no training log); pass "
            "a run folder of `vimae train`."
        )
    rows = read_log(run_dir / METRICS_FILE)
    panels, marks = curve_panels(rows)
    if not panels:
        raise VimaeError(
            f"{run_dir / METRICS_FILE} holds no logged step or epoch yet; train the run first."
        )
    out = output_file(args.out, run_dir / OUTPUTS / "training-curves.png", ".png")
    title = f"{config.model.name} on {config.data.dataset} ({run_dir.name})"
    plot_training_curves(panels, out, marks, title)
    steps = max(row["step"] for row in rows)
    names = ", ".join(p.title for p in panels)
    return finish(
        started, f"training curves of {len(rows)} log rows to step {steps}: {names}", [out]
    )
