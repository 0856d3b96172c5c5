"""Checkpoints as one safetensors file: weights, optimizer state, RNG state, config, progress.

Loading never unpickles anything: tensors come from safetensors, everything else from the JSON
metadata stored in the same file. Writing is atomic (see `vimae.files`), so a run killed at any
moment leaves either the previous checkpoint or the new one.

Nothing in a checkpoint is trusted: a sha256 over every tensor's name, dtype, shape and bytes is
stored in the metadata and checked on load (a flipped byte is an error naming the file, not NaN
metrics with status ok), and the recorded config is validated exactly as command-line values are.
Checkpoints of format 1 (before digests) still load, unverified. Turning a file into a model is
`vimae.runs.loading`'s job.
"""

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from vimae.config import RunConfig, validate
from vimae.errors import VimaeError
from vimae.files import atomic_write
from vimae.models import Autoencoder, check_resolved
from vimae.models.tensorfile import tensors_digest

CHECKPOINT_FILE = "checkpoint.safetensors"
# The weights of the lowest validation loss (training with validation), weights only.
BEST_FILE = "best.safetensors"
FORMAT = "vimae-checkpoint-2"
WEIGHTS_FORMAT = "vimae-weights-1"
FORMATS_WITHOUT_DIGEST = ("vimae-checkpoint-1",)


def save_file(tensors: dict[str, torch.Tensor], path: str, metadata: dict[str, str]) -> None:
    """Serialise in memory, then write with Python's file API: a full disk raises OSError here
    (safetensors' own writer was seen to ignore ENOSPC on /dev/full)."""
    with open(path, "wb") as f:
        f.write(save(tensors, metadata=metadata))


def save_checkpoint(
    path: Path,
    model: Autoencoder,
    optimizer: torch.optim.Optimizer,
    config: RunConfig,
    progress: dict[str, Any],
    rng: dict[str, torch.Tensor],
    data: dict[str, Any],
) -> None:
    """Write model, Adam state, resolved config, `progress`, the RNG states `rng` (named
    `rng.*`) and the training data's identity `data` to `path` atomically."""
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
        "data": json.dumps(data),
        "digest": tensors_digest(tensors),
    }
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def save_weights(
    path: Path, model: Autoencoder, config: RunConfig, extra: dict[str, str] | None = None
) -> None:
    """Write the model's weights alone (no optimizer or RNG state) with its resolved config and
    a digest, atomically: a file `load_weights_file` rebuilds the model from."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {
        "format": WEIGHTS_FORMAT,
        "config": json.dumps(config.to_dict()),
        "digest": tensors_digest(tensors),
        **(extra or {}),
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
    kind = metadata.get("format")
    if kind not in (FORMAT, WEIGHTS_FORMAT, *FORMATS_WITHOUT_DIGEST):
        raise VimaeError(
            f"{path} is a safetensors file but not a vimae checkpoint "
            f"(format {kind!r}, expected {FORMAT!r})."
        )
    needed = ("config", "digest")
    if kind != WEIGHTS_FORMAT:
        needed = ("config", "progress", "optim_groups")
    missing = [k for k in needed if k not in metadata]
    if kind == FORMAT and "digest" not in metadata:
        missing.append("digest")
    if missing:
        raise VimaeError(
            f"checkpoint {path} lacks its {', '.join(missing)} record; it is damaged, "
            "resume from a copy or train again."
        )
    if kind in (FORMAT, WEIGHTS_FORMAT) and tensors_digest(tensors) != metadata["digest"]:
        raise VimaeError(
            f"checkpoint {path} is damaged: its tensors do not match the digest written with "
            "them; resume from a copy or train again."
        )
    return tensors, metadata


def checkpoint_config(metadata: dict[str, str], path: Path | str = "the checkpoint") -> RunConfig:
    """The resolved config recorded in a checkpoint, validated like command-line values."""
    return checked_config(lambda: RunConfig.from_dict(json.loads(metadata["config"])), path)


def checked_config(read: Any, source: Path | str) -> RunConfig:
    """`read()`'s config, validated as command-line values are, or one sentence naming
    `source` (a checkpoint or a config.json)."""
    try:
        config = read()
        if not isinstance(config, RunConfig):
            raise VimaeError("it is not a [model] / [data] / [train] record")
        validate(config)
        check_resolved(config.model)
    except (VimaeError, json.JSONDecodeError, AttributeError, TypeError) as err:
        reason = str(err).rstrip(".")
        raise VimaeError(
            f"{source} records an invalid config ({reason}); it is damaged or "
            "was edited by hand: restore it from a copy or train again."
        ) from None
    return config


def read_progress(metadata: dict[str, str], n_batches: int, path: Path | str) -> dict[str, Any]:
    """The checkpoint's progress (epoch, batch, step, running sums), checked against the run's
    `n_batches` per epoch before any step runs."""
    try:
        progress = json.loads(metadata["progress"])
        epoch, batch, step = (progress[k] for k in ("epoch", "batch", "step"))
        sums = progress["sums"]
        ok = (
            all(type(v) is int for v in (epoch, batch, step))
            and epoch >= 0
            and 0 <= batch < n_batches
            and step == epoch * n_batches + batch
            and isinstance(sums, dict)
            and all(isinstance(v, int | float) for v in sums.values())
        )
    except (json.JSONDecodeError, KeyError, TypeError):
        ok = False
    if not ok:
        raise VimaeError(
            f"checkpoint {path} records an impossible progress ({metadata.get('progress')!r} "
            f"with {n_batches} batches per epoch); it is damaged: resume from a copy or train "
            "again."
        )
    return progress


def load_weights(model: Autoencoder, tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Strictly load the `model.*` tensors; a shape or name mismatch is a VimaeError."""
    weights = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        # The first line only says "Error(s) in loading state_dict for VIMAE:"; the next says
        # which tensor does not fit.
        lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0]
        raise VimaeError(
            f"checkpoint {path} does not fit this model's config ({detail.rstrip('.')})."
        ) from None


def restore_optimizer(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], metadata: dict[str, str]
) -> None:
    """Load the Adam state of a checkpoint; its moments must have their parameters' shapes."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    state: dict[int, dict[str, torch.Tensor]] = {}
    try:
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, index, name = key.split(".", 2)
                i = int(index)
                expected = params[i].shape if name != "step" else torch.Size([])
                if value.shape != expected:
                    raise ValueError(f"{key} has shape {tuple(value.shape)}")
                state.setdefault(i, {})[name] = value
        groups = json.loads(metadata["optim_groups"])
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, IndexError, KeyError, TypeError) as err:
        raise VimaeError(
            f"the optimizer state in the checkpoint does not fit this model ({err}); it is "
            "damaged: resume from a copy or train again."
        ) from None
