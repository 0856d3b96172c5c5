"""The report's "Training and convergence" section: each setting once (experiments that share a
setting's runs share its entry), with the class counts of the data it trained, was validated and
was tested on, a table of its runs' final losses and convergence by the held-out loss
(`records.CONVERGENCE_RULE`), and a figure of every run's training and validation loss against
optimiser step."""

import re
from pathlib import Path

import numpy as np

from vimae.paper import numbers as paper
from vimae.paper.page import Block
from vimae.paper.report.blocks import (
    converged_text,
    image_block,
    setting_class_counts,
)
from vimae.paper.report.records import (
    CONVERGED,
    CONVERGENCE_RULE,
    CONVERGENCE_WINDOW,
    Convergence,
    RunResult,
    SettingResult,
    finite,
)
from vimae.paper.verdict import Estimate
from vimae.plotting.curves import Curve, CurvePanel, plot_loss_curves
from vimae.runs.schedule import learning_rate

WINDOW = f"{100 * CONVERGENCE_WINDOW:g}%"
INTRO = (
    f"Convergence is judged on the held-out loss: {CONVERGENCE_RULE}. (The change of the "
    "training loss over the last epoch, used before, is mostly the noise of its batches.) Under a "
    "decaying learning-rate schedule (cosine, step) the validation loss changes little over the "
    f"last {WINDOW} of steps partly because the learning rate is small there, not only because "
    "the loss has levelled off; that is why every run's loss curves are shown: a curve still "
    "falling steeply up to the shaded window had not levelled off. The gap is validation minus "
    "training loss at the last epoch; the training loss is a mean over that epoch's batches in "
    "training mode (VIMAE with its input noise, batch norm on batch statistics) while the "
    "validation loss is measured on held-out training images in eval mode, so the gap is not "
    "over-fitting alone."
)


def unique_settings(
    results: dict[str, list[SettingResult]],
) -> list[tuple[SettingResult, list[str]]]:
    """Every setting that ran, once per set of runs, with the experiments that use it."""
    found: dict[tuple[str, ...], tuple[SettingResult, list[str]]] = {}
    for name, settings in results.items():
        for setting in settings:
            identity = tuple(sorted(str(run.path) for run in setting.all_runs()))
            if setting.ok and identity:
                found.setdefault(identity, (setting, []))[1].append(name)
    return list(found.values())


def run_curve(run: RunResult) -> Curve:
    """A run's epoch-mean training loss and end-of-epoch validation loss against step."""
    rows = run.epoch_rows
    # fit refuses a non-finite loss, so a logged epoch's losses are finite or absent
    train = [(r["step"], r["loss"]) for r in rows if finite(r.get("loss")) is not None]
    val = [(r["step"], r["val_loss"]) for r in rows if finite(r.get("val_loss")) is not None]
    t = np.array(train, dtype=float).reshape(-1, 2)
    v = np.array(val, dtype=float).reshape(-1, 2)
    return Curve(t[:, 0], t[:, 1], v[:, 0], v[:, 1])


def model_verdict(convergences: list[Convergence]) -> str:
    """'yes', 'NO (k of n seeds still moving)' or 'not judged: why' for one model's seeds."""
    n = len(convergences)
    moving = sum(c.converged is False for c in convergences)
    if moving:
        return f"NO ({moving} of {n} seeds moved by {100 * CONVERGED:g}% or more)"
    if convergences and all(c.converged for c in convergences):
        return "yes"
    why = "; ".join(dict.fromkeys(c.reason for c in convergences if c.reason)) or "no run"
    unjudged = sum(c.converged is None for c in convergences)
    return f"not judged ({unjudged} of {n} seeds): {why}"


def _estimate(values: list[float | None], digits: int = 4) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "–"
    # One seed: the value alone (the seeds column says n = 1).
    text = Estimate.of(known).text(digits) if len(known) > 1 else Estimate(known[0]).text(digits)
    return text if len(known) == len(values) else f"{text} ({len(known)} of {len(values)} seeds)"


