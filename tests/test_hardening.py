"""Hardening, third round (issue 24): untrusted arrays bounded before they are read, paths every
reader can open, an API that checks what it is given, photos upright, splits that agree, options
checked against the data, special files named, and the closed forms that catch a wrong constant.
Each case is one sentence and exit 2 (or a metric that says why), never a traceback."""

import json
import math
import os
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import DIGITS_MLP, fails_cleanly
from PIL import Image

import vimae
from vimae.cli import main
from vimae.data import load_dataset
from vimae.data import npz as npz_module
from vimae.errors import VimaeError, VimaeNote
from vimae.models.divergence import mmd, mmd_blocked
from vimae.runs.checkpoint import BEST_FILE, CHECKPOINT_FILE, read_checkpoint


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny run on digits (a quarter-width mlp, d = 2), trained once for these tests."""
    run = tmp_path_factory.mktemp("run") / "run"
    argv = ["train", *DIGITS_MLP, "--latent-dim", "2", "--epochs", "1", "--out", str(run)]
    assert main(argv) == 0
    return run


# ---------------------------------------------------------------- 1. bounded arrays


def _npz_with_a_huge_member(path: Path, shape: tuple[int, ...]) -> None:
    """A small compressed .npz whose one member declares (and holds) a large uint8 array."""
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z,
        z.open("x.npy", "w", force_zip64=True) as f,
    ):
        header = {"descr": "|u1", "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(f, header)
        left = math.prod(shape)
        chunk = bytes(1 << 20)
        while left:
            f.write(chunk[: min(left, len(chunk))])
            left -= min(left, len(chunk))


def test_an_array_larger_than_memory_is_refused_before_it_is_read(tmp_path, monkeypatch, capsys):
    bomb = tmp_path / "bomb.npz"
    _npz_with_a_huge_member(bomb, (300, 100, 100))  # 3 MB of data in a few kB
    assert bomb.stat().st_size < 100_000
    monkeypatch.setattr(npz_module, "available_memory", lambda: 1 << 20)  # 1 MiB free
    allocated = []
    real = np.lib.format.read_array
    monkeypatch.setattr(
        np.lib.format, "read_array", lambda *a, **k: allocated.append(1) or real(*a, **k)
    )
    with pytest.raises(VimaeError, match=r"too large to load .* `vimae shards`"):
        load_dataset("array", "train", bomb)
    assert allocated == []  # refused from the header alone


def test_eight_bit_arrays_stay_eight_bit(tmp_path):
    path = tmp_path / "x.npz"
    x = np.random.default_rng(0).integers(0, 256, (40, 8, 8), dtype=np.uint8)
    np.savez(path, x_train=x, x_test=x[:10])
    data = load_dataset("array", "train", path)
    assert data.pixels.dtype == torch.uint8 and torch.equal(data.pixels[:, 0], torch.from_numpy(x))


def test_a_shard_label_file_whose_header_lies_is_refused(tmp_path):
    from vimae.data.stream import write_shards

    data = load_dataset("digits", "train").subset(200)
    write_shards(data, tmp_path / "train", shard_size=100)
    labels = tmp_path / "train" / "labels-00000.npy"
    with open(labels, "wb") as f:  # a header claiming 1e11 labels, and nothing behind it
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<i8", "fortran_order": False, "shape": (10**11,)}
        )
    with pytest.raises(VimaeError, match=r"labels-00000\.npy must hold 100 integer labels"):
        load_dataset("shards", "train", tmp_path)


def test_inconsistent_splits_are_refused_when_the_data_is_loaded(tmp_path, capsys):
    path = tmp_path / "x.npz"
    np.savez(path, x_train=np.zeros((200, 8, 8), np.uint8), x_test=np.zeros((20, 9, 9), np.uint8))
    argv = ["train", "--dataset", "array", "--data-dir", str(path), "--arch", "mlp"]
    fails_cleanly(
        capsys,
        [*argv, "--out", str(tmp_path / "run")],
        "x_train images of shape (8, 8) but x_test images of shape (9, 9)",
    )
    assert not (tmp_path / "run").exists()


def test_nan_in_an_array_file_is_named_as_such(tmp_path):
    x = np.full((40, 8, 8), 0.5, np.float32)
    x[3, 2, 2] = np.nan
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(VimaeError, match="holds NaN or infinite values in 1 of its 40 images"):
        load_dataset("array", "train", tmp_path / "x.npy")


# ---------------------------------------------------------------- 2. paths


def test_an_out_that_is_not_utf8_is_refused_before_training(tmp_path, capsys):
    out = Path(os.fsdecode(bytes(tmp_path) + b"/run-\xff"))
    fails_cleanly(
        capsys, ["train", *DIGITS_MLP, "--epochs", "1", "--out", str(out)], "is not valid UTF-8"
    )
    assert not os.path.exists(os.fsencode(out))


def test_an_empty_out_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", *DIGITS_MLP, "--out", ""])
    assert exit_.value.code == 2 and "--out: is empty" in capsys.readouterr().err


# ---------------------------------------------------------------- 3. the Python API


def test_model_methods_check_their_input_and_return_plain_tensors(trained):
    model = vimae.load(trained)
    x = load_dataset("digits", "test").images[:5]
    codes = model.encode(x)
    assert not codes.requires_grad and codes.dtype == torch.float32
    assert torch.allclose(model.encode(x.double()), codes)  # any float precision
    as_bytes = (x * 255).round().to(torch.uint8)
    assert torch.allclose(model.encode(as_bytes), model.encode(as_bytes.float() / 255))
    assert torch.allclose(model.encode(x.numpy()), codes)  # an array
    assert model.encode(x[:, 0]).shape == (5, 2)  # (N, H, W)
    for bad, words in (
        (x.clone().fill_(float("nan")), "NaN or infinite"),
        (x * 255, "values from 0 to 255 (they look like 0..255: divide by 255)"),
        (x[:0], "hold no images"),
        (torch.zeros(5, 1, 9, 9), "the model takes (1, 8, 8)"),
    ):
        with pytest.raises(VimaeError, match=words.replace("(", r"\(").replace(")", r"\)")):
            model.encode(bad)
    images = model.decode(codes)
    assert images.shape == (5, 1, 8, 8) and not images.requires_grad
    with pytest.raises(VimaeError, match=r"codes must have shape \(N, 2\)"):
        model.decode(torch.zeros(5, 3))
    assert not model.reconstruct(x).requires_grad and not model.draw_codes(x).requires_grad


def test_fit_takes_float64_and_refuses_what_encode_refuses():
    x = load_dataset("digits", "train").images[:200].double()
    model = vimae.fit("vae", x, arch="mlp", width=0.25, latent_dim=2, epochs=1, progress=False)
    assert model.encode(x).shape == (200, 2)
    with pytest.raises(VimaeError, match="hold NaN or infinite values"):
        vimae.fit("vae", x.clone().fill_(float("nan")), arch="mlp", epochs=1, progress=False)


def test_evaluate_takes_one_metric_name_and_refuses_an_empty_list(trained, capsys):
    model = vimae.load(trained)
    test = load_dataset("digits", "test").images
    out = vimae.evaluate(model, test, metrics="mmd")  # a name, not the letters of a name
    assert list(out) == ["codes", "mmd"] and out["mmd"]["status"] == "ok"
    fails_cleanly(capsys, ["evaluate", str(trained), "--metrics", ""], "--metrics names no metric")


# ---------------------------------------------------------------- 4. photos and folders


def _photo(path: Path, upright: np.ndarray, orientation: int) -> None:
    """Save `upright` as a JPEG stored turned, with the EXIF tag that turns it back."""
    stored = {1: upright, 6: np.rot90(upright, 1)}[orientation]  # 6: display rotated 90 CW
    image = Image.fromarray(np.ascontiguousarray(stored))
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(path, exif=exif.tobytes(), quality=100)


def test_a_photo_turned_by_its_exif_loads_upright(tmp_path):
    upright = np.zeros((12, 8), np.uint8)
    upright[:3] = 255  # a bright top band
    for i in range(20):
        _photo(tmp_path / f"{i}.jpg", upright, 6 if i == 7 else 1)
    data = load_dataset("folder", "train", tmp_path)
    assert data.image_shape == (1, 12, 8)  # the turned one is 12 x 8 too, so no size error
    images = data.images[:, 0]
    assert (images[:, :3].mean((1, 2)) > 0.9).all() and (images[:, 4:].mean((1, 2)) < 0.1).all()


def test_one_colour_image_among_grey_ones_is_a_note(tmp_path):
    for i in range(10):
        Image.fromarray(np.full((8, 8), 20 * i, np.uint8)).save(tmp_path / f"{i}.png")
    Image.new("CMYK", (8, 8)).save(tmp_path / "odd.jpg")
    with pytest.warns(VimaeNote, match=r"10 of the 11 images are grey but .*odd\.jpg is CMYK"):
        data = load_dataset("folder", "train", tmp_path)
    assert data.image_shape[0] == 3


# ---------------------------------------------------------------- 6-9. options, files, exits


def test_options_that_cannot_work_on_the_data_are_refused_before_any_metric(trained, capsys):
    fails_cleanly(
        capsys,
        ["evaluate", str(trained), "--metrics", "entropy", "--knn-k", "100000"],
        "--knn-k 100000 needs more codes than that, but the test split has 297 images",
    )
    assert not (trained / "metrics.json").exists()


def test_a_one_class_test_split_says_why_it_has_no_accuracy(trained, tmp_path):
    model = vimae.load(trained)
    test = load_dataset("digits", "test")
    ones = test.take(torch.nonzero(test.labels == 1).flatten())
    out = vimae.evaluate(model, ones.images, metrics=["semi-supervised"], labels=ones.labels)
    values = out["semi-supervised"]
    assert values["status"] == "not computed" and "holds one class only" in values["reason"]


def test_a_cache_dir_that_is_a_file_is_named_and_nothing_computed_exits_1(
    trained, tmp_path, capsys
):
    cache = tmp_path / "cache-file"
    cache.write_text("not a folder")
    argv = ["evaluate", str(trained), "--metrics", "fid", "--fid-features", "classifier",
            "--fid-classifier-steps", "5", "--cache-dir", str(cache), "--out",
            str(tmp_path / "m.json")]  # fmt: skip
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "choose another --cache-dir (or $VIMAE_CACHE_DIR)" in captured.out
    assert "none of the metrics asked for (fid) could be computed" in captured.err


@pytest.mark.parametrize("special", ["/dev/zero", "fifo"])
def test_a_config_that_is_a_special_file_is_named(tmp_path, capsys, special):
    path = Path(special)
    if special == "fifo":
        path = tmp_path / "fifo.toml"
        os.mkfifo(path)
    kind = "a character device" if special == "/dev/zero" else "a FIFO"
    fails_cleanly(capsys, ["train", "--config", str(path), "--out", str(tmp_path / "r")], kind)


def test_inception_weights_that_are_dev_null_are_named_and_exit_1(trained, tmp_path, capsys):
    argv = ["evaluate", str(trained), "--metrics", "fid", "--fid-features", "inception",
            "--inception-weights", "/dev/null", "--out", str(tmp_path / "m.json")]  # fmt: skip
    assert main(argv) == 1
    assert "/dev/null is not a regular file" in capsys.readouterr().out


def test_a_training_log_that_is_a_device_is_named(trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").symlink_to("/dev/zero")
    fails_cleanly(capsys, ["plot", str(run)], "metrics.jsonl is a character device, not a")


# ---------------------------------------------------------------- 10. sentences


def test_a_validation_share_that_leaves_no_batch_names_itself(capsys, tmp_path):
    fails_cleanly(
        capsys,
        ["train", *DIGITS_MLP, "--val-fraction", "0.9999", "--out", str(tmp_path / "r")],
        "--val-fraction (data.val_fraction) 0.9999 leaves",
        "lower --val-fraction",
    )


def test_a_checkpoint_that_does_not_fit_its_config_says_which_tensor(trained, tmp_path):
    from vimae.config import RunConfig
    from vimae.models import build_model
    from vimae.runs.checkpoint import load_weights

    tensors, metadata = read_checkpoint(trained / CHECKPOINT_FILE)
    config = RunConfig.from_dict(json.loads(metadata["config"]))
    config.model.latent_dim = 3
    with pytest.raises(VimaeError, match=r"\(size mismatch for|\(Missing key|\(Unexpected key"):
        load_weights(build_model(config.model), tensors, trained / CHECKPOINT_FILE)


# ---------------------------------------------------------------- the gaps of the test audit


def test_best_weights_are_those_of_the_lowest_validation_loss(tmp_path, monkeypatch):
    """best.safetensors holds the weights of the epoch with the lowest validation loss, not the
    last epoch's; and a run with validation resumed mid-way ends exactly where one that ran
    straight through ends (best loss, its epoch, the best file, the checkpoint)."""
    from vimae.runs import fit as fit_module

    losses = iter([3.0, 1.0, 2.0, 4.0])  # the second epoch is the best
    real = fit_module.validation_loss
    snapshots = {}

    def scripted(model, data, batch_size, seed):
        values = real(model, data, batch_size, seed)
        values["val_loss"] = next(losses)
        snapshots[len(snapshots)] = {k: v.clone() for k, v in model.state_dict().items()}
        return values

    monkeypatch.setattr(fit_module, "validation_loss", scripted)
    argv = ["train", *DIGITS_MLP, "--epochs", "4", "--val-fraction", "0.1"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0
    best, meta = read_checkpoint(tmp_path / "run" / BEST_FILE)
    assert json.loads(meta["best"]) == {"val_loss": 1.0, "epoch": 2}
    for name, value in snapshots[1].items():
        assert torch.equal(best[f"model.{name}"], value)
    assert not all(torch.equal(best[f"model.{n}"], v) for n, v in snapshots[3].items())


def test_a_run_with_validation_resumes_exactly(tmp_path):
    argv = ["train", *DIGITS_MLP, "--val-fraction", "0.1", "--patience", "2"]
    assert main([*argv, "--epochs", "4", "--out", str(tmp_path / "straight")]) == 0
    assert main([*argv, "--epochs", "2", "--out", str(tmp_path / "resumed")]) == 0
    assert main([*argv, "--epochs", "4", "--resume", "--out", str(tmp_path / "resumed")]) == 0
    for name in (CHECKPOINT_FILE, BEST_FILE):
        (a, meta_a), (b, meta_b) = (
            read_checkpoint(tmp_path / d / name) for d in ("straight", "resumed")
        )
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
        assert meta_a.get("best") == meta_b.get("best")
    progress = [json.loads(read_checkpoint(tmp_path / d / CHECKPOINT_FILE)[1]["progress"])
                for d in ("straight", "resumed")]  # fmt: skip
    assert progress[0] == progress[1]


@pytest.mark.parametrize("scale", [0.5, 1.0])
def test_the_mmd_of_two_gaussians_under_a_gaussian_kernel_is_the_closed_form(scale):
    """For x ~ N(m1, s1^2 I), y ~ N(m2, s2^2 I) in d dimensions and k = exp(-|a - b|^2 / C),
    E k(x, y) = (1 + 2 (s1^2 + s2^2) / C)^(-d/2) exp(-|m1 - m2|^2 / (C + 2 (s1^2 + s2^2))); the
    MMD^2 sums E k(x, x') + E k(y, y') - 2 E k(x, y) over the kernel's scales."""
    from vimae.models.divergence import kernel_scales

    d, n = 2, 3000
    gen = torch.Generator().manual_seed(0)
    m1, m2 = torch.zeros(d), torch.full((d,), 0.7)
    s1, s2 = 1.0, scale
    x = (m1 + s1 * torch.randn(n, d, generator=gen)).double()
    y = (m2 + s2 * torch.randn(n, d, generator=gen)).double()

    def expected_kernel(va: float, vb: float, shift: float, c: float) -> float:
        v = va + vb
        return (1 + 2 * v / c) ** (-d / 2) * math.exp(-shift / (c + 2 * v))

    shift = float(((m1 - m2) ** 2).sum())
    exact = sum(
        expected_kernel(s1**2, s1**2, 0.0, c)
        + expected_kernel(s2**2, s2**2, 0.0, c)
        - 2 * expected_kernel(s1**2, s2**2, shift, c)
        for c in kernel_scales(d)
    )
    estimate = mmd_blocked(x, y, "rbf")
    assert estimate == pytest.approx(exact, rel=0.08)
    assert float(mmd(x[:500], y[:500], "rbf")) == pytest.approx(exact, rel=0.3)


