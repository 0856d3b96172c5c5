"""Omniglot from its original alphabet/character/PNG layout, in folders or in the original zips.

Layout: DATA_DIR/omniglot/ holds, for `omniglot`, the background alphabets (the training split)
and the evaluation alphabets (the test split) as

    images_background/<Alphabet>/<characterNN>/<id>_<drawer>.png   or  images_background.zip
    images_evaluation/<Alphabet>/<characterNN>/<id>_<drawer>.png   or  images_evaluation.zip

and, for `omniglot-small`, images_background_small1.zip and images_background_small2.zip (or
folders of those names). Missing zips are downloaded from the brendenlake/omniglot repository.

Images: the 105x105 drawings are black strokes on white; they are resized to 28x28 with an
antialiased (area-weighted bilinear) filter and inverted so that ink is 1.0 and paper 0.0, the
usual convention for Omniglot in VAE papers and the one MNIST already follows. Each drawing is
followed by its copies rotated by 90, 180 and 270 degrees (80 images per character, as in the
paper); the `-norot` variants leave them out. Labels: the index of the character among the
characters of the split, sorted by alphabet and character name; rotated copies keep the label of
their drawing, and `groups` names the drawing of every image. The training and test splits have
different characters, so their labels index different character sets.
"""

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vimae.data.archive import iter_members
from vimae.data.base import DATASETS, ImageData
from vimae.data.download import Digest, RemoteFile, require
from vimae.data.image import open_image, to_tensor
from vimae.errors import VimaeError

SIZE = 28
# The most bytes one drawing's PNG may have: the originals are 105x105 1-bit PNGs of at most 413
# bytes, and even as raw 16-bit RGBA one is 88 KB. Anything larger is refused unread.
MAX_DRAWING_BYTES = 1 << 20
MIRRORS = (
    "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/",
    "https://github.com/brendenlake/omniglot/raw/master/python/",
)
# set name -> digest of its zip (md5 published with torchvision; sha256 of the copies in shared/)
DIGESTS = {
    "images_background": Digest("md5", "68d2efa1b9178cc56df9314c21c6e718"),
    "images_evaluation": Digest("md5", "6b91aef0f799c5bb55b94e3f2daec811"),
    "images_background_small1": Digest(
        "sha256", "f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4"
    ),
    "images_background_small2": Digest(
        "sha256", "3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f"
    ),
}
FULL_SETS = {"train": ("images_background",), "test": ("images_evaluation",)}
SMALL_SETS = ("images_background_small1", "images_background_small2")
# omniglot-small: these two alphabets (39 characters, 780 drawings) stand in for the evaluation
# alphabets; they are the two smallest of the eight and each comes from one zip only.
SMALL_TEST_ALPHABETS = ("Early_Aramaic", "Tagalog")

# (alphabet, character, file name) -> (where it was read: zip or folder and path, PNG bytes)
Drawings = dict[tuple[str, str, str], tuple[str, bytes]]


def _remote(name: str) -> RemoteFile:
    return RemoteFile(f"{name}.zip", tuple(m + f"{name}.zip" for m in MIRRORS), (DIGESTS[name],))


def _pngs(source: Path) -> Iterator[tuple[tuple[str, ...], bytes]]:
    """(path parts, bytes) of every PNG under a folder or in a zip."""
    if source.is_dir():
        for path in sorted(source.rglob("*.png")):
            if path.stat().st_size > MAX_DRAWING_BYTES:
                raise VimaeError(
                    f"{path} has {path.stat().st_size} bytes, more than the {MAX_DRAWING_BYTES} "
                    "an Omniglot drawing can have; remove it or use the original folders or zips."
                )
            yield path.relative_to(source).parts, path.read_bytes()
    else:
        for path, read in iter_members(source, MAX_DRAWING_BYTES):
            if path.suffix == ".png":
                yield path.parts, read()


