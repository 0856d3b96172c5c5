"""The IDX file format of MNIST and Fashion-MNIST, gzip-compressed or raw.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions), one
big-endian uint32 per dimension, then the values in row-major order. The reader checks all of it:
a wrong magic, a wrong number of dimensions, a file shorter than its header promises (a truncated
download) or longer, and a damaged gzip stream each raise one VimaeError naming the file.

The file is streamed, never decompressed whole: the header is read first, a header promising more
than the caller's bound is refused, and then at most one byte more than the header promises is
read. A small .gz that would decompress to gigabytes (a gzip bomb) costs no more than its header
says the data is.
"""

import gzip
import math
import struct
import zlib
from pathlib import Path
from typing import IO

import numpy as np

from vimae.errors import VimaeError

GZIP_MAGIC = b"\x1f\x8b"
# IDX type code -> big-endian numpy dtype
DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# The default bound on the data of one file, far above any IDX dataset (MNIST's training images
# are 47 MB); loaders pass the bound of what their files must hold.
MAX_BYTES = 1 << 30
CHUNK = 1 << 20


def _open(path: Path) -> IO[bytes]:
    """The file as a stream of its IDX bytes, gunzipped on the fly when it starts as gzip."""
    with path.open("rb") as f:
        gzipped = f.read(2) == GZIP_MAGIC
    return gzip.open(path, "rb") if gzipped else path.open("rb")


def _read_up_to(stream: IO[bytes], n: int) -> bytearray:
    """At most `n` bytes of `stream`, fewer at its end; memory grows only with what is there."""
    data = bytearray()
    while len(data) < n and (chunk := stream.read(min(CHUNK, n - len(data)))):
        data += chunk
    return data


def _read(path: Path, ndim: int | None, max_bytes: int) -> np.ndarray:
    with _open(path) as stream:
        magic = stream.read(4)
        if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] not in DTYPES:
            raise VimaeError(
                f"{path} is not an IDX file (its first bytes are {magic.hex() or 'missing'}); "
                "replace it with the original file."
            )
        dims_count = magic[3]
        if ndim is not None and dims_count != ndim:
            raise VimaeError(
                f"{path} holds a {dims_count}-dimensional array where a {ndim}-dimensional one is "
                "expected; check that the file is the one its name says."
            )
        header = stream.read(4 * dims_count)
        if len(header) < 4 * dims_count:
            raise VimaeError(f"{path} is truncated inside its header; download or copy it again.")
        dims = struct.unpack(f">{dims_count}I", header)
        dtype = np.dtype(DTYPES[magic[2]])
        expected = math.prod(dims) * dtype.itemsize
        if expected > max_bytes:
            raise VimaeError(
                f"{path} has a header that promises {expected} bytes of data, more than the "
                f"{max_bytes} bytes a file of this dataset holds; check that it is the right file."
            )
        data = _read_up_to(stream, expected)
        if len(data) < expected:
            raise VimaeError(
                f"{path} is truncated: its header promises {expected} bytes of data but "
                f"{len(data)} are there; delete it and download or copy it again."
            )
        if stream.read(1):
            raise VimaeError(
                f"{path} has extra bytes at its end: its header promises {expected} bytes of "
                "data but more follow; delete it and download or copy it again."
            )
    array = np.frombuffer(data, dtype=dtype).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=False)


def read_idx(path: Path, ndim: int | None = None, max_bytes: int = MAX_BYTES) -> np.ndarray:
    """The array stored in IDX file `path` (native byte order), checked to have `ndim` dims and
    at most `max_bytes` bytes of data."""
    try:
        return _read(path, ndim, max_bytes)
    except (OSError, EOFError, zlib.error) as err:
        raise VimaeError(
            f"{path} is damaged or truncated ({err}); delete it and download or copy it again."
        ) from err
