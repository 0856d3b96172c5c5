"""vimae.models.kernel computes exactly F.conv2d (forward and every gradient), and the networks
use it."""

import copy
import subprocess
import sys
from unittest import mock

import pytest
import torch
import torch.nn.functional as F

from vimae.models import kernel
from vimae.models.network import build_networks


def _double(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


@pytest.mark.parametrize(
    ("c_in", "c_out", "size", "k", "stride", "padding"),
    [(6, 5, 4, 4, 2, 1), (3, 4, 8, 5, 2, 2), (4, 2, 7, 3, 1, 0)],
)
def test_conv2d_gemm_is_conv2d(c_in, c_out, size, k, stride, padding):
    torch.manual_seed(0)
    x, w = _double(3, c_in, size, size), _double(c_out, c_in, k, k)
    torch.testing.assert_close(
        kernel.conv2d_gemm(x, w, stride, padding), F.conv2d(x, w, stride=stride, padding=padding)
    )
    # the hand-written backward is the derivative of the forward
    assert torch.autograd.gradcheck(lambda a, b: kernel.conv2d_gemm(a, b, stride, padding), (x, w))


@pytest.mark.parametrize(
    ("c_out", "k", "pad_before", "bias"),
    [(1, 4, 1, True), (3, 5, 2, True), (2, 4, 2, False), (1, 3, 0, True)],
)
def test_conv2d_by_taps_is_padded_conv2d(c_out, k, pad_before, bias):
    torch.manual_seed(0)
    x, w = _double(2, 5, 6, 7), _double(c_out, 5, k, k)
    b = _double(c_out) if bias else None
    pad_after = k - 1 - pad_before  # TF SAME puts the odd extra row at the bottom/right
    expected = F.conv2d(F.pad(x, (pad_before, pad_after, pad_before, pad_after)), w, b)
    torch.testing.assert_close(kernel.conv2d_by_taps(x, w, b, pad_before), expected)
    inputs = (x, w, b) if bias else (x, w)

    def taps(*args: torch.Tensor) -> torch.Tensor:
        return kernel.conv2d_by_taps(args[0], args[1], args[2] if bias else None, pad_before)

    assert torch.autograd.gradcheck(taps, inputs)


def _loss_and_grads(encoder, decoder, x):
    encoder.zero_grad(set_to_none=True)
    decoder.zero_grad(set_to_none=True)
    loss = decoder(encoder(x)[:, :8]).square().mean() + encoder(x).square().mean()
    loss.backward()
    named = [*encoder.named_parameters(), *decoder.named_parameters()]
    return loss.detach(), {name: p.grad.clone() for name, p in named}


@pytest.mark.parametrize(("arch", "shape"), [("dcgan28", (1, 28, 28)), ("dcgan64", (3, 64, 64))])
def test_paper_networks_use_the_tuned_kernels_and_compute_the_same(arch, shape):
    """At the paper's width the last encoder convolution runs as one GEMM and the last decoder
    convolution by taps, and the loss and every gradient are as close to float64's as PyTorch's
    own float32 kernels are (within 1e-4 relative, or within 1.1 times PyTorch's own error: with a
    batch of 2, batch normalisation makes the decoder's first layers ill-conditioned, and there
    PyTorch's float32 gradients are themselves far from float64's)."""
    torch.manual_seed(0)
    encoder, decoder = build_networks(arch, shape, 8, 16, 1.0)
    x = torch.rand(2, *shape)
    with (
        mock.patch.object(kernel, "conv2d_gemm", wraps=kernel.conv2d_gemm) as gemm,
        mock.patch.object(kernel, "conv2d_by_taps", wraps=kernel.conv2d_by_taps) as taps,
    ):
        loss, grads = _loss_and_grads(encoder, decoder, x)
    assert gemm.call_count == 2 and taps.call_count == 1  # the encoder runs twice in the loss
    with kernel.native_kernels():
        _, native_grads = _loss_and_grads(encoder, decoder, x)
    exact_loss, exact_grads = _loss_and_grads(
        copy.deepcopy(encoder).double(), copy.deepcopy(decoder).double(), x.double()
    )
    torch.testing.assert_close(loss.double(), exact_loss, rtol=1e-5, atol=0)

    def error(grads: dict, name: str) -> float:
        exact = exact_grads[name]
        return ((grads[name].double() - exact).norm() / exact.norm()).item()

    for name in grads:
        assert error(grads, name) < max(1e-4, 1.1 * error(native_grads, name)), name


def test_a_narrow_last_layer_runs_channels_last_and_hands_back_default_layout_gradients():
    """dcgan64 at width 0.0625: the last decoder convolution has 8 inputs for 75 taps, so it runs
    on PyTorch's kernel in channels-last layout instead of by taps; the layers before it get their
    gradient in the default layout, and the gradients are as close to float64's as before."""
    torch.manual_seed(0)
    encoder, decoder = build_networks("dcgan64", (3, 64, 64), 8, 16, 0.0625)
    x = torch.rand(4, 3, 64, 64)
    with (
        mock.patch.object(kernel, "channels_last", wraps=kernel.channels_last) as layout,
        mock.patch.object(kernel, "conv2d_by_taps", wraps=kernel.conv2d_by_taps) as taps,
    ):
        loss, grads = _loss_and_grads(encoder, decoder, x)
    assert layout.call_count == 1 and taps.call_count == 0
    seen = {}
    h = torch.rand(4, 8, 64, 64, requires_grad=True) * 1.0  # a layer's output, not a leaf
    h.register_hook(lambda grad: seen.setdefault("grad", grad))
    y = kernel.channels_last(h)
    y.backward(torch.ones_like(y))  # a gradient in channels-last layout, as the conv gives
    assert seen["grad"].is_contiguous()  # handed back in the default layout
    with kernel.native_kernels():
        _, native_grads = _loss_and_grads(encoder, decoder, x)
    exact_loss, exact_grads = _loss_and_grads(
        copy.deepcopy(encoder).double(), copy.deepcopy(decoder).double(), x.double()
    )
    torch.testing.assert_close(loss.double(), exact_loss, rtol=1e-5, atol=0)
    for name, grad in grads.items():
        exact = exact_grads[name]
        mine = ((grad.double() - exact).norm() / exact.norm()).item()
        theirs = ((native_grads[name].double() - exact).norm() / exact.norm()).item()
        assert mine < max(1e-4, 1.1 * theirs), name


def test_native_kernels_restores_the_previous_setting():
    x = torch.zeros(1)
    with kernel.native_kernels():
        assert not kernel.tuned(x)
        with kernel.native_kernels():
            pass
        assert not kernel.tuned(x)
    assert kernel.tuned(x)
    assert not kernel.tuned(x.double())


PAGE_FAULTS = """
import resource, sys, torch
from vimae.runs.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
torch.empty(50_000_000).fill_(1.0)  # 200 MB, freed: room for what a step allocates
before = faults()
for _ in range(40):  # a training step's pattern: large activations, made and freed every step
    a = torch.empty(20_000_000).fill_(1.0)
    b = torch.empty(7_000_000).fill_(1.0)
    del a, b
print(faults() - before)
"""


def _faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", PAGE_FAULTS, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")
def test_freed_memory_is_reused_without_page_faults():
    """By default glibc unmaps a tensor over 32 MB on free, so the next one faults in all its
    4 KiB pages again (836,000 faults in all here, growing with the loop); with keep_freed_memory
    the heap keeps them (20,000 to 117,000 whatever the loop's length: the heap grows a few
    times). On dcgan28 it measured 0 faults per step after the first few, against 350,000
    (benchmarks/step_profile.py)."""
    default, keep = _faults("default"), _faults("keep")
    assert default > 40 * 15_000
    assert keep < default / 4
