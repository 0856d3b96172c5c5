"""The catalogue of bad input (issue 7): each case, run as a user would through the command line,
gives one sentence on stderr, exit status 2 and no traceback."""

import gzip
import shutil
import subprocess
import sys

import pytest
from conftest import DIGITS_MLP, SHARED_DATASETS

from vimae.cli import main

TINY = [*DIGITS_MLP, "--latent-dim", "2", "--epochs", "1"]


def fails_cleanly(capsys, argv: list[str], *fragments: str) -> str:
    """Run the CLI in-process (any exception but VimaeError would escape as a traceback)."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("vimae: error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def train_on(tmp_path, dataset: str, *flags: str, data_dir=None) -> list[str]:
    """`vimae train` on `dataset` from `data_dir` (default tmp_path) into tmp_path / "run"."""
    data_dir = tmp_path if data_dir is None else data_dir
    out = str(tmp_path / "run")
    return ["train", "--dataset", dataset, "--data-dir", str(data_dir), *flags, "--out", out]


def test_missing_data_directory(tmp_path, capsys):
    fails_cleanly(
        capsys,
        train_on(tmp_path, "mnist", data_dir=tmp_path / "nope"),
        "train-images-idx3-ubyte",
    )


def test_truncated_idx_file(tmp_path, capsys):
    folder = tmp_path / "mnist"
    folder.mkdir()
    raw = gzip.decompress((SHARED_DATASETS / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes())
    (folder / "t10k-images-idx3-ubyte").write_bytes(raw[: len(raw) // 3])
    shutil.copy(SHARED_DATASETS / "mnist" / "t10k-labels-idx1-ubyte.gz", folder)
    fails_cleanly(
        capsys,
        train_on(tmp_path, "mnist-t10k", "--arch", "mlp"),
        "t10k-images-idx3-ubyte",
    )


def test_corrupted_zip(tmp_path, capsys):
    folder = tmp_path / "omniglot"
    folder.mkdir()
    for name in ("images_background_small1.zip", "images_background_small2.zip"):
        data = (SHARED_DATASETS / "omniglot" / name).read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2])
    fails_cleanly(
        capsys,
        train_on(tmp_path, "omniglot-small"),
        "images_background_small",
    )


def test_corrupted_pickle(tmp_path, capsys):
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(b"\x80\x04\x95not really a pickle")
    fails_cleanly(
        capsys,
        train_on(tmp_path, "cifar10", "--arch", "mlp"),
        "data_batch_1",
    )


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--arch", "dcgan28"], "needs 28x28 images but the data is 8x8"),
        (["--arch", "dcgan64", "--image-size", "28"], "needs 64x64 images but the data is 28x28"),
        (["--model", "wae"], "unknown model 'wae'; choose one of:"),
        (["--dataset", "imagenet"], "unknown dataset 'imagenet'; choose one of:"),
        (["--arch", "resnet"], "unknown network 'resnet'; choose one of:"),
        (["--prior", "cauchy"], "unknown prior 'cauchy'; choose one of:"),
        (["--kernel", "poly"], "unknown kernel 'poly'; choose one of:"),
        (["--lam", "0"], "model.lam must be positive"),
        (["--lam", "-3"], "model.lam must be positive"),
        (["--model", "beta-vae-h", "--beta", "0"], "model.beta must be positive"),
        (["--width", "-1"], "model.width must be positive"),
        (["--batch-size", "0"], "train.batch_size must be positive"),
        (["--epochs", "0"], "train.epochs must be positive"),
        (["--latent-dim", "0"], "model.latent_dim must be positive"),
        (["--epochs", "many"], "train.epochs expects int"),
        (["--precision", "fp16"], "train.precision must be one of float32, bf16, got 'fp16'"),
    ],
)
def test_bad_names_and_hyper_parameters(tmp_path, capsys, args, fragment):
    fails_cleanly(capsys, ["train", *TINY, *args, "--out", str(tmp_path / "run")], fragment)


def test_run_folder_of_another_run_and_incompatible_or_foreign_checkpoints(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--model", "vae", "--out", str(run)]) == 0
    fails_cleanly(
        capsys,
        ["train", *TINY, "--model", "vimae-n", "--out", str(run)],
        "already holds a different run",
    )
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(run / "checkpoint.safetensors", other)
    fails_cleanly(
        capsys,
        ["train", *TINY, "--model", "vimae-n", "--out", str(other), "--resume"],
        "incompatible config",
    )
    (run / "checkpoint.safetensors").write_bytes(b"PK\x03\x04 a zip, not a checkpoint")
    fails_cleanly(
        capsys,
        ["train", *TINY, "--model", "vae", "--out", str(run), "--resume"],
        "not a readable safetensors checkpoint",
    )
    fails_cleanly(
        capsys,
        ["evaluate", str(run), "--metrics", "reconstruction"],
        "not a readable safetensors checkpoint",
    )


def test_evaluating_on_images_of_another_shape(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--model", "vae", "--out", str(run)]) == 0
    err = fails_cleanly(
        capsys,
        [
            "evaluate",
            str(run),
            "--dataset",
            "mnist-t10k",
            "--data-dir",
            str(SHARED_DATASETS),
            "--metrics",
            "reconstruction",
        ],
    )
    assert "8x8" in err or "(1, 8, 8)" in err


def test_no_traceback_from_the_installed_command(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "vimae.cli", "evaluate", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "not a vimae run folder" in result.stderr
