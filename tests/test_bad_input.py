"""The catalogue of bad input (issue 7): each case, run as a user would through the command line,
gives one sentence on stderr, exit status 2 and no traceback."""

import gzip
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import pytest
import torch
from conftest import DIGITS_MLP, SHARED_DATASETS, fails_cleanly, requires_shared_data
from PIL import Image

from vimae.cli import main
from vimae.data import load_dataset
from vimae.data.idx import read_idx
from vimae.errors import VimaeError

TINY = [*DIGITS_MLP, "--latent-dim", "2", "--epochs", "1"]


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


@requires_shared_data("mnist")
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


@requires_shared_data("omniglot")
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
        (["--lam", "0"], "--lam (model.lam) must be positive"),
        (["--lam", "-3"], "--lam (model.lam) must be positive"),
        (["--model", "beta-vae-h", "--beta", "0"], "--beta (model.beta) must be positive"),
        (["--width", "-1"], "--width (model.width) must be positive"),
        (["--batch-size", "0"], "--batch-size (train.batch_size) must be positive"),
        (["--epochs", "0"], "--epochs (train.epochs) must be positive"),
        (["--latent-dim", "0"], "--latent-dim (model.latent_dim) must be positive"),
        (["--epochs", "many"], "--epochs (train.epochs) expects int"),
        (
            ["--precision", "fp16"],
            "--precision (train.precision) must be one of float32, bf16, got 'fp16'",
        ),
    ],
)
def test_bad_names_and_hyper_parameters(tmp_path, capsys, args, fragment):
    fails_cleanly(capsys, ["train", *TINY, *args, "--out", str(tmp_path / "run")], fragment)


