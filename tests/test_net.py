"""The networks have exactly the paper's layer shapes (SPEC section 3) at width 1.0."""

import pytest
import torch
from torch import nn

from vimae.errors import VimaeError
from vimae.models.network import (
    NETWORKS,
    WAE_INIT_STD,
    SameConv2d,
    build_networks,
    initialise_like_wae,
)


def weight_shapes(module: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    """(layer type, weight shape) of every convolution and linear layer, in order."""
    kinds = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    return [
        (type(m).__name__, tuple(m.weight.shape)) for m in module.modules() if isinstance(m, kinds)
    ]


def spatial_sizes(module: nn.Module, x: torch.Tensor) -> list[int]:
    """Side length after every convolution, recorded with forward hooks (on SameConv2d, whose
    forward may run vimae.models.kernel instead of its inner nn.Conv2d)."""
    sizes: list[int] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: sizes.append(out.shape[-1]))
        for m in module.modules()
        if isinstance(m, SameConv2d | nn.ConvTranspose2d)
    ]
    module(x)
    for h in hooks:
        h.remove()
    return sizes


def test_dcgan28_matches_the_paper_layer_by_layer():
    encoder, decoder = build_networks("dcgan28", (1, 28, 28), 8, 8, 1.0)
    assert weight_shapes(encoder) == [
        ("Conv2d", (128, 1, 4, 4)),
        ("Conv2d", (256, 128, 4, 4)),
        ("Conv2d", (512, 256, 4, 4)),
        ("Conv2d", (1024, 512, 4, 4)),
        ("Linear", (8, 1024 * 2 * 2)),
    ]
    assert weight_shapes(decoder) == [
        ("Linear", (7 * 7 * 1024, 8)),
        ("ConvTranspose2d", (1024, 512, 4, 4)),
        ("ConvTranspose2d", (512, 256, 4, 4)),
        ("Conv2d", (1, 256, 4, 4)),
    ]
    encoder.eval()
    decoder.eval()
    assert spatial_sizes(encoder, torch.zeros(2, 1, 28, 28)) == [14, 7, 4, 2]
    assert spatial_sizes(decoder, torch.zeros(2, 8)) == [14, 28, 28]


def test_dcgan64_matches_the_paper_layer_by_layer():
    encoder, decoder = build_networks("dcgan64", (3, 64, 64), 64, 128, 1.0)
    assert weight_shapes(encoder) == [
        ("Conv2d", (128, 3, 5, 5)),
        ("Conv2d", (256, 128, 5, 5)),
        ("Conv2d", (512, 256, 5, 5)),
        ("Conv2d", (1024, 512, 5, 5)),
        ("Linear", (128, 1024 * 4 * 4)),
    ]
    assert weight_shapes(decoder) == [
        ("Linear", (8 * 8 * 1024, 64)),
        ("ConvTranspose2d", (1024, 512, 5, 5)),
        ("ConvTranspose2d", (512, 256, 5, 5)),
        ("ConvTranspose2d", (256, 128, 5, 5)),
        ("Conv2d", (3, 128, 5, 5)),
    ]
    encoder.eval()
    decoder.eval()
    assert spatial_sizes(encoder, torch.zeros(1, 3, 64, 64)) == [32, 16, 8, 4]
    assert spatial_sizes(decoder, torch.zeros(1, 64)) == [16, 32, 64, 64]


def test_mlp_has_three_hidden_layers_of_256():
    encoder, decoder = build_networks("mlp", (1, 28, 28), 2, 2, 1.0)
    assert [s for _, s in weight_shapes(encoder)] == [(256, 784), (256, 256), (256, 256), (2, 256)]
    assert [s for _, s in weight_shapes(decoder)] == [(256, 2), (256, 256), (256, 256), (784, 256)]


def test_width_multiplier_scales_every_layer():
    encoder, _ = build_networks("dcgan28", (1, 28, 28), 8, 8, 0.125)
    assert [s[0] for _, s in weight_shapes(encoder)][:4] == [16, 32, 64, 128]


@pytest.mark.parametrize("arch", NETWORKS.names())
def test_decoder_output_is_an_image_in_unit_range(arch):
    size = NETWORKS[arch].image_size or 8
    _, decoder = build_networks(arch, (3, size, size), 4, 4, 0.125)
    out = decoder(torch.randn(5, 4) * 10)
    assert out.shape == (5, 3, size, size)
    assert out.min() >= 0 and out.max() <= 1


def test_wrong_image_size_is_a_clear_error():
    with pytest.raises(VimaeError, match="dcgan28 needs 28x28 images but the data is 32x32"):
        build_networks("dcgan28", (3, 32, 32), 8, 8, 1.0)


@pytest.mark.parametrize("arch,shape", [("dcgan28", (1, 28, 28)), ("dcgan64", (3, 64, 64))])
def test_wae_init_draws_every_weight_at_the_wae_codes_scale(arch, shape):
    """--init wae: convolutions from N(0, 0.01^2) truncated at 2 sd, fractionally-strided
    convolutions and linear layers from N(0, 0.01^2), biases 0, batch norm untouched (the WAE
    code's ops.py); PyTorch's default gives the first convolution a standard deviation of 0.14."""
    torch.manual_seed(0)
    networks = build_networks(arch, shape, 8, 16, 0.25)
    for network in networks:
        initialise_like_wae(network)
    for module in (m for n in networks for m in n.modules()):
        if isinstance(module, nn.Conv2d):
            w = module.weight
            assert w.abs().max() <= 2 * WAE_INIT_STD
            if w.numel() >= 1000:  # 2-sd truncation leaves 0.88 of the sd
                assert 0.8 * WAE_INIT_STD < w.std() < 0.95 * WAE_INIT_STD
        elif isinstance(module, nn.ConvTranspose2d | nn.Linear):
            assert 0.9 * WAE_INIT_STD < module.weight.std() < 1.1 * WAE_INIT_STD
            assert module.weight.abs().max() > 2 * WAE_INIT_STD  # not truncated
        elif isinstance(module, nn.BatchNorm2d):
            assert torch.equal(module.weight, torch.ones_like(module.weight))
            continue
        else:
            continue
        if module.bias is not None:
            assert torch.equal(module.bias, torch.zeros_like(module.bias))


def test_init_wae_is_a_model_setting_that_changes_the_fingerprint():
    """build_model applies --init wae to the named networks; a run at the default keeps the
    fingerprint it had before the setting existed (the committed results stay valid)."""
    from dataclasses import replace

    from vimae.config import RunConfig
    from vimae.models import build_model, resolve

    base = RunConfig()
    default_print = base.fingerprint()
    assert '"init"' not in default_print
    wae = RunConfig.from_dict(base.to_dict())
    wae.model.init = "wae"
    assert wae.fingerprint() != default_print
    model = build_model(replace(resolve(wae.model, "mnist", (1, 28, 28)), width=0.125))
    first = model.encoder.features[0].conv.weight
    assert first.abs().max() <= 2 * WAE_INIT_STD
