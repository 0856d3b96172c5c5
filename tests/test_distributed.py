"""torchrun with 2 CPU processes computes the loss and gradients of 1 process on the global batch.

The MMD term sees the codes of the whole global batch (all-gather with gradients), so even though
each process encodes only half of the batch, the loss and every parameter gradient must match.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import DIGITS_MLP
from safetensors import safe_open
from safetensors.torch import load_file

WORKER = Path(__file__).parent / "workers" / "ddp_step.py"


def run_step(model: str, out: Path, processes: int) -> tuple[dict, dict]:
    if processes == 1:
        cmd = [sys.executable, str(WORKER), model, str(out)]
    else:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={processes}",
            str(WORKER),
            model,
            str(out),
        ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    with safe_open(str(out), "pt") as f:
        meta = f.metadata()
    assert meta["world"] == str(processes)
    return json.loads(meta["terms"]), load_file(str(out))


@pytest.mark.parametrize("model", ["vimae-n", "vimae-l"])
def test_two_processes_equal_one_process(tmp_path, model):
    terms1, grads1 = run_step(model, tmp_path / "one.safetensors", 1)
    terms2, grads2 = run_step(model, tmp_path / "two.safetensors", 2)
    assert terms1.keys() == terms2.keys()
    for key in terms1:
        assert terms2[key] == pytest.approx(terms1[key], rel=1e-5, abs=1e-7), key
    assert grads1.keys() == grads2.keys()
    for name in grads1:
        assert torch.allclose(grads1[name], grads2[name], rtol=1e-4, atol=1e-7), name
    # The MMD carries real gradient: without the all-gather the shards' MMD would differ.
    assert terms1["mmd"] > 0


def test_torchrun_training_matches_one_process_and_rank0_writes(tmp_path):
    """Trained 1 epoch, killed off, resumed to 2 under torchrun == 2 epochs in one process."""
    args = [
        "train", "--model", "vimae-n", *DIGITS_MLP, "--latent-dim", "3", "--train-size", "400",
        "--set", "model.encoder_noise=0",
    ]  # fmt: skip

    def run(launch: list[str], epochs: int, out: Path, *extra: str) -> None:
        cmd = [*launch, *args, "--epochs", str(epochs), "--out", str(out), *extra]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]

    run([sys.executable, "-m", "vimae.cli"], 2, tmp_path / "one")
    launch = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "vimae.cli",
    ]
    two = tmp_path / "two"
    run(launch, 1, two)
    run(launch, 2, two, "--resume")
    a = load_file(str(tmp_path / "one" / "checkpoint.safetensors"))
    b = load_file(str(two / "checkpoint.safetensors"))
    assert {"rng.cpu.0", "rng.cpu.1"} <= b.keys()
    for name in (k for k in a if k.startswith("model.") and a[k].is_floating_point()):
        assert torch.allclose(a[name], b[name], rtol=1e-4, atol=1e-5), name
    steps = [json.loads(s) for s in (two / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in steps if r["kind"] == "epoch"] == [4, 8]  # one writer, no repeats
