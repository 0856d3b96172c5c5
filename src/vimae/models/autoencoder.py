"""The autoencoders: one interface, two encoders (SPEC section 2; the objectives are presets in
`vimae.models.objective`).

Two classes exist because `forward` really differs:

- `VIMAE`: deterministic encoder fed x + eps (eps a truncated normal per pixel, training only),
  loss recon + lambda * MMD(q(z), p(z)) (eq. 7 with D = MMD, eq. 13).
- `GaussianVAE`: q(z|x) = N(mu(x), diag sigma^2(x)), reparameterised; KL(q(z|x) || p(z)) by
  `gaussian_kl_to_prior` (closed form for the Normal prior, Monte Carlo for any other).

`build_model` makes the pair of networks from a named preset of `vimae.models.network`, or takes
the encoder and decoder modules it is given.
"""

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vimae.config import ModelConfig
from vimae.distributed import full_gradient, gather_codes
from vimae.models.batched import generate
from vimae.models.custom import networks_from_classes
from vimae.models.divergence import gaussian_kl_to_prior, mmd
from vimae.models.inputs import model_codes, model_images
from vimae.models.network import build_networks, initialise_like_wae
from vimae.models.objective import CUSTOM, PRESETS, Objective, check_resolved
from vimae.models.prior import Prior, build_prior
from vimae.models.sampler import Sampler


