"""`vimae reproduce EXPERIMENT`: regenerate a figure or table of the paper, with a report (the
reproduction itself is `vimae.paper.reproduce`; its time estimates `vimae.paper.estimate`)."""

import argparse
import sys
import time
from pathlib import Path

from vimae.commands.common import on_interrupt, out_path
from vimae.paper.estimate import dry_run, estimate_table
from vimae.paper.experiments import ALL, QUESTIONS, SCALES
from vimae.paper.reproduce import reproduce


def parser_keywords() -> dict[str, str]:
    """More keywords of this command's parser (read by vimae.commands.add_parsers)."""
    return {"epilog": estimate_table()}  # the time each experiment takes on this machine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "experiment",
        choices=[*ALL, *QUESTIONS, "all"],
        help=f"what to reproduce ('all': {', '.join(ALL)}; {' and '.join(QUESTIONS)} only by name)",
    )
    parser.add_argument("--scale", choices=SCALES, default="cpu", help="cpu (default) or paper")
    parser.add_argument("--data-dir", help="dataset folder (default $VIMAE_DATA_DIR or ./data)")
    parser.add_argument("--out", type=out_path, help="output folder (default reproduce-SCALE)")
    parser.add_argument(
        "--seeds",
        type=int,
        help="training seeds per model and setting (default: each setting's own, 5 where it "
        "decides a main claim of the paper, 3 elsewhere)",
    )
    parser.add_argument(
        "--inception-weights",
        type=Path,
        help="Inception-v3 FID weights (pt_inception-2015-12-05-6726825d.pth) for table 5",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs trained and measured at a time, each in its own process with its share of the "
        "cores (default 1; 2 on a 2-core machine: BENCHMARKS.md)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="train nothing: list every run with its steps and a time estimate from the training "
        "step timed on this machine, and the totals",
    )


def run(args: argparse.Namespace) -> int:
    """Handler of `vimae reproduce`."""
    out = args.out or Path(f"reproduce-{args.scale}")
    if args.dry_run:
        dry_run(args.experiment, args.scale, args.seeds, out)
        return 0
    started = time.perf_counter()
    note = (
        "run the same `vimae reproduce` command again: finished runs and measurements are "
        "reused, unfinished runs resume from their checkpoints."
    )
    with on_interrupt(note):
        ctx = reproduce(
            args.experiment,
            out,
            args.scale,
            args.data_dir,
            args.inception_weights,
            seeds=args.seeds,
            jobs=args.jobs,
        )
    print(
        f"{len(ctx.trained)} runs trained, {len(ctx.evaluated)} evaluated in "
        f"{time.perf_counter() - started:.0f} s; report: {out / 'report.html'}",
        file=sys.stdout,
    )
    return 0
