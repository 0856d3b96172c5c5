"""The user-data loaders: `folder` (a folder of images) and `array` (a .npy/.npz file)."""

import json
import re
import tracemalloc
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from vimae.data import PoolSplit, load_dataset, resize
from vimae.errors import VimaeError


def _png(path, value, size=(8, 6), mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = value if mode == "L" else (value, 0, 255 - value)
    Image.new(mode, size, colour).save(path)


def test_folder_with_train_test_and_class_subfolders(tmp_path):
    for split, n in (("train", 3), ("test", 2)):
        for cls, value in (("cat", 10), ("dog", 200)):
            for i in range(n):
                _png(tmp_path / split / cls / f"{i}.png", value)
    _png(tmp_path / "train" / "emu" / "0.png", 90)  # a class seen only in training
    train = load_dataset("folder", "train", tmp_path)
    test = load_dataset("folder", "test", tmp_path)
    assert train.images.shape == (7, 1, 6, 8) and len(test) == 4
    assert train.labels.tolist() == [0, 0, 0, 1, 1, 1, 2]  # cat, dog, emu by sorted name
    assert test.labels.tolist() == [0, 0, 1, 1]
    assert test.images[0].mean().item() == pytest.approx(10 / 255)


def _values(data):
    return data.images[:, 0, 0, 0].mul(255).round().int().tolist()


def test_flat_folder_is_split_by_a_seeded_draw_without_labels(tmp_path):
    for i in range(20):
        _png(tmp_path / f"{i:02d}.png", i, mode="RGB")
    train = load_dataset("folder", "train", tmp_path)
    test = load_dataset("folder", "test", tmp_path)
    assert (len(train), len(test)) == (18, 2) and train.labels is None
    assert train.image_shape == (3, 6, 8)
    assert sorted(_values(train) + _values(test)) == list(range(20))  # disjoint, complete
    assert _values(load_dataset("folder", "test", tmp_path)) == _values(test)  # seeded
    other = load_dataset("folder", "test", tmp_path, pool=PoolSplit(0.25, seed=1))
    assert len(other) == 5


def test_class_sorted_folder_test_split_is_stratified(tmp_path):
    # 3 classes of 30 images, sorted by class: a stride or first-n split would be lopsided.
    for c, name in enumerate(("ant", "bee", "cow")):
        for i in range(30):
            _png(tmp_path / name / f"{i:02d}.png", 80 * c + i)
    for seed in range(3):
        pool = PoolSplit(test_fraction=0.1, seed=seed)
        test = load_dataset("folder", "test", tmp_path, pool=pool)
        train = load_dataset("folder", "train", tmp_path, pool=pool)
        assert torch.bincount(test.labels).tolist() == [3, 3, 3]
        assert torch.bincount(train.labels).tolist() == [27, 27, 27]
        assert not set(_values(test)) & set(_values(train))


def test_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(VimaeError, match="no images"):
        load_dataset("folder", "train", tmp_path)
    _png(tmp_path / "a.png", 0, size=(8, 8))
    _png(tmp_path / "b.png", 0, size=(9, 8))
    with pytest.raises(VimaeError, match=r"differ in size .*a\.png is 8x8.*pass --image-size N"):
        load_dataset("folder", "train", tmp_path)
    (tmp_path / "b.png").write_bytes(b"not a png")
    with pytest.raises(VimaeError, match=r"b\.png is not a readable image"):
        load_dataset("folder", "train", tmp_path)


def test_images_of_many_sizes_are_each_resized_to_image_size(tmp_path):
    """Photos of different sizes (and a grey one among colour ones) load with --image-size,
    each resized as if alone, and a folder of one size resizes to the same values."""
    rng = np.random.default_rng(0)
    sizes = [(8, 8), (12, 10), (20, 20), (7, 15)]
    for i, (w, h) in enumerate(sizes):
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        (tmp_path / "train").mkdir(exist_ok=True)
        Image.fromarray(pixels).save(tmp_path / "train" / f"{i}.png")
    Image.fromarray(rng.integers(0, 256, (9, 9), dtype=np.uint8)).save(tmp_path / "train" / "4.png")
    _png(tmp_path / "test" / "0.png", 50, size=(5, 5), mode="RGB")
    train = load_dataset("folder", "train", tmp_path, image_size=6)
    assert train.pixels.shape == (5, 3, 6, 6) and train.pixels.dtype == torch.uint8
    for i, path in enumerate(sorted((tmp_path / "train").iterdir())):
        alone = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)
        assert torch.equal(train.pixels[i], resize(alone[None], 6)[0]), path.name
    same = tmp_path / "same"
    for i in range(3):
        pixels = rng.integers(0, 256, (10, 14, 3), dtype=np.uint8)
        (same / "train").mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(same / "train" / f"{i}.png")
    (same / "test").mkdir()
    Image.fromarray(pixels).save(same / "test" / "0.png")
    whole = load_dataset("folder", "train", same, image_size=6)  # decoded, then resized
    for i, path in enumerate(sorted((same / "train").iterdir())):
        alone = torch.from_numpy(np.array(Image.open(path))).permute(2, 0, 1)
        assert torch.equal(whole.pixels[i], resize(alone[None], 6)[0])


