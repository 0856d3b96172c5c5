"""Tensors and text metadata in one safetensors file, for what vimae fits after training (the
ex-post samplers): written atomically, read back with one sentence when the file is not one; and
the digest of a set of tensors that checkpoints and fitted samplers record."""

import hashlib
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from vimae.errors import VimaeError
from vimae.files import atomic_write


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Serialise in memory, then write to `path` atomically (a failed write leaves no file)."""
    data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata=metadata)
    atomic_write(Path(path), lambda tmp: Path(tmp).write_bytes(data))


def read_tensors(path: Path, hint: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata of a safetensors file, or VimaeError ending with `hint`."""
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), "pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise VimaeError(f"{path} is not a readable sampler file ({err}); {hint}.") from None
    return tensors, metadata


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().data if t.numel() else b"")
    return h.hexdigest()
