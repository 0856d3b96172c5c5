"""`vimae demo`: figure 1 of the paper in miniature on scikit-learn's digits (the demo itself is
`vimae.paper.demo`)."""

import argparse
from pathlib import Path

from vimae.commands.common import on_interrupt, out_path
from vimae.paper.demo import DEMO_EPOCHS, demo


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out", type=out_path, default="runs/demo", help="output folder (default runs/demo)"
    )
    p.add_argument(
        "--epochs", type=int, default=DEMO_EPOCHS, help=f"epochs per model (default {DEMO_EPOCHS})"
    )
    p.add_argument("--seed", type=int, default=0, help="training seed (default 0)")


def run(args: argparse.Namespace) -> int:
    """Handler of `vimae demo`."""
    note = (
        f"`vimae demo --out {args.out}` reuses the finished models and resumes the others when "
        "run again."
    )
    with on_interrupt(note):
        picture, table = demo(Path(args.out), epochs=args.epochs, seed=args.seed)
    print(table)
    print(f"picture: {picture}")
    return 0
