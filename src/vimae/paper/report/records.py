"""What the files of a reproduce output say: run folders as records, and their numbers as means
and standard errors over training seeds (`vimae.paper.verdict.Estimate`), beside the paper's numbers
in the same form, and whether training converged (CONVERGENCE_RULE, on the logged validation loss).
Nothing is drawn and no claim is judged here."""

import json
import math
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from vimae.config import TRAIN_FLAGS, RunConfig
from vimae.metrics import MetricOptions
from vimae.paper import claims as C
from vimae.paper import numbers as paper
from vimae.paper.verdict import Estimate
from vimae.runs.folder import read_log

SEMI_CLASSIFIER = "svm"  # the supervised half of M1+TSVM decides the claims (see semisupervised)
# Convergence is judged on the held-out loss, not on the training loss (whose last-epoch change
# is mostly batch noise): a run has converged when its validation loss changed by less than
# CONVERGED (relative) over the last CONVERGENCE_WINDOW of its optimiser steps, from the epoch
# whose step is nearest (1 - CONVERGENCE_WINDOW) of the final step to the last epoch. With fewer
# than MIN_EPOCHS validated epochs that window is the whole last epoch or more: not judged. A
# setting has converged when every run of it (every model, every seed) has.
CONVERGED = 0.01
CONVERGENCE_WINDOW = 0.1
MIN_EPOCHS = 5
CONVERGENCE_RULE = (
    f"a run has converged when its validation loss (held-out training images, model in eval "
    f"mode) changed by under {100 * CONVERGED:g}% over the last {100 * CONVERGENCE_WINDOW:g}% "
    f"of its optimiser steps (the validation loss of the last epoch against that of the epoch "
    f"whose step is nearest {100 * (1 - CONVERGENCE_WINDOW):g}% of the final step); it cannot "
    f"be judged without a validation loss or with fewer than {MIN_EPOCHS} validated epochs; a "
    f"setting has converged when every run of it (every model and seed) has"
)


# ---------------------------------------------------------------- what the files say


@dataclass
class RunResult:
    """One run folder: its config, what it trained on, each metric's values and commands."""

    model: str
    path: Path
    config: dict[str, Any]
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # data.json: what it trained on

    def value(self, metric: str, key: str | None = None) -> Any:
        """A measured value, or None when it was not computed."""
        values = self.metrics.get(metric)
        if values is None or values.get("status") != "ok":
            return None
        return values.get(key or metric)

    def test_data(self) -> dict[str, Any] | None:
        """What its measurements were made on (every metric of a setting sees the same split)."""
        return next((m["test_data"] for m in self.metrics.values() if "test_data" in m), None)

    @cached_property
    def epoch_rows(self) -> list[dict[str, Any]]:
        """The "epoch" rows of metrics.jsonl in step order, one per epoch (a resumed epoch's
        last row)."""
        rows = read_log(self.path / "metrics.jsonl")
        by_epoch = {r["epoch"]: r for r in rows if r.get("kind") == "epoch" and "epoch" in r}
        return sorted(by_epoch.values(), key=lambda r: r["step"])

    def final_validation_loss(self) -> float | None:
        """The validation loss of the last epoch logged (None without validation)."""
        rows = [r for r in self.epoch_rows if "val_loss" in r]
        return float(rows[-1]["val_loss"]) if rows else None

    def convergence(self) -> "Convergence":
        """Whether the run converged by CONVERGENCE_RULE, or why that cannot be judged."""
        rows = self.epoch_rows
        if not rows:
            return Convergence(None, reason="no epoch logged")
        train = finite(rows[-1].get("loss"))
        validated = [r for r in rows if "val_loss" in r]
        if not validated:
            return Convergence(None, train_loss=train, reason="no validation loss")
        last = validated[-1]
        val = finite(last["val_loss"])
        if val is None or any(finite(r["val_loss"]) is None for r in validated):
            return Convergence(None, train_loss=train, reason="validation loss not finite")
        known = Convergence(None, train_loss=train, val_loss=val, final_step=last["step"])
        if len(validated) < MIN_EPOCHS:
            return replace(
                known,
                reason=f"{len(validated)} validated epochs, fewer than {MIN_EPOCHS}",
            )
        target = (1 - CONVERGENCE_WINDOW) * last["step"]
        reference = min(validated[:-1], key=lambda r: abs(r["step"] - target))
        before = float(reference["val_loss"])
        if before == 0:
            return replace(known, reason="validation loss 0 at the start of the window")
        change = (val - before) / abs(before)
        return replace(
            known,
            converged=abs(change) < CONVERGED,
            change=change,
            since_step=reference["step"],
        )

    def train_command(self) -> str:
        """The `vimae train` command of this run: its dataset, network, epochs and seed, and
        every other flag whose value differs from the default."""
        always = {"model", "dataset", "arch", "width", "latent_dim", "epochs", "seed"}
        machine = ("device", "workers")  # where it ran, not what it is
        parts = ["vimae", "train"]
        for flag, key in TRAIN_FLAGS.items():
            section, _, name = key.partition(".")
            value = self.config.get(section, {}).get(name)
            default = getattr(getattr(DEFAULT_CONFIG, section), name)
            wanted = flag in always or value != default
            if wanted and value is not None and flag not in machine:
                parts += ["--" + flag.replace("_", "-"), str(value)]
        return shlex.join([*parts, "--out", str(self.path)])


