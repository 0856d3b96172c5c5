"""Encoder and decoder networks of the paper's appendix (the nets of the WAE paper).

- `mlp`: 3 hidden ReLU layers of 256 units each way (figure 1, d = 2).
- `dcgan28`: 28x28 images, 4x4 kernels. Encoder Conv128-256-512-1024 (stride 2, SAME: 28-14-7-4-2),
  each BN-ReLU, then a linear layer to the code. Decoder FC to 7x7x1024, FSConv512-256 (7-14-28),
  each BN-ReLU, then a stride-1 convolution to the image channels (the appendix's last "FSConv_256"
  is a typo: the output has the image's channels).
- `dcgan64`: 64x64 images, 5x5 kernels, the same encoder (64-32-16-8-4); decoder FC to 8x8x1024,
  FSConv512-256-128 (8-16-32-64) each BN-ReLU, then a stride-1 convolution to the channels.

`width` multiplies every channel and hidden-unit count (1.0 is the paper), so the same architecture
runs at 1/4 or 1/8 width on a CPU. The layers start from PyTorch's default weights, or with
`init="wae"` from those of the WAE code the paper trained with (`initialise_like_wae`). Decoders
end in a sigmoid: images live in [0, 1]. Convolutions followed by batch normalization have no
bias (BN's shift makes it redundant).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vimae.errors import VimaeError
from vimae.models import kernel
from vimae.registry import Registry


@dataclass(frozen=True)
class Network:
    """How to build an (encoder, decoder) pair and which image side length it expects."""

    image_size: int | None
    build: Callable[[tuple[int, int, int], int, int, float], tuple[nn.Module, nn.Module]]


NETWORKS: Registry[Network] = Registry("network")


def scaled(units: int, width: float) -> int:
    return max(1, round(units * width))


class SameConv2d(nn.Module):
    """Conv2d with TensorFlow's SAME padding (output side ceil(input / stride)).

    When the total padding is odd, TF pads one more on the bottom/right: done with F.pad so the
    layer computes exactly what the paper's TF networks compute. On CPU two shapes run on
    `vimae.models.kernel` (same result, faster): a stride-1 convolution to a few channels (the
    decoder's last layer) and a deep convolution to at most 4x4 positions (the encoder's last
    layers); a last layer with few input channels runs on PyTorch's kernel in channels-last
    layout instead. The thresholds are where each measured faster on the dcgan networks.
    """

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int, in_size: int, bias: bool = True
    ) -> None:
        super().__init__()
        out_size = math.ceil(in_size / stride)
        total = max((out_size - 1) * stride + kernel - in_size, 0)
        self.pad = (total // 2, total - total // 2)
        symmetric = self.pad[0] == self.pad[1]
        self.conv = nn.Conv2d(
            c_in, c_out, kernel, stride, padding=self.pad[0] if symmetric else 0, bias=bias
        )
        self.explicit_pad = None if symmetric else (self.pad[0], self.pad[1]) * 2
        self.out_size = out_size
        # Which vimae.models.kernel serves this layer on CPU, fixed by its shape (None: PyTorch's).
        self.cpu_kernel: str | None = None
        if stride == 1 and c_out <= 4:
            # the taps kernel keeps c_out * k * k values per pixel: worth it while that is at
            # most 8 times the c_in it reads (dcgan64's last layer at width 0.0625 has 8 inputs
            # for 75 taps, and runs faster on oneDNN with channels-last; BENCHMARKS.md)
            wide = 8 * c_in >= c_out * kernel**2
            self.cpu_kernel = "taps" if wide else "channels_last"
        elif not bias and out_size**2 <= 16 and c_in * kernel**2 >= 8192:
            self.cpu_kernel = "gemm"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv
        tuned = self.cpu_kernel is not None and kernel.tuned(x)
        if tuned and self.cpu_kernel == "taps":
            return kernel.conv2d_by_taps(x, conv.weight, conv.bias, self.pad[0])
        if tuned and self.cpu_kernel == "channels_last":
            x = kernel.channels_last(x)
        if self.explicit_pad is not None:
            x = F.pad(x, self.explicit_pad)
        if tuned and self.cpu_kernel == "gemm":
            return kernel.conv2d_gemm(x, conv.weight, conv.stride[0], conv.padding[0])
        return conv(x)


def upsample_conv(c_in: int, c_out: int, kernel: int) -> nn.ConvTranspose2d:
    """Fractionally-strided convolution that exactly doubles the side (TF SAME, stride 2)."""
    padding = math.ceil((kernel - 2) / 2)
    return nn.ConvTranspose2d(
        c_in,
        c_out,
        kernel,
        stride=2,
        padding=padding,
        output_padding=2 * padding - kernel + 2,
        bias=False,
    )


class ConvEncoder(nn.Module):
    """Conv-BN-ReLU x4 (stride 2, SAME) then a linear map to `out_dim`: x (B,C,S,S) -> (B, out)."""

    def __init__(
        self, image_shape: tuple[int, int, int], out_dim: int, width: float, kernel: int
    ) -> None:
        super().__init__()
        c, size, _ = image_shape
        layers: list[nn.Module] = []
        for units in (128, 256, 512, 1024):
            conv = SameConv2d(c, scaled(units, width), kernel, 2, size, bias=False)
            layers += [conv, nn.BatchNorm2d(conv.conv.out_channels), nn.ReLU(inplace=True)]
            c, size = conv.conv.out_channels, conv.out_size
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c * size * size, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


class ConvDecoder(nn.Module):
    """FC to (top, s0, s0), ReLU, FSConv-BN-ReLU per entry of `units`, stride-1 conv, sigmoid."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        latent_dim: int,
        width: float,
        kernel: int,
        units: tuple[int, ...],
    ) -> None:
        super().__init__()
        c_img, size, _ = image_shape
        self.start = size // 2 ** len(units)
        self.top = scaled(1024, width)
        self.fc = nn.Linear(latent_dim, self.top * self.start * self.start)
        layers: list[nn.Module] = [nn.ReLU(inplace=True)]
        c = self.top
        for u in units:
            c_out = scaled(u, width)
            layers += [
                upsample_conv(c, c_out, kernel),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
            c = c_out
        layers += [SameConv2d(c, c_img, kernel, 1, size), nn.Sigmoid()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(-1, self.top, self.start, self.start)
        return self.body(h)


def _dcgan(
    kernel: int, decoder_units: tuple[int, ...]
) -> Callable[..., tuple[nn.Module, nn.Module]]:
    def build(
        image_shape: tuple[int, int, int], latent_dim: int, out_dim: int, width: float
    ) -> tuple[nn.Module, nn.Module]:
        encoder = ConvEncoder(image_shape, out_dim, width, kernel)
        decoder = ConvDecoder(image_shape, latent_dim, width, kernel, decoder_units)
        return encoder, decoder

    return build


NETWORKS.add("dcgan28", Network(28, _dcgan(4, (512, 256))))
NETWORKS.add("dcgan64", Network(64, _dcgan(5, (512, 256, 128))))


class MLPDecoder(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, hidden: int) -> None:
        super().__init__()
        self.image_shape = image_shape
        self.body = nn.Sequential(
            nn.Linear(latent_dim, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, math.prod(image_shape)),
            nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z).view(-1, *self.image_shape)


def _mlp(
    image_shape: tuple[int, int, int], latent_dim: int, out_dim: int, width: float
) -> tuple[nn.Module, nn.Module]:
    hidden = scaled(256, width)
    encoder = nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(image_shape), hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, out_dim),
    )
    return encoder, MLPDecoder(image_shape, latent_dim, hidden)


