"""The CelebA loader, on a handful of small JPEGs this test writes itself.

Real CelebA (202,599 faces) is not available here, so these faces are synthetic 178x218 JPEGs in
CelebA's naming and size; the test split size is lowered from 20,000 to 2 to exercise the rule
"the last N_TEST images in name order are the test split".
"""

import numpy as np
import pytest
import torch
from PIL import Image

from vimae.data import celeba, load_dataset
from vimae.errors import VimaeError


@pytest.fixture
def faces(tmp_path, monkeypatch):
    monkeypatch.setattr(celeba, "N_TEST", 2)
    monkeypatch.setenv("VIMAE_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    for i in range(1, 8):
        # a flat colour per face, and a white frame that the centre crop must cut away
        pixels = np.full((218, 178, 3), 255, dtype=np.uint8)
        pixels[39:179, 19:159] = (30 * i, 100, 200)
        Image.fromarray(pixels).save(folder / f"{i:06d}.jpg", quality=95)
    return tmp_path


def test_last_images_are_test_and_faces_are_cropped_to_64(faces):
    train = load_dataset("celeba", "train", faces)
    test = load_dataset("celeba", "test", faces)
    assert (len(train), len(test)) == (5, 2)
    assert train.image_shape == (3, 64, 64) and train.labels is None
    assert train.images.min() >= 0.0 and train.images.max() <= 1.0
    # the 140x140 centre crop is the coloured square: no white frame survives
    red = torch.cat([train.images, test.images])[:, 0].mean(dim=(1, 2)) * 255
    assert red.tolist() == pytest.approx([30 * i for i in range(1, 8)], abs=3)
    assert (test.images[:, 2].mean() * 255).item() == pytest.approx(200, abs=3)


def test_limit_caps_a_split_with_a_seeded_draw_and_says_so(faces, monkeypatch):
    whole = load_dataset("celeba", "train", faces)  # no cap by default: the paper's 182,599
    monkeypatch.setenv("VIMAE_CELEBA_LIMIT", "3")
    train = load_dataset("celeba", "train", faces)
    assert len(train) == 3 and "3 of 5 train images drawn at random" in train.name
    kept = {round(v) for v in (train.images[:, 0].mean(dim=(1, 2)) * 255 / 30).tolist()}
    expected = {int(i) + 1 for i in celeba.stratified_indices(5, 3, seed=celeba.LIMIT_SEED)}
    assert kept == expected and len(whole) == 5
    monkeypatch.setenv("VIMAE_CELEBA_LIMIT", "lots")
    with pytest.raises(VimaeError, match="VIMAE_CELEBA_LIMIT"):
        load_dataset("celeba", "train", faces)


def test_decoded_faces_are_cached(faces, monkeypatch):
    first = load_dataset("celeba", "test", faces)
    monkeypatch.setattr(celeba, "crop_and_resize", lambda path: pytest.fail("decoded again"))
    assert torch.equal(load_dataset("celeba", "test", faces).images, first.images)


def test_missing_folder_says_where_faces_go(tmp_path):
    with pytest.raises(VimaeError, match=r"celeba/img_align_celeba/ .*img_align_celeba\.zip"):
        load_dataset("celeba", "train", tmp_path)


def test_too_small_images_are_named(faces):
    folder = faces / "celeba" / "img_align_celeba"
    Image.new("RGB", (100, 100)).save(folder / "000000.jpg")
    with pytest.raises(VimaeError, match=r"000000\.jpg is 100x100"):
        load_dataset("celeba", "train", faces)
