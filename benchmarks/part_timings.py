"""The training step's time per network and width, as the reproduction's parts recorded it.

    python benchmarks/part_timings.py --out docs/results/cpu

Reads every run folder that the manifest of --out names (the parts committed under docs/results
keep each run's metrics.jsonl, whose epoch rows hold their wall seconds) and prints, per network,
width and the part that first trained them: the runs, their optimiser steps, the seconds a step
took inside one job, the jobs that ran at a time (from the part's recorded machine) and the wall
seconds a step costs when that many jobs share the cores, which is what `vimae reproduce --help`
multiplies by the steps (`vimae.paper.estimate.CPU_SECONDS_PER_STEP`, printed beside it). The
first epoch of a run is left out: it includes loading the data and the first steps' allocations.
A part that shared the machine with other work (benchmarks, tests) shows it as a slower step.
"""

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

from vimae.paper.estimate import CPU_SECONDS_PER_STEP


def part_jobs(record: dict) -> int:
    """How many jobs ran at a time in a part's first session (1 if it does not say)."""
    sessions = record.get("sessions") or [record]
    found = re.search(r"(\d+) job", sessions[0].get("machine", ""))
    return int(found.group(1)) if found else 1


def run_timing(run: Path) -> tuple[str, float, int, float] | None:
    """(network, width, steps, seconds) of a run's epochs after the first; None without them."""
    config = json.loads((run / "config.json").read_text())["model"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in rows if r.get("kind") == "epoch" and "seconds" in r]
    if len(epochs) < 2:
        return None
    steps = epochs[-1]["step"] - epochs[0]["step"]
    seconds = sum(r["seconds"] for r in epochs[1:])
    return config["arch"], float(config["width"]), steps, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/results/cpu"))
    args = parser.parse_args()
    manifest = json.loads((args.out / "manifest.json").read_text())
    totals: dict[tuple[str, float, str, int], list[float]] = defaultdict(lambda: [0, 0, 0.0])
    seen: set[str] = set()
    for part, record in manifest["experiments"].items():
        jobs = part_jobs(record)
        for setting in record.get("settings", []):
            for paths in setting.get("runs", {}).values():
                for path in paths:
                    if path in seen or not (args.out / path / "metrics.jsonl").is_file():
                        continue
                    seen.add(path)
                    timing = run_timing(args.out / path)
                    if timing is None:
                        continue
                    arch, width, steps, seconds = timing
                    entry = totals[(arch, width, part, jobs)]
                    entry[0] += 1
                    entry[1] += steps
                    entry[2] += seconds
    print(
        f"{'network':<9} {'width':>7} {'part':<12} {'runs':>5} {'steps':>8} "
        f"{'s/step in a job':>16} {'jobs':>5} {'wall s/step':>12} {'CPU_SECONDS_PER_STEP':>21}"
    )
    for (arch, width, part, jobs), (runs, steps, seconds) in sorted(totals.items()):
        per_job = seconds / steps
        used = CPU_SECONDS_PER_STEP.get((arch, width))
        print(
            f"{arch:<9} {width:>7g} {part:<12} {runs:>5} {steps:>8,} {per_job:>16.4f} {jobs:>5} "
            f"{per_job / jobs:>12.4f} {'-' if used is None else used:>21}"
        )


if __name__ == "__main__":
    main()
