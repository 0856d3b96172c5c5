"""Reading and extracting zip and tar archives without letting a member escape its folder.

Dataset archives come from the internet, so a member name is untrusted: an absolute path, a `..`
component, a link or a device file could write outside the target folder (the "zip slip"). Every
member name is checked before anything is written, only regular files and folders are accepted,
and an extraction goes to a temporary folder first and is moved into place when complete, so that
an interrupted extraction never leaves a half-filled dataset folder behind.
"""

import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from vimae.errors import VimaeError

_DAMAGE = (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error)

# A member: its checked relative path and a function that returns its bytes.
Member = tuple[PurePosixPath, Callable[[], bytes]]


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


def _zip_members(archive: Path) -> Iterator[Member]:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            path = safe_member_path(info.filename, archive)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise VimaeError(
                    f"archive {archive} has a symbolic link {info.filename!r}, which is refused; "
                    "get a clean copy of the archive."
                )
            if not info.is_dir():
                yield path, _guarded(archive, lambda info=info: zf.read(info))


def _tar_read(tf: tarfile.TarFile, info: tarfile.TarInfo) -> bytes:
    stream = tf.extractfile(info)
    if stream is None:
        raise tarfile.ReadError(f"member {info.name} has no data")
    return stream.read()


def _tar_members(archive: Path) -> Iterator[Member]:
    with tarfile.open(archive, "r|*") as tf:  # a stream: one pass, no seeks back
        for info in tf:
            path = safe_member_path(info.name, archive)
            if info.isdir():
                continue
            if not info.isfile():
                raise VimaeError(
                    f"archive {archive} has a member {info.name!r} that is a link or a device, "
                    "which is refused; get a clean copy of the archive."
                )
            yield path, _guarded(archive, lambda info=info: _tar_read(tf, info))


def _damaged(archive: Path, err: Exception) -> VimaeError:
    return VimaeError(
        f"archive {archive} is damaged or truncated ({err}); delete it and get it again."
    )


def _guarded(archive: Path, read: Callable[[], bytes]) -> Callable[[], bytes]:
    """`read`, with a damaged archive reported as one VimaeError naming it."""

    def guarded() -> bytes:
        try:
            return read()
        except _DAMAGE as err:
            raise _damaged(archive, err) from err

    return guarded


def iter_members(archive: Path) -> Iterator[Member]:
    """Yield (checked path, read function) for each regular file of a zip or tar archive, in order.

    The archive is streamed: a member's bytes are only read when its function is called, and only
    while the iteration is on that member (tar archives are read front to back).
    """
    try:
        if zipfile.is_zipfile(archive):
            yield from _zip_members(archive)
        elif tarfile.is_tarfile(archive):
            yield from _tar_members(archive)
        else:
            raise VimaeError(
                f"{archive} is neither a zip nor a tar archive; replace it with a good copy."
            )
    except _DAMAGE as err:
        raise _damaged(archive, err) from err


def extract(archive: Path, target: Path) -> None:
    """Extract all members of `archive` into `target`, refusing any that could escape it.

    All member names are checked before anything is written; the files go to a temporary folder
    inside `target` and each top-level entry is then renamed into place.
    """
    target.mkdir(parents=True, exist_ok=True)
    names = [path for path, _ in _list(archive)]
    tops = {path.parts[0] for path in names}
    clashes = sorted(top for top in tops if (target / top).exists())
    if clashes:
        raise VimaeError(
            f"cannot extract {archive} into {target}: {', '.join(clashes)} already exists there; "
            "remove it first or use the files already extracted."
        )
    with tempfile.TemporaryDirectory(dir=target, prefix=".extract-") as tmp:
        root = Path(tmp).resolve()
        for path, read in iter_members(archive):
            out = (root / path).resolve()
            if not out.is_relative_to(root):  # a second line of defence after the name check
                raise VimaeError(f"archive {archive} member {path} escapes {target}; refused.")
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(read())
        for top in sorted(tops):
            shutil.move(root / top, target / top)


def _list(archive: Path) -> list[Member]:
    """All members, checked, without reading their contents."""
    return list(iter_members(archive))
