"""Input corruptions of section 5.3: their statistics and the spec parser."""

import pytest
import torch

from vimae.data.corruption import (
    PAPER_CORRUPTIONS,
    bernoulli_mask,
    corrupt,
    gaussian_noise,
    parse_corruption,
)
from vimae.errors import VimaeError


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_mask_zeroes_a_fraction_p(p: float) -> None:
    x = torch.full((200, 1, 28, 28), 0.7)
    y = bernoulli_mask(x, p, _gen())
    assert (y == 0).float().mean().item() == pytest.approx(p, abs=0.005)
    assert torch.all((y == 0) | (y == x))  # kept pixels are unchanged


def test_mask_drops_whole_colour_pixels() -> None:
    x = torch.rand(100, 3, 16, 16, generator=_gen(4)) + 0.1  # no pixel is 0 to begin with
    y = bernoulli_mask(x, 0.5, _gen())
    dropped = y == 0  # (N, C, H, W)
    assert torch.equal(dropped.all(dim=1), dropped.any(dim=1))  # all channels or none
    assert dropped[:, 0].float().mean().item() == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("sigma", [0.2, 0.3, 0.4])
def test_gaussian_noise_has_std_sigma_before_clamping(sigma: float) -> None:
    x = torch.full((200, 1, 28, 28), 0.5)
    noise = gaussian_noise(x, sigma, _gen(), clamp=False) - x
    assert noise.mean().item() == pytest.approx(0.0, abs=0.005)
    assert noise.std().item() == pytest.approx(sigma, rel=0.01)


def test_gaussian_noise_is_clamped_to_the_image_range_by_default() -> None:
    y = gaussian_noise(torch.rand(50, 1, 8, 8, generator=_gen(1)), 0.4, _gen())
    assert y.min() >= 0.0 and y.max() <= 1.0


def test_same_generator_seed_gives_same_corruption() -> None:
    x = torch.rand(10, 1, 8, 8, generator=_gen(1))
    assert torch.equal(corrupt(x, "mask:0.5", _gen(3)), corrupt(x, "mask:0.5", _gen(3)))


def test_paper_specs_parse_and_clean_is_identity() -> None:
    x = torch.rand(4, 1, 8, 8, generator=_gen(2))
    for spec in PAPER_CORRUPTIONS:
        assert parse_corruption(spec)(x, _gen()).shape == x.shape
    assert torch.equal(corrupt(x, "clean"), x)


@pytest.mark.parametrize(
    "spec", ["gauss", "gauss:abc", "blur:0.3", "mask:1.5", "gauss:-1", "clean:1"]
)
def test_bad_specs_raise_one_sentence(spec: str) -> None:
    with pytest.raises(VimaeError):
        parse_corruption(spec)
