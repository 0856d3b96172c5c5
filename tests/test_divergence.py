"""MMD and KL estimators against known properties and closed forms."""

import pytest
import torch

from vimae.models import divergence
from vimae.models.divergence import (
    KERNELS,
    gaussian_kl_normal,
    gaussian_log_density,
    kernel_scales,
    mmd,
    mmd_blocked,
)


def test_kernel_scales_follow_the_wae_choice():
    assert kernel_scales(8) == pytest.approx([2 * 8 * c for c in (0.1, 0.2, 0.5, 1, 2, 5, 10)])


@pytest.mark.parametrize("kernel", KERNELS.names())
def test_mmd_near_zero_for_one_distribution_and_grows_with_shift(kernel):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1000, 8, generator=g)
    y = torch.randn(1000, 8, generator=g)
    same = mmd(x, y, kernel).item()
    shifts = [mmd(x, y + s, kernel).item() for s in (0.25, 0.5, 1.0)]
    assert abs(same) < 0.01
    assert shifts[0] > 5 * abs(same) + 0.005
    assert shifts[0] < shifts[1] < shifts[2]


def test_mmd_is_unbiased():
    """Mean over many small batches from one distribution is ~0 (a biased V-statistic is not)."""
    g = torch.Generator().manual_seed(1)
    values = [
        mmd(torch.randn(20, 2, generator=g), torch.randn(20, 2, generator=g)).item()
        for _ in range(2000)
    ]
    mean = sum(values) / len(values)
    spread = torch.tensor(values).std().item() / len(values) ** 0.5
    assert abs(mean) < 4 * spread


@pytest.mark.parametrize("kernel", KERNELS.names())
def test_blocked_mmd_equals_direct(kernel):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(700, 5, generator=g, dtype=torch.float64)
    y = torch.randn(500, 5, generator=g, dtype=torch.float64) * 1.3
    direct = mmd(x, y, kernel).item()
    assert mmd_blocked(x, y, kernel, block_size=128) == pytest.approx(direct, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("n", [100, 200])  # the fused path, and the one block by block
def test_mmd_does_not_depend_on_the_thread_count(n):
    # a run resumed in another process (another thread count) must take the same steps: 2 x n
    # codes give kernel matrices above the size where PyTorch splits a flat sum among threads
    x = torch.randn(n, 8, generator=torch.Generator().manual_seed(0))
    y = torch.randn(n, 8, generator=torch.Generator().manual_seed(1))
    threads = torch.get_num_threads()
    try:
        values = []
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            values.append(mmd(x, y).item())
    finally:
        torch.set_num_threads(threads)
    assert values[0] == values[1] == values[2]


@pytest.mark.parametrize("kernel", KERNELS.names())
def test_the_fused_and_the_block_mmd_agree_with_their_gradients(kernel, monkeypatch):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(60, 4, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(40, 4, generator=g, dtype=torch.float64) * 1.2
    fused = mmd(x, y, kernel)
    (grad_fused,) = torch.autograd.grad(fused, x)
    monkeypatch.setattr(divergence, "FUSED_ENTRIES", 0)
    blocks = mmd(x, y, kernel)
    (grad_blocks,) = torch.autograd.grad(blocks, x)
    assert blocks.item() == pytest.approx(fused.item(), rel=1e-12, abs=1e-15)
    assert torch.allclose(grad_blocks, grad_fused, rtol=1e-10, atol=1e-14)


def test_blocked_mmd_runs_on_a_test_set_of_codes():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(10_000, 8, generator=g)
    y = torch.randn(10_000, 8, generator=g)
    assert abs(mmd_blocked(x, y, block_size=1024)) < 2e-3


def test_gaussian_kl_equals_monte_carlo():
    g = torch.Generator().manual_seed(4)
    mu = torch.randn(3, 4, generator=g, dtype=torch.float64)
    logvar = torch.randn(3, 4, generator=g, dtype=torch.float64) * 0.5
    std = (0.5 * logvar).exp()
    z = mu + std * torch.randn(200_000, 3, 4, generator=g, dtype=torch.float64)
    normal = torch.distributions.Normal
    log_q = normal(mu, std).log_prob(z).sum(-1)
    log_p = normal(0.0, 1.0).log_prob(z).sum(-1)
    monte_carlo = (log_q - log_p).mean(0)
    assert torch.allclose(gaussian_kl_normal(mu, logvar), monte_carlo, rtol=0.02, atol=0.01)


def test_gaussian_log_density_matches_torch_distributions():
    g = torch.Generator().manual_seed(5)
    mu, logvar = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    z = torch.randn(7, 4, 3, generator=g)
    expected = torch.distributions.Normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(-1)
    assert torch.allclose(gaussian_log_density(z, mu, logvar), expected, atol=1e-5)
