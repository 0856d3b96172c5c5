"""Peak memory of training on CelebA-sized data: float32 storage (before) against uint8 (after).

    python benchmarks/data_memory.py --data-dir ../shared/datasets   # about 3 minutes, 2 cores

The stand-in for CelebA at 64x64 is the real CIFAR-10 training images repeated to --images
(200,000 by default) and resized to 64x64, as the paper feeds CIFAR-10 to dcgan64. Each variant
runs in its own process, which builds the data and trains --steps steps of dcgan64 (width
0.0625, batch 100), then reports its peak resident memory (ru_maxrss):

- float32: the data path before issue 15: images converted to float32 at load, resized in float32
  (what `to_tensor` and `resize` did), every batch copied from the float32 tensor;
- uint8: the data path now: 8-bit pixels kept as uint8, resized chunk by chunk and rounded back to
  uint8, every batch converted to float32 on its device (`ImageData.batch`).
"""

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from vimae.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vimae.data import ImageData, load_dataset
from vimae.data.base import resize
from vimae.runs.fit import fit

VARIANTS = ("float32", "uint8")


def stand_in(data_dir: str, images: int, variant: str) -> ImageData:
    """CIFAR-10's training images repeated to `images`, at 64x64, stored as `variant`."""
    cifar = load_dataset("cifar10", "train", data_dir)
    repeats = -(-images // len(cifar))
    pixels = cifar.pixels.repeat(repeats, 1, 1, 1)[:images]
    labels = cifar.labels.repeat(repeats)[:images]
    del cifar
    if variant == "float32":
        pixels = pixels.float().div_(255)  # the old loaders' float32 tensor, then its resize
    return ImageData("cifar10-x", resize(pixels, 64), labels)


def measure(data_dir: str, images: int, steps: int, variant: str) -> dict:
    """Build the data and train `steps` steps in this process; its peak RSS and times."""
    torch.set_num_threads(2)
    started = time.perf_counter()
    data = stand_in(data_dir, images, variant)
    built = time.perf_counter() - started
    config = RunConfig(
        model=ModelConfig(name="vimae-l", arch="dcgan64", width=0.0625),
        data=DataConfig(dataset="cifar10"),
        train=TrainConfig(epochs=1, progress=False),
    )
    subset = data.take(torch.arange(steps * config.train.batch_size))  # `steps` batches
    started = time.perf_counter()
    fit(config, None, data=subset)
    trained = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    storage = data.pixels.element_size() * data.pixels.nelement() / 2**30
    return {"variant": variant, "images": len(data), "storage_gib": storage,
            "peak_rss_gib": peak, "build_s": built, "train_s": trained}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/datasets")
    parser.add_argument("--images", type=int, default=200_000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:  # a child: one measurement, as JSON on the last line
        print(json.dumps(measure(args.data_dir, args.images, args.steps, args.variant)))
        return
    rows = []
    for variant in VARIANTS:
        argv = [sys.executable, __file__, "--variant", variant, "--data-dir", args.data_dir,
                "--images", str(args.images), "--steps", str(args.steps)]  # fmt: skip
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    print(f"training dcgan64 (width 0.0625) for {args.steps} steps on {args.images:,} images "
          "at 64x64 (CIFAR-10 repeated)")  # fmt: skip
    print("| storage | pixels (GiB) | peak RSS (GiB) | build data (s) | train (s) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['storage_gib']:.2f} | {r['peak_rss_gib']:.2f} | "
              f"{r['build_s']:.1f} | {r['train_s']:.1f} |")  # fmt: skip
    ratio = rows[0]["peak_rss_gib"] / rows[1]["peak_rss_gib"]
    print(f"peak RSS float32 / uint8: {ratio:.2f}")


if __name__ == "__main__":
    main()
