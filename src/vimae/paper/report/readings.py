"""Accuracies far from the paper's, and the readings of section 5.3 that could explain them.

Section 5.3 says the SVM is trained "on the representation associated to corrupted data" without
saying whether the classifier is fitted on the corrupted codes or on clean ones and then faces the
corrupted ones, and it does not say whether noisy pixels are clamped to [0, 1]. Our main reading
fits on the corrupted codes, noise clamped (`vimae.metrics.semisupervised`). The metric
"semi-supervised-readings" measures the same SVM under the other readings on the same runs, and
this module sets every cell of tables 2-3 that lies more than `FAR_POINTS` from the paper's beside
them: a cell that one reading brings within `FAR_POINTS` of the paper's is explained by that
reading (a hypothesis about the paper's protocol the numbers support, not a proof); one that no
reading brings there is printed as unexplained.
"""

from collections.abc import Callable

from vimae.paper import claims as C
from vimae.paper import numbers as paper
from vimae.paper.page import Block
from vimae.paper.report.blocks import L, accuracy_of
from vimae.paper.report.records import (
    SEMI_CLASSIFIER,
    RunResult,
    SettingResult,
    accuracy_specs,
    accuracy_values,
)
from vimae.paper.verdict import Estimate

FAR_POINTS = 10.0  # accuracy points between ours and the paper's that call for an explanation

# name in the metric's output -> how the report names it
READINGS = {
    "clean_fit": "SVM fitted on clean codes",
    "unclamped": "Gaussian noise unclamped",
    "clean_fit_unclamped": "fitted on clean codes, noise unclamped",
}
# other readings that the semi-supervised metric records beside the main one
OTHERS = {
    "means": "posterior means μ(x+ν)",
    "label_spreading": "label spreading",
}


def _per_seed(run: RunResult, reading: str) -> dict[str, float]:
    """One run's SVM accuracy per corruption spec under `reading` (a key of READINGS, "means",
    "label_spreading", or "main": the accuracies the tables show)."""
    if reading in READINGS:
        table = (run.value("semi-supervised-readings", "readings") or {}).get(reading, {})
        return {s: a["svm"]["mean"] for s, a in table.items()}
    if reading == "means":
        return accuracy_of(run, SEMI_CLASSIFIER, "semi_supervised_means")
    return accuracy_of(run, SEMI_CLASSIFIER if reading == "main" else reading)


def reading_accuracies(setting: SettingResult, reading: str) -> dict[str, dict[str, Estimate]]:
    """model -> corruption spec -> accuracy under `reading` (mean ± se over seeds); a spec that
    some seed did not record is left out."""
    out: dict[str, dict[str, Estimate]] = {}
    for model, runs in setting.seeds.items():
        per_seed = [_per_seed(run, reading) for run in runs]
        shared = set.intersection(*(set(p) for p in per_seed)) if per_seed else set()
        if shared:
            out[model] = {s: Estimate.of(p[s] for p in per_seed) for s in sorted(shared)}
    return out


def values_under(setting: SettingResult, v: C.Values, reading: str) -> C.Values:
    """`v` with every accuracy quantity recomputed per seed from the main accuracies with those
    the reading measured put in their place (clean stays the main one under a clean-fit reading,
    masking under an unclamped one), so the claims can be judged under the reading."""
    out: C.Values = {}
    for model, q in v.items():
        runs = setting.seeds.get(model, [])
        per_seed = [accuracy_values(_per_seed(r, "main") | _per_seed(r, reading)) for r in runs]
        shared = set.intersection(*(set(p) for p in per_seed)) if per_seed else set()
        derived = set(accuracy_values(accuracy_specs(q)))
        out[model] = {k: e for k, e in q.items() if k not in derived}
        out[model] |= {k: Estimate.of(p[k] for p in per_seed) for k in sorted(shared)}
    return out


def far_cells(
    table: str, setting: SettingResult, v: C.Values, excluded: dict[str, str]
) -> list[list[str]]:
    """One row per cell of ours more than FAR_POINTS from the paper's (collapsed models, marked
    elsewhere, left out): model, column, ours, the paper's, each reading, and the explanation."""
    readings = {r: reading_accuracies(setting, r) for r in (*READINGS, *OTHERS)}
    rows = []
    for model in setting.seeds:
        if model in excluded:
            continue
        for spec in paper.SEMI_SUPERVISED_COLUMNS[table]:
            ours = v.get(model, {}).get(f"acc:{spec}")
            theirs = paper.SEMI_SUPERVISED[table][model][spec]
            if ours is None or theirs is None or abs(ours.mean - theirs) <= FAR_POINTS:
                continue
            measured = {
                r: acc[model][spec] for r, acc in readings.items() if spec in acc.get(model, {})
            }
            cells = [measured[r].text(3) if r in measured else "–" for r in (*READINGS, *OTHERS)]
            closest = min(measured, key=lambda r: abs(measured[r].mean - theirs), default=None)
            if closest is not None and abs(measured[closest].mean - theirs) <= FAR_POINTS:
                name = {**READINGS, **OTHERS}[closest]
                why = f"explained by the reading '{name}' ({measured[closest].mean:.3g})"
            elif closest is not None:
                why = (
                    f"unexplained: the closest reading ('{({**READINGS, **OTHERS})[closest]}', "
                    f"{measured[closest].mean:.3g}) is still "
                    f"{abs(measured[closest].mean - theirs):.3g} points away"
                )
            else:
                why = "unexplained: no other reading was measured"
            rows.append([L[model], spec, ours.text(3), f"{theirs:g}", *cells, why])
    return rows


