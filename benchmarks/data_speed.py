"""Does the data path keep up with training? In memory against streamed from shards.

    python benchmarks/data_speed.py --data-dir ../shared/datasets   # about 4 minutes, 2 cores
    python benchmarks/data_speed.py --device cuda --threads 16 --workers 8 --scale 10  # a GPU

For dcgan28 (MNIST training images, 28x28 grey) and dcgan64 (CIFAR-10 training images resized to
64x64, colour) at width 1.0 and 0.125, prints images/s of loading alone (`epoch_batches`, what
`fit` iterates, without a model, the batches on --device) and of training (`fit` itself, one
epoch of `steps` batches of 100, its own timing), with the data in memory (uint8 ImageData) and
streamed from shards on disk by --workers DataLoader processes (pinned memory and non-blocking
copies on CUDA). The last column is streamed training as a share of in-memory training. --scale
multiplies every case's steps (a GPU trains a CPU-sized epoch in well under a second).
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch

from vimae.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vimae.data import ImageData, StreamData, load_dataset, write_shards
from vimae.data.stream import epoch_batches
from vimae.runs.fit import epoch_order, fit

BATCH = 100
# Steps per epoch: long enough that the workers' start (about half a second) is not the story.
CASES = [("dcgan28", 0.125, 200), ("dcgan28", 1.0, 6), ("dcgan64", 0.125, 60), ("dcgan64", 1.0, 3)]


def source(arch: str, data_dir: str, n: int) -> ImageData:
    """n real images of the size `arch` takes, as uint8 (a seeded stratified draw)."""
    if arch == "dcgan28":
        data = load_dataset("mnist", "train", data_dir).subset(n)
    else:
        data = load_dataset("cifar10", "train", data_dir).subset(n).resized(64)
    if len(data) < n:
        raise SystemExit(f"{arch}: {n} images asked, the data has {len(data)}; lower --scale.")
    return data


def loading_rate(
    data: ImageData | StreamData, steps: int, workers: int, device: torch.device
) -> float:
    """images/s of the batches alone, on `device`."""
    order = epoch_order(len(data), 0, 0)
    started = time.perf_counter()
    for _ in epoch_batches(data, order, 0, steps, BATCH, slice(None), device, workers):
        pass
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * BATCH / (time.perf_counter() - started)


def training_rate(
    data: ImageData | StreamData, arch: str, width: float, workers: int, device: str
) -> float:
    """images/s of one epoch of `fit` (its own epoch timing)."""
    config = RunConfig(
        model=ModelConfig(name="vimae-n", arch=arch, width=width),
        data=DataConfig(dataset="bench"),
        train=TrainConfig(epochs=1, progress=False, workers=workers, device=device),
    )
    model = fit(config, None, data=data)
    return len(data) // BATCH * BATCH / model.history[-1]["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/datasets")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=2, help="torch's CPU threads")
    parser.add_argument("--scale", type=int, default=1, help="multiplies every case's steps")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, {name}, {torch.get_num_threads()} threads, batch {BATCH}, "
          f"{args.workers} DataLoader workers when streaming")  # fmt: skip
    print("| network | width | steps | load: memory | load: stream | train: memory "
          "| train: stream | stream / memory |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for arch, width, steps in CASES:
            steps *= args.scale
            images = source(arch, args.data_dir, steps * BATCH)
            folder = write_shards(images, Path(tmp) / f"{arch}-{width}", shard_size=1000)
            streamed = StreamData.open(folder, arch)
            memory = streamed.load()
            load_m = loading_rate(memory, steps, args.workers, device)
            load_s = loading_rate(streamed, steps, args.workers, device)
            fit(RunConfig(model=ModelConfig(name="vimae-n", arch=arch, width=width),
                          train=TrainConfig(epochs=1, progress=False, device=args.device)),
                None, data=memory.take(torch.arange(2 * BATCH)))  # warm-up  # fmt: skip
            train_m = training_rate(memory, arch, width, args.workers, args.device)
            train_s = training_rate(streamed, arch, width, args.workers, args.device)
            row = [arch, width, steps, f"{load_m:,.0f}", f"{load_s:,.0f}", f"{train_m:,.1f}",
                   f"{train_s:,.1f}", f"{train_s / train_m:.0%}"]  # fmt: skip
            print("| " + " | ".join(map(str, row)) + " |", flush=True)


if __name__ == "__main__":
    main()