def test_run_folder_of_another_run_and_incompatible_or_foreign_checkpoints(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--model", "vae", "--out", str(run)]) == 0
    capsys.readouterr()  # the tiny run's note that it learned little
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
        "holds a checkpoint but no config.json",
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


@requires_shared_data("mnist")
def test_evaluating_on_images_of_another_shape(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--model", "vae", "--out", str(run)]) == 0
    capsys.readouterr()  # the tiny run's note that it learned little
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


# Untrusted files are bounded: bombs, deep images, oversized archive members, odd tar layouts.


def _bounded_peak(load) -> int:
    """The most memory (bytes, as tracemalloc sees it) that `load()` held at once."""
    tracemalloc.start()
    try:
        load()
    except VimaeError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


# Pillow raises DecompressionBombError over 2x MAX_IMAGE_PIXELS and warns over 1x; with the limit
# set to 400 pixels, a 40x40 image takes the error's path and a 25x25 one the warning's, the
# same paths as a real bomb of billions of pixels at the real limit.
@pytest.mark.parametrize("side", [40, 25], ids=["error", "warning"])
def test_decompression_bomb_in_an_image_folder(tmp_path, capsys, monkeypatch, side):
    images = tmp_path / "images"
    for cls in ("a", "b"):
        (images / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (8, 8), 40 * i).save(images / cls / f"{i}.png")
    Image.new("L", (side, side), 7).save(images / "a" / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400)
    fails_cleanly(
        capsys,
        train_on(tmp_path, "folder", "--arch", "mlp", data_dir=images),
        "bomb.png is too large an image to decode safely",
    )


def _gz(path, *parts: bytes, zeros: int = 0) -> None:
    """A gzip file of `parts` then `zeros` zero bytes, written without holding them in memory."""
    with gzip.open(path, "wb") as f:
        for part in parts:
            f.write(part)
        for start in range(0, zeros, 1 << 20):
            f.write(bytes(min(1 << 20, zeros - start)))


def _idx_header(*dims: int) -> bytes:
    return b"\0\0\x08" + bytes([len(dims)]) + b"".join(n.to_bytes(4, "big") for n in dims)


def test_gzip_bomb_idx_is_refused_without_decompressing_it(tmp_path, capsys):
    folder = tmp_path / "mnist"
    folder.mkdir()
    images = folder / "t10k-images-idx3-ubyte.gz"
    # The header says 10 images of 28x28 (7,840 bytes); 50 MB of zeros follow, 50 KB gzipped.
    _gz(images, _idx_header(10, 28, 28), zeros=50 << 20)
    _gz(folder / "t10k-labels-idx1-ubyte.gz", _idx_header(10), bytes(10))
    assert images.stat().st_size < 100_000
    fails_cleanly(
        capsys,
        train_on(tmp_path, "mnist-t10k", "--arch", "mlp"),
        "t10k-images-idx3-ubyte.gz has extra bytes at its end",
    )
    peak = _bounded_peak(lambda: read_idx(images, ndim=3))
    assert peak < 4 << 20, f"read {peak} bytes into memory for a file promising 7,840"


def test_idx_header_promising_more_than_the_dataset_holds_is_refused_unread(tmp_path, capsys):
    folder = tmp_path / "mnist"
    folder.mkdir()
    images = folder / "t10k-images-idx3-ubyte.gz"
    # A million 28x28 images promised (784 MB), 100 MB of zeros there: more than MNIST can be.
    _gz(images, _idx_header(1_000_000, 28, 28), zeros=100 << 20)
    _gz(folder / "t10k-labels-idx1-ubyte.gz", _idx_header(10), bytes(10))
    fails_cleanly(
        capsys,
        train_on(tmp_path, "mnist-t10k", "--arch", "mlp"),
        "t10k-images-idx3-ubyte.gz has a header that promises 784000000 bytes",
    )
    # a .gz shorter than its header says is refused too
    _gz(images, _idx_header(10, 28, 28), bytes(100))
    with pytest.raises(VimaeError, match="is truncated: its header promises 7840 bytes"):
        read_idx(images, ndim=3)


def _zip_bomb(path, member: str, size: int) -> None:
    """A zip whose one member is `size` zero bytes (about 1,000x smaller compressed)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open(member, "w") as f:
        for start in range(0, size, 1 << 20):
            f.write(bytes(min(1 << 20, size - start)))


def test_zip_bomb_member_is_refused_unread(tmp_path, capsys):
    folder = tmp_path / "omniglot"
    folder.mkdir()
    for name in ("images_background_small1", "images_background_small2"):
        member = f"{name}/Latin/character01/0101_01.png"
        _zip_bomb(folder / f"{name}.zip", member, 200 << 20)  # 200 MB of zeros, 200 KB zipped
    fails_cleanly(
        capsys,
        train_on(tmp_path, "omniglot-small", "--arch", "mlp"),
        "images_background_small1.zip member",
        "declares 209715200 bytes",
    )
    peak = _bounded_peak(lambda: load_dataset("omniglot-small", "train", tmp_path))
    assert peak < 16 << 20, f"read {peak} bytes into memory for a bomb member"


def _tar(path, *members: tuple[str, bytes | None]) -> None:
    """A tar.gz of (name, content) members; content None makes a folder member."""
    with tarfile.open(path, "w:gz") as tf:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(content)
                tf.addfile(info, io.BytesIO(content))


@pytest.mark.parametrize(
    "members, fragment",
    [
        ([(".", b"a file named dot")], "has a file member named '.'"),
        ([("./", None), (".", b"again")], "has a file member named '.'"),
        (
            [("cifar-10-batches-py", b"x"), ("cifar-10-batches-py/data_batch_1", b"y")],
            "holds 'cifar-10-batches-py' both as a file and as a folder",
        ),
        (
            [("cifar-10-batches-py/data_batch_1", b"y"), ("cifar-10-batches-py", b"x")],
            "holds 'cifar-10-batches-py' both as a file and as a folder",
        ),
        (
            [("d/a", b"x"), ("d/a/", None)],
            "holds 'd/a' both as a file and as a folder",
        ),
        (
            [("cifar-10-batches-py/test_batch", b"1"), ("cifar-10-batches-py/test_batch", b"2")],
            "holds the file 'cifar-10-batches-py/test_batch' twice",
        ),
    ],
)
def test_odd_tar_layouts_are_refused(tmp_path, capsys, members, fragment):
    folder = tmp_path / "cifar10"
    folder.mkdir()
    _tar(folder / "cifar-10-python.tar.gz", *members)
    fails_cleanly(
        capsys, train_on(tmp_path, "cifar10", "--arch", "mlp"), "cifar-10-python.tar.gz", fragment
    )
    assert sorted(p.name for p in folder.iterdir()) == ["cifar-10-python.tar.gz"]  # nothing left


# --- Every value checked before work starts (issue 13) -----------------------------------------

NON_FINITE_FLAGS = [
    ("--lam", "model.lam"),
    ("--beta", "model.beta"),
    ("--lr", "train.lr"),
    ("--alpha", "model.alpha"),
    ("--rate-target", "model.rate_target"),
    ("--encoder-noise", "model.encoder_noise"),
    ("--encoder-noise-bound", "model.encoder_noise_bound"),
    ("--width", "model.width"),
    ("--recon-weight", "model.recon_weight"),
    ("--test-fraction", "data.test_fraction"),
]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("flag, key", NON_FINITE_FLAGS, ids=[f for f, _ in NON_FINITE_FLAGS])
def test_every_float_flag_refuses_nan_and_inf_by_name(tmp_path, capsys, flag, key, value):
    fails_cleanly(
        capsys,
        ["train", *TINY, f"{flag}={value}", "--out", str(tmp_path / "run")],
        f"{flag} ({key}) must be a finite number",
    )
    assert not (tmp_path / "run").exists()


def test_set_and_config_files_refuse_nan_too(tmp_path, capsys):
    out = str(tmp_path / "run")
    fails_cleanly(capsys, ["train", *TINY, "--set", "train.beta1=nan", "--out", out], "train.beta1")
    config = tmp_path / "c.json"
    config.write_text('{"model": {"lam": NaN}}')
    fails_cleanly(capsys, ["train", *TINY, "--config", str(config), "--out", out], "--lam")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--seed", str(2**63)], "--seed (train.seed) must be at most 9223372036854775807"),
        (["--seed", "-1"], "--seed (train.seed) must be at least 0"),
        (["--data-seed", str(2**64)], "--data-seed (data.seed) must be at most"),
        (["--latent-dim", "1000000"], "--latent-dim (model.latent_dim) must be at most 4096"),
        (["--image-size", "100000"], "--image-size (data.image_size) must be at most 2048"),
        (["--width", "1000"], "--width (model.width) must be at most 16"),
        (["--batch-size", "10000000"], "--batch-size (train.batch_size) must be at most"),
        (["--epochs", str(2**40)], "--epochs (train.epochs) must be at most"),
        (["--train-size", "-5"], "data.train_size must be at least one batch"),
        (["--seed", "1e30"], "--seed (train.seed) expects int"),
    ],
)
def test_integers_have_sane_bounds_checked_before_allocation(tmp_path, capsys, args, fragment):
    fails_cleanly(capsys, ["train", *TINY, *args, "--out", str(tmp_path / "run")], fragment)


def test_the_largest_seed_trains(tmp_path):
    assert main(["train", *TINY, "--seed", str(2**63 - 1), "--out", str(tmp_path / "run")]) == 0


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("digits") / "run"
    assert main(["train", *TINY, "--model", "vae", "--out", str(run)]) == 0
    return run


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--test-size", "0"], "--test-size must be between 1 and"),
        (["--test-size", "-3"], "--test-size must be between 1 and"),
        (["--parzen-bandwidths", "0.1,nan"], "--parzen-bandwidths must be a finite number"),
        (["--corruptions", "gauss:nan"], "needs a finite level"),
        (["--corruptions", "mask:inf"], "needs a finite level"),
        (["--fid-samples", str(10**9)], "--fid-samples must be at most 10000000"),
        (["--seed", str(2**64)], "--seed must be at most"),
        (["--device", "cuda:x"], "unknown device 'cuda:x'"),
        (["--device", "tpu"], "unknown device 'tpu'"),
    ],
)
def test_evaluate_checks_every_value_before_loading_anything(digits_run, capsys, args, fragment):
    fails_cleanly(
        capsys, ["evaluate", str(digits_run), "--metrics", "reconstruction", *args], fragment
    )
    assert not (digits_run / "metrics.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda_is_one_sentence(tmp_path, digits_run, capsys):
    fails_cleanly(
        capsys,
        ["train", *TINY, "--device", "cuda", "--out", str(tmp_path / "run")],
        "no usable CUDA GPU",
    )
    fails_cleanly(capsys, ["evaluate", str(digits_run), "--device", "cuda:1"], "no usable CUDA GPU")


def test_unknown_devices_are_one_sentence(tmp_path, capsys):
    for device in ("tpu", "cuda:-1", "gpu"):
        fails_cleanly(
            capsys,
            ["train", *TINY, "--device", device, "--out", str(tmp_path / "run")],
            f"unknown device {device!r}",
        )


def test_train_out_that_is_a_file_or_under_a_file_is_one_sentence(tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    fails_cleanly(capsys, ["train", *TINY, "--out", str(a_file)], "is a file, not a folder")
    fails_cleanly(capsys, ["train", *TINY, "--out", str(a_file / "run")], "is a file, not a folder")
    assert a_file.read_text() == "mine"


def test_train_out_that_cannot_be_written_is_one_sentence(tmp_path, capsys):
    if os.geteuid() == 0:  # root writes anywhere it may; sysfs refuses even root
        target = Path("/sys/vimae-test-run")
        if os.access("/sys", os.W_OK) and not Path("/sys").is_mount():
            pytest.skip("no read-only place to write to on this machine")
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / "run"
    fails_cleanly(capsys, ["train", *TINY, "--out", str(target)], "permission denied or read-only")
