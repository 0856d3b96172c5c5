"""Samplers by name, for `vimae sample --sampler`, `vimae evaluate --sampler` and `vimae.evaluate`.

"prior" decodes prior draws z ~ p(z), as the paper does; "gmm" fits a Gaussian mixture to the
codes of training images with K chosen by BIC, "gmm:K" with K components
(`vimae.models.expost`); "flow" fits a RealNVP to them (`vimae.models.codeflow`). A run's fitted
sampler is stored once in RUN/samplers/ and reused while the run's weights are those it was
fitted to (their digest is recorded with it); after more training it is fitted again.
"""

from collections.abc import Callable
from pathlib import Path

import torch

from vimae.errors import VimaeError
from vimae.models.batched import encode
from vimae.models.codeflow import FlowSampler, fit_flow
from vimae.models.expost import GaussianMixtureSampler, fit_gaussian_mixture
from vimae.models.sampler import PriorSampler, Sampler
from vimae.models.tensorfile import tensors_digest

SAMPLERS = ("prior", "gmm", "flow")
SAMPLER_FOLDER = "samplers"


def parse_sampler(spec: str) -> tuple[str, int | None]:
    """("prior", None), ("gmm", None) or ("gmm", K) from "prior", "gmm" or "gmm:K"."""
    kind, _, value = spec.partition(":")
    if kind not in SAMPLERS or (kind in ("prior", "flow") and value):
        raise VimaeError(f"unknown sampler {spec!r}; use prior, gmm (K by BIC), gmm:K or flow.")
    if not value:
        return kind, None
    if not value.isdigit() or int(value) < 1:
        raise VimaeError(f"sampler {spec!r} needs a whole number of components K >= 1 (gmm:10).")
    return kind, int(value)


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 of the model's weights (the checkpoint's digest): which weights a stored sampler
    was fitted to."""
    return tensors_digest(dict(model.state_dict()))


def build_sampler(
    spec: str,
    model: torch.nn.Module,
    train_images: Callable[[], torch.Tensor],
    folder: Path | None = None,
    seed: int = 0,
    batch_size: int = 500,
) -> Sampler:
    """The sampler named by `spec` for `model`. A mixture is fitted to the evaluation codes of
    `train_images()` (called only when one is fitted) with `seed`, and, with a `folder`, read
    from or stored in folder/gmm-K-seedS.safetensors."""
    kind, components = parse_sampler(spec)
    if kind == "prior":
        return PriorSampler(model.prior)
    stored = GaussianMixtureSampler if kind == "gmm" else FlowSampler
    path = None
    digest = weights_digest(model)
    if folder is not None:
        name = f"gmm-{components or 'bic'}" if kind == "gmm" else "flow"
        path = Path(folder) / f"{name}-seed{seed}.safetensors"
        if path.is_file():
            found = stored.load(path, model.latent_dim)
            if found.fitted.get("weights") == digest:
                return found
    codes = encode(model, train_images(), batch_size)
    if kind == "gmm":
        sampler: GaussianMixtureSampler | FlowSampler = fit_gaussian_mixture(
            codes, components, seed
        )
    else:
        sampler = fit_flow(codes, seed)
    sampler.fitted["weights"] = digest
    sampler.fitted["codes_of"] = "evaluation codes (VIMAE's code, a VAE's posterior mean)"
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        sampler.save(path)
    return sampler


def describe(sampler: Sampler) -> str:
    """What generated codes come from, in words, for records and command output."""
    if isinstance(sampler, GaussianMixtureSampler):
        f = sampler.fitted
        return (
            f"a {sampler.components}-component Gaussian mixture ({f.get('chosen_by')}) fitted to "
            f"the codes of {f.get('codes')} training images"
        )
    if isinstance(sampler, FlowSampler):
        f = sampler.fitted
        return (
            f"a {f.get('layers')}-layer RealNVP flow fitted to the codes of {f.get('codes')} "
            "training images"
        )
    prior = getattr(getattr(sampler, "prior", None), "name", "the")
    return f"{prior} prior draws"
