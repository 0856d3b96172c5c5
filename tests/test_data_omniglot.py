"""Omniglot loaders on the real small background zips in ../shared/datasets/omniglot."""

import shutil

import pytest
import torch
from conftest import SHARED_DATASETS as SHARED
from conftest import requires_shared_data

from vimae.data import load_dataset
from vimae.data.archive import extract
from vimae.data.omniglot import SMALL_TEST_ALPHABETS
from vimae.errors import VimaeError

OMNIGLOT = SHARED / "omniglot"

pytestmark = requires_shared_data("omniglot")


@pytest.fixture(autouse=True)
def no_download(monkeypatch):
    monkeypatch.setenv("VIMAE_NO_DOWNLOAD", "1")


@pytest.fixture(scope="module")
def small():
    return {split: load_dataset("omniglot-small", split, SHARED) for split in ("train", "test")}


def test_small_subsets_give_4840_drawings_times_4_rotations(small):
    train, test = small["train"], small["test"]
    assert len(train) + len(test) == 4_840 * 4
    assert len(test) == 780 * 4  # Early_Aramaic (22 characters) + Tagalog (17)
    for data in (train, test):
        assert data.image_shape == (1, 28, 28)
        assert data.images.min() >= 0.0 and data.images.max() <= 1.0
        # every character has 20 drawers x 4 rotations, labels 0..C-1 without gaps
        counts = torch.bincount(data.labels)
        assert counts.min() == counts.max() == 80
    assert int(train.labels.max()) + 1 == 203
    assert int(test.labels.max()) + 1 == 39
    assert SMALL_TEST_ALPHABETS == ("Early_Aramaic", "Tagalog")


def test_ink_is_high_and_rotations_follow_each_drawing(small):
    images = small["train"].images[:, 0]
    assert images.mean() < 0.15  # mostly paper, now 0.0
    first = images[:4]
    for r in range(4):
        assert torch.equal(first[r], torch.rot90(first[0], r, dims=(0, 1)))
    # groups name the drawing: four images each, and a subset carries them along
    groups = small["train"].groups
    assert groups[:8].tolist() == [0, 0, 0, 0, 1, 1, 1, 1] and len(groups) == len(images)
    assert small["train"].take([5, 0, 9]).groups.tolist() == [1, 0, 2]
    assert small["train"].resized(14).groups is groups


def test_norot_variant_has_20_drawings_per_character():
    test = load_dataset("omniglot-small-norot", "test", SHARED)
    assert len(test) == 780
    assert torch.bincount(test.labels).tolist() == [20] * 39


def test_full_layout_from_a_folder_and_a_zip(tmp_path):
    """images_background as an extracted folder, images_evaluation as a zip (real drawings)."""
    root = tmp_path / "omniglot"
    extract(OMNIGLOT / "images_background_small1.zip", root)
    (root / "images_background_small1").rename(root / "images_background")
    shutil.copy(OMNIGLOT / "images_background_small2.zip", root / "images_evaluation.zip")
    train = load_dataset("omniglot-norot", "train", tmp_path)
    test = load_dataset("omniglot", "test", tmp_path)
    assert len(train) == 2_720 and int(train.labels.max()) + 1 == 136
    assert len(test) == 3_120 * 4 and int(test.labels.max()) + 1 == 156


def test_missing_zips_are_named(tmp_path):
    with pytest.raises(VimaeError, match=r"images_evaluation\.zip in .*omniglot/"):
        load_dataset("omniglot", "test", tmp_path)


def test_a_damaged_drawing_is_named_with_its_zip(tmp_path):
    """The sentence names the zip and the member, the two things a user must find."""
    import zipfile

    root = tmp_path / "omniglot"
    root.mkdir()
    for name in ("images_background", "images_evaluation"):
        with zipfile.ZipFile(root / f"{name}.zip", "w") as z:
            z.writestr(f"{name}/Latin/character01/0101_01.png", b"\x89PNG cut short")
    with pytest.raises(VimaeError) as err:
        load_dataset("omniglot", "train", tmp_path)
    message = str(err.value)
    assert "images_background.zip: images_background/Latin/character01/0101_01.png" in message
    assert "is not a readable image" in message and message.count("\n") == 0
