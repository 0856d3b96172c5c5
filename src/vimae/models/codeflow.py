"""A small normalising flow fitted to a trained encoder's codes: the second ex-post sampler.

A Gaussian mixture (`vimae.models.expost`) needs many components for a curved q(z); a flow
bends a standard normal into it instead. This is RealNVP (Dinh et al. 2017, "Density estimation
using Real NVP", section 3): `layers` affine coupling layers with alternating halves of the
coordinates, each scaling and shifting one half by an MLP of the other (log-scales bounded by
tanh), on codes standardised by their mean and standard deviation. It is fitted by maximum
likelihood with Adam on 90% of the codes, and the weights of the lowest negative log-likelihood
on the other 10% are kept (a flow overfits a few thousand codes). Stored as safetensors (the
weights, the standardisation, and the architecture and fit as metadata), checked when read back.
"""

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vimae.errors import VimaeError
from vimae.models.tensorfile import read_tensors, write_tensors

FORMAT = "vimae-flow-sampler-1"
LAYERS, HIDDEN, STEPS, BATCH, LR = 6, 64, 3000, 256, 1e-3


class Coupling(nn.Module):
    """y = x on the `mask` coordinates; elsewhere y = x * exp(s(x_m)) + t(x_m)."""

    def __init__(self, dim: int, hidden: int, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask)
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 2 * dim),
        )  # fmt: skip
        nn.init.zeros_(self.net[-1].weight)  # starts as the identity
        nn.init.zeros_(self.net[-1].bias)

    def _scale_shift(self, kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self.net(kept).chunk(2, dim=1)
        free = 1 - self.mask
        return torch.tanh(s) * free, t * free

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(y, log |det dy/dx|) per row."""
        s, t = self._scale_shift(x * self.mask)
        return x * torch.exp(s) + t, s.sum(dim=1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        s, t = self._scale_shift(y * self.mask)
        return (y - t) * torch.exp(-s)


class CodeFlow(nn.Module):
    """RealNVP from standardised codes to a standard normal; samples by the inverse."""

    def __init__(self, dim: int, layers: int = LAYERS, hidden: int = HIDDEN) -> None:
        super().__init__()
        if dim < 2:
            raise VimaeError("a coupling flow needs codes of 2 dimensions or more; use gmm.")
        half = torch.arange(dim) % 2
        self.layers = nn.ModuleList(
            Coupling(dim, hidden, (half if k % 2 == 0 else 1 - half).float()) for k in range(layers)
        )
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.dim, self.hidden = dim, hidden

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z) of codes z (N, d) in nats, the standardisation's Jacobian included."""
        x = (z - self.mean) / self.std
        total = -torch.log(self.std).sum().expand(len(z))
        for layer in self.layers:
            x, log_det = layer(x)
            total = total + log_det
        normal = -0.5 * (x**2).sum(dim=1) - 0.5 * self.dim * math.log(2 * math.pi)
        return normal + total

    @torch.no_grad()
    def sample_codes(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n codes (n, d) float32 on the CPU: standard normal draws from `generator`, inverted."""
        x = torch.randn(n, self.dim, generator=generator)
        for layer in reversed(self.layers):
            x = layer.inverse(x)
        return (x * self.std + self.mean).float()

    def save(self, path: Path, fitted: dict[str, Any]) -> None:
        """Write the flow to `path` (safetensors, atomically) with how it was fitted."""
        tensors = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        metadata = {
            "format": FORMAT,
            "architecture": json.dumps(
                {"dim": self.dim, "layers": len(self.layers), "hidden": self.hidden}
            ),
            "fitted": json.dumps(fitted),
        }
        write_tensors(path, tensors, metadata)


class FlowSampler:
    """A fitted `CodeFlow` as a sampler (`sample_codes`), with what it was fitted on."""

    def __init__(self, flow: CodeFlow, fitted: dict[str, Any]) -> None:
        self.flow, self.fitted = flow.eval(), fitted

    def sample_codes(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.flow.sample_codes(n, generator)

    def save(self, path: Path) -> None:
        self.flow.save(path, self.fitted)

    @classmethod
    def load(cls, path: Path, latent_dim: int) -> "FlowSampler":
        """The flow stored at `path`, or one sentence saying what is wrong with the file."""
        hint = "delete it and it is fitted again"
        tensors, metadata = read_tensors(path, hint)
        if metadata.get("format") != FORMAT:
            raise VimaeError(f"{path} is not a vimae flow sampler; {hint}.")
        arch = json.loads(metadata.get("architecture", "{}"))
        if arch.get("dim") != latent_dim:
            raise VimaeError(
                f"{path} is a flow on {arch.get('dim')}-dimensional codes, the model's are "
                f"{latent_dim}-dimensional; {hint}."
            )
        flow = CodeFlow(arch["dim"], arch["layers"], arch["hidden"])
        try:
            flow.load_state_dict(tensors, strict=True)
        except RuntimeError:
            raise VimaeError(
                f"{path} does not hold the weights its architecture needs; {hint}."
            ) from None
        if not all(torch.isfinite(t).all() for t in tensors.values()):
            raise VimaeError(f"{path} holds NaN or infinite weights; {hint}.")
        return cls(flow, json.loads(metadata.get("fitted", "{}")))


def fit_flow(
    codes: np.ndarray | torch.Tensor, seed: int = 0, steps: int = STEPS, layers: int = LAYERS
) -> FlowSampler:
    """A RealNVP fitted to codes (N, d) by maximum likelihood (see the module docstring)."""
    z = torch.as_tensor(np.asarray(codes), dtype=torch.float32)
    if z.dim() != 2 or len(z) < 20 or not torch.isfinite(z).all():
        raise VimaeError(f"a flow needs at least 20 finite codes (N, d), got {tuple(z.shape)}.")
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(z), generator=gen)
    cut = max(len(z) - max(len(z) // 10, 1), 1)
    train, valid = z[order[:cut]], z[order[cut:]]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        flow = CodeFlow(z.shape[1], layers)
    flow.mean.copy_(train.mean(0))
    flow.std.copy_(train.std(0).clamp_min(1e-6))
    optimizer = torch.optim.Adam(flow.parameters(), lr=LR)
    best, best_state, best_step = math.inf, None, 0
    for step in range(1, steps + 1):
        index = torch.randint(len(train), (min(BATCH, len(train)),), generator=gen)
        loss = -flow.log_prob(train[index]).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 100 == 0 or step == steps:
            with torch.no_grad():
                nll = -flow.log_prob(valid).mean().item()
            if nll < best:
                best, best_step = nll, step
                best_state = {k: v.clone() for k, v in flow.state_dict().items()}
    if best_state is None:
        raise VimaeError("the flow's validation likelihood never became finite; use gmm.")
    flow.load_state_dict(best_state)
    fitted = {"codes": len(z), "steps": steps, "best_step": best_step,
              "validation_nll": best, "seed": seed, "layers": layers}  # fmt: skip
    return FlowSampler(flow, fitted)
