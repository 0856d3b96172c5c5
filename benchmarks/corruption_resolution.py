"""Table 2's corruptions at CIFAR-10's own 32x32 resolution instead of the network's 64x64.

    python benchmarks/corruption_resolution.py --data-dir ../shared/datasets   # about 2 minutes

The paper's CIFAR-10 networks take 64x64 images, so its 32x32 images were resized, and section 5.3
does not say whether the noise came before or after. vimae corrupts the resized image (a masked
pixel is one of the network's input pixels). Corrupting the 32x32 image and then resizing it is the
harsher reading: a masked CIFAR-10 pixel is a masked 2x2 block of the input, and Gaussian noise is
correlated over 2x2 blocks, which a convolution averages out less. On the first `--seeds` runs of
each model of the reproduction's table2 part (weights must be on this machine), with the run's own
test draw, labelled draws and SVM (`vimae.metrics.semisupervised`), both readings on the same
images, each corruption seeded alike. Prints the SVM's accuracy (%) under both.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from part_runs import add_arguments, part_runs

from vimae.data.base import load_dataset, resize
from vimae.data.corruption import parse_corruption
from vimae.metrics.semisupervised import random_label_splits, semi_supervised
from vimae.runs.loading import load_model

CORRUPTIONS = ("clean", "gauss:0.3", "mask:0.2", "mask:0.5")
SIZE = 64  # the dcgan64 input


def accuracies(run: Path, data_dir: str, test_size: int, n_labels: int, repeats: int) -> dict:
    """{corruption: {"at 64": %, "at 32": %}} of the SVM on draws z ~ q(z | x + nu)."""
    seed = json.loads((run / "config.json").read_text())["data"]["seed"]
    test = load_dataset("cifar10", "test", data_dir).subset(test_size, seed=seed)
    native = test.images  # float in [0, 1], 32x32, the same draw `vimae evaluate` makes
    splits = random_label_splits(test.labels.numpy(), n_labels, repeats, seed=seed)
    model = load_model(run).eval()
    out = {}
    for k, spec in enumerate(CORRUPTIONS):
        corrupt = parse_corruption(spec)
        after = corrupt(resize(native, SIZE), torch.Generator().manual_seed(seed * 7919 + k))
        before = resize(
            corrupt(native.clone(), torch.Generator().manual_seed(seed * 7919 + k)), SIZE
        )
        out[spec] = {}
        for name, images in (("at 64", after), ("at 32", before)):
            result = semi_supervised(model, images, test.labels, splits, ["clean"], seed)
            out[spec][name] = result["clean"]["svm"]["mean"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser, seeds=1)
    parser.add_argument("--test-size", type=int, default=2_000)
    parser.add_argument("--n-labels", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    measured = {}
    for model, runs in part_runs(args.results, "table2", args.models, args.seeds).items():
        per_run = [
            accuracies(run, args.data_dir, args.test_size, args.n_labels, args.repeats)
            for run in runs
        ]
        measured[model] = {
            spec: {
                where: float(np.mean([r[spec][where] for r in per_run]))
                for where in per_run[0][spec]
            }
            for spec in CORRUPTIONS
        }
        print(model, measured[model], flush=True)
    print(f"\nSVM accuracy % (draws), first {args.seeds} run(s) of table 2 per model: corrupted")
    print("after resizing to 64x64 (vimae's reading) -> before it, at 32x32\n")
    print("| model | " + " | ".join(CORRUPTIONS) + " |")
    print("|---" * (len(CORRUPTIONS) + 1) + "|")
    for model, cells in measured.items():
        row = [f"{c['at 64']:.1f} → {c['at 32']:.1f}" for c in cells.values()]
        print(f"| {model} | " + " | ".join(row) + " |")
    print(f"\ntook {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
