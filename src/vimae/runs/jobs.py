"""Independent runs in parallel processes, the machine's cores split between them.

`vimae reproduce --jobs N` trains and measures N runs at a time. A narrow network leaves much of a
second core idle in one process (its steps are many small operations), so two processes of one
thread each train more images per second in all than one process of two threads (BENCHMARKS.md,
"Several runs at once"). Each worker is a fresh process (spawned, not forked: a fork of a process
that has run OpenMP threads can hang) with `threads` torch threads and the allocator setting of
the command line. Results, and errors, come back to the caller in the order of the tasks.
"""

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import torch

from vimae.runs.allocator import keep_freed_memory

MAX_JOBS = 64


def threads_per_job(jobs: int) -> int:
    """The torch threads each of `jobs` processes gets: the cores shared out, at least one."""
    return max(1, (os.cpu_count() or 1) // jobs)


def _start_worker(threads: int) -> None:
    torch.set_num_threads(threads)
    keep_freed_memory()


def run_jobs(task: Callable[..., Any], arguments: Sequence[tuple], jobs: int) -> list[Any]:
    """task(*args) for each args of `arguments`: in this process one after the other when `jobs`
    is 1, else in `jobs` worker processes; the results in the order of `arguments`. `task` must
    be a module-level function (it is sent to the workers by name)."""
    if jobs <= 1 or len(arguments) <= 1:
        return [task(*args) for args in arguments]
    context = multiprocessing.get_context("spawn")
    workers = min(jobs, len(arguments))
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start_worker, initargs=(threads_per_job(jobs),)
    ) as pool:
        futures = [pool.submit(task, *args) for args in arguments]
        return [future.result() for future in futures]
