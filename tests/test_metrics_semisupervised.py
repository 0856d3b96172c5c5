"""Semi-supervised accuracy: far above chance on separated clusters, chance on shuffled labels."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from vimae.metrics import accuracy_over_splits, omniglot_splits, random_label_splits


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
