"""Every setting of a run, declared once: typed dataclasses whose fields carry their own help,
unit, bounds, valid values and whether they change the weights.

A run is described by a `RunConfig` (model, data, train). Each field is made by `setting(...)`,
and everything else is derived from that one declaration: the `vimae train` flags and their
`--help` (`TRAIN_FLAGS`, `train_flag_help`), the Python API's keywords (`SETTINGS`), the checks of
`validate`, and the fingerprint that decides whether a run folder may be resumed. Adding a
setting is one field (docs/architecture.md shows an example).

A preset (`TRAIN_PRESETS`), a config file (JSON or TOML) and `section.key=value` overrides apply
on top of the defaults, in that order, and unknown keys are errors. Hyper-parameters left as None
(lam, beta, alpha, prior) are filled by the model preset for the dataset (paper section 5.2) and
the resolved values are what a run folder records.
"""

import dataclasses
import json
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vimae.errors import VimaeError
from vimae.files import atomic_write_text, read_text_bounded, special_kind
from vimae.registry import REGISTRIES, Registry

CONFIG_FILE = "config.json"

# Upper bounds, checked before anything is allocated: beyond them a value is a typo, not a run.
MAX_SEED = 2**63 - 1
MAX_LATENT_DIM = 4096
MAX_IMAGE_SIZE = 2048
MAX_WIDTH = 16.0
MAX_BATCH_SIZE = 65536
MAX_COUNT = 2**31 - 1  # epochs, images, steps
MAX_WORKERS = 256
MAX_CONFIG_BYTES = 1 << 20  # a config file or config.json: a few kilobytes in practice

# How a setting takes part in the fingerprint (`RunConfig.fingerprint`):
WEIGHTS = "weights"  # it changes the weights: always part of it
NEW_WEIGHTS = "new-weights"  # it changes the weights, added later: part of it unless at its default
BOOKKEEPING = "bookkeeping"  # it does not change the weights (device, logging, ...): never


@dataclass(frozen=True)
class Bounds:
    """The range a number must lie in; None leaves that side open-ended."""

    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True

    def problem(self, value: float) -> str | None:
        """What is wrong with `value` ("must be positive, got -1"), or None when it fits."""
        low, high = self.low, self.high
        if low is not None and (value < low or (value == low and not self.low_inclusive)):
            if not self.low_inclusive:
                return f"must be {'positive' if low == 0 else f'greater than {low:g}'}, got {value}"
            return f"must be at least {_number(low)}, got {value}"
        if high is not None and (value > high or (value == high and not self.high_inclusive)):
            if not self.high_inclusive:
                return f"must be less than {_number(high)}, got {value}"
            return f"must be at most {_number(high)}, got {value}"
        return None


