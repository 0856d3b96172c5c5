"""MNIST and Fashion-MNIST from their IDX files, and `mnist-t10k`, real MNIST that is here offline.

Layout: DATA_DIR/mnist/ and DATA_DIR/fashion-mnist/ hold the four original files

    train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
    t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz

gzip-compressed or raw (the same names without .gz). A split needs only its own two files.
Fashion-MNIST is also found in /usr/share/datasets/fashion-mnist, where Debian's
`dataset-fashion-mnist` package puts it.

Missing files are downloaded (see `download`). Checksums: a downloaded file is accepted when the
md5 of the .gz is the one published with the dataset, or when the md5 of its gunzipped IDX content
is the known one. The second form is needed because copies in circulation were recompressed (the
kelas/mnist copy of MNIST, Debian's Fashion-MNIST): their .gz bytes differ while the IDX content
is the same. The content md5s below were computed from those copies: MNIST's match its SOURCE.md
in ../shared/datasets and its known counts and pixel mean; Fashion-MNIST's come from Debian's
package. MNIST's training images in ../shared/datasets are a reconstruction from a PNG copy,
within one grey level of the original (its SOURCE.md); the loader recognises that file by the md5
of its content and names the training split accordingly, so that every result trained on it
carries the note RECONSTRUCTED_NOTE.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vimae.data.base import DATASETS, ImageData
from vimae.data.download import Digest, RemoteFile, require
from vimae.data.idx import read_idx
from vimae.data.image import to_tensor
from vimae.data.split import split_indices
from vimae.errors import VimaeError

# split -> (images stem, labels stem); each is looked for as "<stem>.gz", then as "<stem>"
STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# The most images an IDX file of these datasets holds (their training splits): files are read
# with this bound, so a damaged or hostile one is refused before its data is.
MAX_IMAGES = 60_000
T10K_TEST_EVERY = 5  # mnist-t10k: every 5th test image is held out -> 8,000 / 2,000
# md5 of the IDX content (header and pixels) of the reconstructed training images (SOURCE.md).
RECONSTRUCTED_TRAIN_MD5 = "ff31079e9f752de13a2ec1d4a52d8877"
RECONSTRUCTED_NOTE = "MNIST training images reconstructed from a PNG copy (within one grey level)"


@dataclass(frozen=True)
class IdxDataset:
    """Where one IDX dataset lives: its folder name, extra folders to search, and its mirrors."""

    title: str
    folder: str
    mirrors: tuple[str, ...]
    # stem -> (published md5 of the .gz, md5 of the gunzipped content or "" when unknown)
    md5s: dict[str, tuple[str, str]]
    fallback_dirs: tuple[Path, ...] = ()
    alternative: str = ""  # another way to get the files, for the missing-files message

    def remote(self, stem: str) -> RemoteFile:
        gz_md5, content_md5 = self.md5s[stem]
        digests = [Digest("md5", gz_md5)]
        if content_md5:
            digests.append(Digest("md5", content_md5, gunzipped=True))
        urls = tuple(mirror + stem + ".gz" for mirror in self.mirrors)
        return RemoteFile(stem + ".gz", urls, tuple(digests))


MNIST = IdxDataset(
    title="MNIST",
    folder="mnist",
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    md5s={
        "train-images-idx3-ubyte": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", ""),
        "train-labels-idx1-ubyte": (
            "d53e105ee54ea40749a09fcbcd1e9432",
            "a25bea736e30d166cdddb491f175f624",
        ),
        "t10k-images-idx3-ubyte": (
            "9fb629c4189551a2d022fa330f9573f3",
            "2646ac647ad5339dbf082846283269ea",
        ),
        "t10k-labels-idx1-ubyte": (
            "ec29112dd5afa0611ce80d1b7f02629c",
            "27ae3e4e09519cfbb04c329615203637",
        ),
    },
)

FASHION_MNIST = IdxDataset(
    title="Fashion-MNIST",
    folder="fashion-mnist",
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    md5s={
        "train-images-idx3-ubyte": (
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        ),
        "train-labels-idx1-ubyte": (
            "25c81989df183df01b3e8a0aad5dffbe",
            "9018921c3c673c538a1fc5bad174d6f9",
        ),
        "t10k-images-idx3-ubyte": (
            "bef4ecab320f06d8554ea6380940ec79",
            "8181f5470baa50b63fa0f6fddb340f0a",
        ),
        "t10k-labels-idx1-ubyte": (
            "bb300cfdad3c16e7a12a480ee83cd310",
            "15d484375f8d13e6eb1aabb0c3f46965",
        ),
    },
    fallback_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
    alternative="install Debian's package (apt-get install dataset-fashion-mnist)",
)


def _find(dataset: IdxDataset, data_dir: Path, stem: str) -> Path | None:
    for folder in (data_dir / dataset.folder, *dataset.fallback_dirs):
        for name in (stem + ".gz", stem):
            if (folder / name).is_file():
                return folder / name
    return None


def read_split(dataset: IdxDataset, split: str, data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 28, 28) and int64 labels (N,) of one split, downloading missing files."""
    paths = [_find(dataset, data_dir, stem) for stem in STEMS[split]]
    if None in paths:
        missing = [dataset.remote(s) for s, p in zip(STEMS[split], paths, strict=True) if p is None]
        folder = data_dir / dataset.folder
        require(folder, missing, f"{dataset.title} ({split} split)", dataset.alternative)
        paths = [_find(dataset, data_dir, stem) for stem in STEMS[split]]
    images_path, labels_path = paths
    images = read_idx(images_path, ndim=3, max_bytes=MAX_IMAGES * 28 * 28)
    labels = read_idx(labels_path, ndim=1, max_bytes=MAX_IMAGES * 8).astype(np.int64)
    if images.dtype != np.uint8 or images.shape[1:] != (28, 28):
        raise VimaeError(
            f"{images_path} holds {images.dtype} images of shape {images.shape[1:]}, not 28x28 "
            "uint8 ones; check that it is the right file."
        )
    if len(images) != len(labels):
        raise VimaeError(
            f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels; "
            "the two files are from different sets, so replace one of them."
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise VimaeError(f"{labels_path} has labels outside 0..9; replace it.")
    return images, labels


def _image_data(name: str, images: np.ndarray, labels: np.ndarray) -> ImageData:
    return ImageData(name, to_tensor(images), torch.from_numpy(labels))


def idx_content_md5(images: np.ndarray) -> str:
    """md5 of the IDX bytes (magic, dimensions, pixels) that hold uint8 images (N, H, W)."""
    header = (
        b"\0\0\x08"
        + bytes([images.ndim])
        + b"".join(int(n).to_bytes(4, "big") for n in images.shape)
    )
    return hashlib.md5(header + images.tobytes()).hexdigest()


@DATASETS.register("mnist")
def load_mnist(split: str, data_dir: Path) -> ImageData:
    """MNIST, 60,000 training and 10,000 test digits, 28x28 grey, labels 0..9."""
    images, labels = read_split(MNIST, split, data_dir)
    name = "MNIST"
    if split == "train" and idx_content_md5(images) == RECONSTRUCTED_TRAIN_MD5:
        name = f"MNIST ({RECONSTRUCTED_NOTE})"
    return _image_data(name, images, labels)


@DATASETS.register("fashion-mnist")
def load_fashion_mnist(split: str, data_dir: Path) -> ImageData:
    """Fashion-MNIST, 60,000 training and 10,000 test articles, 28x28 grey, labels 0..9."""
    return _image_data("Fashion-MNIST", *read_split(FASHION_MNIST, split, data_dir))


@DATASETS.register("mnist-t10k")
def load_mnist_t10k(split: str, data_dir: Path) -> ImageData:
    """Real MNIST from its 10k test set alone: every 5th image is test (2,000), the rest train.

    For CPU-scale experiments and tests where MNIST's training images are absent (they are here
    offline, the test set is not). It needs only the two t10k files in DATA_DIR/mnist/. The stride
    split keeps both halves of the test set (two writer populations) in both parts; results on it
    must say "MNIST t10k 8k/2k", since they are not comparable with the 60k/10k protocol.
    """
    images, labels = read_split(MNIST, "test", data_dir)
    keep = split_indices(len(images), split, T10K_TEST_EVERY)
    return _image_data("MNIST t10k 8k/2k", images[keep], labels[keep])
