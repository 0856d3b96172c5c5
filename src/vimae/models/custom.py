"""Networks of one's own: any encoder and decoder modules, checked on the first batch, their weights
saved with the run's and rebuilt by their import paths, never unpickled.

The interface (the paper's networks in `vimae.models.network` follow it too):

- the encoder maps images (B, C, H, W) in [0, 1] to (B, d) codes for VIMAE's deterministic
  encoder, or to (B, 2d) for a Gaussian q(z|x), the means then the log-variances
  (`vimae.models.encoder_outputs(config)` says which);
- the decoder maps codes (B, d) to images (B, C, H, W) in [0, 1] (end it in a sigmoid);
- d is `latent_dim`, the model's setting; the image shape is the data's.

`vimae.fit(model, data, encoder=..., decoder=...)` records the classes' import paths in the run's
config (arch "custom"). `vimae.load(run, encoder=..., decoder=...)` takes modules built as for
training; without them the classes are imported by those paths and built without arguments,
which works for classes whose arguments have defaults, and is one sentence otherwise.
"""

import importlib

import torch
from torch import nn

from vimae.config import ModelConfig
from vimae.errors import VimaeError


def class_path(module: nn.Module) -> str:
    """The import path of a module's class, "package.module.ClassName"."""
    cls = type(module)
    return f"{cls.__module__}.{cls.__qualname__}"


def networks_from_classes(config: ModelConfig) -> tuple[nn.Module, nn.Module]:
    """The encoder and decoder of a run trained with networks of one's own, built by importing
    their recorded classes and calling them without arguments."""
    built = []
    for role, path in (("encoder", config.encoder_class), ("decoder", config.decoder_class)):
        module_name, _, name = (path or "").rpartition(".")
        try:
            cls = getattr(importlib.import_module(module_name), name)
            built.append(cls())
        except (ImportError, AttributeError, TypeError, ValueError) as err:
            raise VimaeError(
                f"this run was trained with networks of its own ({config.encoder_class}, "
                f"{config.decoder_class}) and its {role} cannot be rebuilt from {path!r} ({err}); "
                "pass encoder= and decoder= modules built as for training to vimae.load."
            ) from None
    return built[0], built[1]


def check_networks(
    encoder: nn.Module, decoder: nn.Module, x: torch.Tensor, outputs: int, latent_dim: int
) -> None:
    """One sentence unless the encoder maps images x (B, C, H, W) to (B, outputs) and the decoder
    maps (B, latent_dim) codes back to images of x's shape (tried on x, without gradients)."""
    with torch.no_grad():
        try:
            codes = encoder(x)
        except Exception as err:  # the user's module: any error is theirs to read
            raise VimaeError(
                f"the encoder fails on a batch of images {tuple(x.shape)}: {err}"
            ) from None
        expected = (x.shape[0], outputs)
        if not isinstance(codes, torch.Tensor) or tuple(codes.shape) != expected:
            shown = tuple(codes.shape) if isinstance(codes, torch.Tensor) else type(codes).__name__
            raise VimaeError(
                f"the encoder maps images {tuple(x.shape)} to {shown}, but this model needs "
                f"{expected}: d = {latent_dim} codes"
                + (", then d log-variances" if outputs == 2 * latent_dim else "")
                + " per image (see vimae.models.custom)."
            )
        z = torch.zeros(x.shape[0], latent_dim, dtype=x.dtype, device=x.device)
        try:
            images = decoder(z)
        except Exception as err:
            raise VimaeError(f"the decoder fails on codes {tuple(z.shape)}: {err}") from None
        if not isinstance(images, torch.Tensor) or images.shape != x.shape:
            shown = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images)
            raise VimaeError(
                f"the decoder maps codes {tuple(z.shape)} to {shown}, but the images are "
                f"{tuple(x.shape)}; make it return images of the data's shape."
            )
