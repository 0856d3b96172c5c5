"""Pictures of what a trained model does: `vimae sample`, `reconstruct`, `interpolate`, `traverse`.

Each command writes into its output folder (default RUN/outputs/) a PNG grid (pixels as they are,
see `vimae.plotting.imagegrid.save_image_grid`), the arrays behind it (float32, images (..., C, H,
W) in the model's output range) and NAME.json saying what produced them. The arrays are computed by
the functions here from a model and codes, so that tests and notebooks get them without the CLI.
"""

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from vimae.commands.common import (
    MAX_IMAGES,
    add_data_arguments,
    add_run_arguments,
    check_count,
    check_seed,
    finish,
    grid_rows,
    load_images,
    out_path,
    output_folder,
    provenance,
    save_npy,
    save_npz,
    save_record,
    square_columns,
)
from vimae.config import MAX_COUNT
from vimae.errors import VimaeError
from vimae.metrics import MetricOptions
from vimae.models import Autoencoder
from vimae.models.batched import decode, encode, generate
from vimae.models.fitted import SAMPLER_FOLDER, build_sampler, parse_sampler
from vimae.models.fitted import describe as describe_sampler
from vimae.models.sampler import Sampler
from vimae.plotting.imagegrid import save_image_grid
from vimae.runs.loading import load_trained

MAX_TRAVERSE_ROWS = 32  # latent dimensions shown by `vimae traverse`; past that a picture is a wall
MAX_RANGE = 100.0  # prior standard deviations `vimae traverse` may reach


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sample",
        help="images decoded from prior draws (or from a density fitted to the codes)",
        description="Decode N seeded draws of the prior, or of a density fitted to the codes of "
        "training images (--sampler gmm, gmm:K, flow; fitted once, stored in RUN/samplers/): "
        "OUT/samples.png (a grid) and OUT/samples.npy (N, C, H, W) float32.",
    )
    add_run_arguments(p)
    add_data_arguments(p)
    p.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument(
        "--sampler",
        default="prior",
        help="prior (default, the paper's), gmm (a Gaussian mixture fitted to training codes, K "
        "by BIC), gmm:K, or flow (a RealNVP fitted to them)",
    )
    p.add_argument(
        "--sampler-images",
        type=int,
        default=MetricOptions().sampler_images,
        help="training images (a stratified draw) a fitted sampler is fitted to (default "
        "%(default)s)",
    )
    p.add_argument("--out", type=out_path, help="output folder (default RUN/outputs)")
    p.set_defaults(handler=run_sample)

    p = subparsers.add_parser(
        "reconstruct",
        help="test images above their reconstructions",
        description="Reconstruct a seeded, class-stratified draw of N test images: "
        "OUT/reconstructions.png (rows of originals, each above its reconstructions) and "
        "OUT/reconstructions.npz (images, reconstructions, labels); prints the squared error.",
    )
    add_run_arguments(p)
    add_data_arguments(p)
    p.add_argument("-n", type=int, default=16, help="number of test images (default 16)")
    p.add_argument("--out", type=out_path, help="output folder (default RUN/outputs)")
    p.set_defaults(handler=run_reconstruct)

    p = subparsers.add_parser(
        "interpolate",
        help="decoded straight lines in latent space between test images",
        description="Decode points on the straight line between the codes of pairs of test "
        "images: OUT/interpolations.png (a row per pair: image a, STEPS decoded points from a's "
        "code to b's, image b) and OUT/interpolations.npz (images, codes, originals, labels).",
    )
    add_run_arguments(p)
    add_data_arguments(p)
    p.add_argument("--pairs", type=int, default=4, help="pairs of test images (default 4)")
    p.add_argument(
        "--steps", type=int, default=10, help="points per line, ends included (default 10)"
    )
    p.add_argument("--out", type=out_path, help="output folder (default RUN/outputs)")
    p.set_defaults(handler=run_interpolate)

    p = subparsers.add_parser(
        "traverse",
        help="one latent at a time varied around a test image's code",
        description="Vary one latent dimension at a time over [-RANGE, RANGE] prior standard "
        "deviations around the code of a test image (or zero) and decode: OUT/traversal.png "
        f"(a row per dimension, the first {MAX_TRAVERSE_ROWS} at most) and OUT/traversal.npz "
        "(images, codes, offsets, dims, base).",
    )
    add_run_arguments(p)
    add_data_arguments(p)
    p.add_argument("--steps", type=int, default=9, help="values per dimension (default 9)")
    p.add_argument(
        "--range",
        dest="reach",
        metavar="RANGE",
        type=float,
        default=3.0,
        help="largest offset, in prior standard deviations (default 3)",
    )
    p.add_argument(
        "--zero", action="store_true", help="vary around the zero code, not a test image's"
    )
    p.add_argument("--out", type=out_path, help="output folder (default RUN/outputs)")
    p.set_defaults(handler=run_traverse)


