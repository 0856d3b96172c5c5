"""The experiments of the paper and the settings they run in, at two scales.

An experiment (figure 1, figures 2-3, tables 1-5, and the two questions the paper leaves open) is
an entry of `EXPERIMENTS`: the models it compares, the `Setting`s it runs them in (dataset,
network, width, latent size, epochs, subsets, evaluation options, model options) at each scale,
the metrics it reads and the pictures it draws. Two scales:

- `paper`: the paper's widths (1.0), epochs (80 for MNIST / Omniglot, 60 for CIFAR-10 / CelebA)
  and full data sets; a GPU's job.
- `cpu`: 1/8 or 1/16 width, a few epochs and subsets, so that `vimae reproduce all` with 3 seeds
  ends in about two hours on 2 cores; `Setting.reduced` says what was cut, and the report prints it.

A run is named by its config (`run_name`), so experiments that share a setting share its runs.
"""

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors import safe_open

from vimae.config import SCHEDULES, DataConfig, ModelConfig, RunConfig, TrainConfig, set_value
from vimae.metrics import MetricOptions
from vimae.paper.numbers import MODELS
from vimae.registry import Registry
from vimae.runs.checkpoint import CHECKPOINT_FILE

SCALES = ("cpu", "paper")
DEFAULT_SEEDS = 3  # training seeds per model and setting: every number is a mean over them
MAX_SEEDS = 1000  # more is a typo: each seed is a full set of runs
CORE_METRICS = ("reconstruction", "rate", "mmd")  # every run gets them: the rate-distortion picture


@dataclass(frozen=True)
class Setting:
    """One dataset and network at one scale; the runs of every model of an experiment share it.

    `options` overrides `MetricOptions` fields (as a tuple of pairs, so a Setting is hashable);
    `reduced` says in words what differs from the paper's protocol.
    """

    key: str
    dataset: str
    arch: str
    width: float
    latent_dim: int
    epochs: int
    train_size: int | None = None
    image_size: int | None = None
    test_size: int | None = None
    options: tuple[tuple[str, Any], ...] = ()
    reduced: str = ""
    # ModelConfig fields set for every model of the setting (encoder noise, recon weight, ...).
    model_options: tuple[tuple[str, Any], ...] = ()
    # Any other settings of the runs, by config key ("train.schedule", "data.val_fraction").
    overrides: tuple[tuple[str, Any], ...] = ()

    def config(self, model: str, data_dir: str | None, seed: int = 0) -> RunConfig:
        """The run config of `model` trained with `seed` in this setting (paper defaults for
        lambda and beta); the data draws keep data.seed 0, so every seed sees the same images."""
        config = RunConfig(
            model=ModelConfig(
                name=model,
                arch=self.arch,
                width=self.width,
                latent_dim=self.latent_dim,
                **dict(self.model_options),
            ),
            data=DataConfig(
                dataset=self.dataset,
                data_dir=data_dir,
                image_size=self.image_size,
                train_size=self.train_size,
            ),
            train=TrainConfig(epochs=self.epochs, seed=seed, progress=False),
        )
        for key, value in self.overrides:
            set_value(config, key, value)
        return config

    def metric_options(self, cache_dir: Path, inception_weights: Path | None) -> MetricOptions:
        extra: dict[str, Any] = {"cache_dir": cache_dir}
        if inception_weights is not None:
            extra.update(inception_weights=inception_weights, fid_features="inception")
        return MetricOptions(**dict(self.options), **extra)


@dataclass(frozen=True)
class Experiment:
    """A figure or table of the paper: its settings per scale, metrics and pictures."""

    name: str
    title: str
    keys: tuple[str, ...]  # of SETTINGS[scale], looked up when run
    metrics: tuple[str, ...]
    pictures: tuple[str, ...] = ()
    models: tuple[str, ...] = MODELS

    def settings(self, scale: str) -> tuple[Setting, ...]:
        return tuple(SETTINGS[scale][key] for key in self.keys)


EXPERIMENTS: Registry[Experiment] = Registry("experiment")

_FIVE = ("clean", "gauss:0.2", "gauss:0.4", "mask:0.2", "mask:0.5")
_THREE = ("clean", "gauss:0.3", "mask:0.2")
_CPU_EVAL = (("rate_images", 500), ("rate_copies", 16), ("n_repeats", 5))
_MNIST = (
    "MNIST: the paper's split, with training images reconstructed from a PNG copy (within one "
    "grey level)"
)
_SUBSET = "seeded class-stratified draws (all 10 classes, each at its share)"

