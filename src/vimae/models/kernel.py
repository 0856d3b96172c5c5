"""Faster CPU kernels for the convolutions where PyTorch's built-in (oneDNN) path is slow.

Each kernel computes the same convolution as `F.conv2d` (same weights, same output, gradients
for the input, the weight and the bias) in float32; only the order of the additions differs, so
results agree to float32 rounding (tests/test_kernel.py checks forward and backward against
`F.conv2d`). `vimae.models.network` uses them on CPU tensors only; on a GPU cuDNN is left alone.

Measured on the dcgan28 training step (BENCHMARKS.md):

- `conv2d_gemm`: im2col + one matrix product. oneDNN's backward pass for the last encoder
  convolution (4x4 -> 2x2, 512 -> 1024 channels) reaches about a fifth of the matmul rate; as one
  GEMM of (B * 4 positions) x (512 * 16) it runs at the GEMM rate.
- `conv2d_by_taps`: the decoder's last convolution (256 -> 1 channel, 4x4, stride 1, TF SAME
  padding). With one output channel a direct convolution does a long reduction per output pixel
  and oneDNN gets little reuse; instead one matrix product maps every pixel's channels to the
  k*k taps at once, and the taps are summed at their shifted positions. It also never builds
  the padded copy of the input that the odd SAME padding needs. It keeps c_out * k * k values per
  pixel, so with few input channels (dcgan64's last layer at width 1/16: 8 inputs, 75 taps) it
  moves more data than it saves; there `channels_last` hands the layer to oneDNN in channels-last
  layout, which is faster for it, and gives the gradient back in the default layout.

`native_kernels()` switches them off, for the speed benchmark (the same network on PyTorch's own
kernels) and for debugging.
"""

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F

_enabled = True


@contextlib.contextmanager
def native_kernels() -> Iterator[None]:
    """Within this block every layer of `vimae.models.network` runs on PyTorch's own kernels."""
    global _enabled
    previous, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = previous


def tuned(x: torch.Tensor) -> bool:
    """Whether vimae's own kernels apply: CPU, float32, no autocast, not switched off."""
    return (
        _enabled
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
    )


class _Conv2dGemm(torch.autograd.Function):
    """y = conv2d(x, w, stride, padding) as im2col + GEMM, backward as two GEMMs + col2im."""

    @staticmethod
    def forward(ctx, x, weight, stride, padding):  # type: ignore[override]
        batch, _, height, width = x.shape
        c_out, c_in, kernel, _ = weight.shape
        cols = F.unfold(x, kernel, padding=padding, stride=stride)  # (B, C*k*k, L)
        positions = cols.shape[-1]
        rows = cols.transpose(1, 2).reshape(batch * positions, c_in * kernel * kernel)
        y = rows @ weight.reshape(c_out, -1).t()  # (B*L, C_out)
        ctx.save_for_backward(rows, weight)
        ctx.geometry = (batch, height, width, stride, padding, positions)
        out_h = (height + 2 * padding - kernel) // stride + 1
        out_w = (width + 2 * padding - kernel) // stride + 1
        return y.view(batch, positions, c_out).transpose(1, 2).reshape(batch, c_out, out_h, out_w)

    @staticmethod
    def backward(ctx, grad_y):  # type: ignore[override]
        rows, weight = ctx.saved_tensors
        batch, height, width, stride, padding, positions = ctx.geometry
        c_out, _, kernel, _ = weight.shape
        g = grad_y.reshape(batch, c_out, positions).transpose(1, 2).reshape(-1, c_out)
        grad_w = (g.t() @ rows).view_as(weight)
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_rows = (g @ weight.reshape(c_out, -1)).view(batch, positions, -1).transpose(1, 2)
            grad_x = F.fold(grad_rows, (height, width), kernel, padding=padding, stride=stride)
        return grad_x, grad_w, None, None


def conv2d_gemm(x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int) -> torch.Tensor:
    """conv2d without bias, x (B, C, H, W) -> (B, C_out, H', W'), as one GEMM.

    Pays when the output has few positions (the im2col copy is then small) and many channels.
    """
    return _Conv2dGemm.apply(x, weight, stride, padding)