def _number(value: float) -> str:
    """An integral bound as an integer (2**63 - 1 in full), any other as %g."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


POSITIVE = Bounds(low=0, low_inclusive=False)
SEED_BOUNDS = Bounds(0, MAX_SEED)  # every seed: training, data draws, evaluation, pictures


def setting(
    default: Any = None,
    help: str = "",
    *,
    flag: str | bool = True,
    unit: str = "",
    unset: str = "",
    bounds: Bounds | None = None,
    choices: str | tuple[str, ...] | None = None,
    fingerprint: str = WEIGHTS,
    factory: Any = None,
) -> Any:
    """A dataclass field that carries its own description.

    `help` says what it sets (shown by --help), `unit` its unit, `unset` what a None default
    means; `flag` is its `vimae train` flag (True: the field's name, a string: another name,
    False: none, then only a config file or --set reaches it); `bounds` the range a number must
    lie in and `choices` its valid values (a tuple, or the kind of the registry that holds them);
    `fingerprint` whether it changes the weights (WEIGHTS, NEW_WEIGHTS or BOOKKEEPING).
    """
    metadata = {
        "help": help,
        "flag": flag,
        "unit": unit,
        "unset": unset,
        "bounds": bounds,
        "choices": choices,
        "fingerprint": fingerprint,
    }
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


PAPER_VALUE = "the paper's value for the dataset and model"
FRACTION = "fraction of the images, 0 to 1"
INTENSITY = "pixel intensity, images lie in [0, 1]"
UNIT_INTERVAL_OPEN = Bounds(low=0, high=1, low_inclusive=False, high_inclusive=False)


LIKELIHOODS = ("gaussian", "bernoulli")
INITS = ("pytorch", "wae")


@dataclass
class ModelConfig:
    """Objective, network and latent space. None means "the paper's default for the dataset"."""

    name: str = setting(
        "vimae-n",
        "objective: VIMAE (Normal / Logistic prior), the VAE family or InfoVAE",
        flag="model",
        choices="model",
    )
    arch: str = setting(
        "auto",
        "network: dcgan28 takes 28x28 images, dcgan64 64x64, mlp any size; auto chooses by "
        "the images' size (dcgan28 for 28x28, dcgan64 for 64x64, else mlp)",
        choices="network",
    )
    width: float = setting(
        1.0,
        "scales every layer's channels and units",
        unit="multiple of the paper's net",
        bounds=Bounds(0, MAX_WIDTH, low_inclusive=False, high_inclusive=True),
    )
    latent_dim: int = setting(
        8,
        "size d of the code z",
        unit="dimensions",
        bounds=Bounds(0, MAX_LATENT_DIM, low_inclusive=False),
    )
    prior: str | None = setting(
        None,
        "prior p(z), unit variance",
        unset=f"{PAPER_VALUE}: logistic for vimae-l, else normal",
        choices="prior",
    )
    lam: float | None = setting(
        None,
        "weight lambda of the MMD term (vimae-n, vimae-l, infovae)",
        unset=f"{PAPER_VALUE}: {{lam}}",
        bounds=POSITIVE,
    )
    beta: float | None = setting(
        None,
        "weight beta of the KL term (beta-vae-h, beta-vae-a) or of |R0 - KL| (rate-target)",
        unset=f"{PAPER_VALUE}: {{beta_h}} for beta-vae-h, {{beta_a}} for beta-vae-a, "
        "1 for rate-target",
        bounds=POSITIVE,
    )
    rate_target: float | None = setting(
        None,
        "target rate R0 of --model rate-target",
        unit="nats",
        unset="none (give one)",
        bounds=Bounds(low=0),
    )
    alpha: float | None = setting(
        None,
        "InfoVAE's alpha in recon + (1 - alpha) KL + (alpha + lambda - 1) MMD",
        unset=f"{PAPER_VALUE}: 0 (InfoVAE's MMD-VAE)",
    )
    kernel: str = setting(
        "imq", "kernel of the MMD between the codes and prior draws", choices="kernel"
    )
    # VIMAE's input noise: standard deviation and truncation bound (docs/choices.md).
    encoder_noise: float = setting(
        0.005,
        "std of VIMAE's truncated Gaussian input noise",
        unit=INTENSITY,
        bounds=Bounds(low=0),
    )
    encoder_noise_bound: float = setting(
        0.01, "truncation bound of VIMAE's input noise", unit=INTENSITY
    )
    # The decoder's likelihood p(x|z) and its weight w in the loss: gaussian is w times the sum
    # of squared errors (a Gaussian of variance 1 / (2w), up to a constant), bernoulli w times
    # the binary cross-entropy of [0, 1] pixels. The logged and reported "recon" is always the
    # sum of squared errors, whatever the likelihood.
    likelihood: str = setting(
        "gaussian",
        "decoder likelihood in the loss: gaussian (squared error, variance 1 / (2 w) for "
        "--recon-weight w) or bernoulli (binary cross-entropy of [0, 1] pixels)",
        choices=LIKELIHOODS,
        fingerprint=NEW_WEIGHTS,
    )
    recon_weight: float = setting(
        1.0,
        "weight w of the likelihood term in the loss (the WAE code: 0.05)",
        bounds=POSITIVE,
    )
    init: str = setting(
        "pytorch",
        "initial weights of the named networks: pytorch (PyTorch's defaults) or wae (every "
        "weight N(0, 0.01^2), biases 0: the WAE code the paper says it trained with)",
        choices=INITS,
        fingerprint=NEW_WEIGHTS,
    )
    # Networks of one's own (`vimae.fit(..., encoder=, decoder=)`, arch "custom"): the import
    # paths of their classes, recorded so that a run folder names what rebuilds it.
    encoder_class: str | None = setting(
        None,
        "import path of the encoder's class (arch custom)",
        flag=False,
        fingerprint=NEW_WEIGHTS,
    )
    decoder_class: str | None = setting(
        None,
        "import path of the decoder's class (arch custom)",
        flag=False,
        fingerprint=NEW_WEIGHTS,
    )
    # Filled by `resolve` from the data; not a choice a user makes.
    image_shape: tuple[int, int, int] | None = setting(
        None, "(channels, height, width)", flag=False
    )


@dataclass
class DataConfig:
    """Which dataset, where its files are, an optional resize and subset of the training images.

    `image_size` resizes square images (the paper feeds CIFAR-10 to `dcgan64` at 64x64); left as
    None the data keeps its native size and a network that needs another size refuses it.
    `train_size` keeps a seeded, class-stratified draw of that many training images (never the
    first ones), and `test_fraction` is the seeded stratified test share of data that comes as one
    pool (`folder`, `array`); `seed` seeds both draws, apart from the training seed, so that runs
    of several training seeds see the same data.
    """

    dataset: str = setting(
        "digits",
        "dataset; its files under --data-dir: the README's table of layouts",
        choices="dataset",
    )
    data_dir: str | None = setting(
        None,
        "folder of the dataset's files (folder: the image folder; array: the .npy/.npz file)",
        unset="$VIMAE_DATA_DIR, else ./data",
        fingerprint=BOOKKEEPING,  # the data's identity is its digest, checked apart
    )
    image_size: int | None = setting(
        None,
        "side to resize the images to, square (a folder of mixed sizes needs it)",
        unit="pixels",
        unset="the data's own size",
        bounds=Bounds(0, MAX_IMAGE_SIZE, low_inclusive=False),
    )
    train_size: int | None = setting(
        None,
        "training images to keep, a seeded class-stratified draw",
        unit="images",
        unset="all",
        bounds=Bounds(high=MAX_COUNT),
    )
    test_fraction: float = setting(
        0.1,
        "test share of pooled data (folder, array), stratified",
        unit=FRACTION,
        bounds=UNIT_INTERVAL_OPEN,
    )
    # A seeded stratified share of the training images held out to measure a validation loss
    # after every epoch (0: none); the best weights are kept beside the checkpoint.
    val_fraction: float = setting(
        0.0,
        "training images held out for a validation loss each epoch (0: none)",
        unit=FRACTION,
        bounds=Bounds(0, 1, high_inclusive=False),
        fingerprint=NEW_WEIGHTS,
    )
    seed: int = setting(
        0,
        "seed of the --train-size draw and of the pooled and validation splits",
        flag="data_seed",
        bounds=SEED_BOUNDS,
    )


# "bf16": the networks run under bfloat16 autocast, the loss terms stay float32 (runs/fit.py).
PRECISIONS = ("float32", "bf16")
# The learning rate over training (vimae.runs.schedule): constant (the paper's appendix), cosine
# decay to zero, or the WAE code's step decay.
SCHEDULES = ("constant", "cosine", "step")


@dataclass
class TrainConfig:
    """Optimisation (paper appendix: Adam 1e-3, betas 0.5/0.999, batch 100) and bookkeeping."""

    epochs: int = setting(
        80,
        "passes over the training images",
        unit="epochs",
        bounds=Bounds(0, MAX_COUNT, low_inclusive=False),
        # A finished run resumes with more epochs to train longer: the batches of epoch e depend
        # only on (seed, e). A decaying schedule depends on the total (see `fingerprint`).
        fingerprint=BOOKKEEPING,
    )
    steps: int | None = setting(
        None,
        "train exactly N optimiser steps, whatever the data's size (the epochs follow; the last "
        "one may stop part-way)",
        unit="steps",
        unset="--epochs decides",
        bounds=Bounds(0, MAX_COUNT, low_inclusive=False),
        fingerprint=BOOKKEEPING,  # like epochs: a decaying schedule adds it (see fingerprint)
    )
    batch_size: int = setting(
        100,
        "images per step, over all processes",
        unit="images",
        bounds=Bounds(0, MAX_BATCH_SIZE, low_inclusive=False),
    )
    lr: float = setting(
        1e-3, "Adam's learning rate (betas 0.5, 0.999 as in the paper)", bounds=POSITIVE
    )
    schedule: str = setting(
        "constant",
        "learning rate over training: constant; cosine (to 0 at the last step); step (x0.5 "
        "after 3/8 of the steps, x0.1 after 5/8: the WAE code's epochs 30 and 50 of 80)",
        choices=SCHEDULES,
        fingerprint=NEW_WEIGHTS,
    )
    clip_norm: float | None = setting(
        None,
        "clip the gradients' global norm to this value before each step",
        unset="no clipping",
        bounds=POSITIVE,
        fingerprint=NEW_WEIGHTS,
    )
    min_steps: int = setting(
        0,
        "train at least N optimiser steps, adding epochs on small data (0: none)",
        unit="steps",
        bounds=Bounds(0, MAX_COUNT),
        fingerprint=BOOKKEEPING,  # like epochs
    )
    beta1: float = setting(0.5, "Adam's beta1", flag=False, bounds=UNIT_INTERVAL_OPEN)
    beta2: float = setting(0.999, "Adam's beta2", flag=False, bounds=UNIT_INTERVAL_OPEN)
    seed: int = setting(
        0, "seed of the initial weights, the batch order and the noise", bounds=SEED_BOUNDS
    )
    device: str = setting(
        "auto",
        "where to train; auto: CUDA, else Apple MPS, else the CPU",
        fingerprint=BOOKKEEPING,
    )
    precision: str = setting(
        "float32",
        "bf16: the networks under bfloat16 autocast, the loss terms in float32",
        choices=PRECISIONS,
    )
    log_every: int = setting(
        10,
        "write a row to metrics.jsonl every N steps",
        flag=False,
        unit="steps",
        bounds=Bounds(0, MAX_COUNT, low_inclusive=False),
        fingerprint=BOOKKEEPING,
    )
    checkpoint_every: int = setting(
        0,
        "also checkpoint every N steps (0: at each epoch's end)",
        unit="steps",
        bounds=Bounds(0, MAX_COUNT),
        fingerprint=BOOKKEEPING,
    )
    # DataLoader worker processes that read streamed data (the `shards` dataset); 0 reads in
    # the training process.
    workers: int = setting(
        2,
        "DataLoader worker processes reading streamed data (the shards dataset; 0: the "
        "training process reads)",
        unit="processes",
        bounds=Bounds(0, MAX_WORKERS),
        fingerprint=BOOKKEEPING,
    )
    patience: int = setting(
        0,
        "stop when the validation loss has not improved for N epochs (0: never; needs "
        "--val-fraction)",
        unit="epochs",
        bounds=Bounds(0, MAX_COUNT),
        fingerprint=BOOKKEEPING,
    )
    progress: bool = setting(
        True, "a progress bar and a line per epoch", flag=False, fingerprint=BOOKKEEPING
    )
    # Also log to RUN/tensorboard (needs the `tensorboard` extra).
    tensorboard: bool = setting(
        False, "also log to RUN/tensorboard", flag=False, fingerprint=BOOKKEEPING
    )
    # Also log to an MLflow store in RUN/mlflow.db (needs the `mlflow` extra).
    mlflow: bool = setting(
        False, "also log to an MLflow store in RUN/mlflow.db", flag=False, fingerprint=BOOKKEEPING
    )


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], base: "RunConfig | None" = None) -> "RunConfig":
        """Strict inverse of `to_dict`: unknown sections or keys are errors. The values of `raw`
        apply on top of `base` (default: the defaults)."""
        config = cls() if base is None else cls.from_dict(base.to_dict())
        if not isinstance(raw, dict):
            raise VimaeError("a config must be a table of [model], [data] and [train] sections.")
        for section, values in raw.items():
            if not isinstance(values, dict):
                raise VimaeError(f"config section {section!r} must be a table of key = value.")
            if section not in _sections(config):
                raise VimaeError(
                    f"unknown config section {section!r}; "
                    f"use one of: {', '.join(_sections(config))}."
                )
            for key, value in values.items():
                set_value(config, f"{section}.{key}", value)
        return config

    def fingerprint(self, without: tuple[str, ...] = ()) -> str:
        """Canonical JSON of what determines the weights after any given step.

        Settings declared BOOKKEEPING are left out, so is a NEW_WEIGHTS setting at its default
        (runs made before it existed keep their fingerprint), and so are the keys of `without`
        ("train.lr": a resume may lower the learning rate). `epochs` is bookkeeping while the
        learning rate is constant; a decaying schedule depends on the number of steps, so then
        it is part of the fingerprint.
        """
        raw = self.to_dict()
        for key, spec in SETTING_FIELDS.items():
            section, _, name = key.partition(".")
            kind = spec.metadata["fingerprint"]
            at_default = raw[section][name] == _default(spec)
            if kind == BOOKKEEPING or (kind == NEW_WEIGHTS and at_default):
                raw[section].pop(name)
        if self.train.schedule != "constant":  # the rates depend on the total of steps
            raw["train"]["epochs"] = self.train.epochs
            if self.train.steps is not None:
                raw["train"]["steps"] = self.train.steps
            if self.train.min_steps:
                raw["train"]["min_steps"] = self.train.min_steps
        for key in without:
            section, _, name = key.partition(".")
            raw[section].pop(name, None)
        return json.dumps(raw, sort_keys=True)


def _sections(config: RunConfig) -> list[str]:
    return [f.name for f in dataclasses.fields(config)]


def _default(spec: dataclasses.Field) -> Any:
    if spec.default is not dataclasses.MISSING:
        return spec.default
    return spec.default_factory()  # type: ignore[misc]


# Every setting by its key ("model.lam"), in declaration order, and its command-line name.
SECTIONS = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}
SETTING_FIELDS: dict[str, dataclasses.Field] = {
    f"{section}.{f.name}": f for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)
}


def _keyword(key: str) -> str:
    """The name of setting `key` in flags and keywords: its flag, or the field's name."""
    spec = SETTING_FIELDS[key]
    flag = spec.metadata["flag"]
    return flag if isinstance(flag, str) else key.partition(".")[2]


