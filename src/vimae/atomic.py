"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Write to a temporary file in the same folder, flush and fsync it, then `os.replace` it over the
target (atomic on POSIX), then fsync the folder so the rename survives a power cut.
"""

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from vimae.errors import VimaeError


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp_path)` and move the finished temporary file to `path`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise VimaeError(io_error_sentence(err, path, "writing it")) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide results from a group
        os.replace(tmp, path)
    except OSError as err:  # a full disk or a folder made read-only mid-run: the old file stays
        raise VimaeError(io_error_sentence(err, path, "writing it")) from None
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete temporary files that a killed `atomic_write` left in `folder`; return them."""
    stale = sorted(Path(folder).glob(".*.tmp")) if Path(folder).is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def io_error_sentence(err: OSError, path: Path, what: str) -> str:
    """One sentence for an OSError met while preparing or writing `path`."""
    if err.errno == errno.ENOSPC:
        reason = "no space is left on its device; free some space or choose another --out"
    elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = "permission denied or read-only; choose another --out"
    elif err.errno in (errno.ENOTDIR, errno.EEXIST):
        reason = "a part of that path is a file, not a folder; choose another --out"
    else:
        reason = f"{err.strerror or err}; choose another --out"
    return f"cannot write {path} while {what}: {reason}."
