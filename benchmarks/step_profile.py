"""Where one vimae training step spends its time, and how many page faults it takes.

    python benchmarks/step_profile.py --net dcgan28:0.125   # under a minute on a 2-core CPU

Runs vimae's training step on a network (ARCH:WIDTH as in train_speed.py; batch 100) as `fit`
does (vimae.runs.allocator's settings unless --default-allocator; under torch.compile with
--compile; weights and batch in channels-last layout with --channels-last), prints the seconds
and minor page faults of each of the first steps and the median from the fourth on, then a
torch.profiler table of one step: the operations with the most time, with their input shapes.
"""

import argparse
import resource
import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile
from train_speed import BATCH, Net, vimae_stepper

from vimae.runs.allocator import keep_freed_memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", type=Net.parse, default=Net.parse("dcgan28:1.0"))
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rows", type=int, default=12)
    parser.add_argument("--sort", default="self_cpu_time_total", help="profiler column to sort by")
    parser.add_argument("--by-shape", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--default-allocator", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument(
        "--channels-last", action="store_true", help="weights and batch in channels-last layout"
    )
    args = parser.parse_args()
    if not args.default_allocator:
        keep_freed_memory()
    step = vimae_stepper(args.net, compiled=args.compile, channels_last=args.channels_last)
    x = torch.rand(BATCH, *args.net.image_shape)
    times: list[float] = []
    for i in range(args.steps):
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        step(x)
        seconds = time.perf_counter() - start
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
        print(f"step {i + 1}: {seconds:.3f} s, {faults} minor page faults")
        times.append(seconds)
    if len(times) > 3:
        print(f"median of steps 4-{len(times)}: {statistics.median(times[3:]):.4f} s")
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        step(x)
    table = prof.key_averages(group_by_input_shape=args.by_shape).table(
        sort_by=args.sort, row_limit=args.rows, max_name_column_width=30
    )
    print(table)


if __name__ == "__main__":
    main()
