"""The reusable library: the autoencoders, their networks, priors, divergences and samplers.

Nothing here opens a file, a logger or a dataset: a model is built from a `ModelConfig` (and,
optionally, networks of one's own) and computes. See docs/architecture.md for the map.
"""

from vimae.models.autoencoder import (
    VIMAE,
    Autoencoder,
    GaussianVAE,
    bernoulli_nll,
    build_model,
    encoder_outputs,
    reconstruction_error,
)
from vimae.models.objective import (
    LARGE_DATASETS,
    PAPER_DEFAULTS,
    PRESETS,
    Objective,
    Preset,
    check_resolved,
    paper_defaults,
    resolve,
)
from vimae.models.sampler import PriorSampler, Sampler

__all__ = [
    "LARGE_DATASETS",
    "PAPER_DEFAULTS",
    "PRESETS",
    "VIMAE",
    "Autoencoder",
    "GaussianVAE",
    "Objective",
    "Preset",
    "PriorSampler",
    "Sampler",
    "bernoulli_nll",
    "build_model",
    "check_resolved",
    "encoder_outputs",
    "paper_defaults",
    "reconstruction_error",
    "resolve",
]
