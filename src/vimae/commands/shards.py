"""`vimae shards`: convert a dataset (a folder larger than memory too) into streamed shards; the
conversion itself is `vimae.data.convert`."""

import argparse
import sys
import time
from pathlib import Path

from vimae.commands.common import on_interrupt, out_path
from vimae.config import DataConfig, RunConfig, validate
from vimae.data import PoolSplit, default_data_dir
from vimae.data.convert import DEFAULT_SHARD_SIZE, convert


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of `vimae shards`."""
    p.add_argument("--dataset", required=True, help="dataset to convert (folder, mnist, ...)")
    p.add_argument("--data-dir", help="where its files are (a folder: the folder itself)")
    p.add_argument(
        "--out", type=out_path, required=True, help="folder to write train/ and test/ into"
    )
    p.add_argument(
        "--image-size",
        type=int,
        help="square-resize the images to this side (px); a folder of mixed sizes needs it",
    )
    p.add_argument(
        "--test-fraction",
        type=float,
        default=0.1,
        help="seeded stratified test share of data that comes as one pool (default 0.1)",
    )
    p.add_argument("--data-seed", type=int, default=0, help="seed of that split (default 0)")
    p.add_argument(
        "--shard-size",
        type=int,
        default=DEFAULT_SHARD_SIZE,
        help=f"images per shard file (default {DEFAULT_SHARD_SIZE})",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        help="processes decoding a folder's image files (default 2; 0: this one)",
    )
    p.add_argument("--no-progress", action="store_true", help="no line per shard written")


def run(args: argparse.Namespace) -> int:
    """`vimae shards`: check the flags, convert, and say what was written."""
    config = RunConfig()
    config.data = DataConfig(
        args.dataset,
        args.data_dir,
        image_size=args.image_size,
        test_fraction=args.test_fraction,
        seed=args.data_seed,
    )
    validate(config)
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    out = Path(args.out)

    def report(line: str) -> None:
        if not args.no_progress:
            print(line, file=sys.stderr)

    started = time.perf_counter()
    with on_interrupt("the same command continues from the last whole shard."):
        records = convert(
            args.dataset,
            data_dir,
            out,
            args.image_size,
            PoolSplit(args.test_fraction, args.data_seed),
            args.shard_size,
            report,
            args.workers,
        )
    counts = ", ".join(f"{r['images']:,} {split}" for split, r in records.items())
    shape = "x".join(str(s) for s in records["train"]["image_shape"])
    print(
        f"converted {args.dataset} ({counts} images, {shape}) into {out} in "
        f"{time.perf_counter() - started:.1f} s\n"
        f"next: vimae train --dataset shards --data-dir {out} ..."
    )
    return 0
