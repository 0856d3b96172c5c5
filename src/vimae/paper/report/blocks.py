"""Pieces every section of the report uses: setting notes (data seen, convergence), command
listings, table cells and pictures read from run folders."""

import math
import zipfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from vimae.errors import VimaeError
from vimae.paper import claims as C
from vimae.paper import numbers as paper
from vimae.paper.page import Block
from vimae.paper.report.records import (
    CONVERGED,
    CONVERGENCE_WINDOW,
    RunResult,
    SettingResult,
)
from vimae.paper.verdict import LEVEL, Estimate

ELBO, VIMAE = paper.ELBO_MODELS, paper.VIMAE_MODELS
L = paper.LABELS


# ---------------------------------------------------------------- the blocks of each section


def image_block(out: Path, path: Path, caption: str) -> Block:
    return Block("img", str(path.relative_to(out)), rows=[[caption]])


def ok_settings(results: dict[str, list[SettingResult]], name: str) -> list[SettingResult]:
    return [s for s in results.get(name, []) if s.ok]


def commands_block(setting: SettingResult, metrics: Iterable[str]) -> Block:
    lines = []
    for run in setting.all_runs():
        lines.append(run.train_command())
        for metric in metrics:
            command = run.metrics.get(metric, {}).get("command")
            if command:
                lines.append(command)
    return Block("details", "\n".join(lines))


def describe_data(record: dict[str, Any] | None) -> str:
    """'N images of NAME, K classes of A to B images each' from a `ImageData.describe()` record."""
    if not record:
        return "not recorded"
    text = f"{record['images']:,} images of {record['name']}"
    if "classes" in record:
        text += (
            f", {record['classes']} classes of {record['smallest_class']:,} to "
            f"{record['largest_class']:,} images each"
        )
    return text


CLASS_LISTING = 20  # more classes than this are summarised (Omniglot has hundreds)


def class_counts(record: dict[str, Any] | None) -> str:
    """The images per class of a `describe()` record ("0: 987, 1: 1,124, ..."; past
    CLASS_LISTING classes their number, extremes and median), or "not recorded"."""
    counts = (record or {}).get("class_counts")
    if not isinstance(counts, dict) or not counts:
        return "not recorded"
    if len(counts) > CLASS_LISTING:
        values = sorted(counts.values())
        return (
            f"{len(values)} classes of {values[0]:,} to {values[-1]:,} images "
            f"(median {float(np.median(values)):g})"
        )
    ordered = sorted(counts.items(), key=lambda kv: (not kv[0].isdigit(), _as_int(kv[0]), kv[0]))
    return ", ".join(f"{label}: {n:,}" for label, n in ordered)


def _as_int(label: str) -> int:
    return int(label) if label.isdigit() else 0


def setting_class_counts(setting: SettingResult) -> list[tuple[str, str]]:
    """(split, counts) for the training, validation and test data of a setting's runs: one line
    per split when every run saw the same counts, else each distinct one with how many runs saw
    it."""
    splits = {
        "training": lambda r: r.data.get("train"),
        "validation": lambda r: r.data.get("validation"),
        "test (measurements)": lambda r: r.test_data(),
    }
    runs = list(setting.all_runs())
    out = []
    for split, record in splits.items():
        if split == "validation" and not any(record(r) for r in runs):
            continue  # no run held images out
        seen = Counter(class_counts(record(r)) for r in runs)
        if len(seen) <= 1:
            out.append((split, next(iter(seen), "not recorded")))
        else:
            out.append(
                (split, "; ".join(f"{text} ({n} of {len(runs)} runs)" for text, n in seen.items()))
            )
    return out


def converged_text(setting: SettingResult) -> str:
    """One clause on the setting's convergence by the held-out loss (CONVERGENCE_RULE)."""
    converged, worst = setting.convergence()
    window = f"{100 * CONVERGENCE_WINDOW:g}%"
    if converged is None:
        return "convergence not judged: " + "; ".join(setting.unjudged() or ["no run"])
    runs = [c for cs in setting.convergences().values() for c in cs]
    if converged:
        return (
            f"training converged (every run's validation loss changed by under "
            f"{100 * CONVERGED:g}% over its last {window} of optimiser steps; largest change "
            f"{100 * worst:.2g}%)"
        )
    moving = sum(c.converged is False for c in runs)
    text = (
        f"training NOT converged ({moving} of {len(runs)} runs' validation loss changed by "
        f"{100 * CONVERGED:g}% or more over their last {window} of optimiser steps; largest "
        f"change {100 * worst:.2g}%)"
    )
    if setting.unjudged():
        text += "; for others convergence not judged: " + "; ".join(setting.unjudged())
    return text


