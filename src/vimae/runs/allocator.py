"""Keep freed tensor memory inside the process, so a training step does not page-fault it back.

PyTorch's CPU allocator calls `malloc`/`free` for every tensor. glibc serves a block above its mmap
threshold (32 MB at most) with a fresh `mmap` and unmaps it on `free`, so each large activation of
a training step (one 100x256x28x28 float32 batch is 80 MB) is mapped, page-faulted in page by page
and unmapped again at every step. On the development VM, filling a fresh 80 MB tensor took 40 ms,
against 4 ms once freed memory is reused, and the dcgan28 training step was about 15% faster
(BENCHMARKS.md measures it). Two glibc settings avoid that: no `mmap` for large blocks
(M_MMAP_MAX = 0) and never returning the heap's free top to the OS (M_TRIM_THRESHOLD at its
maximum). The cost is that the process keeps its peak memory until it ends, which a training or
evaluation process does anyway; the choice is written down in docs/choices.md.

It changes no result: only where tensors live.
"""

import ctypes
import ctypes.util
import functools

_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_MAX = -4


@functools.cache
def keep_freed_memory() -> bool:
    """Configure glibc malloc once per process; False where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
