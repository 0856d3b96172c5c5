"""Disentanglement metrics (vimae.metrics.disentanglement) on codes whose answer is known: a code
that copies each factor into its own coordinate, the same code rotated so that every coordinate
mixes two factors, and a constant code."""

import numpy as np
import pytest

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
