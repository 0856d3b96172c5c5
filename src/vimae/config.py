"""Every setting of a run, once: typed dataclasses, overrides, validation, JSON round trip.

A run is described by a `RunConfig` (model, data, train). Defaults live here and nowhere else; a
preset (`TRAIN_PRESETS`), a config file (JSON or TOML) and `section.key=value` overrides apply on
top, in that order, and unknown keys are errors. Hyper-parameters left as None (lam, beta, alpha,
prior) are filled by the model preset for the dataset (paper section 5.2) and the resolved values
are what a run folder records.
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

from vimae.atomic import atomic_write_text
from vimae.errors import VimaeError
from vimae.registry import Registry

CONFIG_FILE = "config.json"

# Command-line flag of `vimae train` -> config key; each flag is a shortcut for `--set KEY=VALUE`.
TRAIN_FLAGS = {
    "model": "model.name",
    "arch": "model.arch",
    "width": "model.width",
    "latent_dim": "model.latent_dim",
    "prior": "model.prior",
    "lam": "model.lam",
    "beta": "model.beta",
    "rate_target": "model.rate_target",
    "alpha": "model.alpha",
    "kernel": "model.kernel",
    "encoder_noise": "model.encoder_noise",
    "encoder_noise_bound": "model.encoder_noise_bound",
    "recon_weight": "model.recon_weight",
    "dataset": "data.dataset",
    "data_dir": "data.data_dir",
    "image_size": "data.image_size",
    "train_size": "data.train_size",
    "test_fraction": "data.test_fraction",
    "val_fraction": "data.val_fraction",
    "data_seed": "data.seed",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "lr": "train.lr",
    "seed": "train.seed",
    "device": "train.device",
    "precision": "train.precision",
    "checkpoint_every": "train.checkpoint_every",
    "patience": "train.patience",
    "workers": "train.workers",
}
_FLAG_OF_KEY = {key: "--" + flag.replace("_", "-") for flag, key in TRAIN_FLAGS.items()}

# `vimae train --preset NAME`: other defaults for one purpose, config key -> value, or
# {network: value} where the value depends on `model.arch` (every network is listed; a test
# checks). A preset applies beneath --config, the flags and --set, so anything given wins.
TRAIN_PRESETS: Registry[dict[str, Any]] = Registry("preset")
# quick: trying one's own data in minutes on a CPU. The dcgan widths are those of `vimae reproduce
# --scale cpu` (dcgan64 at 1/16: at 1/8 it trains 5x slower than dcgan28); 5 epochs lies within
# that scale's 4 to 6. Speeds and the reasons: docs/choices.md.
TRAIN_PRESETS.add(
    "quick",
    {"model.width": {"mlp": 0.25, "dcgan28": 0.125, "dcgan64": 0.0625}, "train.epochs": 5},
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


# Upper bounds, checked before anything is allocated: beyond them a value is a typo, not a run.
MAX_SEED = 2**63 - 1
MAX_LATENT_DIM = 4096
MAX_IMAGE_SIZE = 2048
MAX_WIDTH = 16.0
MAX_BATCH_SIZE = 65536
MAX_COUNT = 2**31 - 1  # epochs, images, steps
MAX_WORKERS = 256


def named(key: str) -> str:
    """How a message names a config key: with its command-line flag where it has one."""
    flag = _FLAG_OF_KEY.get(key)
    return f"{flag} ({key})" if flag else key


@dataclass
class ModelConfig:
    """Objective, network and latent space. None means "the paper's default for the dataset"."""

    name: str = "vimae-n"
    arch: str = "dcgan28"
    width: float = 1.0
    latent_dim: int = 8
    prior: str | None = None
    lam: float | None = None
    beta: float | None = None
    rate_target: float | None = None
    alpha: float | None = None
    kernel: str = "imq"
    # VIMAE's input noise: standard deviation and truncation bound (docs/choices.md).
    encoder_noise: float = 0.005
    encoder_noise_bound: float = 0.01
    # Weight of the squared error in the loss (the WAE code the paper builds on uses 0.05).
    recon_weight: float = 1.0
    image_shape: tuple[int, int, int] | None = None


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

    dataset: str = "digits"
    data_dir: str | None = None
    image_size: int | None = None
    train_size: int | None = None
    test_fraction: float = 0.1
    # A seeded stratified share of the training images held out to measure a validation loss
    # after every epoch (0: none); the best weights are kept beside the checkpoint.
    val_fraction: float = 0.0
    seed: int = 0


# "bf16": the networks run under bfloat16 autocast, the loss terms stay float32 (train.py).
PRECISIONS = ("float32", "bf16")


@dataclass
class TrainConfig:
    """Optimisation (paper appendix: Adam 1e-3, betas 0.5/0.999, batch 100) and bookkeeping."""

    epochs: int = 80
    batch_size: int = 100
    lr: float = 1e-3
    beta1: float = 0.5
    beta2: float = 0.999
    seed: int = 0
    device: str = "auto"
    precision: str = "float32"
    log_every: int = 10
    checkpoint_every: int = 0
    # DataLoader worker processes that read streamed data (the `shards` dataset); 0 reads in
    # the training process.
    workers: int = 2
    # Stop when the validation loss has not improved for this many epochs (0: never).
    patience: int = 0
    progress: bool = True
    # Also log to RUN/tensorboard (needs the `tensorboard` extra).
    tensorboard: bool = False


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

        Bookkeeping is left out, and so is `epochs`: the batches of epoch e depend only on
        (seed, e), so a finished run can be resumed with more epochs to train longer. The data
        folder is left out too: the data's identity is its digest, checked apart (train.py).
        `without` leaves out more keys ("train.lr": a resume may lower the learning rate).
        """
        raw = self.to_dict()
        bookkeeping = ("device", "progress", "log_every", "checkpoint_every", "epochs", "workers")
        for key in (*bookkeeping, "patience", "tensorboard"):
            raw["train"].pop(key)
        raw["data"].pop("data_dir")
        if raw["data"]["val_fraction"] == 0.0:  # runs from before validation keep their names
            raw["data"].pop("val_fraction")
        for key in without:
            section, _, name = key.partition(".")
            raw[section].pop(name)
        return json.dumps(raw, sort_keys=True)