def test_a_flipped_byte_in_best_weights_or_a_loaded_file_is_refused(trained, tmp_path):
    damaged = tmp_path / "best.safetensors"
    shutil.copy(trained / CHECKPOINT_FILE, damaged)
    data = bytearray(damaged.read_bytes())
    data[-5] ^= 0xFF  # a byte of the last tensor
    damaged.write_bytes(bytes(data))
    with pytest.raises(VimaeError, match="is damaged: its tensors do not match the digest"):
        vimae.load(damaged)


@pytest.mark.parametrize("command", ["shards", "reproduce", "evaluate"])
def test_a_second_writer_is_refused_while_the_lock_is_held(trained, tmp_path, capsys, command):
    """The folder lock of `vimae shards`, `vimae reproduce` and an evaluate that writes into a
    run folder: held by this process here, the command refuses with the holder named."""
    from vimae.files import run_lock

    folder = {"shards": tmp_path / "shards", "reproduce": tmp_path / "rep", "evaluate": trained}
    argv = {
        "shards": ["shards", "--dataset", "digits", "--out", str(folder["shards"])],
        "reproduce": ["reproduce", "table3", "--out", str(folder["reproduce"])],
        "evaluate": ["evaluate", str(trained), "--metrics", "reconstruction"],
    }[command]
    import subprocess
    import sys

    with run_lock(folder[command], "a test that holds the lock"):
        done = subprocess.run([sys.executable, "-m", "vimae.cli", *argv], capture_output=True,
                              text=True, timeout=300)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "is in use by a test that holds the lock" in done.stderr


def test_warnings_are_notes_in_the_command_line(tmp_path, capsys):
    for i in range(4):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "c.png")
    with warnings.catch_warnings():
        warnings.simplefilter("default", VimaeNote)
        main(["shards", "--dataset", "folder", "--data-dir", str(tmp_path), "--out",
              str(tmp_path.parent / "shards-out"), "--test-fraction", "0.2"])  # fmt: skip
    assert "vimae: note: 4 of the 5 images are grey" in capsys.readouterr().err
