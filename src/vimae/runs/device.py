"""Which torch device a `--device` name means, checked before any work starts.

Training and evaluation share this one function so that `--device` reads the same everywhere:
"auto" picks CUDA, then Apple MPS, then the CPU; "cpu", "cuda", "cuda:N" and "mps" are used as
given once this machine is known to have them. Anything else is one sentence, not a traceback
from deep inside the first `.to(device)`.
"""

import torch

from vimae.errors import VimaeError

DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps"


def resolve_device(name: str) -> torch.device:
    """The torch device `name` stands for on this machine, or VimaeError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise VimaeError(f"unknown device {name!r}; use {DEVICE_HELP}.")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise VimaeError(
                f"device {name!r} asks for CUDA but this machine has no usable CUDA GPU (or "
                "PyTorch was built without CUDA); use --device cpu or auto."
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise VimaeError(
                f"device {name!r} does not exist: this machine has {count} CUDA GPU(s), "
                f"cuda:0 to cuda:{count - 1}."
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise VimaeError(
            f"device {name!r} asks for Apple MPS but it is not available here; "
            "use --device cpu or auto."
        )
    return device
