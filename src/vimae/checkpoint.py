"""Checkpoints as one safetensors file: weights, optimizer state, RNG state, config, progress.

Loading never unpickles anything: tensors come from safetensors, everything else from the JSON
metadata stored in the same file. Writing is atomic (see `vimae.atomic`), so a run killed at any
moment leaves either the previous checkpoint or the new one.
"""

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from vimae.atomic import atomic_write
from vimae.config import RunConfig
from vimae.errors import VimaeError
from vimae.model import Autoencoder, build_model

CHECKPOINT_FILE = "checkpoint.safetensors"
FORMAT = "vimae-checkpoint-1"


def save_checkpoint(
    path: Path,
    model: Autoencoder,
    optimizer: torch.optim.Optimizer,
    config: RunConfig,
    progress: dict[str, Any],
    rng: dict[str, torch.Tensor],
) -> None:
    """Write model, Adam state, resolved config, `progress` and the RNG states `rng` (named
    `rng.*`) to `path` atomically."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    optim = optimizer.state_dict()
    for index, state in optim["state"].items():
        for key, value in state.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tensors.update(rng)
    metadata = {
        "format": FORMAT,
        "config": json.dumps(config.to_dict()),
        "progress": json.dumps(progress),
        "optim_groups": json.dumps(optim["param_groups"]),
    }
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a checkpoint file, or VimaeError if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise VimaeError(f"checkpoint {path} does not exist; train first or check the path.")
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), "pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise VimaeError(
            f"{path} is not a readable safetensors checkpoint ({err}); "
            "it may be truncated or another kind of file."
        ) from None
    if metadata.get("format") != FORMAT:
        raise VimaeError(
            f"{path} is a safetensors file but not a vimae checkpoint "
            f"(format {metadata.get('format')!r}, expected {FORMAT!r})."
        )
    return tensors, metadata


def checkpoint_config(metadata: dict[str, str]) -> RunConfig:
    return RunConfig.from_dict(json.loads(metadata["config"]))


def load_weights(model: Autoencoder, tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Strictly load the `model.*` tensors; a shape or name mismatch is a VimaeError."""
    weights = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise VimaeError(f"checkpoint {path} does not fit this model's config ({first}).") from None


def restore_optimizer(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], metadata: dict[str, str]
) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict(
        {"state": state, "param_groups": json.loads(metadata["optim_groups"])}
    )


def load_model(run_dir: str | Path, device: str | torch.device = "cpu") -> Autoencoder:
    """The trained model of a run folder, in eval mode, rebuilt from its own recorded config."""
    path = Path(run_dir) / CHECKPOINT_FILE
    tensors, metadata = read_checkpoint(path)
    model = build_model(checkpoint_config(metadata).model)
    load_weights(model, tensors, path)
    return model.to(device).eval()
