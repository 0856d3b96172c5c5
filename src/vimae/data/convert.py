"""`vimae shards`: any dataset, a folder larger than memory included, written as streamed shards.

Training streams the `shards` dataset from disk (`vimae.data.stream`), but a folder of a million
photos cannot first be loaded whole to be written. A folder is therefore converted a shard at a
time: its files are found and split as `load_folder` splits them (the same seeded stratified test
split, the same labels), then decoded and resized a slice at a time (at most DECODE_BYTES of
decoded source pixels), so memory stays bounded by one shard. Other datasets (every paper dataset
fits in memory as uint8) are loaded as usual and written the same way.

The converted split equals `load_dataset(dataset, split, data_dir, image_size, pool)` pixel for
pixel, except that 16-bit and float sources are rounded to 8 bits (a shard's depth).

A killed conversion loses nothing: each shard is written atomically, and `.converting.json` in the
split's folder records the conversion's settings until it finishes. Run again with the same
settings, it keeps the whole shards and writes the rest; with other settings it starts that split
over. The `shards` dataset refuses a folder whose conversion has not finished.
"""

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vimae.atomic import atomic_write_text, remove_stale_temporaries
from vimae.data.base import DATASETS, DEFAULT_POOL, SPLITS, PoolSplit, describe_data, load_dataset
from vimae.data.base import resize as resize_images
from vimae.data.folder import folder_split
from vimae.data.stream import (
    CONVERTING,
    IMAGES_GLOB,
    MANIFEST,
    SIDE_ARRAYS,
    shard_is_whole,
    to_pixels,
    write_manifest,
    write_shard,
)
from vimae.errors import VimaeError

DEFAULT_SHARD_SIZE = 10_000
DECODE_BYTES = 64 << 20  # decoded source pixels held at once while converting a folder


@dataclass
class SplitSource:
    """One split to convert: its length, labels and groups, and `read(start, stop)` giving the
    uint8 pixels of those images at the output size."""

    name: str
    count: int
    image_shape: tuple[int, int, int]
    labels: torch.Tensor | None
    groups: torch.Tensor | None
    read: Callable[[int, int], torch.Tensor]
    rounded: bool  # the source is not 8-bit: the shards round it to 8 bits

    def __len__(self) -> int:
        return self.count


