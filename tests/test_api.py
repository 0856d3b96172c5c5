"""The Python API (vimae.fit / load / evaluate, model.sample, vimae.sklearn) as a notebook uses
it: images in memory, no run folder unless asked, feedback per epoch."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

import vimae
import vimae.cli
from vimae.runs.checkpoint import BEST_FILE, CHECKPOINT_FILE
from vimae.sklearn import VimaeEncoder

TINY = {"arch": "mlp", "width": 0.25, "latent_dim": 2, "epochs": 2, "progress": False}


def model_weights(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def digits():
    data = vimae.load_dataset("digits", "train").subset(600)
    return data.images[:, 0], data.labels  # (N, 8, 8) floats in [0, 1], as a notebook has them


def test_a_notebook_trains_from_a_tensor_encodes_and_fits_a_sklearn_pipeline(
    tmp_path, monkeypatch, digits
):
    monkeypatch.chdir(tmp_path)
    images, labels = digits
    model = vimae.fit("vimae-l", images, labels=labels, **TINY)
    assert not list(tmp_path.iterdir()), "out=None writes nothing"
    assert not model.training and len(model.history) == 2
    codes = model.encode(images.unsqueeze(1))
    assert codes.shape == (600, 2) and torch.isfinite(codes).all()
    rows = images.flatten(1).numpy() * 16  # the digits' raw 0..16 scale
    pipe = make_pipeline(
        MinMaxScaler(clip=True),
        VimaeEncoder(latent_dim=4, width=0.5, epochs=8, steps=None, batch_size=50),
        LogisticRegression(max_iter=1000),
    )
    scores = cross_val_score(pipe, rows, labels.numpy(), cv=3)
    assert scores.mean() > 0.4, scores  # chance is 0.1: the codes carry the digit
    pipe.fit(rows, labels.numpy())
    copy = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(copy[:-1].transform(rows[:50]), pipe[:-1].transform(rows[:50]))
    np.testing.assert_array_equal(copy.predict(rows), pipe.predict(rows))
    assert clone(pipe[1]).get_params() == pipe[1].get_params()


def test_every_kind_of_data_gives_the_same_run(digits):
    images, labels = digits
    a = model_weights(vimae.fit("vae", images, labels=labels, **TINY))
    dataset = torch.utils.data.TensorDataset(images.unsqueeze(1), labels)
    loader = torch.utils.data.DataLoader(dataset, batch_size=64)
    for data, given in (
        (images.numpy(), labels),  # (N, H, W) array
        (images.unsqueeze(1), labels.numpy()),  # (N, C, H, W) tensor
        (dataset, None),  # (image, label) pairs carry their labels
        (loader, None),
        (vimae.ImageData("in-memory", images.unsqueeze(1), labels), None),
    ):
        assert same(a, model_weights(vimae.fit("vae", data, labels=given, **TINY)))


@pytest.mark.parametrize(
    "data, fragment",
    [
        (torch.full((10, 8, 8), 3.0), "lie in [0, 1]"),
        (torch.zeros(10, 2, 8, 8), "C = 1 or 3"),
        ([[0.0]], "cannot train on a list"),
    ],
)
def test_bad_data_is_one_sentence(data, fragment):
    with pytest.raises(vimae.VimaeError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        vimae.fit("vae", data, **TINY)


def test_unknown_setting_names_the_valid_ones(digits):
    with pytest.raises(
        vimae.VimaeError, match=r"unknown setting 'latent'; use one of: .*latent_dim"
    ):
        vimae.fit("vae", digits[0], latent=3)


def test_run_folder_validation_best_weights_and_early_stopping(tmp_path, digits, capsys):
    images, labels = digits
    out = tmp_path / "run"
    settings = {**TINY, "epochs": 6, "progress": True}
    model = vimae.fit("vimae-l", images, labels=labels, out=out, val_fraction=0.2, **settings)
    printed = capsys.readouterr().out
    assert printed.count("val_loss") == 6 and "img/s" in printed  # one line per epoch
    assert all("val_loss" in row and "val_recon" in row for row in model.history)
    assert (out / CHECKPOINT_FILE).is_file() and (out / BEST_FILE).is_file()
    best = min(model.history, key=lambda r: r["val_loss"])
    reloaded = vimae.load(out / BEST_FILE)
    assert reloaded.config == model.config
    assert same(model_weights(vimae.load(out)), model_weights(model))
    # no learning at all: the validation loss never improves, training stops after patience
    frozen = vimae.fit(
        "vimae-l", images, labels=labels, val_fraction=0.2, patience=2, lr=1e-30, **settings
    )
    assert len(frozen.history) == 3 and "early stop" in capsys.readouterr().out
    assert best["epoch"] >= 0


def test_validating_never_changes_the_training_trajectory(digits):
    images = digits[0]
    train, held_out = images[:500], images[500:]
    plain = model_weights(vimae.fit("vae", train, **TINY))
    validated = vimae.fit("vae", train, validation=held_out, **TINY)
    assert same(plain, model_weights(validated))
    assert "val_kl" in validated.history[-1]


def test_sample_is_seeded_and_without_autograd(digits):
    model = vimae.fit("vimae-n", digits[0], **TINY)
    a, b, c = model.sample(16, seed=3), model.sample(16, seed=3), model.sample(16, seed=4)
    assert a.shape == (16, 1, 8, 8) and torch.equal(a, b) and not torch.equal(a, c)
    assert not a.requires_grad and not model.reconstruct(a).requires_grad


def test_evaluate_in_memory(digits):
    images, labels = digits
    model = vimae.fit("vae", images[:500], **TINY)
    results = vimae.evaluate(
        model,
        images[500:],
        labels=labels[500:],
        metrics=["reconstruction", "mmd", "parzen"],
    )
    expected = torch.mean(
        (model.reconstruct(images[500:].unsqueeze(1)) - images[500:].unsqueeze(1))
        .pow(2)
        .sum((1, 2, 3))
    )
    assert results["reconstruction"]["status"] == "ok"
    assert results["reconstruction"]["reconstruction"] == pytest.approx(expected.item(), rel=1e-5)
    assert results["parzen"]["status"] == "not computed"
    assert "train_data" in results["parzen"]["reason"]
    with_train = vimae.evaluate(model, images[500:], metrics=["parzen"], train_data=images[:500])
    assert with_train["parzen"]["status"] == "ok"


def test_python_dash_m_vimae_runs_the_cli():
    result = subprocess.run(
        [sys.executable, "-m", "vimae", "--help"], capture_output=True, text=True, check=True
    )
    assert "train" in result.stdout and "evaluate" in result.stdout


def test_tensorboard_gets_the_rows_of_metrics_jsonl(tmp_path, digits):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    vimae.fit("vae", digits[0], out=out, tensorboard=True, log_every=1, **TINY)
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    steps = [e.step for e in events.Scalars("step/loss")]
    assert steps == list(range(1, 13))  # 600 / 100 = 6 steps x 2 epochs, one row each
    assert len(events.Scalars("epoch/kl")) == 2


def test_load_reads_a_run_folder_an_export_folder_and_a_weights_file(tmp_path, digits):
    run = tmp_path / "run"
    model = vimae.fit("vimae-n", digits[0], out=run, **TINY)
    assert vimae.cli.main(["export", str(run), "--out", str(tmp_path / "export")]) == 0
    for source in (run, tmp_path / "export", tmp_path / "export" / "model.safetensors"):
        assert same(model_weights(vimae.load(source)), model_weights(model))
