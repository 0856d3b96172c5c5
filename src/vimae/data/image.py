"""Decoding image files to arrays, bounded and by their real depth, and arrays into tensors.

Image files are untrusted: a small file can declare a huge size (a decompression bomb), so every
image is opened here, where Pillow's pixel limit (`PIL.Image.MAX_IMAGE_PIXELS`) is enforced, its
warning included, and a file over it is refused with one VimaeError naming the file. Pixels are
scaled by the range of their mode, not clipped to 8 bits: 16-bit grey ("I;16", and "I" from 16-bit
PNG or PGM) by 65535, 32-bit integer TIFF by its own maximum, and float images ("F") are taken as
already in [0, 1], as in the `array` dataset.

A photo's EXIF orientation is applied, as image viewers and Pillow's `ImageOps.exif_transpose` do:
a phone JPEG stored sideways with "rotate 90" in its EXIF is the upright image, also in the size
its header reports.

Loaders keep images as uint8 (N, H, W, C) while they assemble a split, which is 4x smaller than
float32 and what the caches store, and convert once at the end; the `folder` dataset keeps the
full depth of its files with `decode_unit`.
"""

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from vimae.errors import VimaeError

# Image file bytes, or the path of an image file (which Pillow then reads as it needs).
Source = bytes | Path
_BOMB = (Image.DecompressionBombError, Image.DecompressionBombWarning)
_FAILURES = (*_BOMB, UnidentifiedImageError, OSError, SyntaxError, ValueError)
TIFF_BITS_PER_SAMPLE, TIFF_SAMPLE_FORMAT, TIFF_SIGNED = 258, 339, 2


def _refusal(err: Exception, name: str) -> VimaeError:
    if isinstance(err, _BOMB):
        return VimaeError(
            f"{name} is too large an image to decode safely ({str(err).rstrip('.')}); "
            "remove it or replace it with a smaller image."
        )
    return VimaeError(f"{name} is not a readable image ({err}); replace or remove that file.")


@contextmanager
def _opened(source: Source, name: str, load: bool = True) -> Iterator[Image.Image]:
    """The image of `source`, decoded when `load`, closed afterwards; VimaeError naming `name` for
    a file that is no image or one over Pillow's pixel limit."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    except _FAILURES as err:
        raise _refusal(err, name) from err
    with image:
        upright = None
        if load:
            try:
                image.load()
                if orientation(image) != 1:  # the upright image, as a viewer shows it
                    upright = ImageOps.exif_transpose(image)
            except _FAILURES as err:
                raise _refusal(err, name) from err
        if upright is None:
            yield image
            return
        with upright:
            yield upright


# EXIF orientation tag; values 5 to 8 turn the image by a quarter (width and height swap).
ORIENTATION_TAG = 0x0112
QUARTER_TURNS = (5, 6, 7, 8)


def orientation(image: Image.Image) -> int:
    """The EXIF orientation of an opened image (1: as stored, also when it has no EXIF)."""
    try:
        return int(image.getexif().get(ORIENTATION_TAG, 1))
    except (TypeError, ValueError, OSError, SyntaxError):
        return 1  # damaged EXIF: the pixels are taken as stored


def image_header(path: Path) -> tuple[tuple[int, int], str]:
    """(width, height) of the upright image and PIL mode of an image file, from its header alone
    (bombs refused)."""
    with _opened(path, str(path), load=False) as image:
        width, height = image.size
        if orientation(image) in QUARTER_TURNS:
            width, height = height, width
        return (width, height), image.mode


def is_deep(mode: str) -> bool:
    """Whether PIL `mode` holds one channel of more than 8 bits (16/32-bit integers or floats)."""
    return mode in ("I", "F") or mode.startswith("I;16")


def _top(image: Image.Image) -> float:
    """The value of full intensity in a deep image's samples (1.0 for floats)."""
    if image.mode == "F":
        return 1.0
    if image.mode.startswith("I;16"):
        return 65535.0
    # Mode "I": a TIFF says its depth; PNG and PGM open their 16-bit grey as "I" (or "I;16").
    tags = getattr(image, "tag_v2", {})
    bits, kind = tags.get(TIFF_BITS_PER_SAMPLE, 16), tags.get(TIFF_SAMPLE_FORMAT, 1)
    bits = bits[0] if isinstance(bits, tuple) else bits
    kind = kind[0] if isinstance(kind, tuple) else kind
    return float(2 ** (int(bits) - (kind == TIFF_SIGNED)) - 1)


def _deep_unit(image: Image.Image, name: str) -> np.ndarray:
    """A deep one-channel image -> float32 (H, W) in [0, 1], scaled by its mode's range."""
    top = _top(image)
    values = np.asarray(image)  # (H, W) uint16, int32 or float32, checked before any rounding
    if values.size and (not np.isfinite(values).all() or values.min() < 0 or values.max() > top):
        raise VimaeError(
            f"{name} has {image.mode} pixel values from {values.min():g} to {values.max():g}, "
            f"outside 0..{top:g}; save it with values in that range (floats in [0, 1])."
        )
    return np.clip(values.astype(np.float32) / np.float32(top), 0.0, 1.0)


def _unit(image: Image.Image, name: str, mode: str) -> np.ndarray:
    """A decoded image -> float32 (H, W) for mode "L" or (H, W, 3) for "RGB", in [0, 1]."""
    if not is_deep(image.mode):
        return np.asarray(image.convert(mode), dtype=np.float32) / 255
    grey = _deep_unit(image, name)
    return grey if mode == "L" else np.repeat(grey[..., None], 3, axis=2)


def open_image(source: Source, name: str, mode: str) -> Image.Image:
    """An 8-bit PIL image in `mode` ("L" or "RGB") from an image file; VimaeError naming `name`
    when it is no image or too large. Deep images are scaled by their range, then rounded."""
    with _opened(source, name) as image:
        if not is_deep(image.mode):
            return image.convert(mode)
        unit = _unit(image, name, mode)
    return Image.fromarray(np.rint(unit * 255).astype(np.uint8))


def decode(source: Source, name: str, mode: str) -> np.ndarray:
    """An image file -> uint8 array (H, W) for mode "L" or (H, W, 3) for mode "RGB"."""
    return np.asarray(open_image(source, name, mode), dtype=np.uint8)


def decode_unit(source: Source, name: str, mode: str) -> np.ndarray:
    """An image file -> float32 (H, W) for mode "L" or (H, W, 3) for "RGB" in [0, 1], keeping
    the precision of 16-bit and float images."""
    with _opened(source, name) as image:
        return _unit(image, name, mode)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) or (N, H, W, C) -> uint8 (N, C, H, W): ImageData's 8-bit pixels (the
    float32 view in [0, 1] is made on demand, see ImageData.images)."""
    if images.ndim == 3:
        images = images[..., None]
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    return x.contiguous()
