"""Samplers fitted after training: a Gaussian mixture on a trained encoder's codes.

The paper generates by decoding prior draws z ~ p(z). Its own question, how close q(z) is to
p(z), says why that can be poor: where the aggregate posterior q(z) = E_x q(z|x) is not the prior,
prior draws land on codes the decoder never saw. Ex-post density estimation (Ghosh et al. 2020,
"From variational to deterministic autoencoders", section 4) fits a density to the codes of the
training images after training and samples that instead; pythae calls it GaussianMixtureSampler.

Here the density is a full-covariance Gaussian mixture (scikit-learn `GaussianMixture`) fitted on
the evaluation codes (`Autoencoder.encode`: VIMAE's code, a VAE's posterior mean, as Ghosh et al.
and pythae fit them). Its number of components K is given, or chosen by the lowest BIC among
`CANDIDATES` (those with at least `CODES_PER_PARAMETER` codes per free parameter, so that a small
code set is not fitted by a mixture it cannot support). A fitted mixture is stored as safetensors
(weights, means, Cholesky factors of the covariances, and what it was fitted on as metadata; never
pickled) and checked when read back.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vimae.errors import VimaeError
from vimae.models.tensorfile import read_tensors, write_tensors

CANDIDATES = (1, 2, 5, 10, 20)  # components tried when K is not given
CODES_PER_PARAMETER = 2  # at least this many codes per free parameter of a candidate mixture
FORMAT = "vimae-gmm-sampler-1"


def free_parameters(components: int, dim: int) -> int:
    """Free parameters of a full-covariance mixture: K-1 weights, K d means, K d(d+1)/2
    covariance entries."""
    return components - 1 + components * dim + components * dim * (dim + 1) // 2


@dataclass(frozen=True)
class GaussianMixtureSampler:
    """Codes drawn from a Gaussian mixture: weights (K,), means (K, d) and lower-triangular
    Cholesky factors (K, d, d) of the covariances, float64 on the CPU; `fitted` says on what."""

    weights: torch.Tensor
    means: torch.Tensor
    cholesky: torch.Tensor
    fitted: dict[str, Any]

    @property
    def components(self) -> int:
        return int(self.weights.shape[0])

    @property
    def latent_dim(self) -> int:
        return int(self.means.shape[1])

    def sample_codes(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n codes (n, d) float32 on the CPU: a component per code by its weight, then its mean
        plus its Cholesky factor times a standard normal draw, all from `generator`."""
        component = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.latent_dim, generator=generator, dtype=torch.float64)
        z = self.means[component] + torch.einsum("nij,nj->ni", self.cholesky[component], eps)
        return z.float()

    def check(self, latent_dim: int, source: str = "the mixture") -> None:
        """One sentence if the arrays do not make a mixture of codes of `latent_dim` dimensions."""
        k, d = self.means.shape if self.means.dim() == 2 else (0, -1)
        problems = []
        if d != latent_dim:
            problems.append(f"its codes have {d} dimensions, the model's {latent_dim}")
        elif tuple(self.weights.shape) != (k,) or tuple(self.cholesky.shape) != (k, d, d):
            problems.append("its weights, means and covariance factors disagree in shape")
        else:
            tensors = (self.weights, self.means, self.cholesky)
            diagonal = torch.diagonal(self.cholesky, dim1=1, dim2=2)
            if not all(torch.isfinite(t).all() for t in tensors):
                problems.append("it holds NaN or infinite values")
            elif (self.weights < 0).any() or abs(float(self.weights.sum()) - 1) > 1e-6:
                problems.append("its weights are not a probability vector")
            elif not torch.equal(self.cholesky, self.cholesky.tril()) or (diagonal <= 0).any():
                problems.append("its covariance factors are not lower-triangular and positive")
        if problems:
            raise VimaeError(
                f"{source} is not a usable Gaussian mixture sampler: {problems[0]}; delete it and "
                "it is fitted again."
            )

    def save(self, path: Path) -> None:
        """Write the mixture to `path` (safetensors, atomically)."""
        tensors = {"weights": self.weights, "means": self.means, "cholesky": self.cholesky}
        write_tensors(path, tensors, {"format": FORMAT, "fitted": json.dumps(self.fitted)})

    @classmethod
    def load(cls, path: Path, latent_dim: int) -> "GaussianMixtureSampler":
        """The mixture stored at `path`, checked (`check`), or one sentence saying what is wrong."""
        tensors, metadata = read_tensors(path, "delete it and it is fitted again")
        if metadata.get("format") != FORMAT or set(tensors) != {"weights", "means", "cholesky"}:
            raise VimaeError(
                f"{path} is not a vimae Gaussian mixture sampler (format "
                f"{metadata.get('format')!r}); delete it and it is fitted again."
            )
        sampler = cls(
            tensors["weights"].double(),
            tensors["means"].double(),
            tensors["cholesky"].double(),
            json.loads(metadata.get("fitted", "{}")),
        )
        sampler.check(latent_dim, str(path))
        return sampler


def fit_gaussian_mixture(
    codes: np.ndarray | torch.Tensor, components: int | None = None, seed: int = 0
) -> GaussianMixtureSampler:
    """A full-covariance Gaussian mixture fitted to codes (N, d) by EM (scikit-learn), K given or
    the lowest BIC among the CANDIDATES the codes can support; `fitted` records K, how it was
    chosen, each candidate's BIC and the number of codes."""
    from sklearn.mixture import GaussianMixture  # imported here: scikit-learn is slow to import

    z = np.asarray(codes, dtype=np.float64)
    if z.ndim != 2 or len(z) < 2 or not np.isfinite(z).all():
        raise VimaeError(
            f"a Gaussian mixture needs at least 2 finite codes (N, d), got shape {z.shape}."
        )
    n, d = z.shape
    if components is not None:
        if not 1 <= components <= n // 2:
            raise VimaeError(
                f"a mixture of {components} components cannot be fitted to {n} codes; give K "
                f"between 1 and {n // 2}."
            )
        tried = [components]
    else:
        tried = [k for k in CANDIDATES if CODES_PER_PARAMETER * free_parameters(k, d) <= n] or [1]

    def fit(k: int) -> GaussianMixture:
        mixture = GaussianMixture(k, covariance_type="full", reg_covar=1e-6, random_state=seed)
        return mixture.fit(z)

    fits = {k: fit(k) for k in tried}
    bic = {k: float(m.bic(z)) for k, m in fits.items()}
    best = min(bic, key=bic.get)
    mixture = fits[best]
    weights = torch.as_tensor(mixture.weights_, dtype=torch.float64)
    fitted = {
        "components": best,
        "chosen_by": "given" if components is not None else "lowest BIC",
        "bic": {str(k): v for k, v in bic.items()},
        "codes": n,
        "seed": seed,
    }
    return GaussianMixtureSampler(
        weights / weights.sum(),
        torch.as_tensor(mixture.means_, dtype=torch.float64),
        torch.as_tensor(np.linalg.cholesky(mixture.covariances_), dtype=torch.float64),
        fitted,
    )
