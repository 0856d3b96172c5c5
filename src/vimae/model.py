"""The models: one autoencoder interface, two encoders, and the objectives as presets.

Every objective of SPEC section 2 is a weighted sum of the same terms

    loss = w_recon * recon + w_kl * KL + w_mmd * MMD + w_rate * |R0 - KL|

with recon = sum over pixels of (x - D(z))^2, averaged over the batch (the L2 reconstruction of the
paper's appendix) and w_recon = `model.recon_weight`, 1 by default; the WAE code the paper builds on
uses 0.05, which changes what lambda and beta mean (the logged "recon" is always the unweighted
error). The variants differ only in weights, encoder kind and prior, so they are
`Preset`s, not classes. Two classes exist because `forward` really differs:

- `VIMAE`: deterministic encoder fed x + eps (eps a truncated normal per pixel, training only),
  loss recon + lambda * MMD(q(z), p(z)) (eq. 7 with D = MMD, eq. 13).
- `GaussianVAE`: q(z|x) = N(mu(x), diag sigma^2(x)), reparameterised; KL in closed form for the
  Normal prior, one-sample Monte Carlo log q(z|x) - log p(z) for any other prior.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import nn

from vimae.config import ModelConfig
from vimae.distributed import full_gradient, gather_codes
from vimae.divergence import KERNELS, gaussian_kl_normal, gaussian_log_density, mmd
from vimae.errors import VimaeError
from vimae.net import NETWORKS, build_networks
from vimae.prior import PRIORS, Prior, build_prior
from vimae.registry import Registry

ENCODER_KINDS = ("deterministic", "gaussian")

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
    """A named objective: encoder kind, default prior, and weights from a resolved config."""

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


def resolve(config: ModelConfig, dataset: str, image_shape: tuple[int, int, int]) -> ModelConfig:
    """Fill every None hyper-parameter with the preset's paper default for `dataset`."""
    preset = PRESETS[config.name]
    paper = PAPER_DEFAULTS["large" if dataset in LARGE_DATASETS else "small"]
    filled = {k: v for k, v in preset.defaults(paper).items() if getattr(config, k) is None}
    resolved = replace(config, **filled, image_shape=tuple(image_shape))
    if resolved.prior is None:
        resolved = replace(resolved, prior=preset.prior)
    if config.name == "rate-target" and resolved.rate_target is None:
        raise VimaeError("model rate-target needs a target rate R0 in nats: pass --rate-target.")
    return resolved


def check_resolved(config: ModelConfig) -> None:
    """A resolved config names a known model, network and prior and has an image shape (one
    sentence otherwise; a checkpoint's config is checked with this before anything is built)."""
    if config.image_shape is None or config.prior is None:
        raise VimaeError(
            "the model config is not resolved (no image_shape or prior); "
            "resolve it with vimae.model.resolve for the data first."
        )
    PRESETS[config.name]
    NETWORKS[config.arch]
    PRIORS[config.prior]
    KERNELS[config.kernel]


