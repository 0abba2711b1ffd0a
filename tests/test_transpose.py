"""transpose_block, the vector transpose behind matmul's transposing packs (kernels/transpose.py).

The packs that use it are tested with matmul (tests/test_matmul.py).
"""

import numba
import numpy as np
import pytest

from helpers import assert_bitwise_equal
from numbanet._config import serial_kernel
from numbanet.kernels.transpose import BLOCK_BYTES, transpose_block


@serial_kernel
def _transpose_block_at(src, si, sj, dst, di, dj):
    transpose_block(src, si, sj, dst, di, dj)


def test_transpose_block_moves_every_bit_and_nothing_else(dtype):
    # Random bit patterns (NaNs with payloads, infinities, denormals among them), a
    # block taken from inside one array and put inside another.
    w = BLOCK_BYTES // np.dtype(dtype).itemsize
    bits = np.uint32 if dtype == np.float32 else np.uint64
    src = np.random.default_rng(3).integers(0, np.iinfo(bits).max, (w + 3, w + 5), dtype=bits, endpoint=True)
    src = src.view(dtype)
    dst = np.full((w + 4, w + 6), 7, dtype)
    _transpose_block_at(src, 2, 3, dst, 1, 4)
    expected = np.full_like(dst, 7)
    expected[1:1 + w, 4:4 + w] = src[2:2 + w, 3:3 + w].T
    assert_bitwise_equal(dst, expected)


def test_only_c_contiguous_float_blocks_compile():
    # The vector loads assume rows of contiguous elements: a strided view (layout "A"),
    # an integer array or mixed dtypes are typing errors, not silently wrong blocks.
    block = np.zeros((8, 8), np.float32)
    for src, dst in [(block[:, ::2], block), (block.astype(np.int32), block.astype(np.int32)),
                     (block, block.astype(np.float64))]:
        with pytest.raises(numba.TypingError):
            _transpose_block_at(src, 0, 0, dst, 0, 0)
