"""Trust: runs killed with SIGKILL resume to the same weights; bad files are refused clearly."""

import json
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import DIGITS_MLP

from vimae.checkpoint import CHECKPOINT_FILE, read_checkpoint
from vimae.cli import main

TRAIN = [
    "train", "--model", "vimae-n", *DIGITS_MLP, "--latent-dim", "2", "--epochs", "3",
    "--train-size", "600", "--checkpoint-every", "2", "--set", "train.log_every=1",
]  # fmt: skip


def run_child(code: str, *argv: str) -> subprocess.CompletedProcess:
    """Run `code` (which may patch vimae to kill itself) then the CLI with argv, in a child."""
    script = (
        textwrap.dedent(code)
        + "\nimport sys\nfrom vimae.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=300
    )


KILL_IN_STEP = """
import os, signal, torch
real = torch.optim.Adam.step
count = {"n": 0}
def step(self, *a, **k):
    count["n"] += 1
    if count["n"] == 9:  # mid-epoch 2 (6 steps per epoch), one step after a checkpoint
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, *a, **k)
torch.optim.Adam.step = step
"""

KILL_IN_CHECKPOINT_WRITE = """
import os, signal
import vimae.checkpoint as ckpt
real = ckpt.save_file
count = {"n": 0}
def save_file(tensors, path, metadata=None):
    count["n"] += 1
    if count["n"] == 4:  # write half of the 4th checkpoint, then die
        real(tensors, path, metadata=metadata)
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
        os.kill(os.getpid(), signal.SIGKILL)
    return real(tensors, path, metadata=metadata)
ckpt.save_file = save_file
"""


def final_weights(run_dir) -> dict[str, torch.Tensor]:
    tensors, _ = read_checkpoint(run_dir / CHECKPOINT_FILE)
    return {k: v for k, v in tensors.items() if not k.startswith("rng.")}


def log_without_times(run_dir) -> list[dict]:
    rows = [json.loads(s) for s in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    assert main([*TRAIN, "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize(
    "killer", [KILL_IN_STEP, KILL_IN_CHECKPOINT_WRITE], ids=["mid-epoch", "mid-checkpoint-write"]
)
def test_sigkilled_run_resumes_to_the_same_weights(tmp_path, uninterrupted, killer):
    out = tmp_path / "run"
    killed = run_child(killer, *TRAIN, "--out", str(out))
    assert killed.returncode == -signal.SIGKILL
    read_checkpoint(out / CHECKPOINT_FILE)  # the last complete checkpoint is intact
    if killer is KILL_IN_CHECKPOINT_WRITE:
        assert list(out.glob(".*.tmp")), "the half-written temporary file should be left behind"
    assert main([*TRAIN, "--out", str(out), "--resume"]) == 0
    assert not list(out.glob(".*.tmp")), "resume removes the half-written temporary file"
    a, b = final_weights(uninterrupted), final_weights(out)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert log_without_times(uninterrupted) == log_without_times(out)


def test_same_seed_and_config_give_the_same_metrics_twice(tmp_path, uninterrupted):
    assert main([*TRAIN, "--out", str(tmp_path)]) == 0
    assert log_without_times(uninterrupted) == log_without_times(tmp_path)


def test_a_checkpoint_that_is_not_safetensors_is_refused(tmp_path, uninterrupted, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text((uninterrupted / "config.json").read_text())
    (out / CHECKPOINT_FILE).write_bytes(b"\x80\x04\x95 this is a pickle, not safetensors")
    assert main([*TRAIN, "--out", str(out), "--resume"]) == 2
    assert "is not a readable safetensors checkpoint" in capsys.readouterr().err


def test_a_checkpoint_of_another_config_is_refused(tmp_path, uninterrupted, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / CHECKPOINT_FILE).write_bytes((uninterrupted / CHECKPOINT_FILE).read_bytes())
    other = [*TRAIN, "--lam", "3", "--out", str(out), "--resume"]
    assert main(other) == 2
    assert "written by an incompatible config" in capsys.readouterr().err