def split_source(
    dataset: str, split: str, data_dir: Path, image_size: int | None, pool: PoolSplit
) -> SplitSource:
    """A folder found but not decoded; any other dataset loaded (and resized) in memory."""
    if dataset != "folder":
        data = load_dataset(dataset, split, data_dir, image_size, pool)
        return SplitSource(
            data.name,
            len(data),
            data.image_shape,
            data.labels,
            data.groups,
            lambda start, stop: to_pixels(data.pixels[start:stop]),
            data.pixels.dtype != torch.uint8,
        )
    found = folder_split(split, data_dir, pool)
    channels, height, width = found.image_shape
    shape = (channels, image_size, image_size) if image_size else found.image_shape
    # Bytes per image held at once: decoded, and while resized its float32 copy, the float32
    # result and that result as uint8.
    source, resized = channels * height * width, channels * shape[1] * shape[2]
    per_image = source * (4 if found.deep else 1) + (4 * source + 5 * resized if image_size else 0)
    step = max(1, DECODE_BYTES // per_image)

    def read(start: int, stop: int) -> torch.Tensor:
        out = torch.empty((stop - start, *shape), dtype=torch.uint8)
        for first in range(start, stop, step):
            last = min(first + step, stop)
            pixels = found.decode(first, last)
            if image_size:
                pixels = resize_images(pixels, image_size)
            out[first - start : last - start] = to_pixels(pixels)
        return out

    return SplitSource(found.name, len(found), shape, found.labels, None, read, found.deep)


def conversion_settings(
    dataset: str,
    split: str,
    data_dir: Path,
    image_size: int | None,
    pool: PoolSplit,
    shard_size: int,
) -> dict[str, Any]:
    """What identifies a conversion: a rerun with the same settings continues it."""
    settings: dict[str, Any] = {
        "dataset": dataset,
        "split": split,
        "data_dir": str(Path(data_dir).resolve()),
        "image_size": image_size,
        "shard_size": shard_size,
    }
    if "pool" in inspect.signature(DATASETS[dataset]).parameters:
        settings.update(test_fraction=pool.test_fraction, data_seed=pool.seed)
    return settings


def _prepare(folder: Path, settings: dict[str, Any]) -> bool:
    """Make `folder` ready for this conversion; False when it holds the finished result already."""
    remove_stale_temporaries(folder)
    marker, manifest = folder / CONVERTING, folder / MANIFEST
    if marker.exists():
        try:
            unfinished = json.loads(marker.read_text())
        except (OSError, ValueError):
            unfinished = None
        if unfinished != settings:  # an unfinished conversion with other settings: start over
            for kind in ("images", *SIDE_ARRAYS):
                for path in folder.glob(IMAGES_GLOB.replace("images", kind)):
                    path.unlink()
            manifest.unlink(missing_ok=True)
        return True
    if manifest.is_file():
        try:
            finished = json.loads(manifest.read_text()).get("conversion")
        except (OSError, ValueError, AttributeError):
            finished = None
        if finished == settings:
            return False
    if manifest.exists() or any(folder.glob(IMAGES_GLOB)):
        raise VimaeError(
            f"{folder} already holds shards of another conversion; choose another --out or "
            "delete that folder."
        )
    return True


def convert_split(
    source: SplitSource,
    folder: Path,
    settings: dict[str, Any],
    report: Callable[[str], None],
) -> int:
    """Write `source` as shards into `folder`; the number of shards written now (kept ones not
    counted)."""
    if not _prepare(folder, settings):
        report(f"{folder}: already converted with these settings")
        return 0
    atomic_write_text(folder / CONVERTING, json.dumps(settings))
    shard_size = settings["shard_size"]
    starts = range(0, len(source), shard_size)
    written = 0
    for k, start in enumerate(starts):
        stop = min(start + shard_size, len(source))
        if shard_is_whole(folder, k, stop - start, source.image_shape):
            continue
        rows = slice(start, stop)
        labels = None if source.labels is None else source.labels[rows]
        groups = None if source.groups is None else source.groups[rows]
        write_shard(folder, k, source.read(start, stop), labels, groups)
        written += 1
        report(f"{folder}: shard {k + 1}/{len(starts)} ({stop:,}/{len(source):,} images)")
    write_manifest(folder, settings, describe_data(source))
    (folder / CONVERTING).unlink()
    return written


def convert(
    dataset: str,
    data_dir: str | Path,
    out: str | Path,
    image_size: int | None = None,
    pool: PoolSplit = DEFAULT_POOL,
    shard_size: int = DEFAULT_SHARD_SIZE,
    report: Callable[[str], None] = lambda line: None,
) -> dict[str, dict[str, Any]]:
    """Convert both splits of `dataset` into OUT/train and OUT/test (see the module doc);
    returns each split's record (images, shape, class counts)."""
    if dataset == "shards":
        raise VimaeError("--dataset shards is already shards; convert the dataset it came from.")
    if not 1 <= shard_size <= 2**31 - 1:
        raise VimaeError(f"--shard-size must be a positive number of images, got {shard_size}.")
    records = {}
    for split in SPLITS:
        source = split_source(dataset, split, Path(data_dir), image_size, pool)
        if source.rounded:
            report(f"note: the {split} images are not 8-bit; the shards round them to 8 bits")
        settings = conversion_settings(dataset, split, Path(data_dir), image_size, pool, shard_size)
        convert_split(source, Path(out) / split, settings, report)
        records[split] = describe_data(source)
    return records