NETWORKS.add("mlp", Network(None, _mlp))


WAE_INIT_STD = 0.0099999  # the WAE code's `init_std` for every dataset (its configs.py)


def initialise_like_wae(network: nn.Module) -> None:
    """Set the weights as the WAE code (tolstikhin/wae, ops.py) starts them: convolutions from
    N(0, 0.01^2) truncated at two standard deviations, fractionally-strided convolutions and
    linear layers from N(0, 0.01^2), every bias 0; batch norm keeps scale 1 and shift 0.

    The paper trained "with the same settings and autoencoder models" as that code. The scale
    matters beyond the first step: behind batch norm it sets how far one Adam step of the
    learning rate moves a layer (0.001 against weights of 0.01, where PyTorch's default gives the
    first convolution weights of about 0.14)."""
    std = WAE_INIT_STD
    for layer in network.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.trunc_normal_(layer.weight, 0.0, std, -2 * std, 2 * std)
        elif isinstance(layer, nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(layer.weight, 0.0, std)
        else:
            continue
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


def build_networks(
    arch: str, image_shape: tuple[int, int, int], latent_dim: int, out_dim: int, width: float
) -> tuple[nn.Module, nn.Module]:
    """Encoder (image -> out_dim) and decoder (latent_dim -> image) of architecture `arch`."""
    network = NETWORKS[arch]
    _, h, w = image_shape
    if network.image_size is not None and (h, w) != (network.image_size, network.image_size):
        raise VimaeError(
            f"network {arch} needs {network.image_size}x{network.image_size} images "
            f"but the data is {h}x{w}; pass --image-size {network.image_size} to resize it "
            "or choose another --arch."
        )
    return network.build(image_shape, latent_dim, out_dim, width)
