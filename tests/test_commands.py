"""The commands on a trained model (`vimae sample`, `encode`, `reconstruct`, `interpolate`,
`traverse`, `plot`, `export`) end to end on two tiny real runs: what each writes is what the model
computes, the pictures have the size their rows and columns give, the run's own files are never
touched, and bad input is one sentence."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import DIGITS_MLP, fails_cleanly
from PIL import Image
from safetensors.torch import load_file

from vimae.cli import main
from vimae.commands import load_exported
from vimae.commands.curves import curve_panels
from vimae.config import load_config
from vimae.data import PoolSplit
from vimae.errors import VimaeError
from vimae.plotting.imagegrid import grid_scale
from vimae.runs.evaluation import load_test_split
from vimae.runs.folder import RUN_FILES
from vimae.runs.loading import load_model

TINY = [*DIGITS_MLP, "--epochs", "1"]
CELL = 8 + 1  # a digit and its grid line
SCALE = grid_scale(8)  # 8x8 digits are enlarged to stay visible


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """VIMAE-n with a 2-d code: deterministic codes."""
    folder = tmp_path_factory.mktemp("vimae") / "run"
    assert main(["train", *TINY, "--latent-dim", "2", "--out", str(folder)]) == 0
    return folder


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory) -> Path:
    """A VAE with 40 latents: random codes, a two-output ONNX encoder, a capped traversal."""
    folder = tmp_path_factory.mktemp("vae") / "run"
    assert main(["train", *TINY, "--model", "vae", "--latent-dim", "40", "--out", str(folder)]) == 0
    return folder


def _test_images(run_dir: Path, size: int | None, seed: int = 0):
    """The test images the commands read: the run's dataset, split and seeded draw."""
    config = load_config(run_dir)
    d = config.data
    shape = config.model.image_shape
    pool = PoolSplit.of(d)
    return load_test_split(d.dataset, d.data_dir, shape, size, d.image_size, pool, seed)


def _png_size(path: Path, rows: int, columns: int) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (SCALE * (columns * CELL + 1), SCALE * (rows * CELL + 1))


def _digests(run_dir: Path) -> dict[str, str]:
    return {
        name: hashlib.sha256((run_dir / name).read_bytes()).hexdigest()
        for name in RUN_FILES
        if (run_dir / name).exists()
    }


