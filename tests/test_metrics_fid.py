"""FID with a small random-init feature network (offline) and the domain classifier's cache."""

import itertools

import pytest
import torch

from vimae.data import ImageData, load_dataset
from vimae.metrics import DomainClassifier, frechet_distance, load_or_train_classifier
from vimae.metrics.classifier import FeatureExtractor


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    return load_dataset("digits", "train").images[:600]


def _features(seed: int = 0) -> FeatureExtractor:
    torch.manual_seed(seed)
    return FeatureExtractor(DomainClassifier(channels=1, n_classes=10))


def test_fid_of_a_set_against_itself_is_near_zero(digits: torch.Tensor) -> None:
    assert abs(frechet_distance(digits, digits, _features())) < 1e-3


def test_fid_grows_with_added_noise(digits: torch.Tensor) -> None:
    gen = torch.Generator().manual_seed(0)
    feature = _features()
    fids = [
        frechet_distance(
            digits, (digits + s * torch.randn(digits.shape, generator=gen)).clamp(0, 1), feature
        )
        for s in (0.05, 0.1, 0.2, 0.4)
    ]
    assert all(a < b for a, b in itertools.pairwise(fids)), fids


def test_fid_is_symmetric(digits: torch.Tensor) -> None:
    a, b = digits[:300], digits[300:]
    feature = _features()
    assert frechet_distance(a, b, feature) == pytest.approx(
        frechet_distance(b, a, feature), rel=1e-4
    )


def test_domain_classifier_is_trained_once_then_read_from_cache(tmp_path) -> None:
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    small = ImageData("digits", train.images[:400], train.labels[:400])
    net, info = load_or_train_classifier("digits", small, test, tmp_path, steps=60)
    assert not info["cached"] and info["test_accuracy"] > 0.5  # chance is 0.1
    again, info2 = load_or_train_classifier("digits", small, test, tmp_path, steps=60)
    assert info2["cached"] and info2["test_accuracy"] == info["test_accuracy"]
    x = test.images[:5]
    assert torch.equal(net.features(x), again.features(x))