def _sections(config: RunConfig) -> list[str]:
    return [f.name for f in dataclasses.fields(config)]


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Convert a parsed or textual value to the field's declared type, or raise VimaeError."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        is_none = value is None or (isinstance(value, str) and value.lower() in ("none", "null"))
        if is_none and type(None) in options:
            return None
        inner = [a for a in options if a is not type(None)]
        return _coerce(value, inner[0], key)
    try:
        if origin is tuple:
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(_coerce(v, typing.get_args(annotation)[0], key) for v in items)
        if annotation is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if annotation is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        converted = annotation(value)
    except (TypeError, ValueError, OverflowError):
        raise VimaeError(
            f"config key {key} expects {annotation.__name__}, got {value!r}."
        ) from None
    if annotation is float and not math.isfinite(converted):
        raise VimaeError(f"{named(key)} must be a finite number, got {value!r}.")
    return converted


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
    setattr(section, name, _coerce(value, hints[name], key))


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
    if not path.is_file():
        raise VimaeError(f"config file {path} does not exist; check the path.")
    try:
        text = path.read_text()
        raw = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise VimaeError(f"config file {path} cannot be parsed ({err}); fix its syntax.") from None
    return RunConfig.from_dict(raw, base)


def validate(config: RunConfig) -> None:
    """Reject nonsense hyper-parameters with one sentence each (before any work starts)."""
    m, t = config.model, config.train
    positive = {
        "model.width": m.width,
        "model.latent_dim": m.latent_dim,
        "train.epochs": t.epochs,
        "train.batch_size": t.batch_size,
        "train.lr": t.lr,
        "model.lam": m.lam,
        "model.beta": m.beta,
        "model.recon_weight": m.recon_weight,
        "train.log_every": t.log_every,
    }
    for key, value in positive.items():
        if value is not None and not value > 0:
            raise VimaeError(f"{key} must be positive, got {value}.")
    d = config.data
    upper = {
        "model.latent_dim": (m.latent_dim, MAX_LATENT_DIM),
        "model.width": (m.width, MAX_WIDTH),
        "train.batch_size": (t.batch_size, MAX_BATCH_SIZE),
        "train.epochs": (t.epochs, MAX_COUNT),
        "train.log_every": (t.log_every, MAX_COUNT),
        "train.checkpoint_every": (t.checkpoint_every, MAX_COUNT),
        "data.train_size": (d.train_size, MAX_COUNT),
        "data.image_size": (d.image_size, MAX_IMAGE_SIZE),
        "train.seed": (t.seed, MAX_SEED),
        "data.seed": (d.seed, MAX_SEED),
    }
    for key, (value, limit) in upper.items():
        if value is not None and value > limit:
            raise VimaeError(f"{named(key)} must be at most {limit}, got {value}.")
    if t.seed < 0:
        raise VimaeError(f"{named('train.seed')} must be >= 0, got {t.seed}.")
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
    if m.encoder_noise < 0:
        raise VimaeError(f"model.encoder_noise must be >= 0, got {m.encoder_noise}.")
    if m.encoder_noise > 0 and not m.encoder_noise_bound > 0:
        raise VimaeError(
            f"model.encoder_noise_bound must be positive, got {m.encoder_noise_bound}; "
            "the noise is truncated to [-bound, bound]."
        )
    if m.rate_target is not None and m.rate_target < 0:
        raise VimaeError(f"model.rate_target must be >= 0 nats, got {m.rate_target}.")
    if not 0.0 < t.beta1 < 1.0 or not 0.0 < t.beta2 < 1.0:
        raise VimaeError("train.beta1 and train.beta2 must lie strictly between 0 and 1.")
    if t.precision not in PRECISIONS:
        raise VimaeError(
            f"train.precision must be one of {', '.join(PRECISIONS)}, got {t.precision!r}."
        )
    if t.checkpoint_every < 0:
        raise VimaeError("train.checkpoint_every must be >= 0 (0 = at the end of each epoch).")
    if config.data.image_size is not None and config.data.image_size < 1:
        raise VimaeError(
            f"{named('data.image_size')} must be positive, got {config.data.image_size}."
        )
    if config.data.train_size is not None and config.data.train_size < t.batch_size:
        raise VimaeError("data.train_size must be at least one batch (train.batch_size).")
    if not 0.0 < config.data.test_fraction < 1.0:
        raise VimaeError(
            f"{named('data.test_fraction')} must lie strictly between 0 and 1, "
            f"got {config.data.test_fraction}."
        )
    if not 0.0 <= config.data.val_fraction < 1.0:
        raise VimaeError(
            f"{named('data.val_fraction')} must lie in [0, 1), got {config.data.val_fraction}."
        )
    if not 0 <= t.workers <= MAX_WORKERS:
        raise VimaeError(f"{named('train.workers')} must be 0 to {MAX_WORKERS}, got {t.workers}.")
    if t.patience < 0 or t.patience > MAX_COUNT:
        raise VimaeError(f"{named('train.patience')} must be >= 0 epochs, got {t.patience}.")
    if config.data.seed < 0:
        raise VimaeError(f"data.seed must be >= 0, got {config.data.seed}.")


def save_config(config: RunConfig, run_dir: Path) -> None:
    atomic_write_text(run_dir / CONFIG_FILE, json.dumps(config.to_dict(), indent=2) + "\n")


def load_config(run_dir: str | Path) -> RunConfig:
    """The resolved config recorded in a run folder."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise VimaeError(
            f"{run_dir} is not a vimae run folder (no {CONFIG_FILE}); "
            "pass the --out folder of a `vimae train` run."
        )
    try:
        config = RunConfig.from_dict(json.loads(path.read_text()))
        validate(config)
    except (VimaeError, json.JSONDecodeError, UnicodeDecodeError, AttributeError) as err:
        raise VimaeError(
            f"{path} records an invalid config ({str(err).rstrip('.')}); it is damaged or was "
            "edited by hand: restore it from a copy."
        ) from None
    return config
