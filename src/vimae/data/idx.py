"""The IDX file format of MNIST and Fashion-MNIST, gzip-compressed or raw.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions), one
big-endian uint32 per dimension, then the values in row-major order. The reader checks all of it:
a wrong magic, a wrong number of dimensions, a file shorter than its header promises (a truncated
download) or longer, and a damaged gzip stream each raise one VimaeError naming the file.
"""

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from vimae.errors import VimaeError

GZIP_MAGIC = b"\x1f\x8b"
# IDX type code -> big-endian numpy dtype
DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _bytes(path: Path) -> bytes:
    """The file's IDX bytes, gunzipped when it starts with the gzip magic."""
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if raw[:2] == GZIP_MAGIC else raw
    except (OSError, EOFError, zlib.error) as err:
        raise VimaeError(
            f"{path} is damaged or truncated ({err}); delete it and download or copy it again."
        ) from err


def read_idx(path: Path, ndim: int | None = None) -> np.ndarray:
    """The array stored in IDX file `path` (native byte order), checked to have `ndim` dims."""
    raw = _bytes(path)
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in DTYPES:
        raise VimaeError(
            f"{path} is not an IDX file (its first bytes are {raw[:4].hex() or 'missing'}); "
            "replace it with the original file."
        )
    dims_count = raw[3]
    if ndim is not None and dims_count != ndim:
        raise VimaeError(
            f"{path} holds a {dims_count}-dimensional array where a {ndim}-dimensional one is "
            "expected; check that the file is the one its name says."
        )
    header = 4 + 4 * dims_count
    if len(raw) < header:
        raise VimaeError(f"{path} is truncated inside its header; download or copy it again.")
    dims = struct.unpack(f">{dims_count}I", raw[4:header])
    dtype = np.dtype(DTYPES[raw[2]])
    expected = math.prod(dims) * dtype.itemsize
    found = len(raw) - header
    if found != expected:
        problem = "is truncated" if found < expected else "has extra bytes at its end"
        raise VimaeError(
            f"{path} {problem}: its header promises {expected} bytes of data but {found} are "
            "there; delete it and download or copy it again."
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))
