"""Reading and extracting zip and tar archives without letting a member escape its folder.

Dataset archives come from the internet, so a member name is untrusted: an absolute path, a `..`
component, a link or a device file could write outside the target folder (the "zip slip"). Every
member name is checked before anything is written, only regular files and folders are accepted,
and an extraction goes to a temporary folder first and is moved into place when complete, so that
an interrupted extraction never leaves a half-filled dataset folder behind.

Sizes are bounded too: a small archive can declare members of gigabytes (a zip bomb), so a member
is read into memory only up to a bound its reader gives (what one image or batch file can be), and
an extraction only up to a bound on all members together; both are checked against the sizes the
archive declares before a member is read, and the streams never return more than that.
A layout no folder can hold (a file member named ".", a path that is both a file and a folder, a
file listed twice) is refused as well, before it can fail halfway through an extraction.
"""

import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, TypeVar

from vimae.errors import VimaeError

_DAMAGE = (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error)
# The default bound on one member read into memory: more than any one file of the datasets read
# from archives (CIFAR-10's pickle batches are 31 MB); image readers pass a far smaller one.
MAX_MEMBER_BYTES = 64 << 20
# The default bound on all members of an extracted archive together.
MAX_EXTRACTED_BYTES = 1 << 30
CHUNK = 1 << 20
T = TypeVar("T")

# A member: its checked relative path and a function that returns its bytes.
Member = tuple[PurePosixPath, Callable[[], bytes]]


@dataclass(frozen=True)
class _Entry:
    """A regular file of an archive: checked path, declared uncompressed size, and a function
    that opens its stream (which never returns more than `size` bytes)."""

    path: PurePosixPath
    size: int
    open: Callable[[], IO[bytes]]


def safe_member_path(name: str, archive: Path) -> PurePosixPath:
    """The relative path of member `name`, or VimaeError if it could escape the target folder."""
    posix = name.replace("\\", "/")
    path = PurePosixPath(posix)
    drive_letter = len(posix) > 1 and posix[1] == ":"
    if not posix or path.is_absolute() or drive_letter or ".." in path.parts:
        raise VimaeError(
            f"archive {archive} has an unsafe member {name!r} that points outside its folder; "
            "it was not extracted, so get a clean copy of the archive."
        )
    return path


class _Layout:
    """The files and folders an archive has named so far, to refuse one that no folder can hold."""

    def __init__(self, archive: Path) -> None:
        self.archive = archive
        self.files: set[PurePosixPath] = set()
        self.folders: set[PurePosixPath] = set()

    def add(self, path: PurePosixPath, name: str, is_dir: bool) -> None:
        """Record member `name` at `path`; VimaeError when it clashes with the members before it."""
        if not path.parts:  # "." or "./": the archive's own folder
            if is_dir:
                return
            raise VimaeError(
                f"archive {self.archive} has a file member named {name!r}, which names its "
                "folder rather than a file in it; get a clean copy of the archive."
            )
        parents = set(path.parents) - {PurePosixPath(".")}
        if path in self.files and not is_dir:
            raise VimaeError(
                f"archive {self.archive} holds the file '{path}' twice, so which one is meant is "
                "unclear; get a clean copy of the archive."
            )
        clash = path in (self.files if is_dir else self.folders)
        clash_at = path if clash else next((p for p in parents if p in self.files), None)
        if clash_at is not None:
            raise VimaeError(
                f"archive {self.archive} holds '{clash_at}' both as a file and as a folder, "
                "which no folder can hold; get a clean copy of the archive."
            )
        (self.folders if is_dir else self.files).add(path)
        self.folders.update(parents)


def _zip_entries(archive: Path) -> Iterator[_Entry]:
    with zipfile.ZipFile(archive) as zf:
        layout = _Layout(archive)
        for info in zf.infolist():
            path = safe_member_path(info.filename, archive)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise VimaeError(
                    f"archive {archive} has a symbolic link {info.filename!r}, which is refused; "
                    "get a clean copy of the archive."
                )
            layout.add(path, info.filename, info.is_dir())
            if not info.is_dir():
                yield _Entry(path, info.file_size, lambda info=info: zf.open(info))


def _tar_open(tf: tarfile.TarFile, info: tarfile.TarInfo) -> IO[bytes]:
    stream = tf.extractfile(info)
    if stream is None:
        raise tarfile.ReadError(f"member {info.name} has no data")
    return stream


