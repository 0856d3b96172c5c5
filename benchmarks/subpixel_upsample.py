"""Would the decoders' fractionally-strided convolutions be faster as sub-pixel convolutions?

    python benchmarks/subpixel_upsample.py                   # about 40 s on a 2-core CPU
    python benchmarks/subpixel_upsample.py --widths 1 0.25 0.125 0.0625   # about 3.5 minutes

A stride-2 transposed convolution (`vimae.models.network.upsample_conv`) computes each of the
four output phases (even or odd row, even or odd column) from a few input pixels, so it equals
one stride-1 convolution of the input to 4 x c_out channels, whose kernel holds the transposed
kernel's taps of each phase (zeros elsewhere), followed by `pixel_shuffle(2)`. The transposed
convolutions are most of a narrow training step (benchmarks/step_profile.py), and on a CPU the
stride-1 convolution is oneDNN's most tuned path, so the rewrite was a candidate for issue 28.
For each upsampling layer of dcgan28 and dcgan64 (batch 100) this prints the best seconds of
forward + backward (input and weight gradients) both ways and the largest relative difference.
Measured on the 2-core machine (BENCHMARKS.md): the sub-pixel form is slower at every layer and
width (its zero taps cost 9/4 of the multiplies for 4x4 kernels, 36/25 for 5x5), so vimae keeps
ConvTranspose2d.
"""

import argparse

import torch
import torch.nn.functional as F
from kernel_speed import compare
from train_speed import BATCH

from vimae.models.network import scaled, upsample_conv

# (what, c_in, c_out, kernel, input side) at width 1.0, as vimae.models.network builds them
LAYERS = [
    ("dcgan28 upsampling 1 (7 -> 14)", 1024, 512, 4, 7),
    ("dcgan28 upsampling 2 (14 -> 28)", 512, 256, 4, 14),
    ("dcgan64 upsampling 1 (8 -> 16)", 1024, 512, 5, 8),
    ("dcgan64 upsampling 2 (16 -> 32)", 512, 256, 5, 16),
    ("dcgan64 upsampling 3 (32 -> 64)", 256, 128, 5, 32),
]


def phase_taps(kernel: int, padding: int) -> dict[int, list[tuple[int, int]]]:
    """For output phase a (0 even, 1 odd), the (kernel tap, input offset) pairs that reach it:
    output 2m + a reads input m + offset through tap k, where 2 (m + offset) - padding + k =
    2m + a."""
    return {
        a: [(k, (a + padding - k) // 2) for k in range(kernel) if (a + padding - k) % 2 == 0]
        for a in (0, 1)
    }


def subpixel_transposed_conv(x: torch.Tensor, weight: torch.Tensor, padding: int) -> torch.Tensor:
    """conv_transpose2d(x, weight, stride=2, padding, output side 2 x input side) computed as a
    stride-1 convolution to 4 x c_out channels, ordered (channel, row phase, column phase), and
    pixel_shuffle(2). Differentiable in x and weight."""
    c_in, c_out, kernel, _ = weight.shape
    taps = phase_taps(kernel, padding)
    offsets = [d for a in taps for _, d in taps[a]]
    low, high = min(offsets), max(offsets)
    size = high - low + 1
    blocks = []
    for a in (0, 1):
        for b in (0, 1):
            block = weight.new_zeros(c_out, c_in, size, size)
            for ka, da in taps[a]:
                for kb, db in taps[b]:
                    block[:, :, da - low, db - low] = weight[:, :, ka, kb].t()
            blocks.append(block)
    stacked = torch.stack(blocks, 1).reshape(4 * c_out, c_in, size, size)
    padded = F.pad(x, (-low, high, -low, high))
    return F.pixel_shuffle(F.conv2d(padded, stacked), 2)


def measure(c_in: int, c_out: int, kernel: int, side: int, repeats: int) -> dict:
    """Best seconds of forward + backward each way, and their largest relative difference."""
    torch.manual_seed(0)
    layer = upsample_conv(c_in, c_out, kernel)
    padding = layer.padding[0]
    x = torch.rand(BATCH, c_in, side, side, requires_grad=True)
    grad = torch.randn(BATCH, c_out, 2 * side, 2 * side)

    def transposed() -> tuple:
        y = layer(x)
        return (y, *torch.autograd.grad(y, (x, layer.weight), grad))

    def subpixel() -> tuple:
        y = subpixel_transposed_conv(x, layer.weight, padding)
        return (y, *torch.autograd.grad(y, (x, layer.weight), grad))

    return compare({"transposed": transposed, "subpixel": subpixel}, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--widths", type=float, nargs="+", default=[0.125, 0.0625])
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, batch {BATCH}")
    print("\n| layer | width | ConvTranspose2d s | sub-pixel s | sub-pixel speed-up | difference |")
    print("|---|---|---|---|---|---|")
    for width in args.widths:
        for what, c_in, c_out, kernel, side in LAYERS:
            r = measure(scaled(c_in, width), scaled(c_out, width), kernel, side, args.repeats)
            print(
                f"| {what} | {width:g} | {r['transposed']:.4f} | {r['subpixel']:.4f} | "
                f"{r['transposed'] / r['subpixel']:.2f}x | {r['difference']:.1e} |"
            )


if __name__ == "__main__":
    main()
