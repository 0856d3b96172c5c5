"""Where the codes of generated images come from: `Sampler.sample_codes(n, generator)`.

The paper generates by decoding prior draws z ~ p(z) (figures 2-3, FID, Parzen NLL), so the prior
is the default sampler. A density fitted to a trained model's codes after training (a Gaussian
mixture, a flow) is another sampler with the same method; every "sample, then decode" in vimae
(`Autoencoder.sample`, the metrics, `vimae sample`) goes through `vimae.models.batched.generate`,
which takes one.
"""

from typing import Protocol

import torch

from vimae.models.prior import Prior


class Sampler(Protocol):
    """Draws codes to decode: `sample_codes(n, generator)` -> (n, d) on the CPU."""

    def sample_codes(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor: ...


class PriorSampler:
    """Codes drawn from the prior p(z), from a CPU generator (seeded draws are the same on any
    device)."""

    def __init__(self, prior: Prior) -> None:
        self.prior = prior

    def sample_codes(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.prior.sample(n, generator=generator)  # on the CPU