def read_drawings(folder: Path, sets: tuple[str, ...]) -> Drawings:
    """The drawings of the given sets (folders or zips in `folder`), de-duplicated by path."""
    sources = []
    for name in sets:
        as_folder, as_zip = folder / name, folder / f"{name}.zip"
        if not as_folder.is_dir() and not as_zip.is_file():
            require(folder, [_remote(name)], f"Omniglot ({name})", f"extract it to {as_folder}/")
        sources.append(as_folder if as_folder.is_dir() else as_zip)
    drawings: Drawings = {}
    for source in sources:
        for parts, data in _pngs(source):
            if len(parts) < 3:
                raise VimaeError(
                    f"{source} has {'/'.join(parts)} outside the alphabet/character/file.png "
                    "layout of Omniglot; use the original folders or zips."
                )
            alphabet, character, file = parts[-3:]
            drawings[(alphabet, character, file)] = (f"{source}: {'/'.join(parts)}", data)
    if not drawings:
        raise VimaeError(f"no Omniglot PNG drawings found in {', '.join(map(str, sources))}.")
    return drawings


def _to_array(data: bytes, name: str) -> np.ndarray:
    """PNG bytes -> (28, 28) uint8 with ink high."""
    image = open_image(data, name, "L")
    small = image.resize((SIZE, SIZE), Image.Resampling.BILINEAR)  # Pillow antialiases downsizing
    return 255 - np.asarray(small, dtype=np.uint8)


def to_image_data(name: str, drawings: Drawings, rotate: bool) -> ImageData:
    """Decode, resize, invert and optionally rotate drawings; label each by its character."""
    keys = sorted(drawings)
    characters = sorted({(alphabet, character) for alphabet, character, _ in keys})
    index = {c: i for i, c in enumerate(characters)}
    images = np.stack([_to_array(drawings[k][1], drawings[k][0]) for k in keys])  # (N, 28, 28)
    labels = np.array([index[k[:2]] for k in keys], dtype=np.int64)
    drawings = np.arange(len(keys))
    if rotate:  # each drawing followed by its 90, 180, 270 degree rotations
        images = np.stack([np.rot90(images, r, axes=(1, 2)) for r in range(4)], axis=1)
        images = images.reshape(-1, SIZE, SIZE)
        labels, drawings = np.repeat(labels, 4), np.repeat(drawings, 4)
    return ImageData(name, to_tensor(images), torch.from_numpy(labels), torch.from_numpy(drawings))


def load_omniglot(split: str, data_dir: Path, rotate: bool = True) -> ImageData:
    """Omniglot: background alphabets (964 characters) train, evaluation alphabets (659) test."""
    drawings = read_drawings(data_dir / "omniglot", FULL_SETS[split])
    return to_image_data("Omniglot", drawings, rotate)


def load_omniglot_small(split: str, data_dir: Path, rotate: bool = True) -> ImageData:
    """The two small background subsets (4,840 drawings of 8 alphabets) as a stand-in Omniglot.

    images_background_small1 and small2 share the Greek and Latin alphabets; the union by path has
    4,840 distinct drawings. The alphabets in SMALL_TEST_ALPHABETS form the test split (780
    drawings of 39 characters), the other six the training split (4,060 drawings of 203
    characters), mirroring Omniglot's split into background and evaluation alphabets. Results on it
    must say "Omniglot (small subsets)".
    """
    drawings = read_drawings(data_dir / "omniglot", SMALL_SETS)
    is_test = split == "test"
    part = {k: v for k, v in drawings.items() if (k[0] in SMALL_TEST_ALPHABETS) == is_test}
    return to_image_data("Omniglot (small subsets)", part, rotate)


DATASETS.add("omniglot", load_omniglot)
DATASETS.add("omniglot-norot", partial(load_omniglot, rotate=False))
DATASETS.add("omniglot-small", load_omniglot_small)
DATASETS.add("omniglot-small-norot", partial(load_omniglot_small, rotate=False))
