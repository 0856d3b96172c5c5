"""Data larger than memory: image shards on disk, read batch by batch by DataLoader workers.

A shard folder holds `images-00000.npy`, `images-00001.npy`, ... (uint8, (n, C, H, W)) and, with
labels, `labels-00000.npy`, ... (integers, (n,)), with source groups (Omniglot's rotations of one
drawing) `groups-00000.npy`, ...; `shards.json` says where the images came from. `vimae shards`
(`vimae.data.convert`) writes one from any dataset, a folder larger than memory included, and
`write_shards` from an ImageData; the `shards` dataset reads SPLIT/ under --data-dir (train/ and
test/). Each shard file is written atomically, images last: an images file that exists is whole.

Nothing but the labels is held in memory: an image is read with one `pread` at its offset in its
shard (no memory map, so the process's resident memory stays bounded whatever the data's size).

Training reads a `StreamData` through `epoch_batches`, which asks a torch DataLoader (worker
processes, pinned memory on CUDA) for exactly the batches the in-memory path takes: the same
seeded permutation of the epoch, the same rank's rows of each global batch under torchrun, from
the same batch after a resume. Streaming and in-memory training therefore reach the same weights,
and a run killed mid-epoch resumes exactly.
"""

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vimae.data.base import DATASETS, ImageData, describe_data, to_pixels, to_unit
from vimae.data.npz import NpyError, read_npy
from vimae.data.split import stratified_indices
from vimae.errors import VimaeError
from vimae.files import atomic_write, atomic_write_text

IMAGES_GLOB = "images-*.npy"
SIDE_ARRAYS = ("labels", "groups")  # integer arrays beside each images file, one per image
MANIFEST = "shards.json"  # what the shards hold and where they came from
CONVERTING = ".converting.json"  # present while a conversion into the folder is unfinished


def shard_file(folder: Path, kind: str, k: int) -> Path:
    """Path of shard k's `kind` array ("images", "labels" or "groups")."""
    return Path(folder) / f"{kind}-{k:05d}.npy"


@dataclass
class _Shard:
    """One .npy file of images: where its pixels start and what one image is."""

    path: Path
    offset: int  # bytes before the first image
    count: int
    shape: tuple[int, int, int]

    @property
    def item_bytes(self) -> int:
        c, h, w = self.shape
        return c * h * w


