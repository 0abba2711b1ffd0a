"""Reading IDX files, the format MNIST and Fashion-MNIST are distributed in.

Layout (all integers big-endian):

    bytes 0-1   0x00 0x00                      magic
    byte  2     element type                   see IDX_TYPES
    byte  3     number of dimensions D         1..255
    4 * D       one uint32 per dimension
    rest        prod(dims) elements, row-major, big-endian

A gzip-compressed file (magic 0x1f 0x8b) is decompressed first, whatever its name.
"""

import gzip
import math
import os
import zlib

import numpy as np

__all__ = ["IDXError", "IDX_TYPES", "load_idx"]

IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


class IDXError(ValueError):
    """An IDX file is malformed: bad magic, unknown type, truncated or over-long data."""


def load_idx(path):
    """Read an IDX file (gzipped or not) into a native-endian numpy array.

    The header's dims fix the exact byte count, so truncation and trailing bytes are both errors.

    Parameters
    ----------
    path : str or os.PathLike
        The file. Compression is detected from the gzip magic bytes, not from the name.

    Returns
    -------
    numpy.ndarray
        Shape ``dims`` from the header; dtype uint8, int8, int16, int32, float32 or float64
        (native byte order), writable.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    IDXError
        The file is not valid IDX (or not valid gzip); the message names the file and the defect.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == _GZIP_MAGIC:
        raw = _gunzip(raw, path)
    return _parse_idx(raw, path)


def _gunzip(raw, path):
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise IDXError(f"IDX file {path!r}: corrupt or truncated gzip data ({e})") from e


def _parse_idx(raw, path):
    if len(raw) < 4:
        raise IDXError(f"IDX file {path!r}: {len(raw)} bytes, too short for the 4-byte magic")
    if raw[0] != 0 or raw[1] != 0:
        raise IDXError(
            f"IDX file {path!r}: magic starts with 0x{raw[0]:02x}{raw[1]:02x}, expected 0x0000 "
            "(not an IDX file?)"
        )
    type_code, ndim = raw[2], raw[3]
    if type_code not in IDX_TYPES:
        known = ", ".join(f"0x{code:02X}" for code in IDX_TYPES)
        raise IDXError(f"IDX file {path!r}: unknown element type 0x{type_code:02X} (known: {known})")
    if ndim == 0:
        raise IDXError(f"IDX file {path!r}: header declares 0 dimensions")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise IDXError(
            f"IDX file {path!r}: header declares {ndim} dimensions but the file ends after "
            f"{len(raw)} bytes (header needs {header_size})"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[type_code]
    count = math.prod(dims)
    expected = count * dtype.itemsize
    actual = len(raw) - header_size
    if actual != expected:
        problem = "truncated data" if actual < expected else "trailing bytes"
        raise IDXError(
            f"IDX file {path!r}: {problem}: dims {dims} of {dtype.newbyteorder('=').name} need "
            f"{expected} data bytes, found {actual}"
        )
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=header_size)
    return data.astype(dtype.newbyteorder("=")).reshape(dims)