# `vimae train --FLAG` -> config key; each flag is a shortcut for `--set KEY=VALUE`.
TRAIN_FLAGS = {
    _keyword(key): key for key, spec in SETTING_FIELDS.items() if spec.metadata["flag"] is not False
}
# `vimae.fit(..., KEYWORD=value)` -> config key: every setting a user chooses (the flags and
# the settings without one); image_shape is the data's, not a choice.
SETTINGS = {_keyword(key): key for key in SETTING_FIELDS if key != "model.image_shape"}
_FLAG_OF_KEY = {key: "--" + flag.replace("_", "-") for flag, key in TRAIN_FLAGS.items()}

# `vimae train --preset NAME`: other defaults for one purpose, config key -> value, or
# {network: value} where the value depends on `model.arch` (every network is listed; a test
# checks). A preset applies beneath --config, the flags and --set, so anything given wins.
TRAIN_PRESETS: Registry[dict[str, Any]] = Registry("preset")
# quick: trying one's own data in minutes on a CPU: a narrow network for 5 epochs, and at least
# 600 optimiser steps, so that a small folder learns too (300 images are 2 steps an epoch; measured
# in docs/choices.md). The dcgan widths are those of `vimae reproduce --scale cpu` (dcgan64 at
# 1/16: at 1/8 it trains 5x slower than dcgan28).
QUICK_MIN_STEPS = 600
TRAIN_PRESETS.add(
    "quick",
    {
        "model.width": {"mlp": 0.5, "dcgan28": 0.125, "dcgan64": 0.0625},
        "train.epochs": 5,
        "train.min_steps": QUICK_MIN_STEPS,
    },
)