def test_sample_is_seeded_and_decodes_prior_draws(run, tmp_path, capsys):
    assert main(["sample", str(run), "-n", "10", "--out", str(tmp_path / "a")]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {tmp_path / 'a' / 'samples.png'}" in printed and "took" in printed
    images = np.load(tmp_path / "a" / "samples.npy")
    assert images.shape == (10, 1, 8, 8) and images.dtype == np.float32
    _png_size(tmp_path / "a" / "samples.png", rows=3, columns=4)
    expected = load_model(run).sample(10, seed=0)
    np.testing.assert_allclose(images, expected.numpy(), atol=1e-6)
    record = json.loads((tmp_path / "a" / "samples.json").read_text())
    assert record["checkpoint_step"] > 0 and record["options"]["seed"] == 0

    assert main(["sample", str(run), "-n", "10", "--out", str(tmp_path / "b")]) == 0
    assert main(["sample", str(run), "-n", "10", "--seed", "1", "--out", str(tmp_path / "c")]) == 0
    assert np.array_equal(images, np.load(tmp_path / "b" / "samples.npy"))
    assert not np.allclose(images, np.load(tmp_path / "c" / "samples.npy"))


def test_defaults_write_to_run_outputs_and_never_touch_the_run(run, capsys):
    before = _digests(run)
    assert main(["sample", str(run), "-n", "4"]) == 0
    assert main(["encode", str(run)]) == 0
    assert main(["plot", str(run)]) == 0
    made = {p.name for p in (run / "outputs").iterdir()}
    assert {"samples.png", "samples.npy", "codes-test.npz", "training-curves.png"} <= made
    assert _digests(run) == before
    assert {p.name for p in run.iterdir()} - set(RUN_FILES) == {"outputs"}


@pytest.mark.parametrize("draw", [False, True])
def test_encode_gives_the_encoders_codes_and_labels(run, vae_run, tmp_path, draw):
    out = tmp_path / "codes.npz"
    flags = ["--draw"] if draw else []
    for run_dir in (run, vae_run):
        assert main(["encode", str(run_dir), "--out", str(out), "--seed", "3", *flags]) == 0
        saved = np.load(out)  # no pickle needed
        test = _test_images(run_dir, None)
        model = load_model(run_dir)
        with torch.no_grad():
            means = model.encode(test.images)
        assert saved["codes"].shape == (len(test), model.latent_dim)
        assert np.array_equal(saved["labels"], test.labels.numpy())
        info = json.loads(str(saved["info"]))
        assert info["data"]["images"] == len(test) and info["options"]["draw"] == draw
        random = draw and model.codes_are_random
        with torch.no_grad():
            drawn = model.draw_codes(test.images, torch.Generator().manual_seed(3))
        expected = drawn if random else means
        np.testing.assert_allclose(saved["codes"], expected.numpy(), atol=1e-5)
        assert random != np.allclose(saved["codes"], means.numpy(), atol=1e-3)


def test_encode_a_stratified_draw_of_the_training_split(run, tmp_path):
    out = tmp_path / "train.npz"
    assert main(["encode", str(run), "--split", "train", "--size", "50", "--out", str(out)]) == 0
    saved = np.load(out)
    assert saved["codes"].shape == (50, 2)
    assert len(np.unique(saved["labels"])) == 10  # stratified: every class, not the first 50


def test_reconstruct_shows_test_images_above_the_models_reconstructions(run, tmp_path, capsys):
    assert main(["reconstruct", str(run), "-n", "12", "--seed", "2", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    saved = np.load(tmp_path / "reconstructions.npz")
    test = _test_images(run, 12, seed=2)
    assert np.array_equal(saved["images"], test.images.numpy())
    assert np.array_equal(saved["labels"], test.labels.numpy())
    expected = load_model(run).reconstruct(test.images).numpy()
    np.testing.assert_allclose(saved["reconstructions"], expected, atol=1e-6)
    mse = float(((saved["images"] - saved["reconstructions"]) ** 2).mean())
    assert f"mean squared error {mse:.4g} per pixel" in printed
    # 12 images, 8 to a row: two blocks of an originals row above a reconstructions row.
    _png_size(tmp_path / "reconstructions.png", rows=4, columns=8)


def test_interpolation_ends_are_the_pairs_decoded_codes(run, tmp_path):
    argv = ["interpolate", str(run), "--pairs", "3", "--steps", "5", "--out", str(tmp_path)]
    assert main(argv) == 0
    saved = np.load(tmp_path / "interpolations.npz")
    images, codes, originals = saved["images"], saved["codes"], saved["originals"]
    assert images.shape == (3, 5, 1, 8, 8) and codes.shape == (3, 5, 2)
    model = load_model(run)
    with torch.no_grad():
        ends = [model.encode(torch.from_numpy(originals[:, k])) for k in (0, 1)]
        decoded = [model.decode(z).numpy() for z in ends]
    np.testing.assert_allclose(codes[:, 0], ends[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(codes[:, -1], ends[1].numpy(), atol=1e-6)
    np.testing.assert_allclose(images[:, 0], decoded[0], atol=1e-6)
    np.testing.assert_allclose(images[:, -1], decoded[1], atol=1e-6)
    t = np.linspace(0, 1, 5)[None, :, None]
    line = (1 - t) * codes[:, :1] + t * codes[:, -1:]
    np.testing.assert_allclose(codes, line, atol=1e-5)
    test = _test_images(run, None)
    for k in range(3):  # the pairs are test images
        assert any(np.array_equal(originals[k, 0], x) for x in test.images.numpy())
    _png_size(tmp_path / "interpolations.png", rows=3, columns=5 + 2)  # with the two images


def test_traversal_rows_vary_one_latent_each(run, vae_run, tmp_path, capsys):
    argv = ["traverse", str(run), "--steps", "7", "--range", "2", "--out", str(tmp_path / "r")]
    assert main(argv) == 0
    saved = np.load(tmp_path / "r" / "traversal.npz")
    codes, base, images = saved["codes"], saved["base"], saved["images"]
    assert codes.shape == (2, 7, 2) and images.shape == (2, 7, 1, 8, 8)
    model = load_model(run)
    with torch.no_grad():
        assert np.allclose(base, model.encode(_test_images(run, 1).images)[0].numpy(), atol=1e-6)
        decoded = model.decode(torch.from_numpy(codes.reshape(-1, 2))).numpy()
    np.testing.assert_allclose(images.reshape(-1, 1, 8, 8), decoded, atol=1e-6)
    for row, dim in enumerate(saved["dims"]):
        moved = codes[row] - base
        others = np.delete(moved, dim, axis=1)
        assert np.all(others == 0)
        np.testing.assert_allclose(moved[:, dim], np.linspace(-2, 2, 7), atol=1e-6)
    _png_size(tmp_path / "r" / "traversal.png", rows=2, columns=7)

    capsys.readouterr()
    argv = ["traverse", str(vae_run), "--zero", "--out", str(tmp_path / "v")]
    assert main(argv) == 0
    assert "the first 32 of 40 latent dimensions" in capsys.readouterr().out
    saved = np.load(tmp_path / "v" / "traversal.npz")
    assert saved["codes"].shape == (32, 9, 40) and np.all(saved["base"] == 0)
    _png_size(tmp_path / "v" / "traversal.png", rows=32, columns=9)


def test_training_curves_panel_every_logged_quantity(run, tmp_path):
    out = tmp_path / "curves.png"
    assert main(["plot", str(run), "--out", str(out)]) == 0
    with Image.open(out) as image:
        assert image.format == "PNG" and min(image.size) > 200
    rows = [
        {"kind": "step", "epoch": 0, "step": 10, "loss": 3.0, "recon": 2.0},
        {"kind": "epoch", "epoch": 0, "step": 20, "seconds": 1.5, "loss": 2.5, "val_loss": 2.7},
        {"kind": "lr", "step": 20, "lr": 1e-4, "previous": 1e-3},
        {"kind": "step", "epoch": 1, "step": 30, "loss": 2.0, "recon": 1.0, "note": "text"},
    ]
    panels, marks = curve_panels(rows)
    assert [p.title for p in panels] == ["loss", "recon"]  # loss terms only: no "seconds"
    loss = {c.kind: (c.steps, c.values) for c in panels[0].curves}
    assert loss == {
        "step": ([10, 30], [3.0, 2.0]),
        "epoch": ([20], [2.5]),
        "validation": ([20], [2.7]),
    }
    assert marks == [(20, "lr -> 0.0001")]


def test_export_round_trips_and_is_verified(run, tmp_path, capsys):
    out = tmp_path / "exported"
    assert main(["export", str(run), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    tensors = load_file(str(out / "model.safetensors"))
    assert all(key.startswith("model.") for key in tensors)  # no optimizer, no RNG
    original, exported = load_model(run), load_exported(out)
    x = _test_images(run, 20).images
    with torch.no_grad():
        assert torch.equal(original.encode(x), exported.encode(x))
        assert torch.equal(original.reconstruct(x), exported.reconstruct(x))
    # An export folder is a RUN for the other commands.
    assert main(["sample", str(out), "-n", "6", "--out", str(tmp_path / "s")]) == 0
    np.testing.assert_allclose(
        np.load(tmp_path / "s" / "samples.npy"), original.sample(6, seed=0).numpy(), atol=1e-6
    )
    damaged = tmp_path / "damaged"
    shutil.copytree(out, damaged)
    data = bytearray((damaged / "model.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (damaged / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(VimaeError, match="damaged"):
        load_exported(damaged)
    other = tmp_path / "other"
    shutil.copytree(out, other)
    config = json.loads((other / "config.json").read_text())
    config["model"]["latent_dim"] = 3
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(VimaeError, match="different models"):
        load_exported(other)


@pytest.mark.parametrize("which", ["run", "vae_run"])
def test_onnx_graphs_match_pytorch(which, request, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    run_dir = request.getfixturevalue(which)
    assert main(["export", str(run_dir), "--out", str(tmp_path), "--onnx"]) == 0
    model = load_model(run_dir)
    x = _test_images(run_dir, 7).images  # another batch size than the traced one
    encoder = ort.InferenceSession(str(tmp_path / "encoder.onnx"))
    decoder = ort.InferenceSession(str(tmp_path / "decoder.onnx"))
    outputs = encoder.run(None, {"images": x.numpy()})
    with torch.no_grad():
        codes = model.encode(x)
        np.testing.assert_allclose(outputs[0], codes.numpy(), atol=1e-5)
        if model.codes_are_random:  # a Gaussian encoder also gives its log-variance
            np.testing.assert_allclose(outputs[1], model.posterior(x)[1].numpy(), atol=1e-5)
        (images,) = decoder.run(None, {"codes": codes.numpy()})
        np.testing.assert_allclose(images, model.decode(codes).numpy(), atol=1e-5)


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["sample", "{missing}"], "does not exist"),
        (["sample", "{run}", "-n", "0"], "-n must be between 1 and"),
        (["sample", "{run}", "-n", "1000000000"], "-n must be between 1 and"),
        (["sample", "{run}", "--out", "{file}"], "is a file"),
        (["sample", "{no_checkpoint}"], "checkpoint"),
        (["reconstruct", "{run}", "--seed", "-1"], "--seed"),
        (["encode", "{run}", "--out", "{tmp}/codes.npy"], "must end in .npz"),
        (["encode", "{run}", "--size", "0"], "--size"),
        (["encode", "{run}", "--dataset", "nope"], "unknown dataset"),
        (["interpolate", "{run}", "--pairs", "1000"], "too few for 1000 pairs"),
        (["interpolate", "{run}", "--steps", "1"], "--steps"),
        (["traverse", "{run}", "--range", "inf"], "--range"),
        (["plot", "{no_checkpoint}", "--out", "{tmp}/c.png"], "metrics.jsonl"),
        (["plot", "{run}", "--out", "{tmp}/curves.pdf"], "must end in .png"),
        (["export", "{run}", "--out", "{run}"], "the run folder itself"),
        (["export", "{run}", "--out", "{no_checkpoint}/../other"], "holds a training run"),
    ],
)
def test_bad_input_is_one_sentence(run, tmp_path, capsys, argv, fragment):
    missing = tmp_path / "missing"
    no_checkpoint = tmp_path / "bare" / "run"
    no_checkpoint.mkdir(parents=True)
    shutil.copy(run / "config.json", no_checkpoint)
    other = tmp_path / "bare" / "other"
    other.mkdir()
    (other / "metrics.jsonl").write_text("")
    (tmp_path / "file").write_text("not a folder")
    names = {"run": run, "missing": missing, "file": tmp_path / "file", "tmp": tmp_path}
    names["no_checkpoint"] = no_checkpoint
    fails_cleanly(capsys, [a.format(**names) for a in argv], fragment)
    assert not missing.exists()  # a refused command creates nothing
    assert not (no_checkpoint / "outputs").exists()
