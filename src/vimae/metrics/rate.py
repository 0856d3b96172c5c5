"""The rate E_x KL(q(z|x) || p(z)) (Alemi et al. 2017; the paper's eq. 4 and figures 2-3).

q(z|x) is the diagonal Gaussian N(mu(x), diag exp(logvar(x))) that `model.posterior` returns: the
encoder's own output for the VAE family, and for VIMAE's noisy deterministic encoder a Gaussian
fitted to the codes of K noisy copies of x (SPEC section 6). Against the standard Normal prior the
KL has a closed form; against any other prior it is estimated by Monte Carlo with samples from
q(z|x): KL = E_q[log q(z|x) - log p(z)]. The command averages over a seeded, class-stratified
draw of `rate_images` test images and reports the standard error of that mean beside it.
"""

import math
from typing import Any

import torch

from vimae.metrics.base import MetricContext, metric
from vimae.models.batched import batched, model_device
from vimae.models.divergence import (
    gaussian_kl_by_draws,
    gaussian_kl_normal,
    gaussian_kl_to_prior,
)


def gaussian_rate(mu: torch.Tensor, logvar: torch.Tensor) -> float:
    """Mean over x of the closed-form KL(N(mu, diag exp(logvar)) || N(0, I)); mu, logvar: (N, d)."""
    return gaussian_kl_normal(mu.double(), logvar.double()).mean().item()


def monte_carlo_kl(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    prior: Any,
    n_samples: int = 16,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Per x, E_{z ~ q(z|x)}[log q(z|x) - log p(z)] from n_samples draws: (N, d) -> (N,).

    Works for any prior with `log_prob` (for the Normal prior: a check of its closed form).
    """
    mu, logvar = mu.double(), logvar.double()
    eps = torch.randn((n_samples, *mu.shape), generator=generator, dtype=mu.dtype)
    z = mu + torch.exp(0.5 * logvar) * eps  # (S, N, d)
    return gaussian_kl_by_draws(z, mu, logvar, prior)


def monte_carlo_rate(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    prior: Any,
    n_samples: int = 16,
    generator: torch.Generator | None = None,
) -> float:
    """Mean over x of the Monte-Carlo KL(q(z|x) || p(z)) (see `monte_carlo_kl`)."""
    return monte_carlo_kl(mu, logvar, prior, n_samples, generator).mean().item()


def kl_per_image(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    prior: Any,
    n_samples: int = 16,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, str]:
    """KL(q(z|x) || p(z)) per image, (N,), and how: closed form for a Normal prior, else MC
    (`gaussian_kl_to_prior` chooses)."""
    kl = gaussian_kl_to_prior(mu.double(), logvar.double(), prior, None, n_samples, generator)
    closed = getattr(prior, "closed_form_kl", False)
    return kl, "closed form" if closed else f"Monte Carlo, {n_samples} samples per image"


def estimate_rate(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    prior: Any,
    n_samples: int = 16,
    generator: torch.Generator | None = None,
) -> tuple[float, str]:
    """The rate E_x KL(q(z|x) || p(z)) and how it was computed."""
    kl, how = kl_per_image(mu, logvar, prior, n_samples, generator)
    return kl.mean().item(), how


def posterior(
    model: Any,
    images: torch.Tensor,
    n_copies: int = 32,
    batch_size: int = 500,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar), each (N, d), of q(z|x) for every image (see the module docstring); VIMAE's
    input noise drawn from `generator` when given, so a seed fixes the rate."""
    # Each image of a VIMAE batch is copied n_copies times, so the batch shrinks to match.
    per_batch = max(1, batch_size * 4 // max(n_copies, 1))
    fit = lambda x: model.posterior(x, n_copies=n_copies, generator=generator)  # noqa: E731
    return batched(fit, images, per_batch, model_device(model))


@metric(
    "rate",
    position=2,
    options=("batch_size", "seed", "rate_copies", "rate_samples", "rate_images"),
)
def _rate(ctx: MetricContext) -> dict[str, Any]:
    opts = ctx.options
    images = ctx.test.subset(opts.rate_images, seed=opts.seed).images
    generator = ctx.generator("rate")
    mu, logvar = posterior(ctx.model, images, opts.rate_copies, opts.batch_size, generator)
    kl, how = kl_per_image(mu, logvar, ctx.model.prior, opts.rate_samples, generator)
    sem = (kl.std() / math.sqrt(kl.numel())).item() if kl.numel() > 1 else 0.0
    return {
        "rate": kl.mean().item(),
        "rate_sem": sem,
        "rate_images": kl.numel(),
        "rate_method": how,
    }
