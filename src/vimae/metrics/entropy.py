"""Entropy of the codes h(q(z)) and KL(q(z) || p(z)) from k-nearest-neighbour distances.

h(q(z)) is the paper's capacity proxy (sections 3.2 and 5.1: C(X, Z) grows with h(Z), and ELBO
models show h(q(z)) >> h(p(z))). It is estimated by the Kozachenko-Leonenko estimator
(L. F. Kozachenko and N. N. Leonenko, "Sample estimate of the entropy of a random vector",
Problems of Information Transmission 23(2), 1987; in the form of Kraskov, Stoegbauer and
Grassberger, "Estimating mutual information", Phys. Rev. E 69, 066138, 2004, eq. 20, with the
Euclidean norm):

    h_hat = psi(N) - psi(k) + log V_d + (d / N) * sum_i log r_i

where r_i is the distance from z_i to its k-th nearest neighbour among the other N - 1 codes,
V_d = pi^(d/2) / Gamma(d/2 + 1) the volume of the unit ball in R^d and psi the digamma function.
It is consistent for any density and needs no bandwidth; its bias grows with d and shrinks with N.

KL(q(z) || p(z)) = -h(q) - E_q[log p(z)]: the cross-entropy term is a plain sample mean of the
prior's exact log-density over the codes, the entropy term the estimate above.
"""

import math
from typing import Any

import numpy as np
import torch
from scipy.spatial import cKDTree
from scipy.special import digamma, gammaln

from vimae.metrics.base import METRICS, MetricContext

# A zero neighbour distance (duplicated codes of a collapsed encoder) would give log 0 = -inf;
# clamping keeps the estimate finite and very low, which is what such an encoder deserves.
_MIN_DISTANCE = 1e-12


def log_unit_ball_volume(d: int) -> float:
    """log V_d, V_d = pi^(d/2) / Gamma(d/2 + 1)."""
    return 0.5 * d * math.log(math.pi) - float(gammaln(0.5 * d + 1.0))


def knn_distances(z: np.ndarray, k: int) -> np.ndarray:
    """Euclidean distance from each row of z: (N, d) to its k-th nearest other row: (N,)."""
    tree = cKDTree(z)
    # The nearest point returned for each query is the point itself (distance 0).
    dist, _ = tree.query(z, k=k + 1)
    return dist[:, k]


def knn_entropy(z: torch.Tensor | np.ndarray, k: int = 5) -> float:
    """Kozachenko-Leonenko estimate of the differential entropy (nats) of samples z: (N, d)."""
    z = np.asarray(z.detach().cpu() if isinstance(z, torch.Tensor) else z, dtype=np.float64)
    n, d = z.shape
    if n <= k:
        raise ValueError(f"the k-NN entropy estimate needs more than k={k} samples, got {n}")
    r = np.maximum(knn_distances(z, k), _MIN_DISTANCE)
    return float(digamma(n) - digamma(k) + log_unit_ball_volume(d) + d * np.log(r).mean())


def cross_entropy_to_prior(z: torch.Tensor, prior: Any) -> float:
    """-E_q[log p(z)], the sample mean over codes z: (N, d) of the prior's exact log-density."""
    return -prior.log_prob(z.double()).mean().item()


def kl_to_prior(z: torch.Tensor, prior: Any, k: int = 5) -> float:
    """KL(q(z) || p(z)) = -h(q) - E_q[log p(z)] from samples z: (N, d) of q."""
    return cross_entropy_to_prior(z, prior) - knn_entropy(z, k)


@METRICS.register("entropy")
def _entropy(ctx: MetricContext) -> dict[str, Any]:
    return {
        "entropy_q": knn_entropy(ctx.codes, ctx.options.knn_k),
        "entropy_prior": float(ctx.model.prior.entropy()),
    }


@METRICS.register("kl")
def _kl(ctx: MetricContext) -> dict[str, Any]:
    h = knn_entropy(ctx.codes, ctx.options.knn_k)
    cross = cross_entropy_to_prior(ctx.codes, ctx.model.prior)
    return {"kl_q_p": cross - h, "cross_entropy_q_p": cross}
