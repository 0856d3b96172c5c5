"""Streaming from shards on disk (issue 15): the same batches as in memory, exact resume mid-epoch
and under torchrun, and memory bounded whatever the data's size."""

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from vimae.cli import main
from vimae.data import StreamData, load_dataset, write_shards
from vimae.data.stream import epoch_batches
from vimae.errors import VimaeError

TRAIN = [
    "train", "--model", "vimae-n", "--dataset", "shards", "--arch", "mlp", "--width", "0.25",
    "--latent-dim", "2", "--epochs", "3", "--train-size", "600", "--checkpoint-every", "2",
    "--set", "train.log_every=1", "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """scikit-learn's digits as a shard folder (train/ in shards of 500, test/)."""
    root = tmp_path_factory.mktemp("shards")
    for split in ("train", "test"):
        write_shards(load_dataset("digits", split), root / split, shard_size=500)
    return root


def weights(run: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(str(run / "checkpoint.safetensors")).items()
            if k.startswith("model.")}  # fmt: skip


def log(run: Path) -> list[dict]:
    rows = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_shards_round_trip_and_stream_only_what_is_read(shards):
    data = StreamData.open(shards / "train", "digits")
    memory = load_dataset("digits", "train")
    assert len(data) == len(memory) and data.image_shape == memory.image_shape
    assert torch.equal(data.labels, memory.labels)
    index = torch.tensor([1200, 3, 501, 499])
    expected = (memory.pixels[index] * 255).round() / 255
    assert torch.allclose(data.batch(index), expected, atol=1e-6)
    assert data.describe()["streamed"] and data.describe()["classes"] == 10
    part = data.subset(100, seed=1)
    assert len(part) == 100 and torch.equal(part.load().labels, part.labels)


def test_streaming_trains_to_the_weights_of_the_same_data_in_memory(tmp_path, shards):
    streamed = tmp_path / "streamed"
    assert main([*TRAIN, "--data-dir", str(shards), "--out", str(streamed)]) == 0
    in_memory = StreamData.open(shards / "train", "x").load()
    from vimae.api import fit

    model = fit("vimae-n", in_memory, arch="mlp", width=0.25, latent_dim=2, epochs=3,
                train_size=600, progress=False)  # fmt: skip
    trained = weights(streamed)
    state = model.state_dict()
    assert all(torch.equal(trained[f"model.{k}"], state[k]) for k in state)


KILL_IN_STEP = """
import os, signal, torch
real = torch.optim.Adam.step
count = {"n": 0}
def step(self, *a, **k):
    count["n"] += 1
    if count["n"] == 9:  # mid-epoch 2, one step after a checkpoint
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, *a, **k)
torch.optim.Adam.step = step
"""


def test_a_streamed_run_killed_mid_epoch_resumes_exactly(tmp_path, shards):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    argv = [*TRAIN, "--data-dir", str(shards)]
    assert main([*argv, "--out", str(straight)]) == 0
    script = textwrap.dedent(KILL_IN_STEP) + (
        "\nimport sys\nfrom vimae.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    )
    child = subprocess.run([sys.executable, "-c", script, *argv, "--out", str(killed)],
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert child.returncode == -signal.SIGKILL
    assert main([*argv, "--out", str(killed), "--resume"]) == 0
    a, b = weights(straight), weights(killed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert log(straight) == log(killed)


def test_torchrun_streams_each_rank_its_rows(tmp_path, shards):
    """2 processes, 1 epoch then resumed to 2, streaming == 2 epochs in one process."""
    args = ["train", "--model", "vimae-n", "--dataset", "shards", "--data-dir", str(shards),
            "--arch", "mlp", "--width", "0.25", "--latent-dim", "3", "--train-size", "400",
            "--set", "model.encoder_noise=0", "--no-progress"]  # fmt: skip

    def run(launch: list[str], epochs: int, out: Path, *extra: str) -> None:
        cmd = [*launch, *args, "--epochs", str(epochs), "--out", str(out), *extra]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]

    run([sys.executable, "-m", "vimae.cli"], 2, tmp_path / "one")
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone",
              "--nproc_per_node=2", "-m", "vimae.cli"]  # fmt: skip
    two = tmp_path / "two"
    run(launch, 1, two)
    run(launch, 2, two, "--resume")
    a, b = weights(tmp_path / "one"), weights(two)
    for name in (k for k in a if a[k].is_floating_point()):
        assert torch.allclose(a[name], b[name], rtol=1e-4, atol=1e-5), name


BOUNDED = """
import resource, sys
import torch
from vimae.data import StreamData
from vimae.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vimae.runs.fit import fit

def vm_data() -> int:  # bytes of this process's private data (what RLIMIT_DATA bounds)
    for line in open("/proc/self/status"):
        if line.startswith("VmData:"):
            return int(line.split()[1]) * 1024
data = StreamData.open(sys.argv[1], "big")
limit = vm_data() + int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
try:
    data.load()  # the whole dataset does not fit under the limit ...
    sys.exit("the dataset fit in memory: the test proves nothing")
except MemoryError:
    pass
config = RunConfig(  # ... and streaming trains a whole epoch on it
    model=ModelConfig(name="vimae-n", arch="mlp", width=0.0625, latent_dim=2),
    data=DataConfig(dataset="shards"),
    train=TrainConfig(epochs=1, batch_size=500, progress=False, workers=2),
)
model = fit(config, None, data=data)
print(len(model.history), model.history[-1]["step"])
"""


def test_training_streams_a_dataset_larger_than_its_memory_limit(tmp_path):
    """400 MB of 32x32 colour images under a 256 MB limit on the process's private memory."""
    folder = tmp_path / "big"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(4):  # 4 shards of 32,768 images
        np.save(folder / f"images-{k:05d}.npy",
                rng.integers(0, 256, (32_768, 3, 32, 32), dtype=np.uint8))  # fmt: skip
    child = subprocess.run(
        [sys.executable, "-c", BOUNDED, str(folder), str(256 << 20)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert child.returncode == 0, child.stderr[-3000:]
    assert child.stdout.split() == ["1", str(4 * 32_768 // 500)]


def test_bad_shards_are_one_sentence(tmp_path):
    (tmp_path / "train").mkdir()
    np.save(tmp_path / "train" / "images-00000.npy", np.zeros((4, 8, 8), dtype=np.float32))
    with pytest.raises(VimaeError, match="a shard holds uint8 images"):
        load_dataset("shards", "train", tmp_path)
    with pytest.raises(VimaeError, match="does not exist"):
        load_dataset("shards", "test", tmp_path)


def test_a_streamed_test_split_too_large_for_memory_asks_for_test_size(shards, monkeypatch):
    """The metrics read the test split whole: 297 digits need 95,040 bytes (uint8 and float32)."""
    from vimae.data import memory
    from vimae.runs import evaluation

    monkeypatch.setattr(memory, "available_memory", lambda: 50_000)
    with pytest.raises(VimaeError, match=r"need 0\.0 GiB .* pass --test-size N"):
        evaluation.load_test_split("shards", str(shards), (1, 8, 8), None)
    test = evaluation.load_test_split("shards", str(shards), (1, 8, 8), 100)
    assert len(test) == 100 and torch.bincount(test.labels).min() >= 9  # a stratified draw


@pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA here: the pinned-memory, non-blocking streaming path runs only on a GPU",
)
def test_streamed_batches_reach_the_gpu_unchanged(shards):
    data = StreamData.open(shards / "train", "digits")
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    cpu = epoch_batches(data, order, 0, 3, 100, slice(None), torch.device("cpu"))
    gpu = epoch_batches(data, order, 0, 3, 100, slice(None), torch.device("cuda"))
    for a, b in zip(cpu, gpu, strict=True):
        assert b.device.type == "cuda" and torch.equal(a, b.cpu())
