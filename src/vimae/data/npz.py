""".npy files and chosen arrays of .npz files, read within the sizes their files declare.

A .npz is a zip of .npy members, and a .npy file is a header (dtype and shape) then the values.
`np.load` allocates what a header promises before it reads any data, and a .npz may carry arrays
its reader has no use for (or a compressed member of gigabytes). Here an array's header must
promise exactly the bytes its file or zip member has (zip streams never return more than their
declared size), only the arrays asked for are read, and pickled objects are refused, so reading
costs at most the size of the arrays asked for and cannot run code. An array whose data would not
fit in the memory available (a compressed member can declare gigabytes in a few kilobytes) is
refused before anything is allocated, and a reader that knows the shape it needs (`expect`)
refuses any other before reading.
"""

import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

import numpy as np

from vimae.data.memory import available_memory

_FAILURES = (ValueError, SyntaxError, OSError, EOFError, zipfile.BadZipFile, zlib.error)


class NpyError(ValueError):
    """A .npy/.npz file that is damaged, holds objects, or whose arrays are not what they say."""


class NpyTooLargeError(NpyError):
    """An array whose data would not fit in the memory available."""


@dataclass(frozen=True)
class Header:
    """What a .npy header declares: the array's shape and dtype."""

    shape: tuple[int, ...]
    dtype: np.dtype


def _header(stream: IO[bytes], size: int, name: str) -> Header:
    """The header at the start of `stream`, checked to promise exactly the `size` bytes there,
    and no more than the memory available."""
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
        offset = stream.tell()
    except _FAILURES as err:
        raise NpyError(f"{name} has no readable .npy header ({err})") from err
    if dtype.hasobject:
        raise NpyError(f"{name} holds Python objects, which are not loaded as they could run code")
    promised = math.prod(shape) * dtype.itemsize
    if offset + promised != size:
        raise NpyError(
            f"{name} has a header that promises {promised} bytes of data but "
            f"{size - offset} are there"
        )
    free = available_memory()
    if free is not None and promised > free:
        raise NpyTooLargeError(
            f"{name} declares a {dtype} array of shape {tuple(shape)}, {promised / 2**30:.1f} "
            f"GiB, more than the {free / 2**30:.1f} GiB of memory available"
        )
    return Header(tuple(shape), dtype)


def check_shape(header: Header, name: str, expect: tuple[int, ...] | None) -> None:
    """NpyError unless the array has the shape the reader needs (None: any shape)."""
    if expect is not None and header.shape != tuple(expect):
        raise NpyError(f"{name} has shape {header.shape}, but {tuple(expect)} is needed")


def read_npy(path: Path, expect: tuple[int, ...] | None = None) -> np.ndarray:
    """The array of .npy file `path` (of shape `expect` when given); NpyError when it is
    damaged, holds objects, has another shape or would not fit in memory."""
    try:
        with path.open("rb") as f:
            check_shape(_header(f, path.stat().st_size, path.name), path.name, expect)
            f.seek(0)
            return np.lib.format.read_array(f, allow_pickle=False)
    except NpyError:
        raise
    except _FAILURES as err:
        raise NpyError(f"{path.name} is not a readable .npy file ({err})") from err


class Npz:
    """An open .npz file: the names of its arrays, their headers, and the arrays, read one by
    one as asked. A context manager; NpyError for a damaged file or array."""

    def __init__(self, path: Path) -> None:
        try:
            self._zip = zipfile.ZipFile(path)
        except _FAILURES as err:
            raise NpyError(f"{path.name} is not a readable .npz file ({err})") from err
        self._members = {
            info.filename.removesuffix(".npy"): info
            for info in self._zip.infolist()
            if not info.is_dir()
        }

    @property
    def names(self) -> list[str]:
        """The names of the arrays, in the order of the file."""
        return list(self._members)

    def header(self, name: str) -> Header:
        """The dtype and shape of array `name`, read without its data."""
        info = self._members[name]
        try:
            with self._zip.open(info) as stream:
                return _header(stream, info.file_size, name)
        except NpyError:
            raise
        except _FAILURES as err:
            raise NpyError(f"array {name} is damaged ({err})") from err

    def read(self, name: str, expect: tuple[int, ...] | None = None) -> np.ndarray:
        """Array `name` (of shape `expect` when given), its header checked before any of its
        data is read."""
        check_shape(self.header(name), name, expect)
        try:
            with self._zip.open(self._members[name]) as stream:
                return np.lib.format.read_array(stream, allow_pickle=False)
        except _FAILURES as err:
            raise NpyError(f"array {name} is damaged ({err})") from err

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> "Npz":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
