"""End to end through the command line, on real (scikit-learn digits) data."""

import json
import subprocess
import sys

import pytest
from conftest import DIGITS_MLP

from vimae.cli import main


def test_train_then_resume_through_the_cli(tmp_path, capsys):
    args = ["train", "--model", "vimae-n", *DIGITS_MLP, "--latent-dim", "2", "--out", str(tmp_path)]
    assert main([*args, "--epochs", "1"]) == 0
    assert (tmp_path / "checkpoint.safetensors").exists()
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"]["name"] == "vimae-n" and config["model"]["lam"] == 10.0
    assert main([*args, "--epochs", "2", "--resume"]) == 0
    epochs = [
        json.loads(s)
        for s in (tmp_path / "metrics.jsonl").read_text().splitlines()
        if '"epoch"' in s and '"kind": "epoch"' in s
    ]
    assert len(epochs) == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "wae"], "unknown model 'wae'; choose one of: beta-vae-a, beta-vae-h"),
        (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
        (["--arch", "resnet"], "unknown network 'resnet'; choose one of: dcgan28, dcgan64, mlp."),
        (["--prior", "cauchy"], "unknown prior 'cauchy'"),
        (["--lam", "-1"], "model.lam must be positive"),
        (["--latent-dim", "0"], "model.latent_dim must be positive"),
        (["--model", "rate-target"], "needs a target rate R0"),
        (
            ["--arch", "dcgan28"],
            "dcgan28 needs 28x28 images but the data is 8x8; pass --image-size 28",
        ),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(tmp_path, capsys, args, message):
    base = {"--model": "vae", "--dataset": "digits", "--arch": "mlp", "--epochs": "1"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    argv = ["train", *[x for kv in base.items() for x in kv], "--out", str(tmp_path / "r")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("vimae: error: ") and err.count("\n") == 1


def test_console_script_prints_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "vimae.cli", "train", "--model", "nope", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "unknown model 'nope'" in result.stderr


def test_demo_draws_the_figure_and_table(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "figure1-digits.png").stat().st_size > 10_000
    for name in ("vae", "beta-vae-h", "beta-vae-a", "vimae-n", "vimae-l"):
        assert f"| {name} |" in out