def preset_overrides(name: str, arch: str) -> list[str]:
    """The `section.key=value` overrides of preset `name` for network `arch`.

    An unknown preset is a VimaeError naming the valid ones; a per-network value for an unknown
    network is left out (the network's own lookup names the valid networks).
    """
    overrides = []
    for key, value in TRAIN_PRESETS[name].items():
        if isinstance(value, dict):
            if arch not in value:
                continue
            value = value[arch]
        overrides.append(f"{key}={value}")
    return overrides


def derived_seed(seed: int, salt: int) -> int:
    """A seed for one use of a run's `seed` (an epoch's order, a metric's draws), apart from the
    others: the same (seed, salt) always gives the same generator."""
    return (seed * 1_000_003 + salt) % 2**64


def named(key: str) -> str:
    """How a message names a config key: with its command-line flag where it has one."""
    flag = _FLAG_OF_KEY.get(key)
    return f"{flag} ({key})" if flag else key


def choice_names(choices: str | tuple[str, ...] | None) -> list[str] | None:
    """The valid values of a setting: its tuple, or the names in the registry of that kind
    (None while that registry's module is not imported, or for a free value)."""
    if choices is None or isinstance(choices, tuple):
        return list(choices) if choices is not None else None
    registry = REGISTRIES.get(choices)
    return registry.names() if registry is not None else None


