"""A disk cache of decoded image arrays, for formats that are slow to decode (JPEG archives).

Decoding CIFAR-10's 60,000 JPEG copies or CelebA's 202,599 faces takes far longer than reading
the resulting uint8 arrays back, so the decoded arrays are kept as an uncompressed .npz under
$VIMAE_CACHE_DIR (default: $XDG_CACHE_HOME/vimae, else ~/.cache/vimae). The key names the source
content (e.g. the archive's sha256), so a changed source never meets a stale cache. A cache file is
written to a temporary name and renamed, so a reader never sees half of one; an unwritable cache
folder only costs the time of decoding again.

A cache file is not trusted: whoever can write the cache folder can change it, and a disk can
damage it. It is used only when it holds exactly the arrays its loader expects, each of the
expected dtype and shape (checked from the headers, before any data is read) and with values in
the expected range; anything else, like an unreadable file, is decoded again and replaced.
"""

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vimae.data.npz import NpyError, Npz

CACHE_DIR_ENV = "VIMAE_CACHE_DIR"

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class Spec:
    """What one cached array must be: its dtype, its shape, and the range of its values.

    A shape entry is a length, or a name: every axis of that name (in any array of the file) must
    have one length, as images and their labels share their count.
    """

    dtype: str
    shape: tuple[int | str, ...]
    low: float = 0
    high: float = 255


Specs = dict[str, Spec]


def cache_dir() -> Path:
    """$VIMAE_CACHE_DIR, else $XDG_CACHE_HOME/vimae, else ~/.cache/vimae."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vimae"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _fits(npz: Npz, specs: Specs) -> bool:
    """Whether the file's arrays have the names, dtypes and shapes of `specs`, from headers only."""
    if sorted(npz.names) != sorted(specs):
        return False
    lengths: dict[str, int] = {}
    for name, spec in specs.items():
        header = npz.header(name)
        if header.dtype != np.dtype(spec.dtype) or len(header.shape) != len(spec.shape):
            return False
        for want, have in zip(spec.shape, header.shape, strict=True):
            if isinstance(want, str):
                want = lengths.setdefault(want, have)
            if have != want:
                return False
    return True


def _in_range(array: np.ndarray, spec: Spec) -> bool:
    return array.size == 0 or bool(array.min() >= spec.low and array.max() <= spec.high)


def _read(path: Path, specs: Specs) -> Arrays | None:
    """The cached arrays, or None when the file is unreadable or not what `specs` say."""
    try:
        with Npz(path) as npz:
            if not _fits(npz, specs):
                return None
            arrays = {name: npz.read(name) for name in specs}
    except (NpyError, OSError, MemoryError):
        return None
    if not all(_in_range(arrays[name], spec) for name, spec in specs.items()):
        return None
    return arrays


def _write(path: Path, arrays: Arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def cached_arrays(key: str, build: Callable[[], Arrays], specs: Specs) -> Arrays:
    """The arrays cached under `key` when they are what `specs` say, else `build()`'s result,
    which is then cached atomically (replacing a wrong cache file)."""
    path = cache_dir() / f"{key}.npz"
    if path.is_file():
        arrays = _read(path, specs)
        if arrays is not None:
            return arrays
    arrays = build()
    with contextlib.suppress(OSError):  # a read-only or full cache folder: decode again next time
        _write(path, arrays)
    return arrays
