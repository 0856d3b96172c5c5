"""Does the data path keep up with training? In memory against streamed from shards.

    python benchmarks/data_speed.py --data-dir ../shared/datasets   # about 6 minutes, 2 cores

For dcgan28 (Fashion-MNIST-sized MNIST test images, 28x28 grey) and dcgan64 (CIFAR-10 resized to
64x64, colour) at width 1.0 and 0.125, prints images/s of loading alone (`epoch_batches`, what
`fit` iterates, without a model) and of training (`fit` itself, one epoch of --steps batches of
100, its own timing), with the data in memory (uint8 ImageData) and streamed from shards on disk
by 2 DataLoader workers. The last column is streamed training as a share of in-memory training.
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch

from vimae.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vimae.data import ImageData, StreamData, load_dataset, write_shards
from vimae.data.stream import epoch_batches
from vimae.train import epoch_order, fit

BATCH = 100
# Steps per epoch: long enough that the workers' start (about half a second) is not the story.
CASES = [("dcgan28", 0.125, 200), ("dcgan28", 1.0, 6), ("dcgan64", 0.125, 60), ("dcgan64", 1.0, 3)]


def source(arch: str, data_dir: str, n: int) -> ImageData:
    """n real images of the size `arch` takes, as uint8."""
    if arch == "dcgan28":
        return load_dataset("mnist-t10k", "train", data_dir).subset(n)
    return load_dataset("cifar10", "train", data_dir).subset(n).resized(64)


def loading_rate(data: ImageData | StreamData, steps: int, workers: int) -> float:
    """images/s of the batches alone."""
    order = epoch_order(len(data), 0, 0)
    started = time.perf_counter()
    for _ in epoch_batches(data, order, 0, steps, BATCH, slice(None), torch.device("cpu"), workers):
        pass
    return steps * BATCH / (time.perf_counter() - started)


def training_rate(data: ImageData | StreamData, arch: str, width: float, workers: int) -> float:
    """images/s of one epoch of `fit` (its own epoch timing)."""
    config = RunConfig(
        model=ModelConfig(name="vimae-n", arch=arch, width=width),
        data=DataConfig(dataset="bench"),
        train=TrainConfig(epochs=1, progress=False, workers=workers),
    )
    model = fit(config, None, data=data)
    return len(data) // BATCH * BATCH / model.history[-1]["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/datasets")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}, "
          f"{args.workers} DataLoader workers when streaming")  # fmt: skip
    print("| network | width | steps | load: memory | load: stream | train: memory "
          "| train: stream | stream / memory |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for arch, width, steps in CASES:
            images = source(arch, args.data_dir, steps * BATCH)
            folder = write_shards(images, Path(tmp) / f"{arch}-{width}", shard_size=1000)
            streamed = StreamData.open(folder, arch)
            memory = streamed.load()
            load_m = loading_rate(memory, steps, args.workers)
            load_s = loading_rate(streamed, steps, args.workers)
            fit(RunConfig(model=ModelConfig(name="vimae-n", arch=arch, width=width),
                          train=TrainConfig(epochs=1, progress=False)),
                None, data=memory.take(torch.arange(2 * BATCH)))  # warm-up  # fmt: skip
            train_m = training_rate(memory, arch, width, args.workers)
            train_s = training_rate(streamed, arch, width, args.workers)
            row = [arch, width, steps, f"{load_m:,.0f}", f"{load_s:,.0f}", f"{train_m:,.1f}",
                   f"{train_s:,.1f}", f"{train_s / train_m:.0%}"]  # fmt: skip
            print("| " + " | ".join(map(str, row)) + " |", flush=True)


if __name__ == "__main__":
    main()
