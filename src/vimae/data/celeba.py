"""CelebA's aligned faces from their JPEG folder: centre crop 140x140, resize to 64x64.

Layout: DATA_DIR/celeba/img_align_celeba/ with the 202,599 files 000001.jpg ... 202599.jpg (the
folder in img_align_celeba.zip from the CelebA site; it has no stable direct-download mirror, so it
is not downloaded). Files are taken in sorted name order; the last N_TEST (20,000) form the test
split, the rest the training split, as in the paper. No labels: the attributes are not used.

Memory: every split is held whole, as the paper trains on all 182,599 training faces (9 GB as
float32 at 3x64x64). On a smaller machine $VIMAE_CELEBA_LIMIT=N caps each split at N faces, a
seeded random draw of its files (never the first N in name order), and a capped split says so in
its name. Decoding is slow (a few ms a face), so the cropped 64x64 uint8 faces are cached (see
`cache`), keyed by the chosen file names and sizes: 12 KB a face, 2.5 GB for all of them.
"""

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

from vimae.data.base import DATASETS, ImageData
from vimae.data.cache import Spec, cached_arrays
from vimae.data.image import open_image, to_tensor
from vimae.data.split import capped_name, limit_from_env, stratified_indices
from vimae.errors import VimaeError

FOLDER = "img_align_celeba"
SUFFIXES = (".jpg", ".jpeg", ".png")
CROP = 140
SIZE = 64
N_TEST = 20_000
LIMIT_ENV = "VIMAE_CELEBA_LIMIT"
LIMIT_SEED = 0


def crop_and_resize(path: Path) -> np.ndarray:
    """One face: the central CROP x CROP square, resized (antialiased) to uint8 (SIZE, SIZE, 3)."""
    image = open_image(path, str(path), "RGB")
    width, height = image.size
    if width < CROP or height < CROP:
        raise VimaeError(
            f"{path} is {width}x{height}, smaller than the {CROP}x{CROP} centre crop; CelebA's "
            "aligned faces are 178x218, so use the img_align_celeba folder."
        )
    left, top = (width - CROP) // 2, (height - CROP) // 2
    square = image.crop((left, top, left + CROP, top + CROP))
    return np.asarray(square.resize((SIZE, SIZE), Image.Resampling.BILINEAR), dtype=np.uint8)


def _cache_key(files: list[Path]) -> str:
    h = hashlib.sha256(f"crop={CROP} size={SIZE}\n".encode())
    for path in files:
        h.update(f"{path.name}:{path.stat().st_size}\n".encode())
    return f"celeba-{h.hexdigest()[:16]}"


@DATASETS.register("celeba")
def load_celeba(split: str, data_dir: Path) -> ImageData:
    """CelebA faces, 64x64 colour, at most $VIMAE_CELEBA_LIMIT per split (see the module doc)."""
    folder = data_dir / "celeba" / FOLDER
    if not folder.is_dir():
        raise VimaeError(
            f"CelebA needs its aligned faces in {folder}/ (000001.jpg ... 202599.jpg); download "
            "img_align_celeba.zip from https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html and "
            f"extract it into {folder.parent}/."
        )
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES)
    if len(files) <= N_TEST:
        raise VimaeError(
            f"{folder} has {len(files)} images, but its last {N_TEST} are the test split and the "
            "training split needs the rest; put the whole img_align_celeba folder there."
        )
    chosen = files[:-N_TEST] if split == "train" else files[-N_TEST:]
    total = len(chosen)
    limit = limit_from_env(LIMIT_ENV)
    if limit is not None:
        chosen = [chosen[i] for i in stratified_indices(total, limit, seed=LIMIT_SEED)]
    arrays = cached_arrays(
        _cache_key(chosen),
        lambda: {"images": np.stack([crop_and_resize(p) for p in chosen])},
        {"images": Spec("uint8", (len(chosen), SIZE, SIZE, 3))},
    )
    name = capped_name("CelebA", split, len(chosen), total, LIMIT_ENV)
    return ImageData(name, to_tensor(arrays["images"]))