def setting_note(setting: SettingResult) -> Block:
    s = setting.setting
    seeds = max((len(r) for r in setting.seeds.values()), default=0)
    text = (
        f"{s['dataset']}, {s['arch']} width {s['width']}, d = {s['latent_dim']}, "
        f"{s['epochs']} epochs, {seeds} training seeds per model"
    )
    if s.get("reduced"):
        text += f". Reduced from the paper: {s['reduced']}"
    run = next(iter(setting.runs.values()), None)
    if run is not None:
        text += (
            f". Data seen (recorded by the runs): trained on {describe_data(run.data.get('train'))}"
        )
        if run.data.get("validation"):
            text += f"; validated on {describe_data(run.data['validation'])} held out"
        text += f"; measured on {describe_data(run.test_data())}"
    converged = converged_text(setting)
    text += f". {converged[0].upper()}{converged[1:]}"
    return Block("p", text + ".")


def unconverged(setting: SettingResult) -> str:
    """The note a claim from this setting carries: empty when every run converged by
    CONVERGENCE_RULE, else that training had not converged or why that cannot be judged."""
    converged, _ = setting.convergence()
    if converged:
        return ""
    if converged is None:
        return "convergence not judged: " + "; ".join(setting.unjudged() or ["no run"])
    return (
        f"training had not converged in this setting (validation loss still moving by "
        f"{100 * CONVERGED:g}% or more over the last {100 * CONVERGENCE_WINDOW:g}% of steps)"
    )


def picture(run: RunResult, kind: str) -> dict[str, np.ndarray] | None:
    """The arrays `vimae reproduce` cached for a picture of `run` (None before it drew them);
    one sentence when the cached file is damaged."""
    files = sorted((run.path / "pictures").glob(f"{kind}-*.npz"))
    if not files:
        return None
    try:
        with np.load(files[-1], allow_pickle=False) as arrays:
            return {k: arrays[k] for k in arrays.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        raise VimaeError(
            f"{files[-1]} is damaged; delete it and run the same `vimae reproduce` again to "
            "draw that picture anew."
        ) from None


NUMBERS_NOTE = (
    "Every number: mean ± standard error over the seeds (n = 1: one seed, nothing decided). A "
    "claim HOLDS when the difference favours it by more than t standard errors, DOES NOT HOLD when "
    "it goes against it by more than t, and is INCONCLUSIVE otherwise, t being Student's "
    f"{100 * (1 - LEVEL / 2):g}% quantile at the difference's (Welch) degrees of freedom: a "
    f"two-sided test at the {100 * LEVEL:g}% level for the seeds used (t = 2.78 for 3 seeds a "
    "side, 2.31 for 5); a claim about several models needs every pairwise comparison. The paper's "
    "numbers have no error bars: the same rule on them is the sign of the difference."
)
CODES_NOTE = (
    "q(z) is the aggregate posterior E_x q(z|x): MMD, h(q(z)) and KL(q||p) are measured on one "
    "seeded draw z ~ q(z|x) per test image (the deterministic code for VIMAE), and the claims "
    "use these. 'MMD of means' is the same MMD on the Gaussian encoders' posterior means, shown "
    "only for comparison (a collapsed encoder has means near 0, hence a large MMD of means, "
    "while its q(z) is the prior). h(q(z)) stands beside the same k-NN estimator on as many "
    "prior draws, and the entropy gap is their difference: the estimator is biased upward in "
    "high dimension, so the exact h(p(z)) is not the comparison. KL(q||p) is the k-NN plug-in "
    "with that bias matched on prior draws. The standard errors of the entropy gap and of KL add "
    "the spread of their repeated prior draws (shared by all seeds) to the spread over seeds."
)


def cell(values: C.Values, model: str, key: str, digits: int = 3) -> str:
    estimate = values.get(model, {}).get(key)
    return "–" if estimate is None else estimate.text(digits)


def se_or_zero(estimate: Estimate) -> float:
    return 0.0 if not math.isfinite(estimate.se) else estimate.se


def accuracy_of(run: RunResult, classifier: str, key: str = "semi_supervised") -> dict[str, float]:
    """The run's mean accuracy per corruption of one classifier, on draws (`semi_supervised`)
    or on posterior means (`semi_supervised_means`; VIMAE's code is its own mean)."""
    table = run.value("semi-supervised", key) or run.value("semi-supervised", "semi_supervised")
    return {spec: acc[classifier]["mean"] for spec, acc in (table or {}).items()}