class _Conv2dByTaps(torch.autograd.Function):
    """Stride-1 k x k convolution to few channels: per-pixel GEMM to the taps, shifted sum."""

    @staticmethod
    def forward(ctx, x, weight, bias, pad_before):  # type: ignore[override]
        batch, c_in, height, width = x.shape
        c_out, _, kernel, _ = weight.shape
        # taps[b, o, i, j, p] = sum_c w[o, c, i, j] x[b, c, p]: every tap of every pixel at once
        w_taps = weight.permute(0, 2, 3, 1).reshape(-1, c_in)  # (C_out*k*k, C)
        # bmm over an expanded weight: matmul would copy x into a (B*H*W, C) layout first
        taps = torch.bmm(w_taps.expand(batch, -1, -1), x.view(batch, c_in, -1))
        taps = taps.view(batch, c_out, kernel, kernel, height, width)
        y = x.new_zeros(batch, c_out, height, width)
        if bias is not None:
            y += bias.view(1, c_out, 1, 1)
        for i in range(kernel):
            for j in range(kernel):
                target, source = _shift(i, j, pad_before, height, width)
                y[(..., *target)] += taps[:, :, i, j][(..., *source)]
        ctx.save_for_backward(x, weight)
        ctx.pad_before = pad_before
        return y

    @staticmethod
    def backward(ctx, grad_y):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        batch, c_in, height, width = x.shape
        c_out, _, kernel, _ = weight.shape
        grad_taps = grad_y.new_zeros(batch, c_out, kernel, kernel, height, width)
        for i in range(kernel):
            for j in range(kernel):
                target, source = _shift(i, j, ctx.pad_before, height, width)
                grad_taps[:, :, i, j][(..., *source)] = grad_y[(..., *target)]
        grad_taps = grad_taps.view(batch, -1, height * width)  # (B, C_out*k*k, H*W)
        grad_x = None
        if ctx.needs_input_grad[0]:
            w_taps = weight.permute(0, 2, 3, 1).reshape(-1, c_in)  # (C_out*k*k, C)
            grad_x = torch.bmm(w_taps.t().expand(batch, -1, -1), grad_taps).view_as(x)
        grad_w_taps = torch.bmm(grad_taps, x.view(batch, c_in, -1).transpose(1, 2)).sum(0)
        grad_w = grad_w_taps.view(c_out, kernel, kernel, c_in).permute(0, 3, 1, 2).contiguous()
        grad_b = grad_y.sum((0, 2, 3)) if ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b, None


class _ChannelsLast(torch.autograd.Function):
    """x in channels-last layout; its gradient handed back in the default layout, so that the
    layers before keep theirs (a channels-last gradient slows their backward passes)."""

    @staticmethod
    def forward(ctx, x):  # type: ignore[override]
        return x.contiguous(memory_format=torch.channels_last)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        return grad.contiguous()


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """x (B, C, H, W) in channels-last layout, for one layer (see `_ChannelsLast`)."""
    return _ChannelsLast.apply(x)


def _shift(
    i: int, j: int, pad_before: int, height: int, width: int
) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Output rows/cols that tap (i, j) reaches and the input rows/cols it reads there."""
    di, dj = i - pad_before, j - pad_before  # output (r, c) reads input (r + di, c + dj)
    rows_out = slice(max(0, -di), min(height, height - di))
    cols_out = slice(max(0, -dj), min(width, width - dj))
    rows_in = slice(rows_out.start + di, rows_out.stop + di)
    cols_in = slice(cols_out.start + dj, cols_out.stop + dj)
    return (rows_out, cols_out), (rows_in, cols_in)


def conv2d_by_taps(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, pad_before: int
) -> torch.Tensor:
    """Stride-1 'same-size' conv2d, x (B, C, H, W) -> (B, C_out, H, W).

    The input is zero-padded by `pad_before` on the top/left and `k - 1 - pad_before` on the
    bottom/right (TF SAME pads the extra row at the bottom), without materialising the padding.
    """
    return _Conv2dByTaps.apply(x, weight, bias, pad_before)
