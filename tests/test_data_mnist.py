"""IDX reading and the MNIST-family loaders, on the real files in ../shared/datasets.

MNIST's test set is exact; its training images are a reconstruction within one grey level (see
../shared/datasets/mnist/SOURCE.md), which the loader names. Fashion-MNIST comes whole from
Debian's dataset-fashion-mnist package, which the project's test command installs.
"""

import gzip
import shutil

import numpy as np
import pytest
import torch
from conftest import DEBIAN_FASHION_MNIST, requires_shared_data
from conftest import SHARED_DATASETS as SHARED

from vimae.data import load_dataset
from vimae.data.idx import read_idx
from vimae.data.mnist import RECONSTRUCTED_NOTE
from vimae.errors import VimaeError

MNIST_DIR = SHARED / "mnist"
# Per-class counts and mean pixel of MNIST as given in ../shared/datasets/mnist/SOURCE.md.
T10K_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
TRAIN_LABEL_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
T10K_MEAN = 0.13251

needs_mnist = requires_shared_data("mnist")


@pytest.fixture(autouse=True)
def no_download(monkeypatch):
    monkeypatch.setenv("VIMAE_NO_DOWNLOAD", "1")


@needs_mnist
def test_mnist_test_split_matches_known_statistics():
    data = load_dataset("mnist", "test", SHARED)
    assert data.images.shape == (10_000, 1, 28, 28)
    assert data.images.dtype == torch.float32
    assert data.images.min() >= 0.0 and data.images.max() <= 1.0
    assert data.images.mean().item() == pytest.approx(T10K_MEAN, abs=1e-5)
    assert torch.bincount(data.labels, minlength=10).tolist() == T10K_COUNTS


@needs_mnist
def test_mnist_train_labels_read_as_idx():
    labels = read_idx(MNIST_DIR / "train-labels-idx1-ubyte.gz", ndim=1)
    assert np.bincount(labels).tolist() == TRAIN_LABEL_COUNTS


@needs_mnist
def test_mnist_t10k_is_a_disjoint_8k_2k_split_of_the_test_set():
    train = load_dataset("mnist-t10k", "train", SHARED)
    test = load_dataset("mnist-t10k", "test", SHARED)
    assert (len(train), len(test)) == (8_000, 2_000)
    both = torch.cat([train.labels, test.labels])
    assert torch.bincount(both).tolist() == T10K_COUNTS
    pooled_mean = torch.cat([train.images, test.images]).mean().item()
    assert pooled_mean == pytest.approx(T10K_MEAN, abs=1e-5)
    assert set(test.labels.tolist()) == set(range(10))
    full = load_dataset("mnist", "test", SHARED)
    assert torch.equal(test.images[0], full.images[4])  # every 5th image, from index 4


@needs_mnist
def test_missing_training_images_name_the_file_and_folder(tmp_path):
    (tmp_path / "mnist").mkdir()
    shutil.copy(MNIST_DIR / "train-labels-idx1-ubyte.gz", tmp_path / "mnist")
    with pytest.raises(VimaeError, match=r"train-images-idx3-ubyte\.gz in .*mnist/.*VIMAE_NO_DOWN"):
        load_dataset("mnist", "train", tmp_path)


@needs_mnist
def test_reconstructed_training_images_load_whole_and_say_so():
    train = load_dataset("mnist", "train", SHARED)
    assert train.images.shape == (60_000, 1, 28, 28)
    assert torch.bincount(train.labels).tolist() == TRAIN_LABEL_COUNTS
    assert train.images.mean().item() == pytest.approx(0.1307, abs=1e-4)  # SOURCE.md
    assert RECONSTRUCTED_NOTE in train.name
    assert RECONSTRUCTED_NOTE not in load_dataset("mnist", "test", SHARED).name  # exact file


@requires_shared_data(DEBIAN_FASHION_MNIST)  # apt-get install dataset-fashion-mnist
def test_fashion_mnist_loads_whole_from_debian(tmp_path):
    train = load_dataset("fashion-mnist", "train", tmp_path)  # empty data dir: Debian fallback
    test = load_dataset("fashion-mnist", "test", tmp_path)
    assert train.images.shape == (60_000, 1, 28, 28)
    assert test.images.shape == (10_000, 1, 28, 28)
    assert torch.bincount(train.labels).tolist() == [6_000] * 10
    assert torch.bincount(test.labels).tolist() == [1_000] * 10
    assert train.images.min() >= 0.0 and train.images.max() <= 1.0
    assert train.images.mean().item() == pytest.approx(0.2860, abs=1e-3)


@needs_mnist
def test_truncated_idx_is_named(tmp_path):
    raw = gzip.decompress((MNIST_DIR / "t10k-labels-idx1-ubyte.gz").read_bytes())
    short = tmp_path / "mnist" / "t10k-labels-idx1-ubyte"  # raw (uncompressed) form
    short.parent.mkdir()
    short.write_bytes(raw[:-100])
    shutil.copy(MNIST_DIR / "t10k-images-idx3-ubyte.gz", tmp_path / "mnist")
    with pytest.raises(VimaeError, match=r"t10k-labels-idx1-ubyte is truncated"):
        load_dataset("mnist", "test", tmp_path)


@needs_mnist
def test_truncated_gzip_is_named(tmp_path):
    data = (MNIST_DIR / "t10k-labels-idx1-ubyte.gz").read_bytes()
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VimaeError, match=r"t10k-labels-idx1-ubyte\.gz is damaged or truncated"):
        read_idx(path, ndim=1)


def test_bad_magic_and_wrong_rank_are_refused(tmp_path):
    junk = tmp_path / "junk"
    junk.write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(VimaeError, match="is not an IDX file"):
        read_idx(junk)
    vector = tmp_path / "vector"
    vector.write_bytes(b"\0\0\x08\x01" + (3).to_bytes(4, "big") + b"abc")
    assert read_idx(vector, ndim=1).tolist() == [97, 98, 99]
    with pytest.raises(VimaeError, match="3-dimensional one is expected"):
        read_idx(vector, ndim=3)
