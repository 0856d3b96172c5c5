"""Divergences between code distributions: the MMD of VIMAE (eq. 7, 13) and the Gaussian KL.

MMD follows the WAE paper's estimator, which SPEC section 2 adopts: an unbiased U-statistic of
MMD^2 between the batch codes and as many prior samples, with a kernel summed over the scales
C = 2 * d * s2 * c, c in {0.1, 0.2, 0.5, 1, 2, 5, 10}, s2 the prior's variance. `mmd` is the
training-time version (one kernel matrix per pair, differentiable); `mmd_blocked` gives the same
number for tens of thousands of codes in memory bounded by block_size^2.
"""

import functools
import math
from collections.abc import Callable
from typing import Any

import torch

from vimae.registry import Registry

SCALE_FACTORS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)

# A kernel maps squared distances (any shape) and a scale C to kernel values: C is a float, or a
# tensor of scales that broadcasts against the distances (`mmd` passes all scales at once).
Kernel = Callable[[torch.Tensor, float | torch.Tensor], torch.Tensor]
KERNELS: Registry[Kernel] = Registry("kernel")


@KERNELS.register("imq")
def inverse_multiquadratic(d2: torch.Tensor, c: float | torch.Tensor) -> torch.Tensor:
    """k(a, b) = C / (C + |a - b|^2): heavy tails keep gradients alive for far-away codes."""
    return c / (c + d2)


@KERNELS.register("rbf")
def gaussian_rbf(d2: torch.Tensor, c: float | torch.Tensor) -> torch.Tensor:
    """k(a, b) = exp(-|a - b|^2 / C) with C = 2 d s2 c (the kernel of InfoVAE)."""
    return torch.exp(-d2 / c)


