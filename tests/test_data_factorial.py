"""The loaders of the real factor datasets, dSprites (.npz) and 3dshapes (.h5), on small files in
their formats that the tests write themselves (the real files are not on this machine and cannot
be downloaded). Each image carries its own index in its pixels, so a test can check that every
image of a split comes with the factors of the same row of the file."""

import sys
from itertools import product

import h5py
import numpy as np
import pytest
import torch

from vimae.data import dsprites, factorial, load_dataset, shapes3d
from vimae.errors import VimaeError

# dSprites: colour 1, shape 3, scale 2, orientation 2, x 2, y 2 (a corner of the real grid).
DSPRITES_GRID = (1, 3, 2, 2, 2, 2)
# 3dshapes: two values of each factor but three orientations; values as the real file stores them.
HUES = (0.0, 0.1)
SHAPES3D_VALUES = (HUES, HUES, HUES, (0.75, 0.821428571), (0.0, 1.0), (-30.0, -25.7142857, -21.4))


def write_dsprites(root, classes=None, imgs=None, **extra):
    if classes is None:
        classes = np.array(list(product(*(range(s) for s in DSPRITES_GRID))), dtype=np.int64)
    n = len(classes)
    if imgs is None:
        imgs = np.zeros((n, 64, 64), dtype=np.uint8)
        for i in range(n):
            imgs[i, 0, : i + 1] = 1  # image i: i + 1 white pixels in its first row
    folder = root / "dsprites"
    folder.mkdir(parents=True, exist_ok=True)
    metadata = np.array({"latents_sizes": np.array([1, 3, 6, 40, 32, 32])}, dtype=object)
    arrays = {"imgs": imgs, "latents_classes": classes, "latents_values": classes * 0.5}
    np.savez_compressed(folder / dsprites.FILE, **{**arrays, "metadata": metadata, **extra})
    return classes


def write_shapes3d(root, n_images=None, images=None, labels=None):
    if labels is None:
        labels = np.array(list(product(*SHAPES3D_VALUES)), dtype=np.float64)
    n = len(labels) if n_images is None else n_images
    if images is None:
        images = np.zeros((n, 64, 64, 3), dtype=np.uint8)
        images[:, 0, 0, 0] = np.arange(n) % 256  # image i: its index in the first pixel
        images[:, 0, 0, 1] = np.arange(n) // 256
    folder = root / "3dshapes"
    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(folder / shapes3d.FILE, "w") as f:
        f.create_dataset("images", data=images)
        f.create_dataset("labels", data=labels)
    return labels


def test_dsprites_splits_partition_the_file_and_keep_each_images_factors(tmp_path):
    classes = write_dsprites(tmp_path)
    train = load_dataset("dsprites", "train", tmp_path)
    test = load_dataset("dsprites", "test", tmp_path)
    assert (len(train), len(test)) == (43, 5)  # a tenth of 48, rounded, is held out
    assert train.image_shape == (1, 64, 64) and train.pixels.dtype == torch.uint8
    rows = []
    for split in (train, test):
        assert set(split.pixels.unique().tolist()) == {0, 255}  # {0, 1} stored as 8-bit
        index = (split.pixels[:, 0, 0] == 255).sum(dim=1) - 1  # which row of the file
        rows += index.tolist()
        assert torch.equal(split.factors, torch.from_numpy(classes[index.numpy(), 1:]))
        assert torch.equal(split.labels, split.factors[:, 0])  # the label is the shape
    assert sorted(rows) == list(range(48))  # every image once, in one split only
    assert split.factors.shape[1] == len(dsprites.FACTORS) == 5


def test_3dshapes_factor_values_become_ranked_indices_read_in_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(shapes3d, "BLOCK", 7)  # several blocks, the last one short
    labels = write_shapes3d(tmp_path)
    train = load_dataset("3dshapes", "train", tmp_path)
    test = load_dataset("3dshapes", "test", tmp_path)
    assert (len(train), len(test)) == (86, 10) and train.image_shape == (3, 64, 64)
    ranks = np.stack([np.searchsorted(v, labels[:, k]) for k, v in enumerate(SHAPES3D_VALUES)], 1)
    rows = []
    for split in (train, test):
        index = split.pixels[:, 0, 0, 0].long() + 256 * split.pixels[:, 1, 0, 0].long()
        rows += index.tolist()
        assert torch.equal(split.factors, torch.from_numpy(ranks[index.numpy()]))
        assert torch.equal(split.labels, split.factors[:, 4])  # the label is the shape
    assert sorted(rows) == list(range(96))


