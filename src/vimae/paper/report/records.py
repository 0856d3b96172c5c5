"""What the files of a reproduce output say: run folders as records, and their numbers as means
and standard errors over training seeds (`vimae.paper.verdict.Estimate`), beside the paper's numbers
in the same form. Nothing is drawn or judged here."""

import json
import math
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
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
# Training has converged when the mean training loss of its last epoch moved by less than this
# fraction from the epoch before (every seed of every model of the setting).
CONVERGED = 0.01


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

    def last_epoch_change(self) -> float | None:
        """Relative change of the mean training loss over the last epoch (None: fewer than two
        epochs logged)."""
        log = self.path / "metrics.jsonl"
        if not log.is_file():
            return None
        losses = [record["loss"] for record in read_log(log) if record.get("kind") == "epoch"]
        if len(losses) < 2 or losses[-2] == 0:
            return None
        return abs(losses[-1] - losses[-2]) / abs(losses[-2])

    def final_validation_loss(self) -> float | None:
        """The validation loss of the last epoch logged (None without validation)."""
        log = self.path / "metrics.jsonl"
        if not log.is_file():
            return None
        rows = [r for r in read_log(log) if r.get("kind") == "epoch" and "val_loss" in r]
        return float(rows[-1]["val_loss"]) if rows else None

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

    def convergence(self) -> tuple[bool | None, float | None]:
        """(converged, largest last-epoch change of the loss) over every run of the setting."""
        changes = [run.last_epoch_change() for run in self.all_runs()]
        known = [c for c in changes if c is not None]
        if not known:
            return None, None
        worst = max(known)
        return worst < CONVERGED and len(known) == len(changes), worst


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
        for q, spread in OWN_SPREAD.items():
            if q in estimates and spread in estimates:
                # The reference draws are the same for every seed (the evaluation's seed), so
                # their error is not in the spread over seeds: add it, as a mean over repeats.
                shared_error = estimates[spread].mean / math.sqrt(KNN_REPEATS)
                e = estimates[q]
                estimates[q] = Estimate(e.mean, math.hypot(e.se, shared_error), e.n)
        values[model] = estimates
    return values


def published(numbers: dict[str, float | None], key: str) -> C.Values:
    """The paper's numbers of one quantity as Values (no error bars)."""
    return {m: {key: Estimate(float(v))} for m, v in numbers.items() if v is not None}


def published_accuracy(table: str) -> C.Values:
    """The paper's accuracies of table 2, 3 or 4 with the same derived quantities as ours."""
    return {
        model: {q: Estimate(v) for q, v in accuracy_values(row).items()}
        for model, row in paper.SEMI_SUPERVISED[table].items()
    }