def reconstruction_error(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Sum of squared pixel errors per image: (B, C, H, W) x2 -> (B,)."""
    return (x - x_hat).pow(2).flatten(1).sum(1)


def bernoulli_nll(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """-log p(x|z) per image of a Bernoulli decoder with means x_hat (B, C, H, W) in [0, 1] for
    pixels x in [0, 1] (binary cross-entropy, summed over pixels): (B,). The logarithms are
    bounded below by -100 (PyTorch's binary_cross_entropy), so a saturated sigmoid is finite."""
    return F.binary_cross_entropy(x_hat, x, reduction="none").flatten(1).sum(1)


def _device_of(data: Any) -> torch.device:
    """Where an answer goes: the device of the tensor asked about (the CPU for an array)."""
    return data.device if isinstance(data, torch.Tensor) else torch.device("cpu")


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
        prior_generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder
        self.decoder = decoder
        self.prior = prior
        self.objective = objective
        # Prior draws of the MMD come from their own generator, seeded alike on every rank of a
        # multi-process run (see vimae.distributed); None uses the global RNG. Training seeds it
        # (`build_model(..., prior_seed=)`) and checkpoints its state.
        self.prior_generator = prior_generator
        # The rows of the epochs trained (what `vimae.fit` logged), newest last.
        self.history: list[dict] = []

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.config.image_shape

    # Whether a code of x is a random draw (the Gaussian encoders) or a function of x (VIMAE).
    codes_are_random = False

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # The public methods below take what a user holds (see `vimae.models.inputs`): images as
    # floats in [0, 1] of any precision or uint8, checked with one sentence, computed without
    # autograd, and answered on the device of the input; the training step calls the networks.

    @torch.no_grad()
    def encode(self, x: Any) -> torch.Tensor:
        """Evaluation codes (B, d) of images x: no input noise for VIMAE, the posterior mean for
        the VAEs."""
        images = model_images(x, self.image_shape, self.device)
        return self.mean_codes(images).float().to(_device_of(x))

    @torch.no_grad()
    def draw_codes(self, x: Any, generator: torch.Generator | None = None) -> torch.Tensor:
        """One code z ~ q(z|x) per image, (B, d): the codes of the aggregate posterior q(z).

        The paper's q(z) is E_x q(z|x) (section 5.1, appendix), so MMD(q(z), p(z)), the entropy
        of q(z) and the features of the robustness tables are measured on these. For VIMAE it is
        the deterministic code (the input noise is a training device); the Gaussian encoders draw
        mu + sigma * eps with eps from `generator` (CPU), so a seed fixes the draw.
        """
        images = model_images(x, self.image_shape, self.device)
        return self.sampled_codes(images, generator).float().to(_device_of(x))

    @torch.no_grad()
    def decode(self, z: Any) -> torch.Tensor:
        """Images (B, C, H, W) in [0, 1] decoded from codes z (B, d)."""
        codes = model_codes(z, self.latent_dim, self.device)
        return self.decoder(codes).float().to(_device_of(z))

    @torch.no_grad()
    def reconstruct(self, x: Any) -> torch.Tensor:
        """Decoded evaluation codes of x: (B, C, H, W)."""
        images = model_images(x, self.image_shape, self.device)
        return self.decoder(self.mean_codes(images)).float().to(_device_of(x))

    def mean_codes(self, x: torch.Tensor) -> torch.Tensor:
        """The networks' evaluation codes of checked images x (B, C, H, W) on the model's device."""
        raise NotImplementedError

    def sampled_codes(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """One draw of q(z|x) per checked image (see `draw_codes`); VIMAE's deterministic code."""
        return self.mean_codes(x)

    def posterior(
        self, x: torch.Tensor, n_copies: int = 32, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A diagonal Gaussian q(z|x) as (mu, logvar), each (B, d): what the rate is measured on
        (VIMAE's is fitted to noisy copies, their noise drawn from `generator`)."""
        raise NotImplementedError

    def encoder_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Training codes z (B, d) and the encoder's own loss terms (e.g. KL)."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(
        self,
        n: int,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        sampler: Sampler | None = None,
    ) -> torch.Tensor:
        """n images decoded from codes of `sampler` (the prior by default): (n, C, H, W) on the
        model's device, without autograd. The draws come from `generator`, else from a generator
        seeded with `seed`, else from torch's RNG."""
        if generator is None and seed is not None:
            generator = torch.Generator().manual_seed(seed)
        _, images = generate(self, n, generator, sampler=sampler)
        return images.to(next(self.parameters()).device)

    @contextlib.contextmanager
    def prior_draws(self, generator: torch.Generator | None) -> Iterator[None]:
        """Within the block, the MMD's prior draws come from `generator` (validation uses its
        own, so that measuring never moves the training's draws)."""
        previous, self.prior_generator = self.prior_generator, generator
        try:
            yield
        finally:
            self.prior_generator = previous

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
        x_hat = self.decoder(z)
        # Under bfloat16 autocast (train.precision) only the networks run in bfloat16.
        with torch.autocast(x.device.type, enabled=False):
            z, x_hat = z.float(), x_hat.float()
            terms["recon"] = reconstruction_error(x, x_hat).mean()
            fit = terms["recon"]
            if self.config.likelihood == "bernoulli":
                terms["bce"] = fit = bernoulli_nll(x, x_hat).mean()
            w = self.objective
            # The MMD is always logged (it is the paper's measure of q(z) vs p(z)); it only
            # carries gradient when the objective weighs it.
            terms["mmd"] = self.divergence(z if w.mmd else z.detach())
            loss = self.config.recon_weight * fit + w.mmd * terms["mmd"]
            if w.kl:
                loss = loss + w.kl * terms["kl"]
            if w.rate:
                terms["rate_gap"] = (w.rate_target - terms["kl"]).abs()
                loss = loss + w.rate * terms["rate_gap"]
        terms["loss"] = loss
        return terms


class VIMAE(Autoencoder):
    """Deterministic encoder made random by pixel noise on its input (paper appendix)."""

    def noisy(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x + eps per pixel, eps ~ N(0, s^2) truncated to [-b, b] (s = model.encoder_noise,
        b = model.encoder_noise_bound): the paper's "Gaussian noise truncated at 0.01".

        A truncated normal, not a clipped one: drawn by the inverse CDF restricted to [-b, b],
        which is the same distribution as redrawing every draw beyond the bound. Clipping would put
        a third of the draws exactly on the bound when b = s. The draws come from torch's RNG on
        x's device (training), or from `generator` on the CPU (a seeded measurement).
        """
        s, b = self.config.encoder_noise, self.config.encoder_noise_bound
        if s == 0:
            return x
        if generator is None:
            eps = torch.empty_like(x)
            torch.nn.init.trunc_normal_(eps, mean=0.0, std=s, a=-b, b=b)
        else:
            eps = torch.empty(x.shape, dtype=x.dtype)
            torch.nn.init.trunc_normal_(eps, mean=0.0, std=s, a=-b, b=b, generator=generator)
            eps = eps.to(x.device)
        return x + eps

    def mean_codes(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def encoder_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.encoder(self.noisy(x) if self.training else x), {}

    def posterior(
        self, x: torch.Tensor, n_copies: int = 32, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Gaussian fitted to the codes of `n_copies` noisy copies of each x (SPEC section 6),
        the noise drawn from `generator` when given."""
        b = x.shape[0]
        copies = self.noisy(x.repeat(n_copies, *([1] * (x.dim() - 1))), generator)
        z = self.encoder(copies).view(n_copies, b, -1)  # z: (K, B, d)
        var = z.var(dim=0, unbiased=True).clamp_min(torch.finfo(z.dtype).tiny)
        return z.mean(dim=0), var.log()


class GaussianVAE(Autoencoder):
    """q(z|x) = N(mu, diag exp(logvar)) from one encoder with 2d outputs; reparameterised."""

    codes_are_random = True

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).float().chunk(2, dim=1)  # float32 under bf16 autocast
        return mu, logvar

    def mean_codes(self, x: torch.Tensor) -> torch.Tensor:
        return self.split(x)[0]

    def sampled_codes(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        mu, logvar = self.split(x)
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
        return mu + eps * (0.5 * logvar).exp()

    def posterior(
        self, x: torch.Tensor, n_copies: int = 32, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.split(x)

    def encoder_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        mu, logvar = self.split(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        # Closed form for the Normal prior; else one-sample Monte Carlo on this very z.
        kl = gaussian_kl_to_prior(mu, logvar, self.prior, z=z)
        return z, {"kl": kl.mean()}


MODEL_CLASSES = {"deterministic": VIMAE, "gaussian": GaussianVAE}


def encoder_outputs(config: ModelConfig) -> int:
    """Outputs of the encoder network: d for VIMAE's deterministic code, 2d (mu, logvar) for a
    Gaussian q(z|x)."""
    d = config.latent_dim
    return d if PRESETS[config.name].encoder == "deterministic" else 2 * d


def build_model(
    config: ModelConfig,
    networks: tuple[nn.Module, nn.Module] | None = None,
    prior_seed: int | None = None,
) -> Autoencoder:
    """A fresh model from a resolved ModelConfig (see `resolve`).

    `networks` is an (encoder, decoder) pair of one's own: the encoder maps images (B, C, H, W)
    to `encoder_outputs(config)` values per image, the decoder codes (B, d) to images; without
    it the pair is the named network `config.arch` (the paper's, `vimae.models.network`).
    `prior_seed` seeds the MMD's prior draws apart from torch's global RNG (training).
    """
    check_resolved(config)
    preset = PRESETS[config.name]
    if networks is None and config.arch == CUSTOM:
        networks = networks_from_classes(config)
    if networks is None:
        shape, d = config.image_shape, config.latent_dim
        networks = build_networks(config.arch, shape, d, encoder_outputs(config), config.width)
        if config.init == "wae":
            for network in networks:
                initialise_like_wae(network)
    encoder, decoder = networks
    prior = build_prior(config.prior, config.latent_dim)
    generator = None if prior_seed is None else torch.Generator().manual_seed(prior_seed)
    cls = MODEL_CLASSES[preset.encoder]
    return cls(config, encoder, decoder, prior, preset.weights(config), generator)
