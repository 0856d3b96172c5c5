"""Getting dataset files from their public mirrors: verified, resumable and atomic.

A file is fetched into `<name>.part` beside its final place. A transfer that breaks off is resumed
with an HTTP Range request from the bytes already there; the finished file is checked against its
published digest and only then renamed to its final name, so a file under its final name is always
complete and verified. Files a user placed by hand are not hashed on every load; their format
checks (IDX header and length, gzip CRC, archive structure) catch a damaged file instead.

Downloading is on unless $VIMAE_NO_DOWNLOAD is set to anything but "" or "0"; without it (or when
every mirror fails) `require` raises one VimaeError naming the files to place and where. Only the
standard library's urllib is used.
"""

import gzip
import hashlib
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from vimae.errors import VimaeError

NO_DOWNLOAD_ENV = "VIMAE_NO_DOWNLOAD"
TIMEOUT_S = 30.0
ATTEMPTS_PER_MIRROR = 4  # tries of one mirror; each after the first resumes where the last stopped
CHUNK = 1 << 16


@dataclass(frozen=True)
class Digest:
    """A published checksum: `algorithm` (a hashlib name) of the file, or of its gunzipped bytes.

    The gunzipped form exists because some mirrors recompress the gzip files of MNIST-like data:
    the bytes of the .gz change while the IDX content inside stays what was published.
    """

    algorithm: str
    hexdigest: str
    gunzipped: bool = False

    def of(self, path: Path) -> str:
        """This digest's algorithm applied to `path` (gunzipped first when `gunzipped`)."""
        h = hashlib.new(self.algorithm)
        opener = gzip.open if self.gunzipped else open
        try:
            with opener(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
        except (OSError, EOFError, zlib.error):
            return "<not a readable gzip file>"
        return h.hexdigest()

    def describe(self) -> str:
        return f"{self.algorithm}{' of the gunzipped content' if self.gunzipped else ''}"


@dataclass(frozen=True)
class RemoteFile:
    """A dataset file: its name on disk, its mirrors in order, and the digests that accept it."""

    name: str
    urls: tuple[str, ...]
    digests: tuple[Digest, ...]

    def verify(self, path: Path) -> str | None:
        """None when `path` matches one of the digests, else a sentence fragment saying why not."""
        first = None
        for digest in self.digests:
            actual = digest.of(path)
            if actual == digest.hexdigest:
                return None
            first = first or f"its {digest.describe()} is {actual}, not {digest.hexdigest}"
        return first


def downloads_enabled() -> bool:
    """False when $VIMAE_NO_DOWNLOAD is set to anything but "" or "0"."""
    return os.environ.get(NO_DOWNLOAD_ENV, "") in ("", "0")


class _InterruptedError(Exception):
    """The connection closed before the whole body arrived; the .part file keeps what came."""


def _transfer(url: str, part: Path) -> None:
    """Append the rest of `url` to `part`, asking only for the missing bytes when some are there."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "vimae", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urlopen(Request(url, headers=headers), timeout=TIMEOUT_S)
    except HTTPError as err:
        if err.code == 416 and have:  # nothing left to send: the .part file is already whole
            return
        raise
    with response:
        resumed = have and response.status == 206
        expected = response.headers.get("Content-Length")
        received = 0
        with part.open("ab" if resumed else "wb") as out:
            try:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    received += len(chunk)
            except (OSError, HTTPException) as err:
                raise _InterruptedError(str(err)) from err
    if expected is not None and received < int(expected):
        raise _InterruptedError(f"connection closed after {received} of {expected} bytes")


def _try_mirror(remote: RemoteFile, url: str, part: Path) -> str | None:
    """Download `url` into `part` with resumes; None when it arrived and verified, else why not."""
    for _ in range(ATTEMPTS_PER_MIRROR):
        try:
            _transfer(url, part)
        except _InterruptedError as err:
            reason = f"interrupted ({err})"
            continue
        except (URLError, HTTPException, OSError, ValueError) as err:
            return f"{url} failed ({getattr(err, 'reason', err)})"
        mismatch = remote.verify(part)
        if mismatch is None:
            return None
        part.unlink()
        return f"{url} sent a corrupt or changed file ({mismatch})"
    return f"{url} kept breaking off: {reason}"


def fetch(remote: RemoteFile, folder: Path) -> Path:
    """Download `remote` into `folder`, verified, trying each mirror; VimaeError if none works."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / remote.name
    part = folder / (remote.name + ".part")
    failures = []
    for url in remote.urls:
        failure = _try_mirror(remote, url, part)
        if failure is None:
            os.replace(part, final)
            return final
        failures.append(failure)
    raise VimaeError(f"could not download {remote.name}: {'; '.join(failures)}.")


def require(folder: Path, files: Sequence[RemoteFile], what: str, alternative: str = "") -> None:
    """Make sure every file of `files` is in `folder`, downloading the missing ones if allowed.

    When some stay missing, raise one VimaeError that names them, the folder, why they could not
    be downloaded, and where they come from (`alternative` adds another way to provide them).
    """
    missing = [f for f in files if not (folder / f.name).is_file()]
    if not missing:
        return
    if downloads_enabled():
        reasons = []
        for remote in missing:
            try:
                fetch(remote, folder)
            except VimaeError as err:
                reasons.append(str(err).rstrip("."))
        missing = [f for f in missing if not (folder / f.name).is_file()]
        if not missing:
            return
        why = "; ".join(reasons)
    else:
        why = f"downloading is off because ${NO_DOWNLOAD_ENV} is set"
    names = ", ".join(f.name for f in missing)
    sources = ", ".join(sorted({f.urls[0].rsplit("/", 1)[0] + "/" for f in missing if f.urls}))
    where = f" (from {sources})" if sources else ""
    also = f", or {alternative}" if alternative else ""
    raise VimaeError(
        f"{what} needs {names} in {folder}/ ({why}); place {'it' if len(missing) == 1 else 'them'}"
        f" there{where}{also}."
    )