def convert(value: Any, annotation: Any, name: str) -> Any:
    """`value` (text from a flag or file, or a parsed value) as the declared type `annotation`,
    or one sentence naming `name`. Tuples are read from comma-separated text; "none" is None
    where None is allowed; a float must be finite."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        is_none = value is None or (isinstance(value, str) and value.lower() in ("none", "null"))
        if is_none and type(None) in options:
            return None
        inner = [a for a in options if a is not type(None)]
        return convert(value, inner[0], name)
    try:
        if origin is tuple:
            items = [v for v in value.split(",") if v.strip()] if isinstance(value, str) else value
            item_type = next(a for a in typing.get_args(annotation) if a is not Ellipsis)
            return tuple(convert(v.strip() if isinstance(v, str) else v, item_type, name)
                         for v in list(items))  # fmt: skip
        if annotation is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if annotation is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        if annotation is Path and not isinstance(value, str | Path):
            raise TypeError(value)
        converted = annotation(value)
    except (TypeError, ValueError, OverflowError):
        raise VimaeError(f"{name} expects {annotation.__name__}, got {value!r}.") from None
    if annotation is float and not math.isfinite(converted):
        raise VimaeError(f"{name} must be a finite number, got {value!r}.")
    return converted


def check_declared(obj: Any, name_of: Any, registries: bool = False) -> None:
    """Check every field of dataclass `obj` against its declared bounds and tuple choices, and
    with `registries` also the names that a registry holds; the message names a field as
    `name_of(field_name)` does. (A run's dataset or model name is looked up where it is used:
    data given in memory carries a name no registry holds.)"""
    for spec in dataclasses.fields(obj):
        value = getattr(obj, spec.name)
        bounds: Bounds | None = spec.metadata.get("bounds")
        if bounds is not None and value is not None:
            numbers = value if isinstance(value, tuple) else (value,)
            for number in numbers:
                problem = bounds.problem(number)
                if problem is not None:
                    raise VimaeError(f"{name_of(spec.name)} {problem}.")
        choices = spec.metadata.get("choices")
        if isinstance(choices, tuple) and value not in choices:
            raise VimaeError(
                f"{name_of(spec.name)} must be one of {', '.join(choices)}, got {value!r}."
            )
        if registries and isinstance(choices, str) and value is not None:
            REGISTRIES[choices][value]  # one sentence listing the valid names


def set_value(config: RunConfig, key: str, value: Any) -> None:
    """Set `section.name` on `config`, converting `value` to the field's type."""
    section_name, _, name = key.partition(".")
    section = getattr(config, section_name, None) if section_name in _sections(config) else None
    if section is None or not name:
        raise VimaeError(f"unknown config key {key!r}; keys look like model.lam or train.epochs.")
    fields = {f.name: f for f in dataclasses.fields(section)}
    if name not in fields:
        raise VimaeError(
            f"unknown config key {key!r}; valid keys in [{section_name}]: {', '.join(fields)}."
        )
    hints = typing.get_type_hints(type(section))
    setattr(section, name, convert(value, hints[name], named(key)))


