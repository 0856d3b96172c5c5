"""Runs per hour of `vimae reproduce` on the mnist-dcgan28 cpu setting: --jobs 1 against --jobs 2.

    python benchmarks/reproduce_jobs.py --data-dir ../shared/datasets   # about 4 minutes, 2 cores

Trains `--runs` runs of table 3's cpu setting (vimae-l, seeds 0..runs-1, `--epochs` each instead
of the setting's) the way `vimae reproduce` does: with --jobs 1 one after the other in this
process on all the cores, with --jobs 2 in two spawned processes of one thread each (worker start
and data loading included). Prints the wall time and training images per second of each, and the
runs per hour they imply at the setting's own epochs (training only; evaluation is apart).
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch

from vimae.paper.estimate import training_steps
from vimae.paper.experiments import CPU
from vimae.paper.reproduce import train_run
from vimae.runs.jobs import run_jobs


def timed(jobs: int, runs: int, epochs: int, data_dir: str, out: Path) -> float:
    """Seconds to train `runs` runs of `epochs` epochs with `jobs` at a time."""
    setting = CPU["mnist-dcgan28"]
    tasks = []
    for seed in range(runs):
        config = setting.config("vimae-l", data_dir, seed)
        config.train.epochs = epochs
        tasks.append((config.to_dict(), out / f"jobs{jobs}-seed{seed}", None))
    started = time.perf_counter()
    run_jobs(train_run, tasks, jobs)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="../shared/datasets")
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    setting = CPU["mnist-dcgan28"]
    steps = training_steps(setting, args.epochs)
    images = steps * 100 * args.runs
    print(f"{args.runs} runs of vimae-l, {setting.key}, {args.epochs} epoch(s) of {steps} steps")
    print("\n| --jobs | threads per run | wall s | training images/s | runs per hour "
          f"({setting.epochs} epochs) |")  # fmt: skip
    print("|---|---|---|---|---|")
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for jobs in (1, 2):
            torch.set_num_threads(2)  # --jobs 1 trains here on both cores
            seconds = timed(jobs, args.runs, args.epochs, args.data_dir, Path(tmp))
            rates[jobs] = images / seconds
            per_hour = 3600 / (seconds / args.runs * setting.epochs / args.epochs)
            threads = 2 if jobs == 1 else 1
            print(f"| {jobs} | {threads} | {seconds:.0f} | {rates[jobs]:.0f} | {per_hour:.1f} |")
    print(f"\n--jobs 2 / --jobs 1: {rates[2] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
