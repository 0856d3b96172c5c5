"""The Python front door: `vimae.fit`, `vimae.load`, `vimae.evaluate`, `vimae.fit_sampler`.

The command line and these functions share everything underneath (`vimae.runs.fit.fit`, the run
folder, the metrics); here the data may be what a notebook holds: a float tensor or array of
images (N, C, H, W) or (N, H, W) in [0, 1], an `ImageData`, a torch `Dataset` of images or
(image, label) pairs, or a `DataLoader` over one. Settings have the command line's names
(`latent_dim=`, `epochs=`, `lr=`, `val_fraction=` ... as `vimae train --latent-dim` etc.).

    model = vimae.fit("vimae-l", images, labels=y, arch="mlp", latent_dim=8, epochs=5)
    codes = model.encode(images)
    results = vimae.evaluate(model, test_images, labels=test_y, metrics=["reconstruction"])
"""

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vimae.config import SETTINGS, RunConfig, load_config_file, set_value
from vimae.data import ImageData, load_dataset
from vimae.errors import VimaeError
from vimae.metrics import (
    METRICS,
    MetricContext,
    MetricOptions,
    default_metrics,
    validate_options,
)
from vimae.models import Autoencoder
from vimae.models.custom import class_path
from vimae.models.fitted import build_sampler
from vimae.models.inputs import unit_images
from vimae.models.objective import CUSTOM
from vimae.models.sampler import Sampler
from vimae.runs.evaluation import run_metrics
from vimae.runs.fit import fit as fit_run
from vimae.runs.loading import load_trained
from vimae.runs.loggers import Logger

IN_MEMORY = "in-memory"  # the dataset name recorded for data passed as arrays or tensors

Images = Any  # torch.Tensor | np.ndarray | ImageData | Dataset | DataLoader


def as_image_data(data: Images, labels: Any = None, name: str = IN_MEMORY) -> ImageData:
    """`data` as an ImageData: float32 images (N, C, H, W) in [0, 1] and int64 labels or None.

    Accepts a tensor or array (N, C, H, W) or (N, H, W) of floats in [0, 1] (uint8 is divided by
    255), an ImageData, a torch Dataset whose items are images or (image, label) pairs, or a
    DataLoader over such a dataset. Anything else, or values outside [0, 1], is one sentence.
    """
    if isinstance(data, ImageData):
        return data if labels is None else ImageData(data.name, data.pixels, _labels(labels))
    if isinstance(data, torch.utils.data.DataLoader | torch.utils.data.Dataset):
        data, found = _collect(data)
        labels = found if labels is None else labels
    if not isinstance(data, torch.Tensor | np.ndarray):
        raise VimaeError(
            f"cannot train on a {type(data).__name__}; pass images as a tensor or array "
            "(N, C, H, W) or (N, H, W) in [0, 1], an ImageData, a Dataset or a DataLoader."
        )
    images = unit_images(data).cpu().contiguous()  # the checks every model method makes too
    label_tensor = _labels(labels)
    if label_tensor is not None and len(label_tensor) != len(images):
        raise VimaeError(f"{len(label_tensor)} labels for {len(images)} images; give one each.")
    return ImageData(name, images, label_tensor)


def _labels(labels: Any) -> torch.Tensor | None:
    if labels is None:
        return None
    tensor = torch.as_tensor(np.asarray(labels))
    fractional = tensor.is_floating_point() and not (tensor == tensor.round()).all()
    if tensor.dim() != 1 or fractional:
        raise VimaeError("labels must be one integer class per image.")
    return tensor.long()


