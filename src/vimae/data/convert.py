"""Any dataset, a folder larger than memory included, written as streamed shards (`vimae shards`).

Training streams the `shards` dataset from disk (`vimae.data.stream`), but a folder of a million
photos cannot first be loaded whole to be written. A folder is therefore converted a shard at a
time: its files are found and split as `load_folder` splits them (the same seeded stratified test
split, the same labels), then decoded and resized by DataLoader worker processes a slice at a
time (each slice at most DECODE_BYTES while it is worked on), so memory stays bounded by one
shard and a few slices whatever the folder's size. Other datasets (every paper dataset fits in
memory as uint8) are loaded as usual and written the same way.

The converted split equals `load_dataset(dataset, split, data_dir, image_size, pool)` pixel for
pixel, except that sources that are not 8-bit are rounded to 8 bits (a shard's depth).

A killed conversion loses nothing: each shard is written atomically, and `.converting.json` in
both splits' folders records the conversion's settings and a digest of its source (a folder's
files: their paths under it, sizes and modification times, both splits together since they
share channels and class indices) from before the first shard until after the last. Run again
with the same settings on the same data, it keeps the whole shards and writes the rest; with
other settings, or on files that changed meanwhile, it starts over. The `shards` dataset refuses
a folder whose conversion has not finished.
"""

import hashlib
import inspect
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vimae.config import MAX_COUNT, MAX_WORKERS
from vimae.data.base import (
    DATASETS,
    DEFAULT_POOL,
    SPLITS,
    PoolSplit,
    describe_data,
    load_dataset,
    to_pixels,
)
from vimae.data.base import resize as resize_images
from vimae.data.folder import FolderSplit, folder_splits, nonempty
from vimae.data.stream import (
    CONVERTING,
    IMAGES_GLOB,
    MANIFEST,
    SIDE_ARRAYS,
    shard_is_whole,
    write_manifest,
    write_shard,
)
from vimae.errors import VimaeError
from vimae.files import atomic_write_text, remove_stale_temporaries, run_lock

DEFAULT_SHARD_SIZE = 10_000
DECODE_BYTES = 32 << 20  # memory one reader (a worker process) holds for a slice of files


@dataclass
class _FolderReader:
    """Decodes (and resizes) files start .. stop - 1 of a folder split into uint8 pixels; an
    object rather than a closure so that worker processes can receive it however they start."""

    found: FolderSplit
    image_size: int | None

    def __call__(self, start: int, stop: int) -> torch.Tensor:
        pixels = self.found.decode(start, stop)
        if self.image_size:
            pixels = resize_images(pixels, self.image_size)
        return to_pixels(pixels)


class _Slices(torch.utils.data.Dataset):
    """Item i: the pixels of slice i, (start, stop), as `read` gives them (in a worker)."""

    def __init__(self, read: Callable[[int, int], torch.Tensor], bounds: list[tuple[int, int]]):
        self.read, self.bounds = read, bounds

    def __len__(self) -> int:
        return len(self.bounds)

    def __getitem__(self, i: int) -> torch.Tensor | VimaeError:
        try:
            return self.read(*self.bounds[i])
        except VimaeError as err:  # returned, not raised: a worker's raise arrives as a traceback
            return err


@dataclass
class SplitSource:
    """One split to convert: its length, labels and groups, and `read(start, stop)` giving the
    uint8 pixels of those images at the output size, `step` images at a time at most."""

    name: str
    count: int
    image_shape: tuple[int, int, int]
    labels: torch.Tensor | None
    groups: torch.Tensor | None
    read: Callable[[int, int], torch.Tensor]
    step: int
    rounded: bool  # the source is not 8-bit: the shards round it to 8 bits
    identity: str  # sha256 of what is converted: a rerun on changed data starts over
    pooled: bool  # split from one pool by --test-fraction and --data-seed

    def __len__(self) -> int:
        return self.count

    def shards(self, bounds: list[tuple[int, int]], workers: int = 0) -> Iterator[torch.Tensor]:
        """The uint8 pixels of each shard (start, stop) in `bounds`, in order, read a slice of
        `step` images at a time by `workers` DataLoader processes (0: by this one)."""
        pieces = [
            (k, first, min(first + self.step, stop))
            for k, (start, stop) in enumerate(bounds)
            for first in range(start, stop, self.step)
        ]
        loader = torch.utils.data.DataLoader(
            _Slices(self.read, [(first, last) for _, first, last in pieces]),
            batch_size=None,  # items are slices already
            num_workers=workers,
            prefetch_factor=2 if workers else None,
        )
        out = torch.empty(0, dtype=torch.uint8)
        for (k, first, last), pixels in zip(pieces, loader, strict=True):
            if isinstance(pixels, VimaeError):  # a damaged file, say: its one sentence
                raise pixels
            start, stop = bounds[k]
            if first == start:
                out = torch.empty((stop - start, *self.image_shape), dtype=torch.uint8)
            out[first - start : last - start] = pixels
            if last == stop:
                yield out


