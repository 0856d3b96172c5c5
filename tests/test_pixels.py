"""8-bit data is stored as uint8 (issue 15): a quarter of the memory, the same numbers. The float
view, every batch and every trained weight equal what float32 storage gives."""

import pytest
import torch
from conftest import SHARED_DATASETS, requires_shared_data

from vimae.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vimae.data import ImageData, load_dataset
from vimae.data.base import resize
from vimae.runs.fit import fit


@requires_shared_data("mnist", "cifar10", "omniglot")
@pytest.mark.parametrize("dataset", ["mnist-t10k", "cifar10", "omniglot-small"])
def test_8_bit_datasets_keep_uint8_pixels_and_a_float_view_of_them(dataset):
    data = load_dataset(dataset, "test", SHARED_DATASETS).subset(500)
    assert data.pixels.dtype == torch.uint8
    assert data.images.dtype == torch.float32
    assert torch.equal(data.images, data.pixels.float() / 255)
    index = torch.tensor([3, 1, 400])
    assert torch.equal(data.batch(index), data.images[index])
    assert data.pixels.element_size() * 4 == data.images.element_size()


def test_resizing_uint8_pixels_rounds_the_float_resize():
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8, generator=g)
    small = resize(pixels, 20)
    assert small.dtype == torch.uint8 and small.shape == (10, 3, 20, 20)
    exact = resize(pixels.float() / 255, 20)
    assert (small.float() / 255 - exact).abs().max() <= 0.5 / 255 + 1e-6


def test_training_on_uint8_pixels_gives_the_weights_of_float_storage(tmp_path):
    g = torch.Generator().manual_seed(1)
    pixels = torch.randint(0, 256, (300, 1, 8, 8), dtype=torch.uint8, generator=g)
    labels = torch.arange(300) % 3
    config = RunConfig(
        model=ModelConfig(name="vae", arch="mlp", latent_dim=2, width=0.25),
        data=DataConfig(dataset="in-memory"),
        train=TrainConfig(epochs=2, progress=False),
    )
    as_uint8 = fit(config, None, data=ImageData("x", pixels, labels))
    as_float = fit(config, None, data=ImageData("x", pixels.float() / 255, labels))
    a, b = as_uint8.state_dict(), as_float.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
