"""Maximum mean discrepancy MMD(q(z), p(z)) on all test codes.

Paper eq. 13 and figure 1 captions; SPEC sections 2 and 6.

The estimator itself is the training objective's, `vimae.models.divergence.mmd_blocked` (one
definition of the kernel in the package); here it is fed a code drawn from q(z|x) for every test
image (the aggregate posterior q(z)) and as many prior samples. For the Gaussian encoders
`mmd_means`, the same on the posterior means, is reported beside it: a collapsed encoder (q(z|x) =
p(z)) has means near 0 and a huge `mmd_means`, while its q(z) is the prior and its `mmd` is near 0.
"""

from typing import Any

import torch

from vimae.metrics.base import MetricContext, metric
from vimae.models.divergence import mmd_blocked


def mmd(
    codes: torch.Tensor,
    prior: Any,
    kernel: str = "imq",
    block_size: int = 2048,
    generator: torch.Generator | None = None,
) -> float:
    """Unbiased MMD^2 between codes: (N, d) and N samples of `prior`, in bounded memory."""
    z_prior = prior.sample(codes.shape[0], generator=generator).to(codes)
    return mmd_blocked(
        codes, z_prior, kernel=kernel, variance=prior.variance, block_size=block_size
    )


@metric("mmd", position=3, options=("batch_size", "seed", "mmd_kernel", "mmd_block_size"))
def _mmd(ctx: MetricContext) -> dict[str, Any]:
    value = mmd(
        ctx.codes,
        ctx.model.prior,
        ctx.options.mmd_kernel,
        ctx.options.mmd_block_size,
        ctx.generator("mmd"),
    )
    out = {"mmd": value}
    if ctx.codes_are_random:
        out["mmd_means"] = mmd(
            ctx.mean_codes,
            ctx.model.prior,
            ctx.options.mmd_kernel,
            ctx.options.mmd_block_size,
            ctx.generator("mmd"),
        )
    return out
