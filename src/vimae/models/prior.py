"""Priors p(z): i.i.d. per coordinate, unit variance, with exact sampling, density and entropy.

VIMAE only needs samples of p(z) (the MMD term of eq. 7), so any prior works there; the VAE family
also needs `log_prob` for a Monte-Carlo KL when the prior is not the standard Normal. All priors are
scaled to unit variance so that the MMD kernel scales (SPEC section 2) mean the same for each.
"""

import math

import torch
import torch.nn.functional as F

from vimae.registry import Registry

PRIORS: Registry[type["Prior"]] = Registry("prior")


class Prior:
    """A factorised distribution on R^dim (or a box) with unit variance per coordinate."""

    name = ""
    variance = 1.0
    # Whether KL(N(mu, diag sigma^2) || p) has the closed form used for it (the Normal prior);
    # otherwise the VAE family's KL is a Monte Carlo estimate (`gaussian_kl_to_prior`).
    closed_form_kl = False

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """n draws, shape (n, dim)."""
        u = torch.rand(n, self.dim, generator=generator, device=device)
        return self._from_uniform(u)

    def _from_uniform(self, u: torch.Tensor) -> torch.Tensor:
        """Inverse CDF applied to Uniform(0, 1) draws."""
        raise NotImplementedError

    def log_prob_per_dim(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) summed over coordinates; z: (n, dim) -> (n,)."""
        return self.log_prob_per_dim(z).sum(dim=-1)

    def entropy_per_dim(self) -> float:
        raise NotImplementedError

    def entropy(self) -> float:
        """Exact differential entropy h(p) of the whole dim-dimensional prior, in nats."""
        return self.dim * self.entropy_per_dim()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"


@PRIORS.register("normal")
class NormalPrior(Prior):
    """N(0, I): the prior of VAE, beta-VAE and VIMAE-n."""

    name = "normal"
    closed_form_kl = True

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        return torch.randn(n, self.dim, generator=generator, device=device)

    def log_prob_per_dim(self, z: torch.Tensor) -> torch.Tensor:
        return -0.5 * (z * z + math.log(2 * math.pi))

    def entropy_per_dim(self) -> float:
        return 0.5 * math.log(2 * math.pi * math.e)


@PRIORS.register("logistic")
class LogisticPrior(Prior):
    """Logistic(0, s) with s = sqrt(3)/pi, hence unit variance: the prior of VIMAE-l."""

    name = "logistic"
    scale = math.sqrt(3.0) / math.pi

    def _from_uniform(self, u: torch.Tensor) -> torch.Tensor:
        u = u.clamp(torch.finfo(u.dtype).tiny, 1.0 - torch.finfo(u.dtype).eps)
        return self.scale * (torch.log(u) - torch.log1p(-u))

    def log_prob_per_dim(self, z: torch.Tensor) -> torch.Tensor:
        t = z / self.scale
        # log f = -t - 2 log(1 + e^-t) - log s, written with softplus to stay finite for large |t|.
        return -t - 2.0 * F.softplus(-t) - math.log(self.scale)

    def entropy_per_dim(self) -> float:
        return math.log(self.scale) + 2.0


@PRIORS.register("laplace")
class LaplacePrior(Prior):
    """Laplace(0, b) with b = 1/sqrt(2) (unit variance)."""

    name = "laplace"
    scale = 1.0 / math.sqrt(2.0)

    def _from_uniform(self, u: torch.Tensor) -> torch.Tensor:
        v = (u - 0.5).clamp(-0.5 + 1e-7, 0.5 - 1e-7)
        return -self.scale * torch.sign(v) * torch.log1p(-2.0 * v.abs())

    def log_prob_per_dim(self, z: torch.Tensor) -> torch.Tensor:
        return -z.abs() / self.scale - math.log(2.0 * self.scale)

    def entropy_per_dim(self) -> float:
        return 1.0 + math.log(2.0 * self.scale)


@PRIORS.register("uniform")
class UniformPrior(Prior):
    """Uniform on [-a, a] with a = sqrt(3) (unit variance); log_prob is -inf outside the box."""

    name = "uniform"
    half_width = math.sqrt(3.0)

    def _from_uniform(self, u: torch.Tensor) -> torch.Tensor:
        return (2.0 * u - 1.0) * self.half_width

    def log_prob_per_dim(self, z: torch.Tensor) -> torch.Tensor:
        inside = z.abs() <= self.half_width
        value = torch.full_like(z, -math.log(2.0 * self.half_width))
        return torch.where(inside, value, torch.full_like(z, -math.inf))

    def entropy_per_dim(self) -> float:
        return math.log(2.0 * self.half_width)


def build_prior(name: str, dim: int) -> Prior:
    """The registered prior `name` on R^dim."""
    return PRIORS[name](dim)
