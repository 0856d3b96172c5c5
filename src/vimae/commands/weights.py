"""An exported model: a folder with the weights alone and the resolved config that rebuilds them.

`vimae export` writes DIR/model.safetensors (the model's tensors with a sha256 digest and the
config in the file's metadata, no optimizer or RNG state; see `vimae.checkpoint.save_weights`) and
DIR/config.json (the same config, readable by eye and by `vimae.config.load_config`).
`load_exported(DIR)` rebuilds the model and trusts nothing: the digest, the recorded config and
its agreement with config.json are checked before any weight is used.
"""

import json
from pathlib import Path

import torch

from vimae.checkpoint import (
    WEIGHTS_FORMAT,
    checkpoint_config,
    model_from,
    read_checkpoint,
    save_weights,
)
from vimae.config import CONFIG_FILE, RunConfig, load_config, save_config
from vimae.errors import VimaeError
from vimae.model import Autoencoder

EXPORT_FILE = "model.safetensors"


def save_export(
    folder: Path, model: Autoencoder, config: RunConfig, source: dict[str, object]
) -> list[Path]:
    """Write the model's weights and config into `folder` (atomically, each file); `source`
    (the run folder, its checkpoint step) is kept in the weights file's metadata."""
    folder = Path(folder)
    save_weights(folder / EXPORT_FILE, model, config, {"source": json.dumps(source)})
    save_config(config, folder)
    return [folder / EXPORT_FILE, folder / CONFIG_FILE]


def load_exported(folder: str | Path, device: str | torch.device = "cpu") -> Autoencoder:
    """The model of an export folder, verified, in eval mode on `device`."""
    folder = Path(folder)
    path = folder / EXPORT_FILE
    if not path.is_file():
        raise VimaeError(
            f"{folder} holds no {EXPORT_FILE}; pass a folder written by `vimae export`."
        )
    tensors, metadata = read_checkpoint(path)  # checks the digest
    if metadata.get("format") != WEIGHTS_FORMAT:
        raise VimaeError(
            f"{path} is a training checkpoint, not exported weights; export it with "
            "`vimae export RUN --out DIR`."
        )
    config = checkpoint_config(metadata, path)
    if load_config(folder).fingerprint() != config.fingerprint():
        raise VimaeError(
            f"{folder / CONFIG_FILE} and {path} describe different models; export the run "
            "again or restore the pair that belongs together."
        )
    return model_from(config, tensors, path, device)
