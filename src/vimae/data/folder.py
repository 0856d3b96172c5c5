"""`folder`: any folder of image files, given as the data directory itself (`--data-dir PATH`).

Layout, under PATH:
- PATH/train/ and PATH/test/ when both exist: they are the two splits;
- otherwise all images under PATH form one pool, sorted by relative path, and a seeded,
  class-stratified fraction of it is the test split (`PoolSplit`: --test-fraction, default 0.1,
  and --data-seed); the rest is the training split.
Images are found at any depth. When every image sits in a first-level subfolder of its split
folder (PATH/train/cat/1.png, or PATH/cat/1.png without train/test), those subfolders are classes:
labels index their sorted names, the same names in both splits. Otherwise there are no labels.

Images of one size load as they are (`image_size` then resizes the split); images of different
sizes need `image_size` (--image-size), and each is resized to it as it is decoded (squashed to a
square like any resize, never cropped). They load as grey when every file is greyscale, else as
RGB; alpha is dropped. 16-bit and float files keep their depth, scaled by their range (see
`image`). A folder larger than memory is converted to streamed shards a slice at a time
(`vimae shards`, `FolderSplit`).
"""

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vimae.data.base import (
    DATASETS,
    DEFAULT_POOL,
    SPLITS,
    ImageData,
    PoolSplit,
    resize,
)
from vimae.data.image import decode, decode_unit, image_header, is_deep
from vimae.data.memory import require_memory
from vimae.errors import VimaeError, VimaeNote

SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}
GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}


def _images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())


def _class_of(path: Path, root: Path) -> str | None:
    parts = path.relative_to(root).parts
    return parts[0] if len(parts) > 1 else None


def _scan(files: list[Path], image_size: int | None) -> tuple[str, tuple[int, int] | None, bool]:
    """The PIL mode to load `files` in ("L" or "RGB"), their (width, height) when they share one
    size (None when they do not, which only `image_size` allows), and whether any holds more than
    8 bits per sample."""
    sizes: dict[tuple[int, int], Path] = {}
    deep, greys, colour = False, 0, None
    for path in files:
        size, mode = image_header(path)
        sizes.setdefault(size, path)
        if mode in GREY_MODES or is_deep(mode):
            greys += 1
        elif colour is None:
            colour = (path, mode)
        deep = deep or is_deep(mode)
        if len(sizes) == 2 and image_size is None:
            (a, pa), (b, pb) = sizes.items()
            raise VimaeError(
                f"images differ in size ({pa} is {a[0]}x{a[1]}, {pb} is {b[0]}x{b[1]}); pass "
                "--image-size N to resize each to NxN, or resize them to one size first."
            )
    if colour is not None and greys:
        path, mode = colour
        warnings.warn(
            VimaeNote(
                f"{greys} of the {len(files)} images are grey but {path} is {mode}, so every image "
                "is loaded as 3-channel RGB; convert that file to grey to keep one channel"
            ),
            stacklevel=2,
        )
    grey = colour is None
    return ("L" if grey else "RGB"), (next(iter(sizes)) if len(sizes) == 1 else None), deep


def _pixels(path: Path, mode: str, deep: bool) -> torch.Tensor:
    """One file as (C, H, W): uint8, or float32 in [0, 1] for 16-bit and float files."""
    read = decode_unit if deep else decode
    pixels = np.array(read(path, str(path), mode))  # (H, W) or (H, W, 3), writable
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return torch.from_numpy(pixels).permute(2, 0, 1)


@dataclass(frozen=True)
class FolderSplit:
    """One split of a folder before any image is decoded: its files in order, their labels, and
    how to decode them. `vimae shards` converts a folder larger than memory from this, a slice of
    files at a time; `load_folder` decodes it whole."""

    name: str
    files: list[Path]
    labels: torch.Tensor | None
    mode: str  # "L" or "RGB"
    size: tuple[int, int] | None  # (width, height); None: the files differ in size, and ...
    deep: bool  # some file holds more than 8 bits per sample
    image_size: int | None = None  # ... each is resized to image_size x image_size as decoded
    pooled: bool = False  # one pool split by --test-fraction (no train/ and test/ folders)

    def __len__(self) -> int:
        return len(self.files)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        channels = 1 if self.mode == "L" else 3
        if self.size is None:
            return (channels, self.image_size or 0, self.image_size or 0)
        width, height = self.size
        return (channels, height, width)

    def decode(self, start: int, stop: int) -> torch.Tensor:
        """Pixels of files start .. stop - 1 (as `ImageData.pixels`), filled file by file: uint8
        when every file is 8-bit (a quarter of the memory), else float32 in [0, 1] keeping the
        precision of 16-bit and float files. Files of different sizes are each resized as soon
        as decoded (`resize`, the interpolation of a split of one size)."""
        channels, height, width = self.image_shape
        dtype = torch.float32 if self.deep else torch.uint8
        images = torch.empty(stop - start, channels, height, width, dtype=dtype)
        for i, path in enumerate(self.files[start:stop]):
            pixels = _pixels(path, self.mode, self.deep)
            images[i] = pixels if self.size else resize(pixels[None], height)[0]
        return images


