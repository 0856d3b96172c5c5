"""CIFAR-10: the real JPEG copy in ../shared/datasets/cifar10, and the pickle format.

The original pickles are not available offline, so the pickle reader is checked on small batches
written here in the original format (a dict with b"data" rows of 3072 uint8 and b"labels").
The JPEG copy is decoded once into the user's cache ($VIMAE_CACHE_DIR, else ~/.cache/vimae), as in
real use; the first run pays for decoding 60,000 JPEGs (about 20 s on 2 cores), later runs read the
cached arrays in a few seconds.
"""

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATASETS as SHARED
from conftest import requires_shared_data
from PIL import Image

from vimae.data import cifar, load_dataset
from vimae.data.cache import cache_dir, sha256_of
from vimae.errors import VimaeError

JPEG_COPY = SHARED / "cifar10" / "cifar10-jpg.tar.gz"


@pytest.fixture(autouse=True)
def no_download(monkeypatch):
    monkeypatch.setenv("VIMAE_NO_DOWNLOAD", "1")


@pytest.fixture(scope="module")
def jpeg_copy():
    return {split: load_dataset("cifar10", split, SHARED) for split in ("train", "test")}


@requires_shared_data(JPEG_COPY)
def test_jpeg_copy_has_50k_10k_balanced_images(jpeg_copy):
    train, test = jpeg_copy["train"], jpeg_copy["test"]
    assert train.name == test.name == "CIFAR-10 (JPEG copy)"
    assert train.images.shape == (50_000, 3, 32, 32)
    assert test.images.shape == (10_000, 3, 32, 32)
    assert torch.bincount(train.labels).tolist() == [5_000] * 10
    assert torch.bincount(test.labels).tolist() == [1_000] * 10
    assert train.images.min() >= 0.0 and train.images.max() <= 1.0
    # CIFAR-10's training mean pixel is 0.4734 (R 0.4914, G 0.4822, B 0.4465); JPEG moves it little
    assert train.images.mean().item() == pytest.approx(0.4734, abs=2e-3)
    channel_means = train.images.mean(dim=(0, 2, 3))
    assert channel_means.tolist() == pytest.approx([0.4914, 0.4822, 0.4465], abs=5e-3)


@requires_shared_data(JPEG_COPY)
def test_jpeg_copy_is_read_from_the_cache_afterwards(jpeg_copy, monkeypatch):
    key = f"cifar10-jpg-{sha256_of(JPEG_COPY)[:16]}.npz"
    assert (cache_dir() / key).is_file()

    def no_decoding(archive):
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(cifar, "decode_jpeg_archive", no_decoding)
    again = load_dataset("cifar10", "test", SHARED)
    assert torch.equal(again.images, jpeg_copy["test"].images)


