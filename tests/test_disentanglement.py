"""Disentanglement metrics (vimae.metrics.disentanglement) on codes whose answer is known: a code
that copies each factor into its own coordinate, the same code rotated so that every coordinate
mixes two factors, and a constant code."""

import numpy as np
import pytest
import torch

from vimae.errors import VimaeError
from vimae.metrics.disentanglement import dci, factorvae_score, mig, mutual_information, sap


@pytest.fixture(scope="module")
def factors() -> np.ndarray:
    """Three independent factors with 4, 5 and 6 values, 3,000 samples."""
    rng = np.random.default_rng(0)
    return np.stack([rng.integers(0, m, 3000) for m in (4, 5, 6)], axis=1)


def _perfect(factors: np.ndarray, seed: int = 1) -> np.ndarray:
    """Each factor in its own coordinate (scaled, with a little noise) and one noise coordinate."""
    rng = np.random.default_rng(seed)
    z = factors.astype(float) * np.array([1.0, 0.5, 2.0]) + 0.01 * rng.normal(size=factors.shape)
    return np.concatenate([z, rng.normal(size=(len(z), 1))], axis=1)


def _rotated(factors: np.ndarray) -> np.ndarray:
    """The perfect code with its first two coordinates rotated by 45 degrees: each mixes two."""
    z = _perfect(factors)
    z01 = (z[:, :2] - z[:, :2].mean(0)) / z[:, :2].std(0)
    c = np.sqrt(0.5)
    z[:, 0], z[:, 1] = c * (z01[:, 0] + z01[:, 1]), c * (z01[:, 0] - z01[:, 1])
    return z


def test_a_perfectly_disentangled_code_scores_near_one(factors):
    z = _perfect(factors)
    assert mig(z, factors)["mig"] > 0.9
    assert sap(z, factors)["sap"] > 0.4  # one coordinate predicts, the others are at chance
    scores = dci(z, factors)
    assert scores["dci_disentanglement"] > 0.9 and scores["dci_completeness"] > 0.9
    assert scores["dci_informativeness"] > 0.95
    assert factorvae_score(z, factors)["factorvae"] == 1.0


def test_rotating_two_factors_together_lowers_every_score(factors):
    perfect, rotated = _perfect(factors), _rotated(factors)
    assert mig(rotated, factors)["mig"] < mig(perfect, factors)["mig"] - 0.3
    assert sap(rotated, factors)["sap"] < sap(perfect, factors)["sap"] - 0.1
    d_rot, d_perf = dci(rotated, factors), dci(perfect, factors)
    assert d_rot["dci_disentanglement"] < d_perf["dci_disentanglement"] - 0.2
    # the information is all still there: trees read the factors from the rotated pair
    assert d_rot["dci_informativeness"] > 0.9
    assert factorvae_score(rotated, factors)["factorvae"] < 0.9


def test_a_constant_code_scores_zero(factors):
    z = np.zeros((len(factors), 4))
    assert mig(z, factors)["mig"] == 0.0
    assert sap(z, factors)["sap"] == 0.0
    assert dci(z, factors)["dci_disentanglement"] == 0.0
    assert factorvae_score(z, factors) == {"factorvae": 0.0, "factorvae_active_codes": 0}


def test_mutual_information_of_a_copied_factor_is_its_entropy(factors):
    """I(z; v) = H(v) when z is v itself: for 4 equally likely values, log 4 nats."""
    info = mutual_information(factors[:, :1].astype(float), factors[:, :1])
    counts = np.bincount(factors[:, 0]) / len(factors)
    assert info[0, 0] == pytest.approx(-(counts * np.log(counts)).sum(), rel=1e-9)
    assert abs(info[0, 0] - np.log(4)) < 0.01


def test_bad_inputs_are_one_sentence():
    with pytest.raises(VimaeError, match="same N"):
        mig(np.zeros((20, 2)), np.zeros((19, 1), dtype=int))
    with pytest.raises(VimaeError, match="integer labels"):
        mig(np.zeros((20, 2)), np.zeros((20, 1)))
    with pytest.raises(VimaeError, match="NaN"):
        sap(np.full((20, 2), np.nan), np.zeros((20, 1), dtype=int))


def test_the_shapes_dataset_is_deterministic_and_its_factors_draw_its_images():
    from vimae.data import load_dataset
    from vimae.data.shapes import FACTORS, render, render_shapes

    a, b = render_shapes(50, seed=3), render_shapes(50, seed=3)
    assert a.digest() == b.digest() and a.digest() != render_shapes(50, seed=4).digest()
    assert a.factors.shape == (50, len(FACTORS)) and torch.equal(a.labels, a.factors[:, 0])
    np.testing.assert_array_equal(render(a.factors.numpy()), a.images.numpy())
    # a bigger shape covers more pixels, a shape moved right has its mass further right
    f = np.array([[0, 0, 0, 3, 3], [0, 3, 0, 3, 3], [0, 0, 0, 6, 3]])
    img = render(f)[:, 0]
    assert img[1].sum() > 3 * img[0].sum()
    cols = np.arange(28)
    centre = [(img[k].sum(0) @ cols) / img[k].sum() for k in (0, 2)]
    assert centre[1] - centre[0] == pytest.approx(12 * 3 / 7, abs=0.3)  # 3 of 7 steps of 12 px
    test = load_dataset("shapes", "test", None)
    assert len(test) == 5_000 and test.subset(100, seed=0).factors.shape == (100, 5)


def test_evaluate_measures_disentanglement_on_shapes_and_says_why_not_elsewhere(tmp_path):
    import json

    from vimae.cli import main

    run = tmp_path / "run"
    assert main(["train", "--model", "vae", "--dataset", "shapes", "--arch", "mlp",
                 "--latent-dim", "5", "--train-size", "1000", "--epochs", "1",
                 "--out", str(run)]) == 0  # fmt: skip
    out = tmp_path / "metrics.json"
    assert main(["evaluate", str(run), "--metrics", "disentanglement", "--test-size", "600",
                 "--out", str(out)]) == 0  # fmt: skip
    values = json.loads(out.read_text())["metrics"]["disentanglement"]
    assert values["status"] == "ok"
    for key in ("mig", "sap", "dci_disentanglement", "dci_completeness", "factorvae"):
        assert 0.0 <= values[key] <= 1.0
    assert values["dci_informativeness"] > 0.2  # better than chance at reading the factors


def test_vimae_evaluate_takes_factors_of_images_in_memory():
    import vimae
    from vimae.data.shapes import render_shapes

    model = vimae.fit("vimae-n", render_shapes(300, seed=0), arch="mlp", latent_dim=4, steps=20,
                      progress=False)  # fmt: skip
    test = render_shapes(200, seed=1)
    out = vimae.evaluate(model, test.images, "disentanglement", factors=test.factors.numpy())
    assert out["disentanglement"]["status"] == "ok" and 0 <= out["disentanglement"]["mig"] <= 1
    missing = vimae.evaluate(model, test.images, "disentanglement")
    assert "no known generating factors" in missing["disentanglement"]["reason"]
    with pytest.raises(VimaeError, match="integer indices"):
        vimae.evaluate(model, test.images, "disentanglement", factors=np.zeros((200, 2)))