def apply_overrides(config: RunConfig, overrides: list[str]) -> RunConfig:
    """Apply `section.key=value` strings in order."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise VimaeError(f"override {item!r} is not of the form section.key=value.")
        set_value(config, key.strip(), value.strip())
    return config


def load_config_file(path: str | Path, base: RunConfig | None = None) -> RunConfig:
    """A RunConfig from a .json or .toml file with [model], [data], [train] sections, applied on
    top of `base` (default: the defaults)."""
    path = Path(path)
    text = read_text_bounded(path, MAX_CONFIG_BYTES, "config file")
    try:
        raw = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
        raise VimaeError(f"config file {path} cannot be parsed ({err}); fix its syntax.") from None
    return RunConfig.from_dict(raw, base)


def validate(config: RunConfig) -> None:
    """Reject nonsense hyper-parameters with one sentence each (before any work starts): every
    setting against its declared bounds and choices, then the rules that tie settings together."""
    for section in _sections(config):
        check_declared(getattr(config, section), lambda name, s=section: named(f"{s}.{name}"))
    m, t, d = config.model, config.train, config.data
    if m.image_shape is not None:
        c, h, w = (*m.image_shape, 0, 0, 0)[:3]
        sides_ok = 0 < h <= MAX_IMAGE_SIZE and 0 < w <= MAX_IMAGE_SIZE
        if len(m.image_shape) != 3 or not (1 <= c <= 4 and sides_ok):
            raise VimaeError(
                f"model.image_shape must be (channels 1-4, height, width) up to "
                f"{MAX_IMAGE_SIZE} pixels, got {m.image_shape}."
            )
    if t.batch_size < 2:
        raise VimaeError("train.batch_size must be at least 2 (the unbiased MMD needs two codes).")
    if m.encoder_noise > 0 and not m.encoder_noise_bound > 0:
        raise VimaeError(
            f"model.encoder_noise_bound must be positive, got {m.encoder_noise_bound}; "
            "the noise is truncated to [-bound, bound]."
        )
    if d.train_size is not None and d.train_size < t.batch_size:
        raise VimaeError("data.train_size must be at least one batch (train.batch_size).")


def save_config(config: RunConfig, run_dir: Path) -> None:
    atomic_write_text(run_dir / CONFIG_FILE, json.dumps(config.to_dict(), indent=2) + "\n")


def load_config(run_dir: str | Path) -> RunConfig:
    """The resolved config recorded in a run folder."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file() and special_kind(path) is None:
        raise VimaeError(
            f"{run_dir} is not a vimae run folder (no {CONFIG_FILE}); "
            "pass the --out folder of a `vimae train` run."
        )
    text = read_text_bounded(path, MAX_CONFIG_BYTES, "the run's config")
    try:
        config = RunConfig.from_dict(json.loads(text))
        validate(config)
    except (VimaeError, json.JSONDecodeError, UnicodeDecodeError, AttributeError) as err:
        raise VimaeError(
            f"{path} records an invalid config ({str(err).rstrip('.')}); it is damaged or was "
            "edited by hand: restore it from a copy."
        ) from None
    return config