def _tar_entries(archive: Path) -> Iterator[_Entry]:
    with tarfile.open(archive, "r|*") as tf:  # a stream: one pass, no seeks back
        layout = _Layout(archive)
        for info in tf:
            path = safe_member_path(info.name, archive)
            if not info.isdir() and not info.isfile():
                raise VimaeError(
                    f"archive {archive} has a member {info.name!r} that is a link or a device, "
                    "which is refused; get a clean copy of the archive."
                )
            layout.add(path, info.name, info.isdir())
            if info.isfile():
                yield _Entry(path, info.size, lambda info=info: _tar_open(tf, info))


def _entries(archive: Path) -> Iterator[_Entry]:
    """The regular files of a zip or tar archive, in order, each checked (name, type, layout)."""
    try:
        if zipfile.is_zipfile(archive):
            yield from _zip_entries(archive)
        elif tarfile.is_tarfile(archive):
            yield from _tar_entries(archive)
        else:
            raise VimaeError(
                f"{archive} is neither a zip nor a tar archive; replace it with a good copy."
            )
    except _DAMAGE as err:
        raise _damaged(archive, err) from err


def _damaged(archive: Path, err: Exception) -> VimaeError:
    return VimaeError(
        f"archive {archive} is damaged or truncated ({err}); delete it and get it again."
    )


def _guarded(archive: Path, read: Callable[[], T]) -> Callable[[], T]:
    """`read`, with a damaged archive reported as one VimaeError naming it."""

    def guarded() -> T:
        try:
            return read()
        except _DAMAGE as err:
            raise _damaged(archive, err) from err

    return guarded


def _too_large(archive: Path, what: str, bound: int) -> VimaeError:
    return VimaeError(
        f"archive {archive} {what}, more than the {bound} bytes allowed for it here (a "
        "decompression bomb, or the wrong file), so it was not read; get a clean copy of it."
    )


def _read_bounded(archive: Path, entry: _Entry, max_bytes: int) -> bytes:
    """The bytes of `entry`, refused from its declared size and never read past `max_bytes`."""
    if entry.size > max_bytes:
        raise _too_large(archive, f"member {entry.path} declares {entry.size} bytes", max_bytes)
    with entry.open() as stream:
        data = stream.read(entry.size + 1)
    if len(data) > entry.size:  # the streams stop at the declared size; a second line of defence
        raise zipfile.BadZipFile(f"member {entry.path} holds more than its declared size")
    return data


def iter_members(archive: Path, max_bytes: int = MAX_MEMBER_BYTES) -> Iterator[Member]:
    """Yield (checked path, read function) for each regular file of a zip or tar archive, in order.

    The archive is streamed: a member's bytes are only read when its function is called, and only
    while the iteration is on that member (tar archives are read front to back). A member larger
    than `max_bytes` is refused when read, before it is decompressed.
    """
    for entry in _entries(archive):
        read = _guarded(archive, lambda entry=entry: _read_bounded(archive, entry, max_bytes))
        yield entry.path, read


def _write(entry: _Entry, out: Path) -> None:
    with entry.open() as stream, out.open("wb") as f:
        shutil.copyfileobj(stream, f, CHUNK)


def extract(archive: Path, target: Path, max_bytes: int = MAX_EXTRACTED_BYTES) -> None:
    """Extract all members of `archive` into `target`, refusing any that could escape it.

    All member names, and the total size they declare (at most `max_bytes`), are checked before
    anything is written; the files go to a temporary folder inside `target`, streamed, and each
    top-level entry is then renamed into place.
    """
    target.mkdir(parents=True, exist_ok=True)
    listed = [(entry.path, entry.size) for entry in _entries(archive)]
    total = sum(size for _, size in listed)
    if total > max_bytes:
        raise _too_large(archive, f"declares {total} bytes of members", max_bytes)
    tops = {path.parts[0] for path, _ in listed}
    clashes = sorted(top for top in tops if (target / top).exists())
    if clashes:
        raise VimaeError(
            f"cannot extract {archive} into {target}: {', '.join(clashes)} already exists there; "
            "remove it first or use the files already extracted."
        )
    with tempfile.TemporaryDirectory(dir=target, prefix=".extract-") as tmp:
        root = Path(tmp).resolve()
        for entry in _entries(archive):
            path = entry.path
            out = (root / path).resolve()
            if not out.is_relative_to(root):  # a second line of defence after the name check
                raise VimaeError(f"archive {archive} member {path} escapes {target}; refused.")
            out.parent.mkdir(parents=True, exist_ok=True)
            _guarded(archive, lambda entry=entry, out=out: _write(entry, out))()
        for top in sorted(tops):
            shutil.move(root / top, target / top)
