"""The Inception FID on real CIFAR-10 images: a published reference, sample-size bias, speed.

    python benchmarks/fid_reference.py --data-dir ../shared/datasets            # 10k train
    python benchmarks/fid_reference.py --data-dir ../shared/datasets --train-size 50000

Passes the CIFAR-10 test set (10,000 JPEG copies) and a seeded, class-stratified draw of
`--train-size` training images through the Inception-v3 network of `vimae[inception]` (the
reference preprocessing of vimae.metrics.inception), keeping the features in `--cache` so that a
rerun or a larger --train-size computes only what is new. Prints:

- the feature pass's rate (images/s) on this machine;
- FID(train, test) on all the features it has, beside the published train-vs-test values;
- the sample-size table: FID of n train against n test images (disjoint seeded draws) for n in
  1k, 2k, 5k, 10k, and its extrapolation to n -> infinity by a least-squares line in 1/n (the
  bias of FID is close to linear in 1/n: Chong & Forsyth, "Effectively unbiased FID", 2020);
- FID of 5k test images against the other 5k (no distribution shift, only sampling);
- the preprocessing check: FID(2k train, 2k test) with pytorch-fid's preprocessing (half-pixel
  bilinear resize, [-1, 1]) against vimae's (TensorFlow's resize, [-1, 0.9921875]).
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vimae.data import load_dataset
from vimae.metrics.inception import (
    InceptionFeatures,
    feature_statistics,
    frechet_from_statistics,
)

SIZES = (1_000, 2_000, 5_000, 10_000)


def features_of(
    name: str, images: torch.Tensor, network: InceptionFeatures, cache: Path, batch: int
) -> np.ndarray:
    """Inception features of `images`, read from cache/NAME.npy as far as they were computed."""
    path = cache / f"{name}.npy"
    done = np.load(path) if path.is_file() else np.zeros((0, 2048))
    if len(done) >= len(images):
        return done[: len(images)]
    started, rows = time.perf_counter(), [done]
    for start in range(len(done), len(images), batch):
        rows.append(network(images[start : start + batch]).float().numpy())
        count = sum(len(r) for r in rows)
        if (count // batch) % 10 == 0 or count == len(images):
            np.save(path, np.concatenate(rows))
            rate = (count - len(done)) / (time.perf_counter() - started)
            print(f"  {name}: {count:,}/{len(images):,} images, {rate:.1f} images/s", flush=True)
    return np.concatenate(rows)


def fid(a: np.ndarray, b: np.ndarray) -> float:
    """FID of two feature sets (stored as float32, computed in float64)."""
    return frechet_from_statistics(
        *feature_statistics(torch.from_numpy(a).double()),
        *feature_statistics(torch.from_numpy(b).double()),
    )


def pytorch_fid_prepared(images: torch.Tensor) -> torch.Tensor:
    """pytorch-fid's preparation: 8-bit levels, F.interpolate bilinear (half-pixel centres) to
    299x299, scaled to [-1, 1]."""
    x = (images.clamp(0, 1) * 255).round() / 255
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    return 2 * x - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="../shared/datasets")
    parser.add_argument("--train-size", type=int, default=10_000)
    parser.add_argument("--cache", type=Path, default=Path("runs/fid-reference"))
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.cache.mkdir(parents=True, exist_ok=True)
    network = InceptionFeatures()
    print(f"network: {network.name}, sha256 {network.sha256[:16]}...")
    test = load_dataset("cifar10", "test", args.data_dir)
    train = load_dataset("cifar10", "train", args.data_dir).subset(args.train_size, seed=0)
    started = time.perf_counter()
    test_features = features_of("test", test.images, network, args.cache, args.batch)
    train_features = features_of(
        f"train-{args.train_size}", train.images, network, args.cache, args.batch
    )
    print(f"feature pass: {time.perf_counter() - started:.0f} s this run")

    print(f"\nFID(train {len(train_features):,}, test {len(test_features):,}) = "
          f"{fid(train_features, test_features):.2f}")  # fmt: skip

    rng = np.random.default_rng(0)
    print("\n| n (each side) | FID(train n, test n) | FID(test n, other test n) |")
    print("|---|---|---|")
    inverse, values = [], []
    for n in SIZES:
        if n > min(len(train_features), len(test_features)):
            continue
        a = train_features[rng.permutation(len(train_features))[:n]]
        b = test_features[rng.permutation(len(test_features))[:n]]
        order = rng.permutation(len(test_features))
        halves = (
            f"{fid(test_features[order[:n]], test_features[order[n : 2 * n]]):.2f}"
            if 2 * n <= len(test_features)
            else "-"
        )
        value = fid(a, b)
        inverse.append(1 / n)
        values.append(value)
        print(f"| {n:,} | {value:.2f} | {halves} |")
    slope, intercept = np.polyfit(inverse, values, 1)
    print(f"\nextrapolated to n -> infinity (line in 1/n): FID_inf = {intercept:.2f} "
          f"(slope {slope:,.0f} / n)")  # fmt: skip

    n = 2_000
    ours = fid(train_features[:n], test_features[:n])
    theirs = []
    for name, images in (("train", train.images[:n]), ("test", test.images[:n])):
        path = args.cache / f"{name}-pytorch-fid-{n}.npy"
        if not path.is_file():
            rows = []
            with torch.inference_mode():
                for start in range(0, n, args.batch):
                    x = pytorch_fid_prepared(images[start : start + args.batch])
                    x = x.contiguous(memory_format=torch.channels_last)
                    rows.append(network.network(x).reshape(len(x), -1).numpy())
            np.save(path, np.concatenate(rows))
        theirs.append(np.load(path))
    other = fid(*theirs)
    shift = abs(other - ours) / ours
    print(f"\npreprocessing, FID(train {n:,}, test {n:,}): vimae (TensorFlow's) {ours:.3f}, "
          f"pytorch-fid's {other:.3f}, relative difference {shift:.2%}")  # fmt: skip


if __name__ == "__main__":
    main()