def mean_gap(table: str, v: C.Values, excluded: dict[str, str]) -> float:
    """Mean |ours − paper| in points over every cell of the table that both give."""
    gaps = [
        abs(q[f"acc:{spec}"].mean - theirs)
        for model, q in v.items()
        if model not in excluded
        for spec, theirs in paper.SEMI_SUPERVISED[table].get(model, {}).items()
        if theirs is not None and f"acc:{spec}" in q
    ]
    return float(sum(gaps) / len(gaps)) if gaps else float("nan")


# Where the experiments that change the training itself, run beside the reproduction on the
# unexplained cells, are recorded (the report's readings change only the evaluation).
UNEXPLAINED_POINTER = (
    " The readings change only the evaluation; experiments that change the training instead "
    "(network width, all 60,000 training images, the paper's 40,000 optimiser steps, corrupting "
    "CIFAR-10 at its own 32x32 resolution, and the loss spike that freezes a Gaussian encoder at "
    "the paper's width) are recorded with their commands in the repository's "
    "docs/results/README.md, under the table they concern."
)


def section_far(
    table: str,
    setting: SettingResult,
    v: C.Values,
    excluded: dict[str, str],
    judge: Callable[[C.Values], list[C.Claim]],
) -> list[Block]:
    """The table of accuracies far from the paper's with the readings beside them, a count of what
    the readings explain, and which verdicts each reading would change (`judge` maps values to
    the table's claims)."""
    rows = far_cells(table, setting, v, excluded)
    if not rows:
        return [
            Block(
                "p",
                f"Far from the paper: no accuracy of ours lies more than {FAR_POINTS:g} points "
                "from the paper's (collapsed models aside).",
            )
        ]
    explained = sum(r[-1].startswith("explained") for r in rows)
    blocks = [
        Block(
            "p",
            f"Far from the paper: {len(rows)} accuracies of ours lie more than {FAR_POINTS:g} "
            "points from the paper's. Section 5.3 leaves the protocol open in two places: whether "
            "the SVM is fitted on the corrupted codes (our reading) or on clean ones and then "
            "faces corrupted ones, and whether noisy pixels are clamped to [0, 1] (ours are). "
            "Beside each far cell: the same runs under the other readings (metric "
            "semi-supervised-readings), on posterior means, and with label spreading. "
            f"{explained} of {len(rows)} come within {FAR_POINTS:g} points of the paper's under "
            "one reading (a hypothesis about the paper's protocol that the numbers support, "
            f"not a proof); {len(rows) - explained} remain unexplained."
            + (UNEXPLAINED_POINTER if explained < len(rows) else ""),
        ),
        Block(
            "table",
            header=[
                "model",
                "column",
                "ours",
                "paper",
                *READINGS.values(),
                *OTHERS.values(),
                "explanation",
            ],
            rows=rows,
        ),
    ]
    gaps = [f"our reading {mean_gap(table, v, excluded):.3g}"]
    for reading, name in {**READINGS, **OTHERS}.items():
        if reading_accuracies(setting, reading):
            under = values_under(setting, v, reading)
            gaps.append(f"'{name}' {mean_gap(table, under, excluded):.3g}")
    blocks.append(
        Block(
            "p",
            "A reading that brings one cell near the paper's but moves others away is no "
            "explanation of the table: the mean |ours − paper| over every cell of the table "
            "(collapsed models aside) is " + ", ".join(gaps) + " points (a classifier weaker "
            "than the SVM everywhere lowers every cell, near the paper's or not).",
        )
    )
    judged = judge(v)
    before = {c.statement: c.status for c in judged}
    changes = []
    for reading, name in READINGS.items():
        if not reading_accuracies(setting, reading):
            continue
        after = judge(values_under(setting, v, reading))
        moved = [
            f"“{c.statement}”: {before[c.statement].upper()} → {c.status.upper()}"
            for c in after
            if c.statement in before and before[c.statement] != c.status
        ]
        changes.append(f"{name}: " + ("; ".join(moved) if moved else "no verdict changes"))
    if changes:
        blocks.append(Block("p", "Judged under each reading instead: " + ". ".join(changes) + "."))
    return blocks
