"""What the commands on a trained model share: their flags, the checks made before any work, the
run's model and images, batched encoding and decoding, and how results are written and reported.

A command reads a run folder and never writes into the run's own files: pictures and arrays go to
RUN/outputs/ (or --out), each replaced atomically, and every file's name differs from the run's.
"""

import argparse
import contextlib
import json
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vimae.config import SEED_BOUNDS
from vimae.data import ImageData, PoolSplit, load_dataset
from vimae.errors import VimaeError
from vimae.files import atomic_write, atomic_write_text, writable_folder
from vimae.runs.device import DEVICE_HELP
from vimae.runs.evaluation import checkpoint_step, load_test_split
from vimae.runs.loading import Trained

OUTPUTS = "outputs"  # RUN/outputs/: where results go unless --out says otherwise
# The most images (or codes per picture) one command makes: more is a typo, and memory.
MAX_IMAGES = 10_000
BATCH = 500  # images per forward pass


@contextlib.contextmanager
def on_interrupt(note: str) -> Iterator[None]:
    """Within the block, Ctrl-C or SIGTERM carry `note` (what the interruption means for this
    command, e.g. how to continue) to `vimae.cli.main`, which prints it as "vimae: interrupted;
    NOTE" (the exception's standard `__notes__`)."""
    try:
        yield
    except KeyboardInterrupt as err:
        err.add_note(note)
        raise


def out_path(text: str) -> Path:
    """argparse type of an --out: a path, never the empty text (which would mean the default or
    the current folder without a word)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give a path")
    return Path(text)


def add_run_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_dir",
        type=Path,
        metavar="RUN",
        help="a run folder written by `vimae train` (or a folder written by `vimae export`)",
    )


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The run folder, the device and the seed: the flags of a command that runs the model."""
    add_run_argument(parser)
    parser.add_argument("--device", default="auto", help=f"{DEVICE_HELP} (default auto)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of every random choice and draw (default 0)"
    )


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Which images a command reads: the run's dataset unless told otherwise."""
    parser.add_argument("--dataset", help="dataset of the images (default: the run's)")
    parser.add_argument("--data-dir", help="where the dataset files are (default: the run's)")


def check_count(value: int, flag: str, low: int = 1, high: int = MAX_IMAGES) -> int:
    """`value` if low <= value <= high, else one sentence naming `flag`."""
    if not low <= value <= high:
        raise VimaeError(f"{flag} must be between {low} and {high}, got {value}.")
    return value


def check_seed(seed: int) -> int:
    """`seed` when it lies in the range every seed of vimae is declared with, else a sentence."""
    problem = SEED_BOUNDS.problem(seed)
    if problem is not None:
        raise VimaeError(f"--seed {problem}.")
    return seed


def output_folder(out: Path | None, run_dir: Path) -> Path:
    """--out as a writable folder (created), by default RUN/outputs."""
    folder = Path(out) if out is not None else Path(run_dir) / OUTPUTS
    if folder.exists() and not folder.is_dir():
        raise VimaeError(f"--out {folder} is a file; give a folder for the pictures and arrays.")
    return writable_folder(folder)


def output_file(out: Path | None, default: Path, suffix: str, why: str = "") -> Path:
    """--out as a `suffix` file in a writable folder (created), by default `default`; `why`
    ends the sentence refusing another suffix. No file of a run has a result's suffix (.png,
    .npz), so none can be replaced."""
    path = Path(out) if out is not None else Path(default)
    if path.is_dir():
        raise VimaeError(f"--out {path} is a folder; give a file name such as {path}/x{suffix}.")
    if path.suffix != suffix:
        raise VimaeError(f"--out {path} must end in {suffix}{why}.")
    writable_folder(path.parent)
    return path


def load_images(
    trained: Trained,
    dataset: str | None,
    data_dir: str | None,
    split: str,
    size: int | None,
    seed: int,
) -> ImageData:
    """A seeded, class-stratified draw of `size` images (all when None) of `split` of the run's
    dataset (or `dataset`), prepared as training prepared them (the run's resize and pooled
    split); images of another shape than the model's input are one sentence."""
    d = trained.config.data
    dataset = dataset or d.dataset
    data_dir = data_dir if data_dir is not None else d.data_dir
    shape = trained.model.image_shape
    pool = PoolSplit.of(d)
    if split == "test":
        return load_test_split(dataset, data_dir, shape, size, d.image_size, pool, seed)
    images = load_dataset(dataset, split, data_dir, d.image_size, pool).subset(size, seed)
    if images.image_shape != tuple(shape):
        raise VimaeError(
            f"{dataset} has {images.image_shape} images (C, H, W) but the model takes "
            f"{tuple(shape)}; use data of the kind it was trained on."
        )
    return images


def grid_rows(images: torch.Tensor | np.ndarray, columns: int) -> list[np.ndarray]:
    """(N, C, H, W) cut into rows of `columns` images (the last may be shorter)."""
    arr = np.asarray(images, dtype=np.float32)
    return [arr[i : i + columns] for i in range(0, len(arr), columns)]


def square_columns(n: int) -> int:
    """Columns of a near-square grid of n images."""
    return math.ceil(math.sqrt(n))


def save_npy(path: Path, array: torch.Tensor | np.ndarray) -> Path:
    """One array as .npy (float32 stays float32), written atomically."""
    arr = np.asarray(array, order="C")
    atomic_write(path, lambda tmp: _write_with(tmp, np.save, arr))
    return path


def save_npz(path: Path, **arrays: Any) -> Path:
    """Named arrays as an uncompressed .npz, written atomically; readable without pickle."""
    arrs = {k: np.asarray(v, order="C") for k, v in arrays.items()}
    atomic_write(path, lambda tmp: _write_with(tmp, np.savez, **arrs))
    return path


def _write_with(tmp: Path, save: Any, *args: Any, **kwargs: Any) -> None:
    # Through a file object: given a path, numpy would append .npy / .npz to the temporary name.
    with open(tmp, "wb") as f:
        save(f, *args, **kwargs)


def provenance(args: argparse.Namespace, trained: Trained, **facts: Any) -> dict[str, Any]:
    """What produced a command's outputs: the command and its options, the run, the weights
    (checkpoint step) and model, and `facts` (e.g. the images drawn)."""
    skip = ("handler", "command", "run_dir")
    options = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    return {
        "command": f"vimae {getattr(args, 'command', '')}".strip(),
        "run_dir": str(trained.run_dir),
        "checkpoint_step": checkpoint_step(trained.run_dir),
        "model": trained.config.model.name,
        "options": {k: v for k, v in options.items() if k not in skip},
        **facts,
    }


def save_record(path: Path, record: dict[str, Any]) -> Path:
    """A provenance record (see `provenance`) as JSON beside the outputs it describes."""
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return path


def finish(started: float, summary: str, paths: Sequence[Path], notes: Sequence[str] = ()) -> int:
    """Print what was made, each file written and the time it took; the handler's status 0."""
    print(summary)
    for note in notes:
        print(f"note: {note}")
    for path in paths:
        print(f"wrote {path}")
    print(f"took {time.perf_counter() - started:.2f} s")
    return 0