def test_the_limit_caps_a_split_with_a_seeded_draw_and_says_so(tmp_path, monkeypatch):
    write_dsprites(tmp_path)
    monkeypatch.setenv(factorial.LIMIT_ENV, "4")
    first = load_dataset("dsprites", "train", tmp_path)
    again = load_dataset("dsprites", "train", tmp_path)
    assert len(first) == 4 and "4 of 43 train images drawn at random" in first.name
    assert torch.equal(first.pixels, again.pixels)
    index = (first.pixels[:, 0, 0] == 255).sum(dim=1) - 1
    assert index.tolist() != list(range(4))  # a draw over the file, not its first rows
    monkeypatch.setenv(factorial.LIMIT_ENV, "many")
    with pytest.raises(VimaeError, match="VIMAE_FACTORS_LIMIT is 'many'"):
        load_dataset("dsprites", "train", tmp_path)


def test_absent_files_say_where_they_go_and_where_they_come_from(tmp_path):
    with pytest.raises(
        VimaeError,
        match=r"dsprites_ndarray_co1sh3sc6or40x32y32_64x64\.npz.*"
        r"deepmind/dsprites-dataset.*cannot download",
    ):
        load_dataset("dsprites", "train", tmp_path)
    with pytest.raises(VimaeError, match=r"3dshapes/3dshapes\.h5.*deepmind/3d-shapes"):
        load_dataset("3dshapes", "test", tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"imgs": np.full((48, 64, 64), 2, np.uint8)}, "values up to 2"),
        ({"imgs": np.zeros((48, 32, 32), np.uint8)}, r"shape \(48, 32, 32\)"),
        ({"classes": np.full((48, 6), 40, np.int64)}, "out of range for color"),
        (
            {"classes": np.zeros((47, 6), np.int64), "imgs": np.zeros((48, 64, 64), np.uint8)},
            r"latents_classes is int64 of shape \(47, 6\)",
        ),
    ],
)
def test_a_file_that_is_not_dsprites_is_refused_in_one_sentence(tmp_path, change, message):
    write_dsprites(tmp_path, **change)
    with pytest.raises(VimaeError, match=message):
        load_dataset("dsprites", "train", tmp_path)


def test_a_damaged_dsprites_file_or_one_without_its_arrays_is_refused(tmp_path):
    folder = tmp_path / "dsprites"
    folder.mkdir()
    (folder / dsprites.FILE).write_bytes(b"not a zip file at all")
    with pytest.raises(VimaeError, match="damaged or not the dSprites file"):
        load_dataset("dsprites", "train", tmp_path)
    np.savez(folder / dsprites.FILE, pictures=np.zeros((2, 64, 64), np.uint8))
    with pytest.raises(VimaeError, match="has no array imgs or latents_classes"):
        load_dataset("dsprites", "train", tmp_path)


def test_a_file_that_is_not_3dshapes_is_refused_in_one_sentence(tmp_path):
    write_shapes3d(tmp_path, images=np.zeros((96, 64, 64, 3), np.float32))
    with pytest.raises(VimaeError, match="images is float32"):
        load_dataset("3dshapes", "train", tmp_path)
    labels = np.array(list(product(*SHAPES3D_VALUES)), dtype=np.float64)
    labels[:, 4] = np.arange(96) % 5  # five shapes: 3dshapes has four
    write_shapes3d(tmp_path, labels=labels)
    with pytest.raises(VimaeError, match="column shape takes 5 values"):
        load_dataset("3dshapes", "train", tmp_path)
    write_shapes3d(tmp_path, n_images=95)
    with pytest.raises(VimaeError, match=r"labels has shape \(96, 6\)"):
        load_dataset("3dshapes", "train", tmp_path)
    (tmp_path / "3dshapes" / shapes3d.FILE).write_bytes(b"\x89HDF garbage")
    with pytest.raises(VimaeError, match="not a readable HDF5 file"):
        load_dataset("3dshapes", "train", tmp_path)


def test_3dshapes_without_h5py_says_how_to_install_it(tmp_path, monkeypatch):
    write_shapes3d(tmp_path)
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py now raises ImportError
    with pytest.raises(VimaeError, match=r"needs h5py.*pip install 'vimae\[h5\]'"):
        load_dataset("3dshapes", "train", tmp_path)