DEFAULT_CONFIG = RunConfig()  # a flag equal to its default is left out of the command


@dataclass
class SettingResult:
    """One setting of one experiment as the manifest recorded it, with its runs."""

    setting: dict[str, Any]
    seeds: dict[str, list[RunResult]]  # model -> its runs, one per training seed

    @property
    def ok(self) -> bool:
        return self.setting.get("status") == "ok"

    @property
    def runs(self) -> dict[str, RunResult]:
        """The first seed's run of each model (what the pictures show)."""
        return {model: runs[0] for model, runs in self.seeds.items() if runs}

    def all_runs(self) -> Iterable[RunResult]:
        return (run for runs in self.seeds.values() for run in runs)

    def convergences(self) -> dict[str, list["Convergence"]]:
        """model -> the convergence of each of its runs (one per seed)."""
        return {model: [run.convergence() for run in runs] for model, runs in self.seeds.items()}

    def convergence(self) -> tuple[bool | None, float | None]:
        """(converged, largest |change| of a run's validation loss over its last
        CONVERGENCE_WINDOW of steps) over every run of the setting: False as soon as one run has
        not converged, None when no run failed but some run cannot be judged."""
        judged = [c for runs in self.convergences().values() for c in runs]
        changes = [abs(c.change) for c in judged if c.change is not None]
        worst = max(changes, default=None)
        if any(c.converged is False for c in judged):
            return False, worst
        if judged and all(c.converged for c in judged):
            return True, worst
        return None, worst

    def unjudged(self) -> list[str]:
        """Why some runs' convergence cannot be judged, each reason once ("no validation
        loss")."""
        reasons = [c.reason for runs in self.convergences().values() for c in runs if c.reason]
        return list(dict.fromkeys(reasons))


@dataclass(frozen=True)
class Convergence:
    """One run's convergence by CONVERGENCE_RULE: converged None means it cannot be judged, and
    `reason` says why. `change` is the signed relative change of the validation loss from step
    `since_step` to `final_step` (negative: still falling); the losses are the last epoch's (the
    training loss a mean over the epoch's batches in training mode)."""

    converged: bool | None
    change: float | None = None
    since_step: int | None = None
    final_step: int | None = None
    train_loss: float | None = None
    val_loss: float | None = None
    reason: str = ""

    @property
    def gap(self) -> float | None:
        """Validation minus training loss at the end (None when either is missing)."""
        if self.val_loss is None or self.train_loss is None:
            return None
        return self.val_loss - self.train_loss


