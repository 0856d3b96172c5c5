"""`vimae encode`: the codes of a dataset's images under a trained encoder, as one .npz file.

The file holds `codes` (N, d) float32, `labels` (N,) int64 (-1 where the dataset has none) and
`info`, a JSON string saying what produced them (run, checkpoint step, data, options); all three
load with `numpy.load(path)` without pickle. By default the codes are the encoder's evaluation
codes (VIMAE's noiseless code, a VAE's posterior mean); `--draw` gives one z ~ q(z|x) per image,
the codes of the aggregate posterior q(z) that the paper's MMD and entropy are measured on.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from vimae.commands.common import (
    OUTPUTS,
    add_data_arguments,
    add_run_arguments,
    check_seed,
    finish,
    load_images,
    out_path,
    output_file,
    provenance,
    save_npz,
)
from vimae.config import MAX_COUNT
from vimae.errors import VimaeError
from vimae.models.batched import encode
from vimae.runs.loading import load_trained


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "encode",
        help="codes of a dataset's images as .npz (codes, labels)",
        description="Encode the run's test images (or --split train): one .npz with codes "
        "(N, d) float32, labels (N,) int64 (-1: none) and info (JSON: what produced them).",
    )
    add_run_arguments(p)
    add_data_arguments(p)
    p.add_argument(
        "--split", choices=("test", "train"), default="test", help="which images (default test)"
    )
    p.add_argument(
        "--size",
        "--test-size",
        dest="size",
        metavar="N",
        type=int,
        help="a seeded, class-stratified draw of N images of the split (default: all)",
    )
    p.add_argument(
        "--draw", action="store_true", help="one draw z ~ q(z|x) per image, not the mean code"
    )
    p.add_argument("--out", type=out_path, help="a .npz file (default RUN/outputs/codes-SPLIT.npz)")
    p.set_defaults(handler=run_encode)


def default_output(run_dir: Path, dataset: str, own_dataset: str, split: str) -> Path:
    """RUN/outputs/codes-SPLIT.npz, or codes-DATASET-SPLIT.npz for another dataset."""
    name = f"codes-{split}.npz" if dataset == own_dataset else f"codes-{dataset}-{split}.npz"
    return Path(run_dir) / OUTPUTS / name


def run_encode(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    if args.size is not None and not 1 <= args.size <= MAX_COUNT:
        raise VimaeError(f"--size must be between 1 and {MAX_COUNT}, got {args.size}.")
    check_seed(args.seed)
    trained = load_trained(args.run_dir, args.device)
    own = trained.config.data.dataset
    default = default_output(args.run_dir, args.dataset or own, own, args.split)
    out = output_file(args.out, default, ".npz", " (codes, labels and info go in one file)")
    data = load_images(trained, args.dataset, args.data_dir, args.split, args.size, args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    codes = encode(trained.model, data.images, draw=args.draw, generator=generator)
    labels = data.labels if data.labels is not None else torch.full((len(data),), -1)
    info = provenance(args, trained, split=args.split, data=data.describe())
    save_npz(
        out, codes=codes.numpy(), labels=labels.long().numpy(), info=np.array(json.dumps(info))
    )
    kind = "draws z ~ q(z|x)" if args.draw else "codes"
    summary = f"{len(data)} {args.split} images of {data.name} encoded: {kind} {tuple(codes.shape)}"
    notes = []
    if args.draw and not trained.model.codes_are_random:
        name = trained.config.model.name
        notes.append(f"{name}'s encoder is deterministic at evaluation: its draws are its codes.")
    return finish(started, summary, [out], notes)