def _write_batch(path: Path, n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    """A batch in the original format: CHW-ordered uint8 rows and a label list (protocol 2)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n).tolist()
    rows = images.transpose(0, 3, 1, 2).reshape(n, -1)
    with path.open("wb") as f:
        pickle.dump({b"batch_label": b"fake", b"data": rows, b"labels": labels}, f, protocol=2)
    return images, labels


def _fake_pickles(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    folder.mkdir(parents=True)
    written = [_write_batch(folder / name, 4, i) for i, name in enumerate(cifar.BATCHES["train"])]
    _write_batch(folder / "test_batch", 3, 99)
    return np.concatenate([w[0] for w in written]), np.concatenate([w[1] for w in written])


def test_pickle_batches_load_in_original_order_and_layout(tmp_path):
    images, labels = _fake_pickles(tmp_path / "cifar10" / "cifar-10-batches-py")
    train = load_dataset("cifar10", "train", tmp_path)
    assert train.name == "CIFAR-10"
    assert train.labels.tolist() == labels.tolist()
    expected = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    assert torch.equal(train.images, expected)
    assert len(load_dataset("cifar10", "test", tmp_path)) == 3


def test_pickle_archive_is_extracted_then_read(tmp_path):
    source = tmp_path / "src" / "cifar-10-batches-py"
    _fake_pickles(source)
    (tmp_path / "cifar10").mkdir()
    with tarfile.open(tmp_path / "cifar10" / "cifar-10-python.tar.gz", "w:gz") as tf:
        tf.add(source, arcname="cifar-10-batches-py")
    assert len(load_dataset("cifar10", "train", tmp_path)) == 20
    assert (tmp_path / "cifar10" / "cifar-10-batches-py" / "data_batch_5").is_file()


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def test_a_pickle_that_calls_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": _Exploit(), b"labels": []}, protocol=2))
    with pytest.raises(VimaeError, match=r"data_batch_1 is not a readable CIFAR-10 batch.*posix"):
        cifar.read_batch(path)
    assert not (tmp_path / "pwned").exists()


def test_a_pickle_of_other_data_is_refused(tmp_path):
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps({"data": np.zeros((2, 5), np.uint8), "labels": [0, 1]}))
    with pytest.raises(VimaeError, match="does not hold CIFAR-10 data"):
        cifar.read_batch(path)


def test_missing_files_name_both_forms(tmp_path):
    with pytest.raises(VimaeError, match=r"cifar-10-python\.tar\.gz in .*cifar10/.*cifar10-jpg"):
        load_dataset("cifar10", "train", tmp_path)


def test_jpeg_archive_with_a_foreign_class_is_refused(tmp_path):
    archive = tmp_path / "cifar10-jpg.tar.gz"
    buf = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buf, format="JPEG")
    with tarfile.open(archive, "w:gz") as tf:
        info = tarfile.TarInfo("train/unicorn/0000.jpg")
        info.size = len(buf.getvalue())
        tf.addfile(info, io.BytesIO(buf.getvalue()))
    with pytest.raises(VimaeError, match="unknown class 'unicorn'"):
        cifar.decode_jpeg_archive(archive)


def _jpeg(value: int, size: int = 32) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), (value, 255 - value, 0)).save(buf, format="JPEG")
    return buf.getvalue()


def _jpeg_copy(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def small_jpeg_copy(tmp_path, monkeypatch):
    """A JPEG copy of 6 training and 2 test images in three classes, its cache in tmp_path."""
    monkeypatch.setenv("VIMAE_CACHE_DIR", str(tmp_path / "cache"))
    members = {
        f"{split}/{cls}/{i:04d}.jpg": _jpeg(40 * c + 10 * i)
        for split, n in (("train", 2), ("test", 1))
        for c, cls in enumerate(("bird", "cat", "ship"))
        for i in range(n)
        if split == "train" or c != 1
    }
    (tmp_path / "cifar10").mkdir()
    _jpeg_copy(tmp_path / "cifar10" / cifar.JPEG_ARCHIVE, members)
    return tmp_path


def _corrupt(arrays: dict[str, np.ndarray], how: str) -> dict[str, np.ndarray]:
    arrays = dict(arrays)
    if how == "dtype":  # floats in [0, 1] where uint8 belong
        arrays["train_images"] = arrays["train_images"] / 255.0
    elif how == "shape":  # a crop of every image
        arrays["train_images"] = np.ascontiguousarray(arrays["train_images"][:, :16])
    elif how == "count":  # images and labels of different lengths
        arrays["test_labels"] = arrays["test_labels"][:1]
    elif how == "range":  # labels past CIFAR-10's ten classes
        arrays["train_labels"] = arrays["train_labels"] + 10
    elif how == "missing":
        del arrays["test_labels"]
    elif how == "extra":
        arrays["unexpected"] = np.zeros(3)
    return arrays


@pytest.mark.parametrize("how", ["dtype", "shape", "count", "range", "missing", "extra"])
def test_a_wrong_cache_is_rebuilt_not_trusted(small_jpeg_copy, monkeypatch, how):
    fresh = {split: load_dataset("cifar10", split, small_jpeg_copy) for split in ("train", "test")}
    assert len(fresh["train"]) == 6 and fresh["test"].labels.tolist() == [2, 8]  # bird, ship
    (cached,) = (small_jpeg_copy / "cache").glob("cifar10-jpg-*.npz")
    with np.load(cached) as npz:
        np.savez(cached, **_corrupt({key: npz[key] for key in npz.files}, how))
    decoded = []
    decode = cifar.decode_jpeg_archive
    monkeypatch.setattr(cifar, "decode_jpeg_archive", lambda a: decoded.append(a) or decode(a))
    for split in ("train", "test"):
        again = load_dataset("cifar10", split, small_jpeg_copy)
        assert torch.equal(again.images, fresh[split].images)
        assert torch.equal(again.labels, fresh[split].labels)
    assert len(decoded) == 1  # rebuilt once, and the rebuilt cache serves the second split


def test_decompression_bomb_in_the_jpeg_copy_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400)  # a 32x32 image is then over 2x the limit
    archive = _jpeg_copy(tmp_path / "copy.tar.gz", {"train/cat/0000.jpg": _jpeg(9)})
    with pytest.raises(VimaeError, match=r"copy\.tar\.gz:train/cat/0000\.jpg is too large an"):
        cifar.decode_jpeg_archive(archive)


def test_an_oversized_jpeg_member_is_refused_unread(tmp_path):
    big = _jpeg(9) + bytes(cifar.MAX_JPEG_BYTES)  # a JPEG with 1 MiB of trailing junk
    archive = _jpeg_copy(tmp_path / "copy.tar.gz", {"train/cat/0000.jpg": big})
    with pytest.raises(VimaeError, match=r"member train/cat/0000\.jpg declares 1049.* bytes"):
        cifar.decode_jpeg_archive(archive)