def finite(value: Any) -> float | None:
    """A logged number as a float, None when missing or not finite."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def load_run(out: Path, model: str, relative: str) -> RunResult:
    """A run folder's config, the data it trained on and its cached measurements (the newest file
    per metric)."""
    path = out / relative
    config_file, data_file = path / "config.json", path / "data.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    run = RunResult(model, path, config)
    run.data = json.loads(data_file.read_text()) if data_file.is_file() else {}
    files = sorted((path / "evaluation").glob("*.json"), key=lambda p: p.stat().st_mtime)
    for file in files:
        record = json.loads(file.read_text())
        run.metrics[record["metric"]] = record
    return run


def load_results(out: Path) -> tuple[dict[str, Any], dict[str, list[SettingResult]]]:
    """The manifest and, per experiment, its settings with their runs."""
    manifest_file = out / "manifest.json"
    manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
    manifest.setdefault("experiments", {})
    results = {}
    for name, record in manifest["experiments"].items():
        results[name] = [
            SettingResult(
                s,
                {
                    m: [load_run(out, m, r) for r in ([paths] if isinstance(paths, str) else paths)]
                    for m, paths in s.get("runs", {}).items()
                },
            )
            for s in record["settings"]
        ]
    return manifest, results


# ---------------------------------------------------------------- numbers over seeds

# quantity -> (metric, key in its record)
# quantity -> the spread of its own repeats on prior draws (vimae.metrics.entropy), and how many.
OWN_SPREAD = {"entropy_gap": "entropy_prior_knn_std", "kl": "kl_std"}
KNN_REPEATS = MetricOptions().knn_repeats

SCALARS = {
    "reconstruction": ("reconstruction", "reconstruction"),
    "reconstruction_mean_image": ("reconstruction", "reconstruction_mean_image"),
    "rate": ("rate", "rate"),
    "mmd": ("mmd", "mmd"),
    "mmd_means": ("mmd", "mmd_means"),
    "entropy_q": ("entropy", "entropy_q"),
    "entropy_prior_knn": ("entropy", "entropy_prior_knn"),
    "entropy_prior_knn_std": ("entropy", "entropy_prior_knn_std"),
    "entropy_gap": ("entropy", "entropy_gap"),
    "entropy_prior": ("entropy", "entropy_prior"),
    "kl": ("kl", "kl_q_p"),
    "kl_std": ("kl", "kl_q_p_std"),
    "parzen": ("parzen", "parzen_nll"),
    "fid": ("fid", "fid"),
}


def accuracy_values(accuracy: dict[str, float]) -> dict[str, float]:
    """Accuracies per corruption spec -> "acc:SPEC" and the derived quantities under noise:
    "corrupted" (the mean accuracy of every corrupted column), "drop" (clean minus that mean),
    "drop:gauss" and "drop:mask" (of each family), "mask-gauss" (how much more masking costs than
    Gaussian noise), "drop:large" (clean minus the largest Gaussian level) and "help" (the
    smallest Gaussian level minus clean)."""
    out = {f"acc:{spec}": float(v) for spec, v in accuracy.items()}
    if "clean" not in accuracy:
        return out
    clean = accuracy["clean"]
    corrupted = [s for s in accuracy if s != "clean"]
    gauss = sorted((s for s in corrupted if s.startswith("gauss")), key=noise_level)
    mask = [s for s in corrupted if s.startswith("mask")]
    if corrupted:
        out["corrupted"] = float(np.mean([accuracy[s] for s in corrupted]))
        out["drop"] = clean - out["corrupted"]
    if gauss:
        out["drop:gauss"] = clean - float(np.mean([accuracy[s] for s in gauss]))
        out["drop:large"] = clean - accuracy[gauss[-1]]
        out["help"] = accuracy[gauss[0]] - clean
    if mask:
        out["drop:mask"] = clean - float(np.mean([accuracy[s] for s in mask]))
    if gauss and mask:
        out["mask-gauss"] = out["drop:mask"] - out["drop:gauss"]
    return out


def accuracy_specs(q: dict[str, Any]) -> dict[str, float]:
    """The accuracies per corruption spec of a model's values ("acc:SPEC" -> SPEC)."""
    return {k.removeprefix("acc:"): e.mean for k, e in q.items() if k.startswith("acc:")}


def noise_level(spec: str) -> float:
    """The noise level of a corruption spec ("gauss:0.4" -> 0.4), also under an "acc:" prefix."""
    return float(spec.removeprefix("acc:").partition(":")[2] or 0.0)