def reconstruction_error(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Sum of squared pixel errors per image: (B, C, H, W) x2 -> (B,)."""
    return (x - x_hat).pow(2).flatten(1).sum(1)


class Autoencoder(nn.Module):
    """Shared plumbing: decoder, prior, objective weights, sampling and the loss sum.

    `forward(x)` returns the named loss terms (training logs each one); subclasses supply the
    encoder-specific terms in `encoder_terms`.
    """

    def __init__(
        self,
        config: ModelConfig,
        encoder: nn.Module,
        decoder: nn.Module,
        prior: Prior,
        objective: Objective,
    ) -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder
        self.decoder = decoder
        self.prior = prior
        self.objective = objective
        # Prior draws of the MMD come from their own generator, seeded alike on every rank of a
        # multi-process run (see vimae.distributed); None uses the global RNG.
        self.prior_generator: torch.Generator | None = None

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.config.image_shape

    # Whether a code of x is a random draw (the Gaussian encoders) or a function of x (VIMAE).
    codes_are_random = False

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluation codes (B, d): no input noise for VIMAE, the posterior mean for the VAEs."""
        raise NotImplementedError

    def draw_codes(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One code z ~ q(z|x) per image, (B, d): the codes of the aggregate posterior q(z).

        The paper's q(z) is E_x q(z|x) (section 5.1, appendix), so MMD(q(z), p(z)), the entropy
        of q(z) and the features of the robustness tables are measured on these. For VIMAE it is
        the deterministic code (the input noise is a training device); the Gaussian encoders draw
        mu + sigma * eps with eps from `generator` (CPU), so a seed fixes the draw.
        """
        return self.encode(x)

    def posterior(self, x: torch.Tensor, n_copies: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
        """A diagonal Gaussian q(z|x) as (mu, logvar), each (B, d): what the rate is measured on."""
        raise NotImplementedError

    def encoder_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Training codes z (B, d) and the encoder's own loss terms (e.g. KL)."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decoded evaluation codes of x: (B, C, H, W), without autograd."""
        return self.decode(self.encode(x))

    @torch.no_grad()
    def sample(
        self, n: int, seed: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """n images decoded from prior draws: (n, C, H, W), without autograd. The draws come
        from `generator`, else from a generator seeded with `seed`, else from torch's RNG."""
        if generator is None and seed is not None:
            generator = torch.Generator().manual_seed(seed)
        device = next(self.parameters()).device
        z = self.prior.sample(n, generator=generator, device="cpu").to(device)
        return self.decode(z)

    def divergence(self, z: torch.Tensor) -> torch.Tensor:
        """MMD(q(z), p(z)) between the global batch's codes and as many prior draws (eq. 7, 13)."""
        z = gather_codes(z)  # z: (B_global, d); the local batch when there is one process
        if self.prior_generator is None:
            z_prior = self.prior.sample(z.shape[0], device=z.device)
        else:
            z_prior = self.prior.sample(z.shape[0], generator=self.prior_generator).to(z.device)
        return full_gradient(mmd(z, z_prior, self.config.kernel, self.prior.variance))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named batch-mean loss terms and their weighted sum under key "loss"."""
        z, terms = self.encoder_terms(x)
        x_hat = self.decode(z)
        # Under bfloat16 autocast (train.precision) only the networks run in bfloat16.
        with torch.autocast(x.device.type, enabled=False):
            z, x_hat = z.float(), x_hat.float()
            terms["recon"] = reconstruction_error(x, x_hat).mean()
            w = self.objective
            # The MMD is always logged (it is the paper's measure of q(z) vs p(z)); it only
            # carries gradient when the objective weighs it.
            terms["mmd"] = self.divergence(z if w.mmd else z.detach())
            loss = self.config.recon_weight * terms["recon"] + w.mmd * terms["mmd"]
            if w.kl:
                loss = loss + w.kl * terms["kl"]
            if w.rate:
                terms["rate_gap"] = (w.rate_target - terms["kl"]).abs()
                loss = loss + w.rate * terms["rate_gap"]
        terms["loss"] = loss
        return terms


class VIMAE(Autoencoder):
    """Deterministic encoder made random by pixel noise on its input (paper appendix)."""

    def noisy(self, x: torch.Tensor) -> torch.Tensor:
        """x + eps per pixel, eps ~ N(0, s^2) truncated to [-b, b] (s = model.encoder_noise,
        b = model.encoder_noise_bound): the paper's "Gaussian noise truncated at 0.01".

        A truncated normal, not a clipped one: drawn by the inverse CDF restricted to [-b, b],
        which is the same distribution as redrawing every draw beyond the bound. Clipping would put
        a third of the draws exactly on the bound when b = s.
        """
        s, b = self.config.encoder_noise, self.config.encoder_noise_bound
        if s == 0:
            return x
        eps = torch.empty_like(x)
        torch.nn.init.trunc_normal_(eps, mean=0.0, std=s, a=-b, b=b)
        return x + eps

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def encoder_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.encoder(self.noisy(x) if self.training else x), {}

    def posterior(self, x: torch.Tensor, n_copies: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
        """Gaussian fitted to the codes of `n_copies` noisy copies of each x (SPEC section 6)."""
        b = x.shape[0]
        copies = self.noisy(x.repeat(n_copies, *([1] * (x.dim() - 1))))
        z = self.encoder(copies).view(n_copies, b, -1)  # z: (K, B, d)
        var = z.var(dim=0, unbiased=True).clamp_min(torch.finfo(z.dtype).tiny)
        return z.mean(dim=0), var.log()


class GaussianVAE(Autoencoder):
    """q(z|x) = N(mu, diag exp(logvar)) from one encoder with 2d outputs; reparameterised."""

    codes_are_random = True

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).float().chunk(2, dim=1)  # float32 under bf16 autocast
        return mu, logvar

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.split(x)[0]

    def draw_codes(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        mu, logvar = self.split(x)
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
        return mu + eps * (0.5 * logvar).exp()

    def posterior(self, x: torch.Tensor, n_copies: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
        return self.split(x)

    def encoder_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        mu, logvar = self.split(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        if self.prior.name == "normal":
            kl = gaussian_kl_normal(mu, logvar)
        else:
            # One-sample Monte Carlo KL: log q(z|x) - log p(z), q's density in closed form.
            kl = gaussian_log_density(z, mu, logvar) - self.prior.log_prob(z)
        return z, {"kl": kl.mean()}


MODEL_CLASSES = {"deterministic": VIMAE, "gaussian": GaussianVAE}


def build_model(config: ModelConfig) -> Autoencoder:
    """A fresh model from a resolved ModelConfig (see `resolve`)."""
    check_resolved(config)
    preset = PRESETS[config.name]
    d = config.latent_dim
    out_dim = d if preset.encoder == "deterministic" else 2 * d
    encoder, decoder = build_networks(config.arch, config.image_shape, d, out_dim, config.width)
    prior = build_prior(config.prior, d)
    cls = MODEL_CLASSES[preset.encoder]
    return cls(config, encoder, decoder, prior, preset.weights(config))
