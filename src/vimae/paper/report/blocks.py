"""Pieces every section of the report uses: setting notes (data seen, convergence), command
listings, table cells and pictures read from run folders."""

import math
import zipfile
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


def converged_text(setting: SettingResult) -> str:
    converged, worst = setting.convergence()
    if converged is None:
        return "convergence not recorded"
    state = "converged" if converged else "NOT converged"
    return (
        f"training {state} (largest change of the training loss over the last epoch "
        f"{100 * worst:.1f}%, threshold {100 * CONVERGED:g}%)"
    )


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
            f"; measured on {describe_data(run.test_data())}"
        )
    converged = converged_text(setting)
    text += f". {converged[0].upper()}{converged[1:]}"
    return Block("p", text + ".")


def unconverged(setting: SettingResult) -> str:
    converged, _ = setting.convergence()
    return "" if converged in (True, None) else "training had not converged in this setting"


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