CPU = {
    "mnist-mlp": Setting(
        "mnist-mlp", "mnist", "mlp", 1.0, 2, epochs=20, train_size=10_000, test_size=2_000,
        options=_CPU_EVAL,
        reduced=f"{_MNIST}; 10,000 of the 60,000 training images and 2,000 of the 10,000 test "
        f"images, {_SUBSET}; 20 epochs instead of 80",
    ),
    "mnist-dcgan28": Setting(
        "mnist-dcgan28", "mnist", "dcgan28", 0.125, 8, epochs=6, train_size=10_000,
        test_size=2_000, options=(*_CPU_EVAL, ("corruptions", _FIVE)),
        reduced=f"{_MNIST}; 10,000 of the 60,000 training images and 2,000 of the 10,000 test "
        f"images, {_SUBSET}; width 1/8 (16-32-64-128 channels); 6 epochs instead of 80; "
        "1,000 labelled codes of the 2,000 test images, accuracy on the other 1,000",
    ),
    "omniglot-dcgan28": Setting(
        "omniglot-dcgan28", "omniglot-small", "dcgan28", 0.125, 8, epochs=4,
        options=(*_CPU_EVAL, ("corruptions", _FIVE), ("parzen_samples", 5000)),
        reduced="only Omniglot's two small background subsets are here: omniglot-small (6 "
        "alphabets, 203 characters train; 2 alphabets, 39 characters test; 80 rotated images "
        "per character); width 1/8; 4 epochs instead of 80; Parzen window on 5,000 samples "
        "instead of 10,000",
    ),
    "cifar10-dcgan64": Setting(
        "cifar10-dcgan64", "cifar10", "dcgan64", 0.0625, 64, epochs=4, train_size=10_000,
        image_size=64, test_size=2_000,
        options=(*_CPU_EVAL, ("corruptions", _THREE), ("fid_samples", 2000),
                 ("fid_features", "classifier")),
        reduced="CIFAR-10 from the JPEG copy; 10,000 of the 50,000 training images and 2,000 of "
        f"the 10,000 test images, {_SUBSET}; width 1/16 (8-16-32-64 channels); 4 epochs "
        "instead of 60; FID on 2,000 samples with a domain classifier's features unless "
        "--inception-weights is given",
    ),
    "celeba-dcgan64": Setting(
        "celeba-dcgan64", "celeba", "dcgan64", 0.0625, 64, epochs=3, train_size=10_000,
        test_size=2_000,
        options=(*_CPU_EVAL, ("fid_samples", 2000), ("fid_features", "classifier")),
        reduced="width 1/16; 10,000 of the 182,599 training faces and 2,000 of the 20,000 test "
        "faces, seeded random draws; 3 epochs instead of 60; FID on 2,000 samples",
    ),
}  # fmt: skip

PAPER = {
    "mnist-mlp": Setting(
        "mnist-mlp", "mnist", "mlp", 1.0, 2, epochs=80, train_size=50_000,
        reduced=f"{_MNIST}; the 50,000 training images are {_SUBSET} of the 60,000",
    ),
    "mnist-dcgan28": Setting(
        "mnist-dcgan28", "mnist", "dcgan28", 1.0, 8, epochs=80, train_size=50_000,
        options=(("corruptions", _FIVE),),
        reduced=f"{_MNIST}; the 50,000 training images are {_SUBSET} of the 60,000",
    ),
    "omniglot-dcgan28": Setting(
        "omniglot-dcgan28", "omniglot", "dcgan28", 1.0, 8, epochs=80,
        options=(("corruptions", _FIVE),),
    ),
    "cifar10-dcgan64": Setting(
        "cifar10-dcgan64", "cifar10", "dcgan64", 1.0, 64, epochs=60, image_size=64,
        options=(("corruptions", _THREE),),
    ),
    "celeba-dcgan64": Setting("celeba-dcgan64", "celeba", "dcgan64", 1.0, 64, epochs=60),
}  # fmt: skip

# Section 3 of the "verdicts" issue: two questions the paper leaves open, asked of table 3's
# MNIST setting. The encoder noise of VIMAE-l (standard deviation; bound at two of them, like the
# default) and the decoder likelihood: the weight w of the squared error (a Gaussian of variance
# 1 / (2w); 1 here, 0.05 in the WAE code the paper builds on) or a Bernoulli decoder.
NOISE_STDS = (0.0, 0.0025, 0.005, 0.01, 0.02, 0.05)
RECON_WEIGHTS = (0.05, 1.0, 2.0, 5.0, 10.0, 20.0)
CALIBRATION_MODELS = ("vae", "beta-vae-h", "beta-vae-a", "vimae-l")
# The learning-rate schedules tried on table 3's setting, trained longer with a validation split.
SCHEDULE_EPOCHS = {"cpu": 20, "paper": 80}
SCHEDULE_MODELS = ("vae", "vimae-l")


def calibration_key(likelihood: str, weight: float) -> str:
    """The setting of one decoder likelihood: table 3's own for the Gaussian with w = 1."""
    if likelihood == "bernoulli":
        return "mnist-dcgan28-bernoulli"
    return "mnist-dcgan28" if weight == 1.0 else f"mnist-dcgan28-recon{weight:g}"


