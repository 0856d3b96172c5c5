"""The one way to turn files on disk into a model: a run folder, an export folder or a weights file.

- A run folder (`vimae train --out`): its checkpoint.safetensors, rebuilt from the config recorded
  in the checkpoint itself, which must agree with the folder's config.json.
- An export folder (`vimae export`): DIR/model.safetensors (the model's tensors with a sha256
  digest and the config in the file's metadata, no optimizer or RNG state; see
  `vimae.runs.checkpoint.save_weights`) and DIR/config.json (the same config, readable by eye),
  which must describe the same model.
- A weights file: an exported model.safetensors, a best.safetensors or a checkpoint.

Nothing is trusted: the digest, the recorded config and the agreement of the pair are checked
before any weight is used, and every failure is one sentence naming the file.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from vimae.config import CONFIG_FILE, RunConfig, load_config, save_config
from vimae.errors import VimaeError
from vimae.models import Autoencoder, build_model
from vimae.runs.checkpoint import (
    CHECKPOINT_FILE,
    WEIGHTS_FORMAT,
    checkpoint_config,
    load_weights,
    read_checkpoint,
    save_weights,
)
from vimae.runs.device import resolve_device

EXPORT_FILE = "model.safetensors"


@dataclass
class Trained:
    """A saved model (eval mode, on `device`), its resolved config and the folder it came from."""

    run_dir: Path
    config: RunConfig
    model: Autoencoder
    device: torch.device


Networks = tuple[torch.nn.Module, torch.nn.Module] | None


def load_trained(
    path: str | Path, device: str | torch.device = "auto", networks: Networks = None
) -> Trained:
    """The model of a run folder, an export folder or a weights file, verified, in eval mode on
    `device` ("auto": CUDA, else MPS, else the CPU), with its config. `networks` are the
    (encoder, decoder) of a run trained with networks of its own (see vimae.models.custom)."""
    path = Path(path)
    torch_device = device if isinstance(device, torch.device) else resolve_device(device)
    if path.is_file():
        tensors, metadata = read_checkpoint(path)
        config = checkpoint_config(metadata, path)
        model = model_from(config, tensors, path, torch_device, networks)
        return Trained(path.parent, config, model, torch_device)
    if not path.is_dir():
        raise VimaeError(
            f"run folder {path} does not exist; pass the --out folder of a `vimae train` run."
        )
    exported = (path / EXPORT_FILE).is_file() and not (path / CHECKPOINT_FILE).exists()
    weights = path / (EXPORT_FILE if exported else CHECKPOINT_FILE)
    tensors, metadata = read_checkpoint(weights)
    if exported and metadata.get("format") != WEIGHTS_FORMAT:
        raise VimaeError(
            f"{weights} is a training checkpoint, not exported weights; export it with "
            "`vimae export RUN --out DIR`."
        )
    config = checkpoint_config(metadata, weights)
    check_pair(path, config, weights, exported)
    model = model_from(config, tensors, weights, torch_device, networks)
    return Trained(path, config, model, torch_device)


def check_pair(folder: Path, config: RunConfig, weights: Path, exported: bool) -> None:
    """The folder's config.json describes the model of `weights` (whose recorded config is
    `config`); a run may differ by a lowered learning rate. A missing config.json beside a
    checkpoint is allowed (the checkpoint carries its own config)."""
    if not (folder / CONFIG_FILE).is_file():
        if exported:
            load_config(folder)  # one sentence: not a folder written by `vimae export`
        return
    without = () if exported else ("train.lr",)
    if load_config(folder).fingerprint(without) != config.fingerprint(without):
        if exported:
            raise VimaeError(
                f"{folder / CONFIG_FILE} and {weights} describe different models; export the "
                "run again or restore the pair that belongs together."
            )
        raise VimaeError(
            f"{folder / CONFIG_FILE} and {weights} describe different runs; the folder "
            "mixes two runs: keep the pair that belongs together."
        )


def model_from(
    config: RunConfig,
    tensors: dict[str, torch.Tensor],
    path: Path,
    device: str | torch.device = "cpu",
    networks: Networks = None,
) -> Autoencoder:
    """The model `config` describes with the verified `model.*` tensors read from `path`, in
    eval mode on `device` (with `networks` of one's own when given)."""
    model = build_model(config.model, networks)
    load_weights(model, tensors, path)
    return model.to(device).eval()


def load_model(run_dir: str | Path, device: str | torch.device = "cpu") -> Autoencoder:
    """The trained model of a run folder (or export folder, or weights file), in eval mode."""
    return load_trained(run_dir, device).model


def load_exported(folder: str | Path, device: str | torch.device = "cpu") -> Autoencoder:
    """The model of an export folder, verified, in eval mode on `device`."""
    folder = Path(folder)
    if not (folder / EXPORT_FILE).is_file():
        raise VimaeError(
            f"{folder} holds no {EXPORT_FILE}; pass a folder written by `vimae export`."
        )
    return load_model(folder, device)


def save_export(
    folder: Path, model: Autoencoder, config: RunConfig, source: dict[str, object]
) -> list[Path]:
    """Write the model's weights and config into `folder` (atomically, each file); `source`
    (the run folder, its checkpoint step) is kept in the weights file's metadata."""
    folder = Path(folder)
    save_weights(folder / EXPORT_FILE, model, config, {"source": json.dumps(source)})
    save_config(config, folder)
    return [folder / EXPORT_FILE, folder / CONFIG_FILE]
