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
from concurrent.futures import ProcessPoolExecutor, as_completed
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


def run_jobs(
    task: Callable[..., Any],
    arguments: Sequence[tuple],
    jobs: int,
    on_result: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """task(*args) for each args of `arguments`: in this process one after the other when `jobs`
    is 1, else in `jobs` worker processes; the results in the order of `arguments`. `task` must
    be a module-level function (it is sent to the workers by name). `on_result(i, result)` is
    called in this process as soon as task i has finished, so that a caller can keep each result
    (write it to disk) before the others end: a part killed half-way loses only what was still
    being computed. A task's error is raised once the tasks that finished before it are handed
    over."""
    if jobs <= 1 or len(arguments) <= 1:
        results = []
        for i, args in enumerate(arguments):
            results.append(task(*args))
            if on_result is not None:
                on_result(i, results[-1])
        return results
    context = multiprocessing.get_context("spawn")
    workers = min(jobs, len(arguments))
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start_worker, initargs=(threads_per_job(jobs),)
    ) as pool:
        futures = {pool.submit(task, *args): i for i, args in enumerate(arguments)}
        for future in as_completed(futures):
            if on_result is not None and future.exception() is None:
                on_result(futures[future], future.result())
        return [future.result() for future in futures]