def _variants(scale: dict[str, Setting], name: str) -> dict[str, Setting]:
    """The noise, likelihood and schedule variants of `scale`'s mnist-dcgan28 setting."""
    base = scale["mnist-dcgan28"]
    out = {}
    for std in NOISE_STDS:
        out[f"mnist-noise-{std:g}"] = dataclasses.replace(
            base,
            key=f"mnist-noise-{std:g}",
            model_options=(("encoder_noise", std), ("encoder_noise_bound", 2 * std)),
            reduced=f"{base.reduced}; VIMAE encoder noise N(0, {std:g}^2) truncated at {2 * std:g}",
        )
    for weight in RECON_WEIGHTS:
        key = calibration_key("gaussian", weight)
        out[key] = dataclasses.replace(
            base,
            key=key,
            model_options=(("recon_weight", weight),) if weight != 1.0 else (),
            reduced=f"{base.reduced}; squared error weighted {weight:g} in the loss",
        )
    key = calibration_key("bernoulli", 1.0)
    out[key] = dataclasses.replace(
        base,
        key=key,
        model_options=(("likelihood", "bernoulli"),),
        reduced=f"{base.reduced}; Bernoulli decoder (binary cross-entropy) in the loss",
    )
    epochs = SCHEDULE_EPOCHS[name]
    for schedule in SCHEDULES:
        key = f"mnist-dcgan28-schedule-{schedule}"
        out[key] = dataclasses.replace(
            base,
            key=key,
            epochs=epochs,
            overrides=(("train.schedule", schedule), ("data.val_fraction", 0.1)),
            reduced=f"{base.reduced.replace(f'{base.epochs} epochs', f'{epochs} epochs')}; "
            f"learning rate {schedule}; 10% of the training images held out for a validation "
            "loss",
        )
    return out


CPU |= {k: v for k, v in _variants(CPU, "cpu").items() if k != "mnist-dcgan28"}
PAPER |= {k: v for k, v in _variants(PAPER, "paper").items() if k != "mnist-dcgan28"}
SETTINGS = {"cpu": CPU, "paper": PAPER}


def _experiment(
    name: str,
    title: str,
    keys: Sequence[str],
    metrics: Sequence[str],
    pictures: Sequence[str] = (),
    models: Sequence[str] = MODELS,
) -> None:
    extra = tuple(m for m in metrics if m not in CORE_METRICS)
    metrics = CORE_METRICS + extra
    experiment = Experiment(name, title, tuple(keys), metrics, tuple(pictures), tuple(models))
    EXPERIMENTS.add(name, experiment)


_experiment(
    "fig1", "Figure 1: 2-d codes of MNIST (mlp, d = 2)", ["mnist-mlp"], ["entropy", "kl"], ["codes"]
)
_experiment(
    "recon",
    "Figures 2-3 (and 6-7): test reconstructions and prior samples",
    ["mnist-dcgan28", "omniglot-dcgan28", "cifar10-dcgan64"],
    [],
    ["images"],
)
_experiment("table1", "Table 1: Parzen NLL of Omniglot samples", ["omniglot-dcgan28"], ["parzen"])
_experiment(
    "table2",
    "Table 2: semi-supervised accuracy, CIFAR-10",
    ["cifar10-dcgan64"],
    ["semi-supervised"],
)
_experiment(
    "table3", "Table 3: semi-supervised accuracy, MNIST", ["mnist-dcgan28"], ["semi-supervised"]
)
_experiment(
    "table4",
    "Table 4: semi-supervised accuracy, Omniglot",
    ["omniglot-dcgan28"],
    ["semi-supervised"],
)
_experiment(
    "table5", "Table 5: FID, CelebA and CIFAR-10", ["celeba-dcgan64", "cifar10-dcgan64"], ["fid"]
)
_experiment(
    "noise",
    "What the VIMAE rate measures: VIMAE-l on MNIST against its encoder noise",
    [f"mnist-noise-{std:g}" for std in NOISE_STDS],
    ["semi-supervised"],
    models=("vimae-l",),
)
_experiment(
    "calibration",
    "The decoder likelihood: table 3's models with the squared error weighted w, and Bernoulli",
    [
        *(calibration_key("gaussian", w) for w in RECON_WEIGHTS),
        calibration_key("bernoulli", 1.0),
    ],
    ["semi-supervised"],
    models=CALIBRATION_MODELS,
)
_experiment(
    "schedule",
    "The learning-rate schedule: constant (the paper), step decay (the WAE code) and cosine",
    [f"mnist-dcgan28-schedule-{s}" for s in SCHEDULES],
    [],
    models=SCHEDULE_MODELS,
)
ALL = (
    "fig1", "recon", "table1", "table2", "table3", "table4", "table5", "noise", "calibration",
    "schedule",
)  # fmt: skip


def run_name(config: RunConfig) -> str:
    """Folder name of a run: readable prefix, then a hash of its fingerprint and epochs."""
    digest = hashlib.sha256(f"{config.fingerprint()}|{config.train.epochs}".encode()).hexdigest()
    m, d = config.model, config.data
    return f"{m.name}-{d.dataset}-{m.arch}-{digest[:10]}"


def epochs_done(run_dir: Path) -> int:
    """Epochs a run folder's checkpoint has finished (0 when there is none)."""
    path = run_dir / CHECKPOINT_FILE
    if not path.is_file():
        return 0
    with safe_open(str(path), framework="pt") as f:
        return int(json.loads(f.metadata()["progress"])["epoch"])
