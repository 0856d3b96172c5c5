"""`vimae shards`: a dataset converted for streaming holds exactly the data `load_dataset` gives,
a killed conversion continues where it stopped, and a folder larger than memory converts."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from vimae.cli import main
from vimae.data import ImageData, StreamData, load_dataset, write_shards
from vimae.data import convert as convert_module
from vimae.errors import VimaeError


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """scikit-learn's digits as 8x8 PNG files in one subfolder per class (one pool: no train/)."""
    root = tmp_path_factory.mktemp("photos")
    digits = load_digits()
    for i, (image, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        (root / f"class{label}").mkdir(exist_ok=True)
        pixels = np.round(image * 255 / 16).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(root / f"class{label}" / f"{i:04d}.png")
    return root


def shards_cli(*args: str) -> int:
    return main(["shards", "--no-progress", *args])


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.npy"))}


def test_a_folder_converts_to_the_shards_of_the_same_data_in_memory(tmp_path, photos, monkeypatch):
    """Decoded and resized a few files at a time, by this process or by 2 workers, the shards
    equal the folder loaded whole."""
    monkeypatch.setattr(convert_module, "DECODE_BYTES", 16 * 16 * 4 * 7)  # 7 images a slice
    args = ["--dataset", "folder", "--data-dir", str(photos), "--image-size", "16"]
    args += ["--shard-size", "300", "--data-seed", "3"]
    assert shards_cli(*args, "--out", str(tmp_path / "one"), "--workers", "0") == 0
    assert shards_cli(*args, "--out", str(tmp_path / "two"), "--workers", "2") == 0
    assert files_of(tmp_path / "two") == files_of(tmp_path / "one")
    for split in ("train", "test"):
        streamed = StreamData.open(tmp_path / "one" / split, "photos")
        loaded = load_dataset("folder", split, photos, image_size=16, pool=_pool(3))
        assert len(streamed.shards) == -(-len(loaded) // 300)
        assert torch.equal(streamed.load().pixels, loaded.pixels)
        assert torch.equal(streamed.labels, loaded.labels)
        record = streamed.describe()
        assert record["class_counts"] == loaded.describe()["class_counts"]
        assert record["converted_from"]["dataset"] == "folder"
        assert record["converted_from"]["data_seed"] == 3
        assert record["converted_from"]["image_size"] == 16


def _pool(seed: int):
    from vimae.data import PoolSplit

    return PoolSplit(0.1, seed)


def test_a_folder_of_many_sizes_converts_to_what_it_loads_as(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(30):
        w, h = rng.integers(5, 40, 2)
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{i:02d}.jpg")
    out = tmp_path.with_name(tmp_path.name + "-shards")
    args = ["--dataset", "folder", "--data-dir", str(tmp_path), "--out", str(out)]
    assert shards_cli(*args, "--image-size", "12", "--shard-size", "10") == 0
    for split in ("train", "test"):
        loaded = load_dataset("folder", split, tmp_path, image_size=12)
        assert torch.equal(StreamData.open(out / split, "mixed").load().pixels, loaded.pixels)


def test_a_built_in_dataset_converts_to_its_own_splits(tmp_path, capsys):
    """The digits' 17 grey levels are not 8-bit: rounded to 8 bits, and said so."""
    args = ["--dataset", "digits", "--out", str(tmp_path), "--shard-size", "500"]
    assert main(["shards", *args]) == 0
    assert "the shards round them to 8 bits" in capsys.readouterr().err
    for split in ("train", "test"):
        streamed = StreamData.open(tmp_path / split, "digits").load()
        loaded = load_dataset("digits", split)
        assert streamed.pixels.dtype == torch.uint8
        assert (streamed.images - loaded.images).abs().max() <= 0.5 / 255 + 1e-7
        assert torch.equal(streamed.labels, loaded.labels)


def recording_shards(monkeypatch, kill_at: int | None = None) -> list[int]:
    """The numbers of the shards `vimae shards` writes from now on; Ctrl-C as it comes to write
    the `kill_at`-th of them."""
    real_write, written = convert_module.write_shard, []

    def write(*args, **kwargs):
        written.append(args[1])
        if len(written) == kill_at:
            raise KeyboardInterrupt
        real_write(*args, **kwargs)

    monkeypatch.setattr(convert_module, "write_shard", write)
    return written


def test_a_killed_conversion_continues_where_it_stopped(tmp_path, photos, monkeypatch):
    """Killed after two shards: the folder is refused until the same command finishes it,
    which keeps the whole shards and gives the bytes of an uninterrupted conversion."""
    args = ["--dataset", "folder", "--data-dir", str(photos), "--shard-size", "400"]
    assert shards_cli(*args, "--out", str(tmp_path / "whole")) == 0
    killed = tmp_path / "killed"
    recording_shards(monkeypatch, kill_at=3)
    assert shards_cli(*args, "--out", str(killed)) == 130
    with pytest.raises(VimaeError, match="did not finish; run the same `vimae shards`"):
        load_dataset("shards", "train", killed)
    kept = {p: p.stat().st_mtime_ns for p in (killed / "train").glob("*.npy")}
    assert len(kept) == 4  # images and labels of shards 0 and 1

    written = recording_shards(monkeypatch)
    assert shards_cli(*args, "--out", str(killed)) == 0
    assert written[:1] == [2]  # shards 0 and 1 were kept, not written again
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())
    assert files_of(killed) == files_of(tmp_path / "whole")
    assert len(load_dataset("shards", "train", killed)) > 0


def test_a_conversion_killed_then_continued_on_changed_files_starts_over(
    tmp_path, photos, monkeypatch
):
    """Files added after the kill would shift every later shard: the split is written anew."""
    folder = tmp_path / "photos"
    shutil.copytree(photos, folder)
    args = ["--dataset", "folder", "--data-dir", str(folder), "--shard-size", "400"]
    recording_shards(monkeypatch, kill_at=3)
    assert shards_cli(*args, "--out", str(tmp_path / "killed")) == 130
    Image.new("L", (8, 8), 7).save(folder / "class0" / "0000a.png")  # sorts second in class0
    written = recording_shards(monkeypatch)
    assert shards_cli(*args, "--out", str(tmp_path / "killed")) == 0
    assert written[:1] == [0]
    assert shards_cli(*args, "--out", str(tmp_path / "fresh")) == 0
    assert files_of(tmp_path / "killed") == files_of(tmp_path / "fresh")


def test_a_finished_conversion_is_kept_and_another_one_refused(tmp_path, photos, capsys):
    args = ["--dataset", "folder", "--data-dir", str(photos), "--out", str(tmp_path)]
    assert shards_cli(*args) == 0
    before = files_of(tmp_path)
    assert main(["shards", *args]) == 0
    assert "already converted with these settings" in capsys.readouterr().err
    assert shards_cli(*args, "--image-size", "4") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds shards of another conversion" in err
    assert files_of(tmp_path) == before


def test_bad_conversions_are_one_sentence_and_write_nothing(tmp_path, photos, capsys):
    few = tmp_path / "few"  # 3 images: a 10% test split of them is empty
    for i in range(3):
        _gray(few / f"{i}.png", i)
    broken = tmp_path / "broken"
    for i in range(4):
        _gray(broken / f"{i}.png", i)
    (broken / "2.png").write_bytes(b"\x89PNG cut short")
    _gray(tmp_path / "photos.png", 0)
    pairs = tmp_path / "pairs.npz"
    np.savez(pairs, x=np.zeros((2, 4, 4), np.uint8))
    cases = {
        ("--dataset", "shards", "--data-dir", str(tmp_path)): "already shards",
        ("--dataset", "nonsense"): "unknown dataset",
        ("--dataset", "digits", "--image-size", "0"): "--image-size (data.image_size) must be",
        ("--dataset", "digits", "--shard-size", "0"): "--shard-size must be a positive",
        ("--dataset", "digits", "--workers", "-1"): "--workers must be 0 to",
        ("--dataset", "folder", "--data-dir", str(tmp_path / "none")): "is not a folder",
        ("--dataset", "folder", "--data-dir", str(few)): "raise --test-fraction, or add images",
        ("--dataset", "array", "--data-dir", str(pairs)): "the test split of array holds no",
        ("--dataset", "folder", "--data-dir", str(broken)): "2.png is not a readable image",
        ("--dataset", "folder", "--data-dir", str(tmp_path / "photos.png")): "is not a folder",
    }
    for args, message in cases.items():
        assert shards_cli(*args, "--out", str(tmp_path / "out")) == 2, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, (args, err)  # workers' errors too
        assert not (tmp_path / "out" / "train").exists(), args


def test_a_file_that_fails_in_a_worker_is_one_sentence(tmp_path, capsys):
    """Its header reads (the scan passes), its pixels do not: a DataLoader worker meets it."""
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        noise = rng.integers(0, 256, (64, 64), dtype=np.uint8)  # most of the file is pixel data
        Image.fromarray(noise).save(photos / f"{i}.png")
    whole = (photos / "3.png").read_bytes()
    (photos / "3.png").write_bytes(whole[: len(whole) // 2])
    args = ["--dataset", "folder", "--data-dir", str(photos), "--out", str(tmp_path / "out")]
    assert shards_cli(*args, "--workers", "2", "--test-fraction", "0.5") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "3.png is not a readable image" in err, err


def _gray(path: Path, value: int, size: tuple[int, int] = (8, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, value).save(path)


def test_shards_never_go_into_the_data_s_own_folders(tmp_path, capsys):
    photos = tmp_path / "train"  # a pool of photos in a folder that happens to be called train
    _gray(photos / "0.png", 1)
    _gray(photos / "1.png", 2)
    for out in (photos, photos / "shards", tmp_path):  # tmp_path/train is the photos folder
        args = ["--dataset", "folder", "--data-dir", str(photos), "--out", str(out)]
        assert shards_cli(*args, "--test-fraction", "0.5") == 2
        assert "would put shards into the data's own folders" in capsys.readouterr().err
    assert sorted(p.name for p in photos.iterdir()) == ["0.png", "1.png"]


def test_a_conversion_is_one_unit_and_knows_its_folder_by_any_name(tmp_path, photos, monkeypatch):
    """Killed in the test split after train finished, then a training file changes: both splits
    are converted anew (they share channels and class indices). The same folder named by a
    relative path is the same conversion; a deleted shard is written again."""
    folder = tmp_path / "photos"
    shutil.copytree(photos, folder)
    out = tmp_path / "out"
    args = ["--dataset", "folder", "--data-dir", str(folder), "--shard-size", "1000"]
    recording_shards(monkeypatch, kill_at=3)  # train's 2 shards, then test's
    assert shards_cli(*args, "--out", str(out)) == 130
    with pytest.raises(VimaeError, match="did not finish"):
        load_dataset("shards", "train", out)  # train is whole, but the conversion is not
    _gray(folder / "class9" / "0000a.png", 3)
    recording_shards(monkeypatch)
    assert shards_cli(*args, "--out", str(out)) == 0
    assert shards_cli(*args, "--out", str(tmp_path / "fresh")) == 0
    assert files_of(out) == files_of(tmp_path / "fresh")

    monkeypatch.chdir(tmp_path)
    written = recording_shards(monkeypatch)
    relative = ["--dataset", "folder", "--data-dir", "photos", "--shard-size", "1000"]
    (out / "train" / "images-00001.npy").unlink()
    assert shards_cli(*relative, "--out", "out") == 0
    assert written == [1]
    assert files_of(out) == files_of(tmp_path / "fresh")


def test_source_groups_travel_with_the_shards(tmp_path):
    """Omniglot's rotations of one drawing share a group, which its held-out split respects."""
    data = ImageData(
        "rotations",
        torch.randint(0, 256, (40, 1, 4, 4), dtype=torch.uint8),
        torch.arange(40) % 5,
        torch.arange(40) // 4,
    )
    write_shards(data, tmp_path, shard_size=16)
    streamed = StreamData.open(tmp_path, "rotations")
    assert torch.equal(streamed.take(np.arange(3, 30)).load().groups, data.groups[3:30])
    assert torch.equal(streamed.load().pixels, data.pixels)


BOUNDED = """
import resource, sys
from vimae.cli import build_parser, main
from vimae.data import load_dataset
from vimae.errors import VimaeError

def vm_data() -> int:  # bytes of this process's private data (what RLIMIT_DATA bounds)
    for line in open("/proc/self/status"):
        if line.startswith("VmData:"):
            return int(line.split()[1]) * 1024
build_parser()  # the command's own imports, before the limit
limit = vm_data() + int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
try:
    load_dataset("folder", "train", sys.argv[1])  # the folder does not fit under the limit ...
    sys.exit("the folder fit in memory: the test proves nothing")
except VimaeError as err:  # ... which loading it says in one sentence, naming the way out ...
    assert "do not fit in this process's memory" in str(err) and "vimae shards" in str(err)
sys.exit(main(["shards", "--dataset", "folder", "--data-dir", sys.argv[1], "--out", sys.argv[2],
               "--image-size", "32", "--shard-size", "100", "--no-progress"]))  # ... converts
"""


def test_a_folder_larger_than_its_memory_limit_converts(tmp_path):
    """400 MB-sized photos (400 of 512x512 RGB, 315 MB decoded) under a 192 MB limit."""
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(400):
        pixels = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(photos / f"{i:03d}.bmp")
    out = tmp_path / "shards"
    child = subprocess.run(
        [sys.executable, "-c", BOUNDED, str(photos), str(out), str(192 << 20)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert child.returncode == 0, child.stderr[-3000:]
    train = StreamData.open(out / "train", "photos")
    assert len(train) == 360 and train.image_shape == (3, 32, 32)


def test_a_folder_too_large_for_memory_names_the_way_out(photos, monkeypatch):
    """Refused before decoding when the kernel says the pixels will not fit."""
    from vimae.data import memory

    monkeypatch.setattr(memory, "available_memory", lambda: 1000)
    with pytest.raises(VimaeError, match=r"more than the 0\.0 GiB available; convert them") as err:
        load_dataset("folder", "train", photos)
    assert "vimae shards --dataset folder" in str(err.value)
