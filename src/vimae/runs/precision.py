"""Whether bfloat16 autocast pays on this machine (`--precision bf16`).

bf16 halves the bytes a network moves, but on a CPU without bfloat16 units (no AVX-512 BF16 or
AMX) PyTorch converts every operand and multiplies in float32, so autocast makes training slower,
not faster (BENCHMARKS.md: 279 against 496 images/s at width 0.25 even on an AVX-512 BF16 Xeon).
Rather than guess from the CPU's flags, `bf16_slower_note` times one matrix product of each kind
(a few milliseconds) and says so once per process when bf16 loses.
"""

import functools
import time

import torch

SIDE = 512  # the product timed: (SIDE x SIDE) @ (SIDE x SIDE), as big as a narrow network's
REPEATS = 5


def _gflops(dtype: torch.dtype) -> float:
    """Best of REPEATS timings of one SIDE^3 matrix product in `dtype` on the CPU, GFLOP/s."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(SIDE, SIDE, generator=g).to(dtype)
    b = torch.randn(SIDE, SIDE, generator=g).to(dtype)
    torch.mm(a, b)  # warm-up: first-call dispatch and allocation
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * SIDE**3 / best / 1e9


@functools.lru_cache(maxsize=1)
def cpu_matmul_rates() -> tuple[float, float]:
    """(float32, bfloat16) matrix-product rates of this CPU in GFLOP/s, measured once."""
    return _gflops(torch.float32), _gflops(torch.bfloat16)


def bf16_slower_note(device: torch.device) -> str | None:
    """A sentence when bf16 autocast would train slower than float32 here (measured), else None.
    GPUs are not judged: their bf16 support is a property PyTorch reports, not a guess."""
    if device.type != "cpu":
        return None
    fp32, bf16 = cpu_matmul_rates()
    if bf16 >= fp32:
        return None
    return (
        f"--precision bf16 is slower on this CPU: a matrix product runs at {bf16:.0f} GFLOP/s in "
        f"bfloat16 against {fp32:.0f} in float32 (no bfloat16 units), so training will be slower "
        "and less precise; --precision float32 is faster here"
    )