def convergence_table(setting: SettingResult) -> Block:
    """One row per model: seeds, final losses and gap (mean ± se over seeds), each seed's change
    of the validation loss over its window, and the verdict."""
    header = [
        "model",
        "seeds",
        "final training loss",
        "final validation loss",
        "gap (validation − training)",
        f"change of the validation loss over the last {WINDOW} of steps (each seed)",
        "window (steps)",
        "converged?",
    ]
    rows = []
    for model, convergences in setting.convergences().items():
        changes = [f"{100 * c.change:+.2g}%" for c in convergences if c.change is not None]
        windows = dict.fromkeys(
            f"{c.since_step}–{c.final_step}" for c in convergences if c.since_step is not None
        )
        rows.append(
            [
                paper.LABELS.get(model, model),
                str(len(convergences)),
                _estimate([c.train_loss for c in convergences]),
                _estimate([c.val_loss for c in convergences]),
                _estimate([c.gap for c in convergences], 3),
                ", ".join(changes) or "–",
                ", ".join(windows) or "–",
                model_verdict(convergences),
            ]
        )
    return Block("table", header=header, rows=rows)


def schedule_note(setting: SettingResult) -> str:
    """How small a decaying schedule's learning rate is over the convergence window (empty for
    a constant rate)."""
    run = next(iter(setting.all_runs()), None)
    if run is None:
        return ""
    schedule = run.config.get("train", {}).get("schedule", "constant")
    final = run.convergence().final_step
    if schedule == "constant" or not final:
        return ""
    start = round((1 - CONVERGENCE_WINDOW) * final)
    fraction = learning_rate(start, final, 1.0, schedule)
    return (
        f" Learning rate: {schedule} schedule, at most {100 * fraction:.2g}% of its peak over the "
        f"last {WINDOW} of steps, so a small change there is partly a small step size: read the "
        "curves."
    )


def figure_name(key: str, taken: set[str]) -> str:
    """A file name for a setting's loss curves, unique among `taken`."""
    stem = "loss-" + re.sub(r"[^A-Za-z0-9._-]+", "-", key)
    name, k = f"{stem}.png", 2
    while name in taken:
        name, k = f"{stem}-{k}.png", k + 1
    taken.add(name)
    return name


def section_convergence(out: Path, results: dict[str, list[SettingResult]]) -> list[Block]:
    """Each setting's data, convergence table and loss curves (drawn into OUT/figures)."""
    settings = unique_settings(results)
    if not settings:
        return [Block("p", "No setting ran.")]
    blocks = [Block("p", INTRO)]
    taken: set[str] = set()
    for setting, experiments in settings:
        s = setting.setting
        key = s.get("key", s.get("dataset", "setting"))
        blocks.append(Block("h3", f"{key} ({', '.join(experiments)})"))
        verdict = converged_text(setting)
        blocks.append(Block("p", f"{verdict[0].upper()}{verdict[1:]}.{schedule_note(setting)}"))
        counts = "; ".join(f"{split}: {text}" for split, text in setting_class_counts(setting))
        blocks.append(Block("p", f"Images per class (as the runs recorded them) — {counts}."))
        blocks.append(convergence_table(setting))
        panels = [
            CurvePanel(paper.LABELS.get(model, model), [run_curve(run) for run in runs])
            for model, runs in setting.seeds.items()
            if runs
        ]
        path = plot_loss_curves(
            panels, out / "figures" / figure_name(key, taken), CONVERGENCE_WINDOW, key
        )
        blocks.append(
            image_block(
                out,
                path,
                f"Loss curves, {key}: training loss (solid, mean over each epoch) and validation "
                "loss (dashed) against optimiser step, one thin line per seed; shaded: the last "
                f"{WINDOW} of steps, where convergence is judged; y axes span the losses from "
                "the second epoch on.",
            )
        )
    return blocks