def kernel_scales(dim: int, variance: float = 1.0) -> list[float]:
    """The scales C = 2 * d * s2 * c of SPEC section 2."""
    return [2.0 * dim * variance * c for c in SCALE_FACTORS]


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|a_i - b_j|^2 for a: (n, d), b: (m, d) -> (n, m), clamped at 0 against round-off."""
    d2 = (a * a).sum(1, keepdim=True) + (b * b).sum(1).unsqueeze(0) - 2.0 * (a @ b.T)
    return d2.clamp_min_(0.0)


# Kernel entries (scales x (n + m)^2) up to which `mmd` computes every scale in one tensor; above,
# one scale and one block at a time, so that memory grows like one (n + m)^2 matrix per scale
# kept for the backward pass, not twice that (a batch of 500 under a memory limit, test_stream).
FUSED_ENTRIES = 1 << 20


def mmd(
    x: torch.Tensor, y: torch.Tensor, kernel: str = "imq", variance: float = 1.0
) -> torch.Tensor:
    """Unbiased MMD^2 between samples x: (n, d) and y: (m, d) (eq. 7's D(q(z) || p(z))).

    Unbiased means it can be slightly negative when the two distributions agree. For a training
    batch (up to FUSED_ENTRIES kernel entries) one kernel matrix over [x; y] for all scales at
    once, summed against the U-statistic's weights (`_u_statistic_weights`): at that size a
    handful of operations matters more than the (4/3 times more) entries computed. Larger samples
    go block by block (`_mmd_by_blocks`), the same estimator in less memory.
    """
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError("the unbiased MMD needs at least two samples on each side")
    scales = kernel_scales(x.shape[1], variance)
    if len(scales) * (n + m) ** 2 > FUSED_ENTRIES:
        return _mmd_by_blocks(x, y, KERNELS[kernel], scales)
    both = torch.cat([x, y])
    d2 = squared_distances(both, both)
    c = torch.tensor(scales, dtype=d2.dtype, device=d2.device).view(-1, 1, 1)
    k = KERNELS[kernel](d2.unsqueeze(0), c).sum(0)
    return _thread_free_sum(k * _u_statistic_weights(n, m, d2.dtype, d2.device))


def _thread_free_sum(matrix: torch.Tensor) -> torch.Tensor:
    """Rows first, then their sum: a flat sum of more than 32,768 terms (PyTorch's grain size) is
    split among threads, so its rounding, and a resumed run's weights, would depend on the thread
    count; a row's sum and a sum of its rows do not."""
    return matrix.sum(dim=1).sum()


def _mmd_by_blocks(
    x: torch.Tensor, y: torch.Tensor, k: Kernel, scales: list[float]
) -> torch.Tensor:
    """`mmd` from the x-x, y-y and x-y blocks, one scale at a time."""

    def block(a: torch.Tensor, b: torch.Tensor, same: bool) -> torch.Tensor:
        d2 = squared_distances(a, b)
        total = k(d2, scales[0])
        for c in scales[1:]:
            total = total + k(d2, c)
        if same:
            total = total - torch.diag_embed(total.diagonal())
        return _thread_free_sum(total)

    n, m = x.shape[0], y.shape[0]
    return (
        block(x, x, True) / (n * (n - 1))
        + block(y, y, True) / (m * (m - 1))
        - 2.0 * block(x, y, False) / (n * m)
    )


@functools.lru_cache(maxsize=16)
def _u_statistic_weights(n: int, m: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Weights w with sum(w * K) the unbiased MMD^2 for K the kernel matrix of [x; y]:
    1/(n(n-1)) off the diagonal of the x-x block, 1/(m(m-1)) off that of the y-y block, and
    -1/(nm) in both x-y blocks; the diagonal is excluded (weight 0)."""
    w = torch.empty(n + m, n + m, dtype=dtype, device=device)
    w[:n, :n] = 1.0 / (n * (n - 1))
    w[n:, n:] = 1.0 / (m * (m - 1))
    w[:n, n:] = -1.0 / (n * m)
    w[n:, :n] = -1.0 / (n * m)
    w.fill_diagonal_(0.0)
    return w


def _kernel_sum(d2: torch.Tensor, kernel: str, scales: list[float], buf: torch.Tensor) -> float:
    """sum over entries and scales of k(d2), computed in place in `buf` (no per-scale copies)."""
    total = 0.0
    for c in scales:
        if kernel == "imq":
            torch.add(d2, c, out=buf).reciprocal_()
            total += c * buf.sum().item()
        else:
            torch.mul(d2, -1.0 / c, out=buf).exp_()
            total += buf.sum().item()
    return total


def _blocked_sum(
    a: torch.Tensor, b: torch.Tensor, kernel: str, variance: float, block_size: int, same: bool
) -> float:
    """sum_{i, j} k(a_i, b_j) (excluding i == j when `same`), block by block.

    Blocks of ~1k rows keep the working set in cache, which is several times faster than large
    blocks on a CPU; each block's sum is accumulated in a Python float (double precision).
    """
    KERNELS[kernel]  # an unknown name fails here, with the list of valid ones
    scales = kernel_scales(a.shape[1], variance)
    diagonal = len(scales) * 1.0  # k(a, a) = 1 at every scale for both kernels
    total, buf = 0.0, None
    for i in range(0, a.shape[0], block_size):
        start_j = i if same else 0
        for j in range(start_j, b.shape[0], block_size):
            d2 = squared_distances(a[i : i + block_size], b[j : j + block_size])
            if same and i == j:
                d2.diagonal().zero_()  # exact zeros, not round-off, on the excluded diagonal
            if buf is None or buf.shape != d2.shape:
                buf = torch.empty_like(d2)
            block = _kernel_sum(d2, kernel, scales, buf)
            if same and i == j:
                block -= diagonal * d2.shape[0]
            elif same:
                block *= 2.0  # the mirrored block (j, i) has the same sum
            total += block
    return total


@torch.no_grad()
def mmd_blocked(
    x: torch.Tensor,
    y: torch.Tensor,
    kernel: str = "imq",
    variance: float = 1.0,
    block_size: int = 1024,
) -> float:
    """The same unbiased MMD^2 as `mmd`, in memory O(block_size^2) rather than O(n^2)."""
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError("the unbiased MMD needs at least two samples on each side")
    sxx = _blocked_sum(x, x, kernel, variance, block_size, same=True) / (n * (n - 1))
    syy = _blocked_sum(y, y, kernel, variance, block_size, same=True) / (m * (m - 1))
    sxy = _blocked_sum(x, y, kernel, variance, block_size, same=False) / (n * m)
    return sxx + syy - 2.0 * sxy


def gaussian_kl_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per row, in closed form: (B, d) -> (B,)."""
    return 0.5 * (mu * mu + logvar.exp() - 1.0 - logvar).sum(dim=-1)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag exp(logvar)) summed over the last dimension; broadcasts over leading
    sample dimensions, e.g. z: (S, N, d) with mu, logvar: (N, d) -> (S, N)."""
    return -0.5 * (((z - mu) ** 2) * torch.exp(-logvar) + logvar + math.log(2 * math.pi)).sum(-1)


def gaussian_kl_to_prior(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    prior: Any,
    z: torch.Tensor | None = None,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || p(z)) per row: (N, d) -> (N,).

    In closed form when the prior is the standard Normal (`prior.closed_form_kl`); for any other
    prior the Monte Carlo mean of log q(z|x) - log p(z) over draws z ~ q(z|x): the draws `z`
    given ((N, d) or (S, N, d)), else `n_samples` drawn from `generator`. This is the one place
    that chooses between the two (training's KL term and the rate metric both call it).
    """
    if getattr(prior, "closed_form_kl", False):
        return gaussian_kl_normal(mu, logvar)
    if z is None:
        eps = torch.randn((n_samples, *mu.shape), generator=generator, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps.to(mu.device)  # z: (S, N, d)
    return gaussian_kl_by_draws(z, mu, logvar, prior)


def gaussian_kl_by_draws(
    z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, prior: Any
) -> torch.Tensor:
    """Monte Carlo KL(q(z|x) || p(z)) per row: the mean of log q(z|x) - log p(z) over the draws z
    ((N, d): one draw each, or (S, N, d)) of q = N(mu, diag exp(logvar)) (N, d) -> (N,)."""
    samples = z if z.dim() == 3 else z.unsqueeze(0)
    log_q = gaussian_log_density(samples, mu, logvar)  # (S, N)
    log_p = prior.log_prob(samples.reshape(-1, mu.shape[-1])).reshape(samples.shape[:2])
    return (log_q - log_p).mean(0)