def sample_images(
    model: Autoencoder, n: int, seed: int, sampler: Sampler | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """n draws z (n, d) of `sampler` (the prior by default) from a CPU generator seeded with
    `seed`, and their decoded images (n, C, H, W): the same draws as
    `model.sample(n, seed=seed, sampler=sampler)`."""
    return generate(model, n, torch.Generator().manual_seed(seed), sampler=sampler)


def interpolation_codes(za: torch.Tensor, zb: torch.Tensor, steps: int) -> torch.Tensor:
    """Codes (P, steps, d) on the straight lines from za to zb (P, d), both ends included
    exactly (t = 0 gives za, t = 1 gives zb)."""
    t = torch.linspace(0.0, 1.0, steps)[None, :, None]  # t: (1, S, 1)
    return (1 - t) * za[:, None, :] + t * zb[:, None, :]


def traversal_codes(base: torch.Tensor, dims: list[int], offsets: torch.Tensor) -> torch.Tensor:
    """Codes (len(dims), S, d): row r is `base` (d,) with dimension dims[r] moved by each of
    the S `offsets`, every other dimension left as it is."""
    codes = base.expand(len(dims), len(offsets), -1).clone()
    for r, k in enumerate(dims):
        codes[r, :, k] += offsets
    return codes


def run_sample(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    n = check_count(args.n, "-n")
    check_seed(args.seed)
    parse_sampler(args.sampler)
    check_count(args.sampler_images, "--sampler-images", low=2, high=MAX_COUNT)
    trained = load_trained(args.run_dir, args.device)
    out = output_folder(args.out, args.run_dir)

    def train_images() -> torch.Tensor:
        split = load_images(trained, args.dataset, args.data_dir, "train", args.sampler_images, 0)
        return split.images

    folder = Path(trained.run_dir) / SAMPLER_FOLDER
    sampler = build_sampler(args.sampler, trained.model, train_images, folder)
    _, images = sample_images(trained.model, n, args.seed, sampler)
    columns = square_columns(n)
    source = describe_sampler(sampler)
    paths = [
        save_image_grid(grid_rows(images, columns), out / "samples.png"),
        save_npy(out / "samples.npy", images.numpy()),
        save_record(out / "samples.json", provenance(args, trained, images=n, codes_from=source)),
    ]
    return finish(started, f"{n} images decoded from {source} (seed {args.seed})", paths)


def run_reconstruct(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    n = check_count(args.n, "-n")
    check_seed(args.seed)
    trained = load_trained(args.run_dir, args.device)
    out = output_folder(args.out, args.run_dir)
    test = load_images(trained, args.dataset, args.data_dir, "test", n, args.seed)
    x = test.images
    x_hat = decode(trained.model, encode(trained.model, x))
    # Blocks of two rows, originals above reconstructions; near square for large n.
    columns = min(len(x), max(8, math.ceil(math.sqrt(2 * len(x)))))
    rows = []
    for top, bottom in zip(grid_rows(x, columns), grid_rows(x_hat, columns), strict=True):
        rows += [top, bottom]
    squared = (x - x_hat).pow(2)
    mse, per_image = squared.mean().item(), squared.flatten(1).sum(1).mean().item()
    labels = test.labels if test.labels is not None else torch.full((len(x),), -1)
    record = provenance(args, trained, test_data=test.describe(), mse=mse, sse=per_image)
    paths = [
        save_image_grid(rows, out / "reconstructions.png"),
        save_npz(
            out / "reconstructions.npz",
            images=x.numpy(),
            reconstructions=x_hat.numpy(),
            labels=labels.numpy(),
        ),
        save_record(out / "reconstructions.json", record),
    ]
    summary = (
        f"{len(x)} test images of {test.name} reconstructed: mean squared error {mse:.4g} per "
        f"pixel, {per_image:.4g} summed per image (the training log's recon)"
    )
    return finish(started, summary, paths)


def run_interpolate(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    pairs = check_count(args.pairs, "--pairs")
    steps = check_count(args.steps, "--steps", low=2)
    if pairs * steps > MAX_IMAGES:
        raise VimaeError(
            f"--pairs times --steps must be at most {MAX_IMAGES}, got {pairs * steps}."
        )
    check_seed(args.seed)
    trained = load_trained(args.run_dir, args.device)
    out = output_folder(args.out, args.run_dir)
    test = load_images(trained, args.dataset, args.data_dir, "test", 2 * pairs, args.seed)
    if len(test) < 2 * pairs:
        raise VimaeError(
            f"{test.name} has {len(test)} test images, too few for {pairs} pairs; ask for "
            f"--pairs {len(test) // 2} or fewer."
        )
    # The stratified draw is in index order (often class order): pair by a seeded shuffle.
    order = torch.from_numpy(np.random.default_rng(args.seed).permutation(len(test)))
    a, b = test.images[order[:pairs]], test.images[order[pairs:]]
    model = trained.model
    codes = interpolation_codes(encode(model, a), encode(model, b), steps)
    images = decode(model, codes.flatten(0, 1)).unflatten(0, (pairs, steps))
    rows = [torch.cat([a[i : i + 1], images[i], b[i : i + 1]]) for i in range(pairs)]
    labels = torch.full((2 * pairs,), -1) if test.labels is None else test.labels[order]
    record = provenance(args, trained, test_data=test.describe())
    paths = [
        save_image_grid([r.numpy() for r in rows], out / "interpolations.png"),
        save_npz(
            out / "interpolations.npz",
            images=images.numpy(),
            codes=codes.numpy(),
            originals=torch.stack([a, b], 1).numpy(),
            labels=labels.view(2, pairs).T.numpy(),
        ),
        save_record(out / "interpolations.json", record),
    ]
    summary = f"{pairs} interpolations of {steps} points between test images of {test.name}"
    return finish(started, summary, paths)


def run_traverse(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    steps = check_count(args.steps, "--steps", low=2, high=1000)
    if not 0 < args.reach <= MAX_RANGE:
        raise VimaeError(f"--range must be positive and at most {MAX_RANGE:g}, got {args.reach}.")
    check_seed(args.seed)
    trained = load_trained(args.run_dir, args.device)
    model = trained.model
    out = output_folder(args.out, args.run_dir)
    facts: dict[str, object] = {}
    if args.zero:
        base, around = torch.zeros(model.latent_dim), "the zero code"
    else:
        test = load_images(trained, args.dataset, args.data_dir, "test", 1, args.seed)
        base, around = encode(model, test.images[:1])[0], f"a test image of {test.name}"
        facts["test_data"] = test.describe()
    dims = list(range(min(model.latent_dim, MAX_TRAVERSE_ROWS)))
    std = math.sqrt(model.prior.variance)
    offsets = torch.linspace(-args.reach, args.reach, steps) * std
    codes = traversal_codes(base, dims, offsets)
    images = decode(model, codes.flatten(0, 1)).unflatten(0, (len(dims), steps))
    notes = []
    if len(dims) < model.latent_dim:
        notes.append(f"the first {len(dims)} of {model.latent_dim} latent dimensions are shown.")
    paths = [
        save_image_grid([row.numpy() for row in images], out / "traversal.png"),
        save_npz(
            out / "traversal.npz",
            images=images.numpy(),
            codes=codes.numpy(),
            offsets=offsets.numpy(),
            dims=np.array(dims),
            base=base.numpy(),
        ),
        save_record(out / "traversal.json", provenance(args, trained, **facts)),
    ]
    summary = (
        f"{len(dims)} latent dimensions each varied over +-{args.reach:g} prior standard "
        f"deviations in {steps} steps around {around}"
    )
    return finish(started, summary, paths, notes)
