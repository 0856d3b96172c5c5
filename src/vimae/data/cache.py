"""A disk cache of decoded image arrays, for formats that are slow to decode (JPEG archives).

Decoding CIFAR-10's 60,000 JPEG copies or CelebA's 202,599 faces takes far longer than reading
the resulting uint8 arrays back, so the decoded arrays are kept as an uncompressed .npz under
$VIMAE_CACHE_DIR (default: $XDG_CACHE_HOME/vimae, else ~/.cache/vimae). The key names the source
content (e.g. the archive's sha256), so a changed source never meets a stale cache. A cache file is
written to a temporary name and renamed, so a reader never sees half of one; an unreadable cache is
rebuilt, and an unwritable cache folder only costs the time of decoding again.
"""

import contextlib
import hashlib
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

CACHE_DIR_ENV = "VIMAE_CACHE_DIR"

Arrays = dict[str, np.ndarray]


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


def _read(path: Path) -> Arrays | None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None


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


def cached_arrays(key: str, build: Callable[[], Arrays]) -> Arrays:
    """The arrays cached under `key`, or `build()`'s result, which is then cached atomically."""
    path = cache_dir() / f"{key}.npz"
    if path.is_file():
        arrays = _read(path)
        if arrays is not None:
            return arrays
    arrays = build()
    with contextlib.suppress(OSError):  # a read-only or full cache folder: decode again next time
        _write(path, arrays)
    return arrays
