"""Semi-supervised accuracy: far above chance on separated clusters, chance on shuffled labels;
posterior means and draws measured apart."""

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs

from vimae.data import ImageData
from vimae.metrics import (
    METRICS,
    MetricContext,
    MetricOptions,
    accuracy_over_splits,
    default_metrics,
    omniglot_splits,
    random_label_splits,
    semi_supervised,
)


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    return make_blobs(2000, n_features=8, centers=5, cluster_std=1.0, random_state=0)


def test_accuracy_is_high_on_separated_clusters(blobs) -> None:
    z, y = blobs
    out = accuracy_over_splits(z, y, random_label_splits(y, 200, 5, seed=0))
    for name in ("svm", "label_spreading"):
        assert out[name]["mean"] > 95.0 and len(out[name]["runs"]) == 5


def test_accuracy_is_at_chance_on_shuffled_labels(blobs) -> None:
    z, y = blobs
    y = np.random.default_rng(1).permutation(y)
    out = accuracy_over_splits(z, y, random_label_splits(y, 200, 5, seed=0))
    for name in ("svm", "label_spreading"):
        assert abs(out[name]["mean"] - 20.0) < 5.0  # 5 classes


def test_label_splits_are_disjoint_sized_and_stratified() -> None:
    labels = np.repeat(np.arange(10), 100)  # sorted by class, as a JPEG copy decodes
    draws = random_label_splits(labels, 100, 5, seed=3)
    for labelled, rest in draws:
        assert len(labelled) == 100 and len(rest) == 900
        assert not set(labelled) & set(rest)
        assert np.bincount(labels[labelled]).tolist() == [10] * 10
    assert len({tuple(labelled) for labelled, _ in draws}) == 5  # each draw its own


def test_omniglot_protocol_takes_5_characters_300_train_100_test() -> None:
    labels = np.repeat(np.arange(20), 80)  # 20 characters x 80 (20 drawers x 4 rotations)
    splits = omniglot_splits(labels, n_repeats=5, seed=0)
    assert len(splits) == 5
    for train, test in splits:
        assert len(train) == 300 and len(test) == 100
        assert len(np.unique(labels[train])) == 5
        assert set(labels[test]) == set(labels[train]) and not set(train) & set(test)


def test_omniglot_protocol_keeps_the_rotations_of_a_drawing_together() -> None:
    labels = np.repeat(np.arange(20), 80)
    groups = np.arange(len(labels)) // 4  # each drawing followed by its three rotations
    for train, test in omniglot_splits(labels, n_repeats=5, seed=1, groups=groups):
        assert len(train) == 300 and len(test) == 100
        assert not set(groups[train]) & set(groups[test])  # no drawing on both sides
        assert np.all(np.bincount(groups[test])[np.unique(groups[test])] == 4)


class NoisyMeans(torch.nn.Module):
    """A Gaussian encoder whose posterior means separate the classes perfectly while its draws
    are swamped by noise: the case where means and draws disagree (a nearly collapsed VAE)."""

    codes_are_random = True

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # gives the batches a device

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu = 10.0 * x.flatten(1)[:, :4]  # the class code written into the first pixels
        return mu, torch.full_like(mu, math.log(1e4))  # sd 100

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.split(x)[0]

    def draw_codes(self, x: torch.Tensor, generator=None) -> torch.Tensor:
        mu, logvar = self.split(x)
        eps = torch.randn(mu.shape, generator=generator)
        return mu + eps * (0.5 * logvar).exp()


def _class_images(n: int = 400) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.arange(n) % 4
    images = torch.zeros(n, 1, 4, 4)
    images.view(n, -1)[torch.arange(n), labels] = 1.0  # class k lights pixel k
    return images, labels


def test_means_and_draws_are_measured_apart():
    images, labels = _class_images()
    splits = random_label_splits(labels.numpy(), 100, 2, seed=0)
    model = NoisyMeans()
    draws = semi_supervised(model, images, labels, splits, ("clean",))
    means = semi_supervised(model, images, labels, splits, ("clean",), means=True)
    assert means["clean"]["svm"]["mean"] == 100.0
    assert abs(draws["clean"]["svm"]["mean"] - 25.0) < 12.0  # chance: 4 classes


def test_the_metric_reports_means_beside_draws_for_a_gaussian_encoder_only():
    images, labels = _class_images()
    options = MetricOptions(corruptions=("clean",), n_labels=100, n_repeats=1)
    test = ImageData("classes", images, labels)
    out = METRICS["semi-supervised"](MetricContext(NoisyMeans(), test, "classes", options=options))
    assert out["semi_supervised_means"]["clean"]["svm"]["mean"] == 100.0
    assert out["semi_supervised"]["clean"]["svm"]["mean"] < 50.0
    assert out["semi_supervised_codes"].startswith("draws")

    class Deterministic(NoisyMeans):
        codes_are_random = False

    vimae_like = METRICS["semi-supervised"](
        MetricContext(Deterministic(), test, "classes", options=options)
    )
    assert "semi_supervised_means" not in vimae_like  # its code is its own mean


class PixelCode(torch.nn.Module):
    """A deterministic encoder whose code is the first four pixels, unclamped: the class pixel
    of `_class_images` is 1, the others 0."""

    codes_are_random = False

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))
        self.image_shape = (1, 4, 4)
        self.device = torch.device("cpu")

    def sampled_codes(self, x: torch.Tensor, generator=None) -> torch.Tensor:
        return x.flatten(1)[:, :4]

    def draw_codes(self, x: torch.Tensor, generator=None) -> torch.Tensor:
        if x.min() < 0 or x.max() > 1:
            raise AssertionError("the public path takes images in [0, 1] only")
        return self.sampled_codes(x, generator)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.draw_codes(x)


def test_readings_fit_on_clean_codes_and_leave_noise_unclamped():
    """Under masking, a classifier fitted on corrupted codes learns that an all-zero code is
    ambiguous, while one fitted on clean codes has never seen it; clean accuracy is the same
    under every reading (same codes, same splits); the unclamped noise reaches the encoder with
    pixels outside [0, 1], and the readings are on request only."""
    images, labels = _class_images()
    options = MetricOptions(corruptions=("clean", "gauss:0.3", "mask:0.5"), n_labels=100,
                            n_repeats=2)  # fmt: skip
    test = ImageData("classes", images, labels)
    ctx = MetricContext(PixelCode(), test, "classes", options=options)
    main = METRICS["semi-supervised"](ctx)["semi_supervised"]
    out = METRICS["semi-supervised-readings"](ctx)["readings"]
    assert out["clean_fit"]["clean"]["svm"]["mean"] == main["clean"]["svm"]["mean"] == 100.0
    assert set(out["unclamped"]) == {"gauss:0.3"}  # Gaussian corruptions only
    assert set(out["clean_fit"]) == {"clean", "gauss:0.3", "mask:0.5"}
    # masking zeroes the class pixel half the time: fitted on masked codes, the SVM gets about
    # half right and guesses on the rest (~62%); fitted on clean codes it never saw a zero code
    assert out["clean_fit"]["mask:0.5"]["svm"]["mean"] != main["mask:0.5"]["svm"]["mean"]
    # clamped noise biases the zero pixels upwards; unclamped noise keeps them centred on 0
    assert out["unclamped"]["gauss:0.3"]["svm"]["mean"] != main["gauss:0.3"]["svm"]["mean"]
    assert "semi-supervised-readings" not in default_metrics()
    assert "semi-supervised" in default_metrics()
