"""The objectives as presets: every model of SPEC section 2 is a weighted sum of the same terms

    loss = w_recon * fit + w_kl * KL + w_mmd * MMD + w_rate * |R0 - KL|

with fit = -log p(x|z) up to a constant, averaged over the batch: for `model.likelihood`
"gaussian" the sum over pixels of (x - D(z))^2 (the L2 reconstruction of the paper's appendix), for
"bernoulli" the binary cross-entropy; w_recon = `model.recon_weight`, 1 by default (a Gaussian of
variance 1/2); the WAE code the paper builds on uses 0.05, which changes what lambda and beta mean.
The logged "recon" is always the unweighted sum of squared errors.

The variants differ only in weights, encoder kind and default prior, so each is a `Preset` (a name
mapping to those), not a class; `resolve` fills a config's open hyper-parameters with the paper's
values for the dataset (section 5.2).
"""

from collections.abc import Callable
from dataclasses import dataclass, replace

from vimae.config import ModelConfig
from vimae.errors import VimaeError
from vimae.models.divergence import KERNELS
from vimae.models.network import NETWORKS
from vimae.models.prior import PRIORS
from vimae.registry import Registry

# Paper section 5.2: lambda = beta_H = 10, beta_A = 0.2 on MNIST / Omniglot;
# lambda = beta_H = 100, beta_A = 0.4 on CIFAR10 / CelebA. Other datasets use the first row.
LARGE_DATASETS = ("cifar10", "celeba")
PAPER_DEFAULTS = {
    "small": {"lam": 10.0, "beta_h": 10.0, "beta_a": 0.2},
    "large": {"lam": 100.0, "beta_h": 100.0, "beta_a": 0.4},
}


@dataclass(frozen=True)
class Objective:
    """Weights of the shared loss terms (see the module docstring)."""

    kl: float = 0.0
    mmd: float = 0.0
    rate: float = 0.0
    rate_target: float = 0.0


@dataclass(frozen=True)
class Preset:
    """A named objective: encoder kind ("deterministic": VIMAE's noisy deterministic encoder,
    "gaussian": a reparameterised q(z|x)), default prior, and weights from a resolved config."""

    encoder: str
    prior: str
    weights: Callable[[ModelConfig], Objective]
    defaults: Callable[[dict[str, float]], dict[str, float | None]]


PRESETS: Registry[Preset] = Registry("model")
PRESETS.add(
    "vimae-n",
    Preset("deterministic", "normal", lambda c: Objective(mmd=c.lam), lambda d: {"lam": d["lam"]}),
)
PRESETS.add(
    "vimae-l",
    Preset(
        "deterministic", "logistic", lambda c: Objective(mmd=c.lam), lambda d: {"lam": d["lam"]}
    ),
)
PRESETS.add("vae", Preset("gaussian", "normal", lambda c: Objective(kl=1.0), lambda d: {}))
PRESETS.add(
    "beta-vae-h",
    Preset("gaussian", "normal", lambda c: Objective(kl=c.beta), lambda d: {"beta": d["beta_h"]}),
)
PRESETS.add(
    "beta-vae-a",
    Preset("gaussian", "normal", lambda c: Objective(kl=c.beta), lambda d: {"beta": d["beta_a"]}),
)
# Paper eq. 4: recon + beta |R0 - KL|; R0 has no sensible default and must be given.
PRESETS.add(
    "rate-target",
    Preset(
        "gaussian",
        "normal",
        lambda c: Objective(rate=c.beta, rate_target=c.rate_target),
        lambda d: {"beta": 1.0},
    ),
)
# InfoVAE: recon + (1 - alpha) KL + (alpha + lambda - 1) MMD; alpha = 0 is their MMD-VAE.
PRESETS.add(
    "infovae",
    Preset(
        "gaussian",
        "normal",
        lambda c: Objective(kl=1.0 - c.alpha, mmd=c.alpha + c.lam - 1.0),
        lambda d: {"alpha": 0.0, "lam": d["lam"]},
    ),
)


def paper_defaults(dataset: str) -> dict[str, float]:
    """The paper's lambda, beta_H and beta_A for `dataset` (section 5.2)."""
    return PAPER_DEFAULTS["large" if dataset in LARGE_DATASETS else "small"]


def resolve(config: ModelConfig, dataset: str, image_shape: tuple[int, int, int]) -> ModelConfig:
    """Fill every None hyper-parameter with the preset's paper default for `dataset`."""
    preset = PRESETS[config.name]
    filled = {
        k: v
        for k, v in preset.defaults(paper_defaults(dataset)).items()
        if getattr(config, k) is None
    }
    resolved = replace(config, **filled, image_shape=tuple(image_shape))
    if resolved.arch == "auto":
        resolved = replace(resolved, arch=network_for(image_shape))
    if resolved.prior is None:
        resolved = replace(resolved, prior=preset.prior)
    if config.name == "rate-target" and resolved.rate_target is None:
        raise VimaeError("model rate-target needs a target rate R0 in nats: pass --rate-target.")
    return resolved


CUSTOM = "custom"  # the arch of networks of one's own (vimae.models.custom)


def network_for(image_shape: tuple[int, int, int]) -> str:
    """The paper's network made for images of this size (dcgan28 for 28x28, dcgan64 for 64x64),
    else the mlp, which takes any size: what `--arch auto` chooses."""
    _, h, w = image_shape
    for name in NETWORKS:
        size = NETWORKS[name].image_size
        if size is not None and (h, w) == (size, size):
            return name
    return "mlp"


def check_resolved(config: ModelConfig) -> None:
    """A resolved config names a known model, network and prior and has an image shape (one
    sentence otherwise; a checkpoint's config is checked with this before anything is built)."""
    if config.image_shape is None or config.prior is None:
        raise VimaeError(
            "the model config is not resolved (no image_shape or prior); "
            "resolve it with vimae.models.objective.resolve for the data first."
        )
    PRESETS[config.name]
    if config.arch != CUSTOM:
        NETWORKS[config.arch]
    PRIORS[config.prior]
    KERNELS[config.kernel]