@pytest.mark.parametrize(
    "shape, layout",
    [
        ((10, 5, 7), "NHW"),
        ((10, 5, 7, 3), "NHWC"),
        ((10, 3, 5, 7), "NCHW"),
        ((10, 5, 7, 1), "NHWC"),
    ],
)
def test_array_layouts_and_uint8_scaling(tmp_path, shape, layout):
    x = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    np.save(tmp_path / "x.npy", x)
    train = load_dataset("array", "train", tmp_path / "x.npy")
    test = load_dataset("array", "test", tmp_path / "x.npy")
    assert (len(train), len(test)) == (9, 1)
    channels = 1 if layout == "NHW" else shape[3] if layout == "NHWC" else shape[1]
    assert train.image_shape == (channels, 5, 7)
    nchw = {"NHW": lambda: x[:, None], "NHWC": lambda: x.transpose(0, 3, 1, 2)}.get(
        layout, lambda: x
    )()
    index = PoolSplit().indices(10, "test", None)
    assert torch.equal(test.images[0], torch.from_numpy(nchw[index[0]]).float() / 255)


def test_npz_with_named_splits_and_labels(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "mine.npz"
    np.savez(
        path,
        x_train=rng.random((6, 4, 4), dtype=np.float32),
        y_train=np.arange(6),
        x_test=rng.random((2, 4, 4)),
        y_test=np.array([1, 0]),
    )
    train = load_dataset("array", "train", path)
    test = load_dataset("array", "test", path)
    assert train.labels.tolist() == list(range(6)) and test.labels.tolist() == [1, 0]
    assert test.images.dtype == torch.float32 and test.image_shape == (1, 4, 4)


def test_npz_pool_with_labels_is_split_stratified(tmp_path):
    path = tmp_path / "pool.npz"
    y = np.repeat(np.arange(4), 25)  # sorted by class
    np.savez(path, x=np.zeros((100, 4, 4, 3), np.uint8), y=y)
    test = load_dataset("array", "test", path)
    train = load_dataset("array", "train", path)
    assert torch.bincount(test.labels).tolist() == [2, 3, 2, 3] or sorted(
        torch.bincount(test.labels).tolist()
    ) == [2, 2, 3, 3]  # 10 of 100: each class within one of its share 2.5
    assert (torch.bincount(train.labels) + torch.bincount(test.labels)).tolist() == [25] * 4


@pytest.mark.parametrize(
    "x, message",
    [
        (np.full((4, 5, 5), 2.0), r"float values from 2 to 2; scale them to \[0, 1\]"),
        (np.zeros((4, 5, 5), np.int32), "int32 values"),
        (np.zeros((4, 3, 5, 3), np.uint8), "channel axis"),
        (np.zeros((4, 5), np.uint8), r"shape \(4, 5\)"),
        (np.zeros((0, 5, 5), np.uint8), "no images"),
    ],
)
def test_bad_arrays_are_explained(tmp_path, x, message):
    np.save(tmp_path / "bad.npy", x)
    with pytest.raises(VimaeError, match=message):
        load_dataset("array", "train", tmp_path / "bad.npy")


def test_bad_labels_and_files_are_explained(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.zeros((4, 5, 5), np.uint8), y=np.array([0.5, 1, 2, 3]))
    with pytest.raises(VimaeError, match="4 non-negative integer labels"):
        load_dataset("array", "train", tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", images=np.zeros(3), other=np.zeros(3))
    with pytest.raises(VimaeError, match="name the arrays x_train, x_test"):
        load_dataset("array", "train", tmp_path / "b.npz")
    np.save(tmp_path / "c.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(VimaeError, match="not a readable"):
        load_dataset("array", "train", tmp_path / "c.npy")
    with pytest.raises(VimaeError, match=r"not a \.npy or \.npz file"):
        load_dataset("array", "train", tmp_path)


SPLITS = ("train", "test")
# A picture as 16-bit values: a horizontal ramp over the whole range, mean about mid grey.
RAMP16 = np.tile(np.linspace(0, 65535, 8).round().astype(np.uint16), (6, 1))  # (H, W) = (6, 8)


def _pgm16(path, values):
    path.write_bytes(b"P5 %d %d 65535\n" % values.shape[::-1] + values.astype(">u2").tobytes())


# file name, how it is written, and the values it holds as a fraction of full intensity
DEEP = {
    "png-I;16": ("a.png", lambda p: Image.fromarray(RAMP16).save(p), RAMP16 / 65535),
    "tiff-I;16": ("a.tif", lambda p: Image.fromarray(RAMP16).save(p), RAMP16 / 65535),
    "pgm-16bit": ("a.pgm", lambda p: _pgm16(p, RAMP16), RAMP16 / 65535),
    "tiff-I-int32": (
        "a.tif",
        lambda p: Image.fromarray(RAMP16.astype(np.int32) << 15).save(p),
        (RAMP16.astype(np.int64) << 15) / (2**31 - 1),
    ),
    "tiff-F": (
        "a.tif",
        lambda p: Image.fromarray((RAMP16 / 65535).astype(np.float32)).save(p),
        RAMP16 / 65535,
    ),
}


@pytest.mark.parametrize("kind", DEEP)
def test_deep_images_are_scaled_by_their_range(tmp_path, kind):
    name, write, expected = DEEP[kind]
    (tmp_path / "deep").mkdir()
    write(tmp_path / "deep" / name)
    (tmp_path / "flat").mkdir()  # the same picture saved at 8 bits
    Image.fromarray((RAMP16 / 257).round().astype(np.uint8)).save(tmp_path / "flat" / "a.png")
    deep = load_dataset("folder", "train", tmp_path / "deep")
    flat = load_dataset("folder", "train", tmp_path / "flat")
    assert deep.images.shape == flat.images.shape == (1, 1, 6, 8)
    assert deep.images.mean().item() == pytest.approx(0.5, abs=1e-3)  # mid grey, not 1.0
    assert torch.allclose(deep.images[0, 0], torch.from_numpy(expected).float(), atol=1e-6)
    assert (deep.images - flat.images).abs().max().item() <= 0.5 / 255 + 1e-6


def test_deep_grey_among_colour_images_keeps_its_scale(tmp_path):
    Image.fromarray(RAMP16).save(tmp_path / "grey.png")
    Image.new("RGB", (8, 6), (255, 0, 0)).save(tmp_path / "red.png")
    pool = PoolSplit(test_fraction=0.5)
    both = torch.cat([load_dataset("folder", s, tmp_path, pool=pool).images for s in SPLITS])
    assert both.shape == (2, 3, 6, 8)  # one colour image makes all load as RGB
    ramp = torch.from_numpy(RAMP16 / 65535).float().expand(3, 6, 8)
    assert sum(torch.allclose(image, ramp, atol=1e-6) for image in both) == 1


def test_float_images_outside_0_1_are_refused(tmp_path):
    Image.fromarray(np.full((6, 8), 3.5, np.float32)).save(tmp_path / "hot.tif")
    with pytest.raises(VimaeError, match=r"hot\.tif has F pixel values from 3\.5 to 3\.5"):
        load_dataset("folder", "train", tmp_path)


def _add_npy_member(path, name, shape, data_bytes):
    """Append member `name`.npy to a .npz: a header for a uint8 `shape`, then `data_bytes` zeros
    (written in chunks, so the test never holds them)."""
    header = {"descr": "|u1", "fortran_order": False, "shape": shape}
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as zf, zf.open(f"{name}.npy", "w") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for start in range(0, data_bytes, 1 << 20):
            f.write(bytes(min(1 << 20, data_bytes - start)))


def _peak(load):
    """(what `load()` returns or the VimaeError it raises, the most bytes it held at once)."""
    tracemalloc.start()
    try:
        result = load()
    except VimaeError as err:
        result = err
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return result, peak


def test_npz_reads_only_the_arrays_of_the_split(tmp_path):
    path = tmp_path / "big.npz"
    x_train = np.random.default_rng(0).integers(0, 256, size=(20, 4, 4), dtype=np.uint8)
    np.savez_compressed(path, x_train=x_train, x_test=np.zeros((3, 4, 4), np.uint8))
    _add_npy_member(path, "extra", (64 << 20,), 64 << 20)  # 64 MB no split needs, 64 KB zipped
    train, peak = _peak(lambda: load_dataset("array", "train", path))
    assert torch.equal(train.images[:, 0], torch.from_numpy(x_train).float() / 255)
    assert peak < 8 << 20, f"{peak} bytes in memory to load 320 bytes of images"


def test_npz_header_promising_more_than_its_member_holds_is_refused_unread(tmp_path):
    path = tmp_path / "liar.npz"
    np.savez(path, y=np.arange(3))
    _add_npy_member(path, "x", (500_000_000,), 10)  # promises 500 MB, holds 10 bytes
    err, peak = _peak(lambda: load_dataset("array", "train", path))
    assert isinstance(err, VimaeError)
    assert re.search(r"liar\.npz is not a readable .*promises 500000000 bytes of data", str(err))
    assert peak < 8 << 20, f"{peak} bytes in memory for an array of 10"


def test_a_run_trains_and_evaluates_on_photos_of_many_sizes(tmp_path):
    """--image-size reaches the loader in training and evaluation alike."""
    from vimae.cli import main

    rng = np.random.default_rng(2)
    for i in range(60):
        w, h = rng.integers(6, 30, 2)
        cls = tmp_path / "photos" / ("cat" if i % 2 else "dog")
        cls.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(cls / f"{i}.png")
    run = tmp_path / "run"
    common = ["--dataset", "folder", "--data-dir", str(tmp_path / "photos")]
    train = ["train", *common, "--image-size", "8", "--arch", "mlp", "--width", "0.25"]
    assert main([*train, "--epochs", "1", "--batch-size", "10", "--out", str(run)]) == 0
    assert main(["train", *common, "--arch", "mlp", "--out", str(tmp_path / "no")]) == 2
    assert main(["evaluate", str(run), "--metrics", "reconstruction"]) == 0
    data = json.loads((run / "data.json").read_text())["train"]
    assert data["image_shape"] == [3, 8, 8] and data["class_counts"] == {"0": 27, "1": 27}