def split_sources(
    dataset: str, data_dir: Path, image_size: int | None, pool: PoolSplit
) -> dict[str, SplitSource]:
    """Both splits, each holding images, before anything is written: a folder found but not
    decoded (read a slice at a time), any other dataset loaded (and resized) in memory."""
    if dataset == "folder":
        found = folder_splits(data_dir, pool, image_size)
        for split in SPLITS:
            nonempty(found[split], split, data_dir)
        # Both splits' files: they decide together the channels, the size and the class indices.
        identity = folder_digest(found, data_dir)
        return {split: _folder_source(found[split], image_size, identity) for split in SPLITS}
    pooled = "pool" in inspect.signature(DATASETS[dataset]).parameters
    sources = {}
    for split in SPLITS:
        data = load_dataset(dataset, split, data_dir, image_size, pool)
        if len(data) == 0:
            raise VimaeError(f"the {split} split of {dataset} holds no images; shards need both.")
        sources[split] = SplitSource(
            data.name,
            len(data),
            data.image_shape,
            data.labels,
            data.groups,
            lambda start, stop, data=data: to_pixels(data.pixels[start:stop]),
            len(data),
            data.pixels.dtype != torch.uint8,
            data.digest(),
            pooled,
        )
    return sources


def _folder_source(found: FolderSplit, image_size: int | None, identity: str) -> SplitSource:
    channels, height, width = found.image_shape
    shape = (channels, image_size, image_size) if image_size else found.image_shape
    # Bytes per image held at once: decoded, and while resized its float32 copy, the float32
    # result and that result as uint8 (files of different sizes: resized one by one).
    source, resized = channels * height * width, channels * shape[1] * shape[2]
    if found.size is None:
        source = 0
    per_image = source * (4 if found.deep else 1) + (4 * source + 5 * resized if image_size else 0)
    step = max(1, DECODE_BYTES // per_image)
    reader = _FolderReader(found, image_size)
    return SplitSource(
        found.name,
        len(found),
        shape,
        found.labels,
        None,
        reader,
        step,
        found.deep,
        identity,
        found.pooled,
    )


def folder_digest(found: dict[str, FolderSplit], data_dir: Path) -> str:
    """sha256 over both splits' files (path under `data_dir`, size, modification time) and
    labels: files added, removed, replaced or edited since a conversion began change it, without
    reading them."""
    h = hashlib.sha256()
    for split in SPLITS:
        h.update(f"{split}\n".encode())
        for path in found[split].files:
            stat = path.stat()
            name = path.relative_to(data_dir).as_posix()
            h.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        if found[split].labels is not None:
            h.update(found[split].labels.numpy().tobytes())
    return h.hexdigest()


def conversion_settings(
    dataset: str,
    split: str,
    data_dir: Path,
    image_size: int | None,
    pool: PoolSplit,
    shard_size: int,
    source: SplitSource,
) -> dict[str, Any]:
    """What identifies a conversion: a rerun with the same settings on the same data continues
    it."""
    settings: dict[str, Any] = {
        "dataset": dataset,
        "split": split,
        "data_dir": str(Path(data_dir).resolve()),
        "image_size": image_size,
        "shard_size": shard_size,
        "images": len(source),
        "source_digest": source.identity,
    }
    if source.pooled:
        settings.update(test_fraction=pool.test_fraction, data_seed=pool.seed)
    return settings


def _prepare(folder: Path, settings: dict[str, Any]) -> bool:
    """Make `folder` ready for this conversion; True when shards.json says it finished (its
    shard files are checked by the caller)."""
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
        return False
    if manifest.is_file():
        try:
            finished = json.loads(manifest.read_text()).get("conversion")
        except (OSError, ValueError, AttributeError):
            finished = None
        if finished == settings:
            return True
    if manifest.exists() or any(folder.glob(IMAGES_GLOB)):
        raise VimaeError(
            f"{folder} already holds shards of another conversion; choose another --out or "
            "delete that folder."
        )
    return False


@dataclass
class _SplitPlan:
    """What a conversion still has to write into one split's folder."""

    folder: Path
    source: SplitSource
    settings: dict[str, Any]
    bounds: list[tuple[int, int]]  # (start, stop) of every shard
    missing: list[int]  # shards not yet whole
    finished: bool  # shards.json records this very conversion

    @classmethod
    def of(cls, folder: Path, source: SplitSource, settings: dict[str, Any]) -> "_SplitPlan":
        finished = _prepare(folder, settings)
        size = settings["shard_size"]
        bounds = [(start, min(start + size, len(source))) for start in range(0, len(source), size)]
        missing = [
            k
            for k, (start, stop) in enumerate(bounds)
            if not shard_is_whole(folder, k, stop - start, source.image_shape)
        ]
        return cls(folder, source, settings, bounds, missing, finished)

    def write(self, report: Callable[[str], None], workers: int) -> None:
        """The missing shards, their slices read by `workers` processes, then shards.json."""
        source = self.source
        pixels_of_missing = source.shards([self.bounds[k] for k in self.missing], workers)
        for k, pixels in zip(self.missing, pixels_of_missing, strict=True):
            rows = slice(*self.bounds[k])
            labels = None if source.labels is None else source.labels[rows]
            groups = None if source.groups is None else source.groups[rows]
            write_shard(self.folder, k, pixels, labels, groups)
            shard = f"shard {k + 1}/{len(self.bounds)}"
            report(f"{self.folder}: {shard} ({rows.stop:,}/{len(source):,} images)")
        write_manifest(self.folder, self.settings, describe_data(source))


def convert(
    dataset: str,
    data_dir: str | Path,
    out: str | Path,
    image_size: int | None = None,
    pool: PoolSplit = DEFAULT_POOL,
    shard_size: int = DEFAULT_SHARD_SIZE,
    report: Callable[[str], None] = lambda line: None,
    workers: int = 2,
) -> dict[str, dict[str, Any]]:
    """Convert both splits of `dataset` into OUT/train and OUT/test (see the module doc), a
    folder's files decoded by `workers` processes; returns each split's record (images, shape,
    class counts). OUT is locked while it is written. Both splits are marked unfinished before
    the first shard is written and unmarked after the last: a conversion is one unit, whichever
    split it was killed in."""
    check_arguments(dataset, data_dir, out, shard_size, workers)
    with run_lock(out, "vimae shards"):  # one writer at a time
        return _convert(
            dataset, Path(data_dir), Path(out), image_size, pool, shard_size, report, workers
        )


def _convert(
    dataset: str,
    data_dir: Path,
    out: Path,
    image_size: int | None,
    pool: PoolSplit,
    shard_size: int,
    report: Callable[[str], None],
    workers: int,
) -> dict[str, dict[str, Any]]:
    sources = split_sources(dataset, data_dir, image_size, pool)
    plans = []
    for split, source in sources.items():
        settings = conversion_settings(
            dataset, split, data_dir, image_size, pool, shard_size, source
        )
        plans.append(_SplitPlan.of(out / split, source, settings))
    records = {split: describe_data(source) for split, source in sources.items()}
    if all(plan.finished and not plan.missing for plan in plans):
        report(f"{out}: already converted with these settings")
        return records
    for plan in plans:
        atomic_write_text(plan.folder / CONVERTING, json.dumps(plan.settings))
    for split, plan in zip(sources, plans, strict=True):
        if plan.source.rounded:
            report(f"note: the {split} images are not 8-bit; the shards round them to 8 bits")
        plan.write(report, workers if dataset == "folder" else 0)  # others are in memory
    for plan in plans:
        (plan.folder / CONVERTING).unlink()
    return records


def check_arguments(
    dataset: str, data_dir: str | Path, out: str | Path, shard_size: int, workers: int
) -> None:
    """One sentence for a conversion that cannot be meant, before anything is read or written:
    shards never go into a folder dataset's own folder (its new train/ and test/ would turn it
    into another dataset) nor over the data they are made from."""
    if dataset == "shards":
        raise VimaeError("--dataset shards is already shards; convert the dataset it came from.")
    DATASETS[dataset]  # an unknown name: one sentence listing the known ones
    if not 1 <= shard_size <= MAX_COUNT:
        raise VimaeError(f"--shard-size must be a positive number of images, got {shard_size}.")
    if not 0 <= workers <= MAX_WORKERS:
        raise VimaeError(f"--workers must be 0 to {MAX_WORKERS}, got {workers}.")
    data = Path(data_dir).resolve()
    for split in SPLITS:
        target = (Path(out) / split).resolve()
        # Inside a folder dataset, shards would sit among the images they were made from.
        inside = target.is_relative_to(data) if dataset == "folder" else target == data
        if inside or data.is_relative_to(target):
            raise VimaeError(
                f"--out {out} would put shards into the data's own folders ({target}); choose "
                f"an --out outside {data_dir}."
            )