def folder_splits(
    data_dir: Path, pool: PoolSplit = DEFAULT_POOL, image_size: int | None = None
) -> dict[str, FolderSplit]:
    """Both splits of folder `data_dir` (layout in the module doc), found with one scan of the
    files' headers but not decoded; a split may be empty (`folder_split` refuses that). Files of
    different sizes need `image_size`: each is resized to it as it is decoded."""
    root = data_dir
    if not root.is_dir():
        raise VimaeError(f"{root} is not a folder; point --data-dir at a folder of images.")
    presplit = (root / "train").is_dir() and (root / "test").is_dir()
    if presplit:
        pools = {s: (root / s, _images(root / s)) for s in SPLITS}
    else:
        pools = {"all": (root, _images(root))}
    every = [(path, base) for base, files in pools.values() for path in files]
    if not every:
        raise VimaeError(
            f"no images ({', '.join(sorted(SUFFIXES))}) found in {root}; "
            "point --data-dir at a folder of images."
        )
    mode, size, deep = _scan([path for path, _ in every], image_size)
    classes = [_class_of(path, base) for path, base in every]
    label_of = None
    if None not in classes:
        index = {name: i for i, name in enumerate(sorted(set(classes)))}
        label_of = {path: index[c] for (path, _), c in zip(every, classes, strict=True)}
    if presplit:
        chosen = {split: pools[split][1] for split in SPLITS}
    else:
        files = pools["all"][1]
        labels = None if label_of is None else torch.tensor([label_of[p] for p in files])
        chosen = {
            split: [files[i] for i in pool.indices(len(files), split, labels)] for split in SPLITS
        }
    found = {}
    for split, paths in chosen.items():
        labels = None
        if label_of is not None:
            labels = torch.tensor([label_of[path] for path in paths], dtype=torch.int64)
        name = f"folder {root.name}"
        pooled = not presplit
        found[split] = FolderSplit(name, paths, labels, mode, size, deep, image_size, pooled)
    return found


def nonempty(found: FolderSplit, split: str, root: Path) -> FolderSplit:
    """`found`, or one sentence when split `split` of folder `root` holds no image."""
    if found.files:
        return found
    if not found.pooled:
        advice = f"put images in {root / split}"
    elif split == "test":
        advice = "raise --test-fraction, or add images"
    else:
        advice = "lower --test-fraction, or add images"
    raise VimaeError(f"no {split} images found in {root}; {advice}.")


def folder_split(
    split: str, data_dir: Path, pool: PoolSplit = DEFAULT_POOL, image_size: int | None = None
) -> FolderSplit:
    """Split `split` of folder `data_dir`, found but not decoded."""
    return nonempty(folder_splits(data_dir, pool, image_size)[split], split, data_dir)


@DATASETS.register("folder")
def load_folder(
    split: str, data_dir: Path, pool: PoolSplit = DEFAULT_POOL, image_size: int | None = None
) -> ImageData:
    """The images of folder `data_dir` (layout in the module doc), labelled by subfolder; files
    of different sizes are each resized to `image_size` (otherwise refused)."""
    found = folder_split(split, data_dir, pool, image_size)
    need = len(found) * math.prod(found.image_shape) * (4 if found.deep else 1)
    advice = (
        f"convert them to streamed shards with `vimae shards --dataset folder --data-dir "
        f"{data_dir} --out DIR` and train with `--dataset shards --data-dir DIR`."
    )
    require_memory(need, f"the {len(found):,} {split} images in {data_dir}", advice)
    try:
        pixels = found.decode(0, len(found))
    except (MemoryError, RuntimeError) as err:
        if "memory" not in str(err):
            raise
        raise VimaeError(
            f"the {len(found):,} {split} images in {data_dir} ({need / 2**30:.1f} GiB) do not "
            f"fit in this process's memory; {advice}"
        ) from None
    return ImageData(found.name, pixels, found.labels)
