"""Safe files: atomic writes, one writer per folder, folders proven writable before work starts.

- `atomic_write`: a reader sees the old file or the new one, never half of either. Write to a
  temporary file in the same folder, flush and fsync it, then `os.replace` it over the target
  (atomic on POSIX), then fsync the folder so the rename survives a power cut.
- `run_lock`: an advisory lock (`flock` on FOLDER/.lock) held while a process trains, evaluates
  or converts into the folder. A second writer is refused with a sentence naming the holder,
  instead of two processes writing every row twice. The kernel drops the lock when its process
  dies, so a killed process never leaves the folder locked.
- `writable_folder`: an `--out` that is a file, lies under a file, or cannot be written is one
  sentence before anything is computed.
"""

import errno
import fcntl
import math
import os
import socket
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vimae.errors import VimaeError


def atomic_write(path: Path, write: Callable[[Path], None], flag: str = "--out") -> None:
    """Call `write(tmp_path)` and move the finished temporary file to `path`; a failure is one
    sentence that advises another `flag` (the option that chose where `path` is)."""
    path = Path(path)
    check_utf8(path, flag)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise VimaeError(io_error_sentence(err, path, "writing it", flag)) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide results from a group
        os.replace(tmp, path)
    except OSError as err:  # a full disk or a folder made read-only mid-run: the old file stays
        raise VimaeError(io_error_sentence(err, path, "writing it", flag)) from None
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


def io_error_sentence(err: OSError, path: Path, what: str, flag: str = "--out") -> str:
    """One sentence for an OSError met while preparing or writing `path`, advising another
    `flag` (the option that chose the place)."""
    if err.errno == errno.ENOSPC:
        reason = f"no space is left on its device; free some space or choose another {flag}"
    elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = f"permission denied or read-only; choose another {flag}"
    elif err.errno in (errno.ENOTDIR, errno.EEXIST):
        reason = f"a part of that path is a file, not a folder; choose another {flag}"
    else:
        reason = f"{err.strerror or err}; choose another {flag}"
    return f"cannot write {path} while {what}: {reason}."


def check_utf8(path: Path, flag: str = "--out") -> None:
    """One sentence for a path that is not valid UTF-8: files made there could not be read back
    by every reader (safetensors takes its paths as UTF-8 text)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        shown = str(path).encode("utf-8", "backslashreplace").decode()
        raise VimaeError(
            f"{flag} {shown} is not valid UTF-8 text; choose a name of valid characters."
        ) from None


def special_kind(path: Path) -> str | None:
    """What `path` is when it exists but is no regular file ("a folder", "a FIFO", "a character
    device", ...), or None for a regular file or a missing path."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return "a broken link" if path.is_symlink() else None
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), None)


def read_text_bounded(path: Path, limit: int, what: str) -> str:
    """The text of regular file `path` of at most `limit` bytes; one sentence naming `what` the
    file should have been when it is missing, special (a FIFO or device would block or never
    end), too large, or not UTF-8."""
    path = Path(path)
    kind = special_kind(path)
    if kind is not None:
        raise VimaeError(f"{what} {path} is {kind}, not a file; give a regular file.")
    if not path.is_file():
        raise VimaeError(f"{what} {path} does not exist; check the path.")
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise VimaeError(f"{what} {path} is larger than {limit:,} bytes; it is not such a file.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise VimaeError(f"{what} {path} is not UTF-8 text; give a text file.") from None


LOCK_FILE = ".lock"
_held: set[Path] = set()  # folders this process has locked (a lock is re-entrant per process)


def writable_folder(path: str | Path, flag: str = "--out") -> Path:
    """Create folder `path` (chosen by option `flag`) if needed and prove it writable, or raise
    one VimaeError sentence."""
    if str(path) == "":
        raise VimaeError(f"{flag} is empty; give a folder.")
    path = Path(path)
    check_utf8(path, flag)
    if path.exists() and not path.is_dir():
        raise VimaeError(f"{flag} {path} is a file, not a folder; choose a folder.")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise VimaeError(io_error_sentence(err, path, "preparing the folder", flag)) from None
    return path


@contextmanager
def run_lock(folder: str | Path, purpose: str) -> Iterator[None]:
    """Hold RUN/.lock for `purpose` (e.g. "vimae train"), or refuse if another process holds it."""
    folder = writable_folder(folder)
    key = folder.resolve()
    if key in _held:  # this process holds it already (a reproduce that trains, then evaluates)
        yield
        return
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 400, 0).decode(errors="replace").strip() or "another process"
            raise VimaeError(
                f"{folder} is in use by {holder}; wait for it to finish or choose another folder."
            ) from None
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        note = f"{purpose} (process {os.getpid()} on {socket.gethostname()}, since {started})"
        os.ftruncate(fd, 0)
        os.pwrite(fd, note.encode() + b"\n", 0)
        _held.add(key)
        try:
            yield
        finally:
            _held.discard(key)
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def jsonable(value: Any) -> Any:
    """`value` as JSON can hold it: Paths as text, tuples as lists, inf and nan as text."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no inf / nan
    return value