def _collect(source: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """All images (and labels, when items are pairs) of a Dataset or DataLoader."""
    loader = source
    if isinstance(source, torch.utils.data.Dataset):
        loader = torch.utils.data.DataLoader(source, batch_size=256, shuffle=False)
    images, labels = [], []
    for batch in loader:
        if isinstance(batch, list | tuple):
            images.append(torch.as_tensor(batch[0]))
            if len(batch) > 1:
                labels.append(torch.as_tensor(batch[1]))
        else:
            images.append(torch.as_tensor(batch))
    if not images:
        raise VimaeError("the dataset is empty; give it at least one batch of images.")
    return torch.cat(images), (torch.cat(labels) if labels else None)


def build_config(model: str, settings: dict[str, Any], config: Any = None) -> RunConfig:
    """A RunConfig from a base (a RunConfig, a .json/.toml path or the defaults), the model name
    and settings named as the command line's flags; an unknown name is one sentence."""
    if isinstance(config, RunConfig):
        run_config = RunConfig.from_dict(config.to_dict())
    else:
        run_config = load_config_file(config) if config is not None else RunConfig()
    set_value(run_config, "model.name", model)
    for name, value in settings.items():
        if name not in SETTINGS:
            valid = ", ".join(sorted(SETTINGS))
            raise VimaeError(f"unknown setting {name!r}; use one of: {valid}.")
        set_value(run_config, SETTINGS[name], value)
    return run_config


def fit(
    model: str = "vimae-n",
    data: Images | str = "digits",
    labels: Any = None,
    validation: Images | None = None,
    validation_labels: Any = None,
    out: str | Path | None = None,
    resume: bool = False,
    config: Any = None,
    encoder: torch.nn.Module | None = None,
    decoder: torch.nn.Module | None = None,
    loggers: Sequence[Logger] = (),
    **settings: Any,
) -> Autoencoder:
    """Train `model` ("vimae-n", "vimae-l", "vae", "beta-vae-h", "beta-vae-a", "rate-target",
    "infovae") on `data` and return it in eval mode, its epoch rows in `model.history`.

    `data` is a dataset name (loaded from `data_dir=` like `vimae train --dataset`) or images in
    memory (see `as_image_data`), with optional `labels` (recorded with the class counts) and
    `validation` images. `out` is a run folder as `vimae train --out` writes it (resumable with
    `resume=True`, usable by every command); with `out=None` nothing is written. `encoder` and
    `decoder` are networks of one's own (their interface: vimae.models.custom). `loggers` get every
    row of the run as metrics.jsonl does: anything with `log(row)` and `close()`
    (vimae.runs.loggers; `mlflow=True` adds MLflow's, `tensorboard=True` TensorBoard's).
    """
    if resume and out is None:
        raise VimaeError("resume=True continues a run folder: give its out= too.")
    if isinstance(data, str):
        settings = {"dataset": data, **settings}
        train_data = None
    else:
        settings.setdefault("dataset", getattr(data, "name", IN_MEMORY))
        train_data = as_image_data(data, labels, settings["dataset"])
    settings.setdefault("progress", True)
    networks = None
    if (encoder is None) != (decoder is None):
        raise VimaeError("give both encoder= and decoder= (networks of one's own), or neither.")
    if encoder is not None:
        networks = (encoder, decoder)
        settings = {**settings, "arch": CUSTOM}
    run_config = build_config(model, settings, config)
    if networks is not None:
        run_config.model.encoder_class = class_path(encoder)
        run_config.model.decoder_class = class_path(decoder)
    val = None if validation is None else as_image_data(validation, validation_labels)
    with torch.enable_grad():
        return fit_run(
            run_config,
            out,
            resume=resume,
            data=train_data,
            validation=val,
            networks=networks,
            loggers=loggers,
        )


def load(
    path: str | Path,
    device: str = "cpu",
    encoder: torch.nn.Module | None = None,
    decoder: torch.nn.Module | None = None,
) -> Autoencoder:
    """The trained model of a run folder (its checkpoint), a `vimae export` folder or a weights
    file, verified, in eval mode on `device`. A run trained with networks of its own takes the
    `encoder` and `decoder` modules built as for training (else its recorded classes are built
    without arguments; see vimae.models.custom)."""
    networks = (encoder, decoder) if encoder is not None and decoder is not None else None
    return load_trained(path, device, networks).model


def evaluate(
    model: Autoencoder,
    test_data: Images | str,
    metrics: Sequence[str] | str | None = None,
    labels: Any = None,
    train_data: Images | None = None,
    data_dir: str | None = None,
    factors: Any = None,
    **options: Any,
) -> dict[str, dict[str, Any]]:
    """Each metric's values (or its reason for not being computed) on `test_data`, in memory:
    by default every metric of `vimae evaluate`, those that lack what they need saying so.

    `test_data` is images (see `as_image_data`) or a dataset name, whose test split is loaded.
    Parzen and FID also need training images (`train_data`); the semi-supervised accuracy needs
    `labels`; the disentanglement metric (`metrics="disentanglement"`) the images' generating
    factors, (N, K) integer indices (`factors`; the shapes dataset has its own). `options` are
    `vimae evaluate`'s (`seed=`, `n_labels=`, `corruptions=`, `sampler=` ...).
    """
    if metrics is None:
        metrics = default_metrics()  # every metric `vimae evaluate` measures
    if isinstance(metrics, str):
        metrics = [metrics]  # one name, not the letters of one
    for name in metrics:
        METRICS[name]  # an unknown name: one sentence listing every registered metric
    fields = {f.name for f in dataclasses.fields(MetricOptions)}
    if set(options) - fields:
        bad = sorted(set(options) - fields)[0]
        raise VimaeError(f"unknown option {bad!r}; use one of: {', '.join(sorted(fields))}.")
    metric_options = MetricOptions(**options)
    validate_options(metric_options)
    if isinstance(test_data, str):
        dataset, test = test_data, load_dataset(test_data, "test", data_dir)
        in_memory = False
    else:
        dataset, test = IN_MEMORY, as_image_data(test_data, labels)
        in_memory = True
    if factors is not None:
        values = torch.as_tensor(np.asarray(factors))
        if values.dim() == 1:
            values = values[:, None]
        if values.dim() != 2 or len(values) != len(test) or values.is_floating_point():
            raise VimaeError(
                f"factors must be integer indices (N, K) for the {len(test)} test images, got "
                f"{tuple(values.shape)} of {values.dtype}."
            )
        test = dataclasses.replace(test, factors=values.long())
    if test.image_shape != tuple(model.image_shape):
        raise VimaeError(
            f"the test images are {test.image_shape} but the model takes {model.image_shape}."
        )
    train = None if train_data is None else as_image_data(train_data)
    ctx = MetricContext(model, test, dataset, data_dir, options=metric_options)
    ctx.train_split, ctx.in_memory = train, in_memory
    with torch.no_grad():
        return run_metrics(ctx, list(metrics))


def fit_sampler(model: Autoencoder, data: Images, sampler: str = "gmm", seed: int = 0) -> Sampler:
    """A sampler of codes for `model.sample(n, sampler=...)`: "gmm" fits a Gaussian mixture to
    the evaluation codes of `data` (training images, as `fit` takes them) with K chosen by BIC,
    "gmm:K" with K components, "prior" the model's prior (`vimae.models.expost`). Samples of a
    model whose q(z) is not its prior usually look better from the mixture (Ghosh et al. 2020)."""
    images = as_image_data(data).images
    return build_sampler(sampler, model, lambda: images, seed=seed)
