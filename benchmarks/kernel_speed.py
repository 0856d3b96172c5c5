"""Layer by layer: vimae.models.kernel against PyTorch's own kernels on the layers it replaces.

    python benchmarks/kernel_speed.py                    # about a minute on a 2-core CPU
    python benchmarks/kernel_speed.py --widths 1 0.25 0.125 0.0625 --layers last

For each convolution of the paper's networks (batch 100, at each width: the input channels scale
with it) that `vimae.models.network` can run on its own kernels, prints the seconds of forward +
backward with PyTorch's kernels and with what vimae runs there (best of 5, alternating), their
ratio, and the largest relative difference of the output and the gradients between the two.
"""

import argparse
from collections.abc import Callable, Sequence

import torch
from train_speed import BATCH, seconds

from vimae.models.kernel import native_kernels
from vimae.models.network import SameConv2d, scaled
from vimae.runs.allocator import keep_freed_memory

# (what, c_in, c_out, kernel, stride, input side) as vimae.models.network builds them at width 1.0
LAYERS = [
    ("dcgan28 encoder conv 4 (4 -> 2)", 512, 1024, 4, 2, 4),
    ("dcgan28 decoder last conv (28 -> 28)", 256, 1, 4, 1, 28),
    ("dcgan64 encoder conv 4 (8 -> 4)", 512, 1024, 5, 2, 8),
    ("dcgan64 decoder last conv (64 -> 64)", 128, 3, 5, 1, 64),
]


def forward_backward(layer: SameConv2d, x: torch.Tensor, grad: torch.Tensor) -> list:
    layer.zero_grad(set_to_none=True)
    x.grad = None
    y = layer(x)
    y.backward(grad)
    grads = [x.grad, *(p.grad for p in layer.parameters())]
    return [y.detach(), *grads]


def measure(c_in: int, c_out: int, kernel: int, stride: int, side: int, repeats: int) -> dict:
    """Best seconds of forward + backward on each path, and their largest relative difference."""
    torch.manual_seed(0)
    bias = c_out < 4  # the decoder's last layer has a bias, the others are followed by BN
    layer = SameConv2d(c_in, c_out, kernel, stride, side, bias=bias)
    x = torch.rand(BATCH, c_in, side, side, requires_grad=True)
    grad = torch.randn(BATCH, c_out, layer.out_size, layer.out_size)

    def native() -> list:
        with native_kernels():
            return forward_backward(layer, x, grad)

    def tuned() -> list:
        return forward_backward(layer, x, grad)

    return compare({"native": native, "tuned": tuned}, repeats)


def compare(ways: dict[str, Callable[[], Sequence[torch.Tensor]]], repeats: int) -> dict:
    """Best seconds of each of two ways to compute the same tensors (timed alternately, so both
    see the same machine state), and the largest relative difference of the second's tensors from
    the first's, under "difference"."""
    reference, other = ways.values()
    difference = max(
        ((a - b).abs().max() / b.abs().max()).item()
        for a, b in zip(other(), reference(), strict=True)
    )
    best = dict.fromkeys(ways, float("inf"))
    for _ in range(repeats):
        for name, way in ways.items():
            best[name] = min(best[name], seconds(way))
    return {**best, "difference": difference}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--widths", type=float, nargs="+", default=[1.0])
    parser.add_argument(
        "--layers", choices=["all", "last"], default="all", help="last: the decoders' last convs"
    )
    args = parser.parse_args()
    keep_freed_memory()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, batch {BATCH}")
    print("\n| layer | width | PyTorch s | vimae s | speed-up | largest relative difference |")
    print("|---|---|---|---|---|---|")
    for width in args.widths:
        for what, c_in, c_out, *shape in LAYERS:
            if args.layers == "last" and "last" not in what:
                continue
            # the input channels scale with the width; a last layer's outputs are the colours
            c_out = c_out if "last" in what else scaled(c_out, width)
            r = measure(scaled(c_in, width), c_out, *shape, args.repeats)
            print(
                f"| {what} | {width:g} | {r['native']:.4f} | {r['tuned']:.4f} | "
                f"{r['native'] / r['tuned']:.2f}x | {r['difference']:.1e} |"
            )


if __name__ == "__main__":
    main()
