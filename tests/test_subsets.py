"""Every subset is a seeded, class-stratified draw: the rule itself, and every labelled loader on
the real files in ../shared/datasets (a subset of a class-sorted split keeps every class)."""

import numpy as np
import pytest
import torch
from conftest import DEBIAN_FASHION_MNIST, requires_shared_data
from conftest import SHARED_DATASETS as SHARED

from vimae.data import DATASETS, ImageData, load_dataset
from vimae.data.split import class_counts, stratified_indices, stratified_split


def _within_one_of_share(labels: torch.Tensor, chosen: torch.Tensor) -> bool:
    everything = np.bincount(labels.numpy())
    kept = np.bincount(chosen.numpy(), minlength=len(everything))
    share = len(chosen) * everything / everything.sum()
    return bool(np.all(np.abs(kept - share) < 1.0))


@pytest.mark.parametrize("size", [1, 7, 50, 333, 999])
def test_stratified_draw_keeps_each_class_within_one_of_its_share(size: int) -> None:
    labels = np.repeat(np.arange(7), [300, 200, 150, 150, 100, 80, 20])  # sorted, unbalanced
    index = stratified_indices(len(labels), size, labels, seed=3)
    assert len(index) == size == len(set(index.tolist()))
    assert list(index) == sorted(index)  # the data's own order is kept
    assert _within_one_of_share(torch.from_numpy(labels), torch.from_numpy(labels[index]))
    assert np.array_equal(index, stratified_indices(len(labels), size, labels, seed=3))
    if size >= 50:
        assert not np.array_equal(index, stratified_indices(len(labels), size, labels, seed=4))


def test_draw_without_labels_is_seeded_and_not_a_slice() -> None:
    index = stratified_indices(1000, 100, None, seed=0)
    assert len(set(index.tolist())) == 100 and index.max() > 500  # spread, not the first 100
    assert np.array_equal(index, stratified_indices(1000, 100, None, seed=0))
    assert np.array_equal(stratified_indices(10, None), np.arange(10))


def test_stratified_split_is_a_disjoint_cover() -> None:
    labels = np.repeat(np.arange(4), 25)
    train, test = stratified_split(100, 0.2, labels, seed=1)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(100))
    assert class_counts(labels[test]) == {0: 5, 1: 5, 2: 5, 3: 5}


def test_imagedata_subset_of_class_sorted_data_keeps_every_class() -> None:
    labels = torch.arange(10).repeat_interleave(100)  # the CIFAR-10 JPEG copy decodes like this
    data = ImageData("sorted", torch.rand(1000, 1, 2, 2), labels)
    sub = data.subset(200, seed=0)
    assert torch.bincount(sub.labels).tolist() == [20] * 10
    assert data.subset(None) is data and len(data.subset(5000)) == 1000
    record = sub.describe()
    assert (record["images"], record["classes"], record["smallest_class"]) == (200, 10, 20)
    assert record["class_counts"] == {str(c): 20 for c in range(10)}


def _real_folder(tmp_path):
    """A class-per-subfolder image folder built from real Omniglot drawings (3 characters)."""
    from PIL import Image

    drawings = load_dataset("omniglot-small-norot", "test", SHARED)
    for label in range(3):
        members = torch.nonzero(drawings.labels == label).flatten()
        for i in members.tolist():
            pixels = (drawings.images[i, 0] * 255).round().byte().numpy()
            Image.fromarray(pixels).save(tmp_path / f"char{label}" / f"{i}.png")
    return tmp_path


def _real_array(tmp_path):
    """A pooled .npz of real MNIST test digits sorted by class."""
    test = load_dataset("mnist", "test", SHARED)
    order = torch.argsort(test.labels, stable=True)[:3000]
    path = tmp_path / "digits.npz"
    x = (test.images[order, 0] * 255).round().byte().numpy()
    np.savez(path, x=x, y=test.labels[order].numpy())
    return path


# Every registered loader whose data has labels; folder and array are built from real files.
LABELLED = [
    ("mnist", "train"), ("mnist", "test"), ("mnist-t10k", "train"), ("fashion-mnist", "train"),
    ("fashion-mnist", "test"), ("cifar10", "train"), ("cifar10", "test"),
    ("omniglot-small", "train"), ("omniglot-small", "test"), ("omniglot-small-norot", "test"),
    ("digits", "train"), ("digits", "test"), ("shapes", "test"), ("folder", "train"),
    ("array", "train"),
    ("array", "test"),
]  # fmt: skip
# No labels or no files here (tests/test_stream.py writes shards and checks their subsets;
# tests/test_data_factorial.py writes small dSprites and 3dshapes files).
UNLABELLED_OR_ABSENT = {"celeba", "omniglot", "omniglot-norot", "shards", "dsprites", "3dshapes"}
# The real files each loader of LABELLED reads (digits ships with scikit-learn).
DATA_OF = {
    "mnist": "mnist", "mnist-t10k": "mnist", "array": "mnist", "cifar10": "cifar10",
    "fashion-mnist": DEBIAN_FASHION_MNIST, "omniglot-small": "omniglot",
    "omniglot-small-norot": "omniglot", "folder": "omniglot",
}  # fmt: skip


def test_the_list_covers_every_registered_loader() -> None:
    assert {name for name, _ in LABELLED} | UNLABELLED_OR_ABSENT == set(DATASETS.names())


@pytest.mark.parametrize(
    "name, split",
    [
        pytest.param(n, s, marks=[requires_shared_data(DATA_OF[n])] if n in DATA_OF else [])
        for n, s in LABELLED
    ],
)
def test_a_subset_of_a_class_sorted_real_split_keeps_every_class(name, split, tmp_path) -> None:
    if name == "folder":
        for label in range(3):
            (tmp_path / f"char{label}").mkdir()
        data = load_dataset(name, split, _real_folder(tmp_path))
    elif name == "array":
        data = load_dataset(name, split, _real_array(tmp_path))
    else:
        data = load_dataset(name, split, SHARED)
    data = data.take(torch.argsort(data.labels, stable=True))  # class-sorted, the worst case
    n_classes = len(torch.unique(data.labels))
    size = max(n_classes, len(data) // 20)
    sub = data.subset(size, seed=0)
    assert len(sub) == size
    assert len(torch.unique(sub.labels)) == n_classes  # a first-n slice keeps one or two
    assert _within_one_of_share(data.labels, sub.labels)
