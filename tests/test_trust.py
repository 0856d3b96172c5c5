"""Trust: runs killed with SIGKILL resume to the same weights; bad files are refused clearly."""

import errno
import json
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import safetensors.torch
import torch
from conftest import DIGITS_MLP, fails_cleanly

from vimae.cli import main
from vimae.runs.checkpoint import CHECKPOINT_FILE, read_checkpoint, tensors_digest

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
import vimae.runs.checkpoint as ckpt
real = ckpt.save_file
count = {"n": 0}
def save_file(tensors, path, metadata=None):
    count["n"] += 1
    if count["n"] == 4:  # write half of the 4th checkpoint (step 0 is the 1st), then die
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


def test_a_checkpoint_that_is_not_safetensors_is_fails_cleanly(tmp_path, uninterrupted, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text((uninterrupted / "config.json").read_text())
    (out / CHECKPOINT_FILE).write_bytes(b"\x80\x04\x95 this is a pickle, not safetensors")
    assert main([*TRAIN, "--out", str(out), "--resume"]) == 2
    assert "is not a readable safetensors checkpoint" in capsys.readouterr().err


def test_a_checkpoint_of_another_config_is_fails_cleanly(tmp_path, uninterrupted, capsys):
    """config.json says lam = 3 (as the command does), the checkpoint was trained with 10."""
    out = tmp_path / "run"
    out.mkdir()
    (out / CHECKPOINT_FILE).write_bytes((uninterrupted / CHECKPOINT_FILE).read_bytes())
    recorded = json.loads((uninterrupted / "config.json").read_text())
    recorded["model"]["lam"] = 3.0
    (out / "config.json").write_text(json.dumps(recorded))
    other = [*TRAIN, "--lam", "3", "--out", str(out), "--resume"]
    assert main(other) == 2
    assert "written by an incompatible config" in capsys.readouterr().err


# --- Hardening (issue 13): one writer, nothing lost, nothing trusted --------------------------

SLOW_STEPS = """
import time, torch
real = torch.optim.Adam.step
def step(self, *a, **k):
    time.sleep(0.25)
    return real(self, *a, **k)
torch.optim.Adam.step = step
"""


def start_child(code: str, *argv: str) -> subprocess.Popen:
    """Like run_child, but returns at once with the child running. SIGINT is restored to its default
    in the child, so that Ctrl-C reaches it as KeyboardInterrupt even when the suite itself runs in
    the background (where the shell starts it, and so its children, with SIGINT ignored)."""
    script = (
        textwrap.dedent(code)
        + "\nimport sys\nfrom vimae.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", script, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the child"
        time.sleep(0.05)


def logged_rows(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    return path.read_text().count("\n") if path.exists() else 0


def same_weights_and_log(a: Path, b: Path) -> bool:
    wa, wb = final_weights(a), final_weights(b)
    same = wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    return same and log_without_times(a) == log_without_times(b)


def copy_run(src: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(src, out)
    return out


def test_a_second_writer_is_refused_while_a_run_trains_and_the_lock_dies_with_it(
    tmp_path, uninterrupted, capsys
):
    out = tmp_path / "run"
    child = start_child(SLOW_STEPS, *TRAIN, "--out", str(out))
    try:
        wait_for(lambda: logged_rows(out) >= 2)
        err = fails_cleanly(capsys, [*TRAIN, "--out", str(out)], f"{out} is in use by vimae train")
        assert f"process {child.pid}" in err
        fails_cleanly(capsys, ["evaluate", str(out), "--metrics", "reconstruction"], "is in use by")
        assert logged_rows(out) == len(set((out / "metrics.jsonl").read_text().splitlines()))
    finally:
        child.kill()
        child.wait()
    assert main([*TRAIN, "--out", str(out), "--resume"]) == 0  # the kernel freed the lock
    assert same_weights_and_log(uninterrupted, out)


def test_sigterm_stops_a_run_like_ctrl_c_and_it_resumes_to_the_same_weights(
    tmp_path, uninterrupted
):
    out = tmp_path / "run"
    child = start_child(SLOW_STEPS, *TRAIN, "--out", str(out))
    wait_for(lambda: logged_rows(out) >= 3)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 143
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"vimae train --resume --out {out}" in err
    assert main([*TRAIN, "--out", str(out), "--resume"]) == 0
    assert same_weights_and_log(uninterrupted, out)


KILL_AT_STEP_5 = """
import os, signal, torch
real = torch.optim.Adam.step
count = {"n": 0}
def step(self, *a, **k):
    count["n"] += 1
    if count["n"] == 5:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, *a, **k)
torch.optim.Adam.step = step
"""


def test_every_log_line_is_on_disk_when_written(tmp_path):
    """Killed in step 5, between checkpoints (only at epoch ends here): steps 1-4 are logged."""
    out = tmp_path / "run"
    killed = run_child(KILL_AT_STEP_5, *TRAIN, "--checkpoint-every", "0", "--out", str(out))
    assert killed.returncode == -signal.SIGKILL
    assert [r["step"] for r in log_without_times(out)] == [1, 2, 3, 4]


def test_a_torn_log_line_is_dropped_by_an_atomic_rewrite_and_resume_needs_only_out(
    tmp_path, uninterrupted
):
    out = tmp_path / "run"
    assert main([*TRAIN, "--epochs", "1", "--out", str(out)]) == 0
    log = out / "metrics.jsonl"
    with open(log, "a") as f:
        f.write('{"kind": "step", "epoch": 1, "st')  # a write cut by a kill
    inode = log.stat().st_ino
    # every setting comes from the folder's config.json; only the new epoch count is given
    assert main(["train", "--resume", "--out", str(out), "--epochs", "3"]) == 0
    assert log.stat().st_ino != inode, "the log must be replaced atomically, not cut in place"
    assert same_weights_and_log(uninterrupted, out)


def test_resume_without_a_checkpoint_and_a_checkpoint_without_config_are_errors(
    tmp_path, uninterrupted, capsys
):
    no_checkpoint = copy_run(uninterrupted, tmp_path / "a")
    (no_checkpoint / CHECKPOINT_FILE).unlink()
    log = (no_checkpoint / "metrics.jsonl").read_bytes()
    fails_cleanly(
        capsys,
        [*TRAIN, "--out", str(no_checkpoint), "--resume"],
        "has no checkpoint to continue; drop --resume",
    )
    assert (no_checkpoint / "metrics.jsonl").read_bytes() == log
    no_config = copy_run(uninterrupted, tmp_path / "b")
    (no_config / "config.json").unlink()
    weights = (no_config / CHECKPOINT_FILE).read_bytes()
    for resume in ([], ["--resume"]):
        fails_cleanly(
            capsys,
            [*TRAIN, "--out", str(no_config), *resume],
            "holds a checkpoint but no config.json",
        )
        assert (no_config / CHECKPOINT_FILE).read_bytes() == weights


def test_a_failed_start_leaves_nothing_that_blocks_the_corrected_command(tmp_path, capsys):
    out = tmp_path / "run"
    fails_cleanly(capsys, [*TRAIN, "--arch", "dcgan28", "--out", str(out)], "needs 28x28 images")
    assert not (out / "config.json").exists() and not (out / CHECKPOINT_FILE).exists()
    assert main([*TRAIN, "--epochs", "1", "--out", str(out)]) == 0


def test_a_full_disk_while_checkpointing_is_one_sentence_and_the_run_resumes(
    tmp_path, uninterrupted, capsys, monkeypatch
):
    import vimae.runs.checkpoint as ckpt

    real = ckpt.save_file
    calls = {"n": 0}

    def save_file(tensors, path, metadata):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(tensors, path, metadata)

    monkeypatch.setattr(ckpt, "save_file", save_file)
    out = tmp_path / "run"
    fails_cleanly(capsys, [*TRAIN, "--out", str(out)], "no space is left on its device")
    monkeypatch.setattr(ckpt, "save_file", real)
    assert not list(out.glob(".*.tmp"))
    assert main([*TRAIN, "--out", str(out), "--resume"]) == 0
    assert same_weights_and_log(uninterrupted, out)


def flip_a_tensor_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    header = int.from_bytes(data[:8], "little")
    data[8 + header + 200] ^= 0x10
    path.write_bytes(bytes(data))


def test_a_flipped_byte_in_a_checkpoint_is_an_error_naming_the_file(
    tmp_path, uninterrupted, capsys
):
    out = copy_run(uninterrupted, tmp_path)
    flip_a_tensor_byte(out / CHECKPOINT_FILE)
    damaged = f"checkpoint {out / CHECKPOINT_FILE} is damaged"
    fails_cleanly(capsys, [*TRAIN, "--out", str(out), "--resume"], damaged)
    fails_cleanly(capsys, ["evaluate", str(out), "--metrics", "reconstruction"], damaged)


def rewrite_checkpoint(path: Path, damage) -> None:
    """Apply damage(tensors, config, progress) and write the checkpoint back with a fresh
    digest: what a bug or a hand edit (not a flipped bit) would leave."""
    tensors, metadata = read_checkpoint(path)
    config, progress = json.loads(metadata["config"]), json.loads(metadata["progress"])
    damage(tensors, config, progress)
    metadata.update(config=json.dumps(config), progress=json.dumps(progress))
    metadata["digest"] = tensors_digest(tensors)
    safetensors.torch.save_file(tensors, str(path), metadata=metadata)


def _set(section: str, key: str, value):
    return lambda tensors, config, progress: config[section].__setitem__(key, value)


def _progress(**values):
    return lambda tensors, config, progress: progress.update(values)


def _short_rng(tensors, config, progress):
    tensors["rng.cpu.0"] = tensors["rng.cpu.0"][:100].clone()


@pytest.mark.parametrize(
    "damage, fragment",
    [
        (
            _set("model", "latent_dim", -3),
            "invalid config (--latent-dim (model.latent_dim) must be positive",
        ),
        (_set("model", "lam", float("nan")), "must be a finite number"),
        (_set("model", "prior", "cauchy"), "unknown prior 'cauchy'"),
        (_set("model", "image_shape", [1, 8]), "model.image_shape must be"),
        (_set("train", "seed", 2**64), "must be at most"),
        (_progress(epoch=-1, step=-6), "impossible progress"),
        (_progress(batch=99), "impossible progress"),
        (_progress(step=1), "impossible progress"),
        (_short_rng, "random generator state rng.cpu.0"),
    ],
    ids=["latent-dim", "nan-lam", "prior", "image-shape", "seed", "epoch", "batch", "step", "rng"],
)
def test_a_checkpoint_with_an_impossible_record_is_refused_before_any_step(
    tmp_path, uninterrupted, capsys, damage, fragment
):
    out = copy_run(uninterrupted, tmp_path)
    rewrite_checkpoint(out / CHECKPOINT_FILE, damage)
    fails_cleanly(capsys, [*TRAIN, "--epochs", "4", "--out", str(out), "--resume"], fragment)


def test_config_and_checkpoint_must_agree_with_each_other_and_with_the_weights(
    tmp_path, uninterrupted, capsys
):
    out = copy_run(uninterrupted, tmp_path)
    recorded = json.loads((out / "config.json").read_text())
    recorded["model"]["latent_dim"] = 3
    (out / "config.json").write_text(json.dumps(recorded))
    evaluate = ["evaluate", str(out), "--metrics", "reconstruction"]
    fails_cleanly(capsys, evaluate, "describe different runs")
    rewrite_checkpoint(out / CHECKPOINT_FILE, _set("model", "latent_dim", 3))
    fails_cleanly(capsys, evaluate, "does not fit")
    recorded["model"]["lam"] = "nan"
    (out / "config.json").write_text(json.dumps(recorded))
    fails_cleanly(capsys, ["evaluate", str(out)], "config.json records an invalid config")


@pytest.mark.parametrize(
    "name", ["checkpoint.safetensors", "config.json", "metrics.jsonl", "data.json"]
)
def test_evaluate_out_never_replaces_a_file_of_the_run(tmp_path, uninterrupted, capsys, name):
    out = copy_run(uninterrupted, tmp_path)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    argv = ["evaluate", str(out), "--metrics", "reconstruction", "--out", str(out / name)]
    fails_cleanly(capsys, argv, "is the run's own")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_evaluate_checks_its_out_before_computing(tmp_path, uninterrupted, capsys):
    out = copy_run(uninterrupted, tmp_path)
    fails_cleanly(capsys, ["evaluate", str(out), "--out", str(out)], "is a folder")
    under_a_file = out / "config.json" / "m.json"
    fails_cleanly(capsys, ["evaluate", str(out), "--out", str(under_a_file)], "is a file")


def test_re_evaluating_merges_metrics_of_the_same_weights_and_data(tmp_path, uninterrupted, capsys):
    out = copy_run(uninterrupted, tmp_path)
    (out / ".metrics.json.x1y2.tmp").write_text("left by a killed evaluate")
    metrics = lambda: json.loads((out / "metrics.json").read_text())["metrics"]  # noqa: E731
    assert main(["evaluate", str(out), "--metrics", "reconstruction,rate"]) == 0
    assert not list(out.glob(".metrics.json.*.tmp"))
    assert main(["evaluate", str(out), "--metrics", "reconstruction"]) == 0
    assert {"reconstruction", "rate"} <= set(metrics())
    assert "kept from before: rate" in capsys.readouterr().out
    # measured on other test images, the earlier rate would describe something else
    assert main(["evaluate", str(out), "--metrics", "reconstruction", "--test-size", "90"]) == 0
    assert set(metrics()) == {"reconstruction"}
    assert "were replaced" in capsys.readouterr().out


SLOW_METRIC = """
import time
from vimae.metrics import METRICS, Metric
def slow(ctx):
    print("measuring", flush=True)
    time.sleep(60)
METRICS._entries["reconstruction"] = Metric("reconstruction", slow, position=1)
"""


def test_ctrl_c_during_evaluate_says_nothing_was_written(tmp_path, uninterrupted):
    out = copy_run(uninterrupted, tmp_path)
    child = start_child(SLOW_METRIC, "evaluate", str(out), "--metrics", "reconstruction")
    assert child.stdout.readline().strip() == "measuring"
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130
    last = err.splitlines()[-1]  # after the progress line of the metric it was measuring
    assert "Traceback" not in err and last.startswith("vimae: interrupted; evaluate wrote nothing")
    assert not (out / "metrics.json").exists() and not list(out.glob(".*.tmp"))
