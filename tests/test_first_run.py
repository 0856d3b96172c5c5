"""A newcomer's first run (issue 25): `--preset quick` on a folder of 300 images learns, a run that
learned nothing says so, `vimae train` with no data flags chooses a network that fits its data,
and the run starts with an estimate of its time."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vimae.cli import main
from vimae.data import load_dataset


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """300 digit images as PNG files, one subfolder per class (scikit-learn's 8x8 digits)."""
    root = tmp_path_factory.mktemp("digits300")
    data = load_dataset("digits", "train").subset(300, seed=0)
    levels = (data.images[:, 0] * 255).round().numpy().astype(np.uint8)
    for i, (pixels, label) in enumerate(zip(levels, data.labels, strict=True)):
        (root / str(int(label))).mkdir(exist_ok=True)
        Image.fromarray(pixels).save(root / str(int(label)) / f"{i}.png")
    return root


def _check_row(run: Path) -> dict:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return next(r for r in rows if r["kind"] == "check")


def test_quick_on_300_images_learns(folder, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--preset", "quick", "--dataset", "folder", "--data-dir", str(folder),
                 "--out", str(run)]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "about " in err and "on this machine" in err  # the estimate before the first step
    assert "learned nothing" not in err
    check = _check_row(run)
    assert check["step"] >= 600  # 270 images are 2 steps an epoch: quick trains 600 at least
    # squared error per pixel under half the error of the mean image
    assert check["reconstruction"] < 0.5 * check["reconstruction_mean_image"], check
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["arch"] == "mlp"  # 8x8 images: auto chose the mlp


@pytest.mark.filterwarnings("default:the model learned nothing")  # pyproject ignores it elsewhere
def test_a_starved_run_says_it_learned_nothing(folder, tmp_path, capsys):
    run = tmp_path / "starved"
    argv = ["train", "--dataset", "folder", "--data-dir", str(folder), "--steps", "2"]
    assert main([*argv, "--out", str(run)]) == 0
    err = capsys.readouterr().err
    assert "vimae: note: the model learned nothing about its input" in err
    assert "train longer (--steps or --epochs)" in err


def test_train_with_no_data_flags_runs_on_its_default_data(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--epochs", "1", "--no-progress"]) == 0
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("vimae-n-digits-auto")
    config = json.loads((runs[0] / "config.json").read_text())
    assert config["model"]["arch"] == "mlp" and config["data"]["dataset"] == "digits"
    capsys.readouterr()


def test_steps_end_an_epoch_part_way_and_resume_from_there(folder, tmp_path):
    run = tmp_path / "run"
    argv = ["train", "--dataset", "folder", "--data-dir", str(folder), "--arch", "mlp",
            "--width", "0.25", "--no-progress", "--out", str(run)]  # fmt: skip
    assert main([*argv, "--steps", "5"]) == 0  # 2 steps an epoch: the third epoch stops at 1
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in rows if r["kind"] == "epoch"]
    assert [r["step"] for r in epochs] == [2, 4, 5] and epochs[-1]["batches"] == 1
    assert main([*argv, "--steps", "8", "--resume"]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "epoch"][-2:] == [6, 8]
    assert np.isfinite(_check_row(run)["reconstruction"])