def _open_shard(path: Path) -> _Shard:
    """Read a shard's header only; one sentence if it is not a C-ordered uint8 (n, C, H, W)."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(f)
            offset = f.tell()
    except (OSError, ValueError) as err:
        raise VimaeError(f"{path} is not a readable .npy shard ({err}); write it again.") from None
    if dtype != np.uint8 or fortran or len(shape) != 4:
        raise VimaeError(
            f"{path} holds {dtype} {shape}; a shard holds uint8 images (n, C, H, W) in C order "
            "(vimae.data.stream.write_shards writes them)."
        )
    expected = offset + int(np.prod(shape))
    if path.stat().st_size != expected:
        raise VimaeError(f"{path} has {path.stat().st_size} bytes, its header says {expected}.")
    return _Shard(path, offset, int(shape[0]), tuple(int(s) for s in shape[1:]))


def _side_array(kind: str, paths: list[Path], shards: list[_Shard]) -> torch.Tensor | None:
    """The `kind` integers of every image ("labels" or "groups"), or None without such files."""
    side = [p.with_name(p.name.replace("images-", f"{kind}-")) for p in paths]
    if not any(p.exists() for p in side):
        return None
    parts = []
    for path, shard in zip(side, shards, strict=True):
        try:  # bounded: the header must promise exactly this shard's count
            values = read_npy(path, expect=(shard.count,)) if path.is_file() else None
        except NpyError:
            values = None
        if values is None or values.dtype.kind not in "iu":
            raise VimaeError(f"{path} must hold {shard.count} integer {kind}, one per image.")
        parts.append(torch.from_numpy(values.astype(np.int64)))
    return torch.cat(parts)


@dataclass
class StreamData:
    """A split on disk: shards of uint8 images, labels in memory, `index` the examples kept
    (a subset or a validation split), read by `read(indices)`."""

    name: str
    shards: list[_Shard]
    all_labels: torch.Tensor | None  # of every example in the shards
    index: np.ndarray
    all_groups: torch.Tensor | None = None
    source: dict[str, Any] | None = None  # shards.json's record of the conversion, if any
    _files: dict[int, int] = field(default_factory=dict, repr=False)  # shard -> fd, this process
    _pid: int = field(default=-1, repr=False)

    @classmethod
    def open(cls, folder: Path, name: str) -> "StreamData":
        folder = Path(folder)
        if (folder / CONVERTING).exists():
            raise VimaeError(
                f"the conversion into {folder} did not finish; run the same `vimae shards` "
                "command again to complete it."
            )
        paths = sorted(folder.glob(IMAGES_GLOB))
        if not paths:
            raise VimaeError(
                f"{folder} holds no {IMAGES_GLOB} shards; write them with `vimae shards` or "
                "vimae.data.stream.write_shards(data, folder)."
            )
        shards = [_open_shard(p) for p in paths]
        if len({s.shape for s in shards}) > 1:
            raise VimaeError(f"the shards in {folder} hold images of different shapes.")
        labels, groups = (_side_array(kind, paths, shards) for kind in SIDE_ARRAYS)
        source = None
        if (folder / MANIFEST).is_file():
            try:
                source = json.loads((folder / MANIFEST).read_text()).get("conversion")
            except (OSError, ValueError, AttributeError):
                raise VimaeError(
                    f"{folder / MANIFEST} is not readable JSON; delete it or convert again."
                ) from None
        total = sum(s.count for s in shards)
        return cls(name, shards, labels, np.arange(total), groups, source)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.shards[0].shape

    @property
    def labels(self) -> torch.Tensor | None:
        """Labels of the kept examples (as ImageData.labels)."""
        if self.all_labels is None:
            return None
        return self.all_labels[torch.from_numpy(self.index)]

    @property
    def groups(self) -> torch.Tensor | None:
        """Source groups of the kept examples (as ImageData.groups)."""
        if self.all_groups is None:
            return None
        return self.all_groups[torch.from_numpy(self.index)]

    @property
    def images(self) -> torch.Tensor:
        """The kept examples as float32 in memory: for small subsets (a metric's draw) only."""
        return self.load().images

    def subset(self, n: int | None, seed: int = 0) -> "StreamData":
        """A seeded, class-stratified draw of n examples (as ImageData.subset)."""
        if n is None or n >= len(self):
            return self
        return self.take(stratified_indices(len(self), n, self.labels, seed))

    def take(self, index: np.ndarray | torch.Tensor) -> "StreamData":
        """The examples at `index` (positions among those kept), in that order."""
        chosen = self.index[np.asarray(index, dtype=np.int64)]
        return StreamData(
            self.name, self.shards, self.all_labels, chosen, self.all_groups, self.source
        )

    def batch(
        self, index: torch.Tensor | slice, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """float32 images at `index` in [0, 1] on `device` (as ImageData.batch)."""
        positions = np.arange(len(self))[index] if isinstance(index, slice) else index
        return to_unit(self.read(positions).to(device))

    def resized(self, size: int) -> "StreamData":
        if self.image_shape[1:] != (size, size):
            raise VimaeError(
                f"streamed shards are not resized on the fly; write them at {size}x{size} "
                "(write_shards of data.resized(size)) or drop --image-size."
            )
        return self

    def read(self, positions: Sequence[int] | np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 images (B, C, H, W) at `positions` among the kept examples."""
        if self._pid != os.getpid():  # a DataLoader worker: descriptors of its own
            self._files, self._pid = {}, os.getpid()
        starts = np.cumsum([0] + [s.count for s in self.shards])
        examples = self.index[np.asarray(positions, dtype=np.int64)]
        out = np.empty((len(examples), *self.image_shape), dtype=np.uint8)
        for row, example in enumerate(examples):
            k = int(np.searchsorted(starts, example, side="right") - 1)
            shard = self.shards[k]
            fd = self._files.get(k)
            if fd is None:
                fd = self._files[k] = os.open(shard.path, os.O_RDONLY)
            at = shard.offset + (int(example) - int(starts[k])) * shard.item_bytes
            out[row] = np.frombuffer(os.pread(fd, shard.item_bytes, at), np.uint8).reshape(
                self.image_shape
            )
        return torch.from_numpy(out)

    def load(self) -> ImageData:
        """The kept examples in memory (a test split, which the metrics read whole)."""
        return ImageData(self.name, self.read(np.arange(len(self))), self.labels, self.groups)

    def digest(self) -> str:
        """sha256 over the shards' bytes (read once, in chunks) and the kept indices."""
        h = hashlib.sha256()
        for shard in self.shards:
            with open(shard.path, "rb") as f:
                while chunk := f.read(1 << 24):
                    h.update(chunk)
        h.update(self.index.tobytes())
        for side in (self.all_labels, self.all_groups):
            if side is not None:
                h.update(side.numpy().tobytes())
        return h.hexdigest()

    def describe(self) -> dict[str, Any]:
        """As ImageData.describe, marked as streamed, with the conversion that wrote it."""
        record = {**describe_data(self), "streamed": True}
        if self.source is not None:
            record["converted_from"] = self.source
        return record

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_files": {}, "_pid": -1}  # descriptors do not cross processes


class _Batches(torch.utils.data.Dataset):
    """Dataset whose items are whole batches: item i is the uint8 batch of index list i."""

    def __init__(self, data: StreamData, batches: list[np.ndarray]) -> None:
        self.data, self.batches = data, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.data.read(self.batches[i])


def epoch_batches(
    data: ImageData | StreamData,
    order: torch.Tensor,
    first: int,
    n_batches: int,
    batch_size: int,
    rows: slice,
    device: torch.device,
    workers: int = 2,
) -> Iterator[torch.Tensor]:
    """float32 batches b = first .. n_batches - 1 of an epoch whose example order is `order`,
    this rank's `rows` of each, on `device`: in memory from ImageData, streamed by a DataLoader's
    `workers` processes from StreamData. Both give the same tensors."""
    indices = [
        order[b * batch_size : (b + 1) * batch_size][rows].numpy() for b in range(first, n_batches)
    ]
    if isinstance(data, ImageData):
        for index in indices:
            yield data.batch(torch.from_numpy(index), device)
        return
    loader = torch.utils.data.DataLoader(
        _Batches(data, indices),
        batch_size=None,  # items are batches already
        shuffle=False,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers else None,
        # Its own generator: a DataLoader seeds its workers from torch's global RNG otherwise,
        # which would shift the encoder noise of every step after it.
        generator=torch.Generator().manual_seed(0),
    )
    for pixels in loader:
        yield to_unit(pixels.to(device, non_blocking=True))


def _save_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # np.save given a path would append .npy to the temporary
            np.save(f, array, allow_pickle=False)

    atomic_write(path, write)


def write_shard(
    folder: Path,
    k: int,
    pixels: torch.Tensor,
    labels: torch.Tensor | None = None,
    groups: torch.Tensor | None = None,
) -> None:
    """Write shard k: its labels and groups first, its images last, each file atomically."""
    for kind, values in zip(SIDE_ARRAYS, (labels, groups), strict=True):
        if values is not None:
            _save_npy(shard_file(folder, kind, k), values.to(torch.int64).numpy())
    _save_npy(shard_file(folder, "images", k), to_pixels(pixels).contiguous().numpy())


def shard_is_whole(folder: Path, k: int, count: int, shape: tuple[int, int, int]) -> bool:
    """Whether shard k's images file exists with `count` images of `shape` (its side arrays
    were written before it)."""
    path = shard_file(folder, "images", k)
    if not path.is_file():
        return False
    try:
        shard = _open_shard(path)
    except VimaeError:
        return False
    return shard.count == count and shard.shape == tuple(shape)


def write_manifest(folder: Path, conversion: dict[str, Any], data: dict[str, Any]) -> None:
    """shards.json: the conversion's settings and what the written data holds."""
    record = {"format": "vimae-shards-1", "conversion": conversion, "data": data}
    atomic_write_text(Path(folder) / MANIFEST, json.dumps(record, indent=2) + "\n")


def write_shards(data: ImageData, folder: str | Path, shard_size: int = 10_000) -> Path:
    """Write `data` (uint8 pixels, or floats in [0, 1] rounded to 8 bits) as a shard folder."""
    folder = Path(folder)
    for k, start in enumerate(range(0, len(data), shard_size)):
        rows = slice(start, start + shard_size)
        labels = None if data.labels is None else data.labels[rows]
        groups = None if data.groups is None else data.groups[rows]
        write_shard(folder, k, data.pixels[rows], labels, groups)
    write_manifest(folder, {"written_by": "write_shards", "name": data.name}, data.describe())
    return folder


@DATASETS.register("shards")
def load_shards(split: str, data_dir: Path) -> StreamData:
    """SPLIT/images-*.npy (and labels-*.npy) under data_dir, streamed (see the module)."""
    folder = Path(data_dir) / split
    if not folder.is_dir():
        raise VimaeError(
            f"{folder} does not exist; a shards dataset has train/ and test/ folders of "
            "images-*.npy shards (vimae.data.stream.write_shards)."
        )
    return StreamData.open(folder, f"shards {Path(data_dir).name}")