def run_values(run: RunResult) -> dict[str, float]:
    """Every scalar one run measured, by quantity name (missing ones left out)."""
    out = {}
    for name, (metric, key) in SCALARS.items():
        value = run.value(metric, key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value)
    draws = run.value("semi-supervised", "semi_supervised") or {}
    out |= accuracy_values({s: acc[SEMI_CLASSIFIER]["mean"] for s, acc in draws.items()})
    # On posterior means, as "means:QUANTITY"; VIMAE's deterministic code is its own mean.
    means = run.value("semi-supervised", "semi_supervised_means") or draws
    by_means = accuracy_values({s: acc[SEMI_CLASSIFIER]["mean"] for s, acc in means.items()})
    out |= {f"means:{q}": v for q, v in by_means.items()}
    return out


def on_means(values: C.Values) -> C.Values:
    """The accuracy quantities measured on posterior means in place of those on draws."""
    return {
        model: {
            **q,
            **{k.removeprefix("means:"): e for k, e in q.items() if k.startswith("means:")},
        }
        for model, q in values.items()
    }


COLLAPSED_NATS = 1.0  # less than a nat about x in all d coordinates: q(z|x) is about the prior
LEARNED_NOTHING = 0.95  # a reconstruction error within 5% of the mean image's


def collapsed(values: C.Values) -> dict[str, str]:
    """model -> why it is named collapsed: a rate under COLLAPSED_NATS, or a reconstruction error
    within 5% of the error of the test set's mean image (its total pixel variance)."""
    out = {}
    for model, q in values.items():
        why = []
        rate = q.get("rate")
        if rate is not None and rate.mean < COLLAPSED_NATS:
            why.append(f"rate {rate.text()} nats")
        recon, baseline = q.get("reconstruction"), q.get("reconstruction_mean_image")
        if (
            recon is not None
            and baseline is not None
            and recon.mean >= LEARNED_NOTHING * baseline.mean
        ):
            why.append(
                f"reconstruction {recon.text()} against the mean image's {baseline.mean:.3g}"
            )
        if why:
            out[model] = " and ".join(why)
    return out


def setting_values(setting: SettingResult) -> C.Values:
    """model -> quantity -> mean and standard error over the model's seeds (quantities every
    seed measured)."""
    values: C.Values = {}
    for model, runs in setting.seeds.items():
        per_seed = [run_values(run) for run in runs]
        if not per_seed:
            continue
        shared = set.intersection(*(set(v) for v in per_seed))
        estimates = {q: Estimate.of(v[q] for v in per_seed) for q in sorted(shared)}
        # Runs that drew their data with one seed (no `vary_data`) were also evaluated with one
        # seed: the reference draws are then the same for every run, so their error is not in
        # the spread over seeds; add it, as a mean over repeats. Runs with their own data seeds
        # drew their own references, whose error the spread over seeds already holds.
        one_evaluation = len({_data_seed(run) for run in runs}) == 1
        for q, spread in OWN_SPREAD.items():
            if one_evaluation and q in estimates and spread in estimates:
                shared_error = estimates[spread].mean / math.sqrt(KNN_REPEATS)
                e = estimates[q]
                estimates[q] = Estimate(e.mean, math.hypot(e.se, shared_error), e.n)
        values[model] = estimates
    return values


def _data_seed(run: RunResult) -> object:
    """The seed that drew a run's data (and, in `reproduce`, its evaluation), None if unset."""
    return (run.config.get("data") or {}).get("seed")


def published(numbers: dict[str, float | None], key: str) -> C.Values:
    """The paper's numbers of one quantity as Values (no error bars)."""
    return {m: {key: Estimate(float(v))} for m, v in numbers.items() if v is not None}


def published_accuracy(table: str) -> C.Values:
    """The paper's accuracies of table 2, 3 or 4 with the same derived quantities as ours."""
    return {
        model: {q: Estimate(v) for q, v in accuracy_values(row).items()}
        for model, row in paper.SEMI_SUPERVISED[table].items()
    }
