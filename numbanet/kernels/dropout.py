"""Inverted dropout with a counter-based mask.

Dimensions: n = number of elements (arrays of any shape arrive flattened, C order).

Element i is kept when the i-th output of a SplitMix64 stream keyed by the seed,
``h(seed, i)``, is below ``threshold = floor(keep * 2**64)``; a kept element is
scaled by ``1 / keep``, a dropped one is 0. The mask is a pure function of
(seed, i): it is the same for any thread count and any chunking, and the backward
pass recomputes it instead of storing it. Forward (``y = mask(x)``) and backward
(``dx = mask(dy)``) are the same map, so one kernel serves both.
"""

import numpy as np
from numba import prange

from numbanet._config import kernel, serial_kernel
from numbanet.kernels.in_place import same_data

# SplitMix64 (Steele, Lea & Flood 2014): Weyl increment and finaliser constants.
GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)
SHIFT1 = np.uint64(30)
SHIFT2 = np.uint64(27)
SHIFT3 = np.uint64(31)

# Elements per parallel task.
CHUNK = 8192


@serial_kernel
def splitmix64_mix(z):
    """SplitMix64's finaliser: a bijection of uint64 with full avalanche."""
    z = (z ^ (z >> SHIFT1)) * MIX1
    z = (z ^ (z >> SHIFT2)) * MIX2
    return z ^ (z >> SHIFT3)


@serial_kernel
def is_kept(key, index, threshold):
    """Whether element ``index`` of the whole array is kept: h(seed, index) < threshold,
    the stream's (index + 1)-th output, key = splitmix64_mix(seed)."""
    counter = np.uint64(index) + np.uint64(1)
    return splitmix64_mix(key + counter * GOLDEN_GAMMA) < threshold


@serial_kernel
def apply_dropout_mask_serial(x, y, seed, threshold, scale, first_index):
    # x, y: (n,); x[i] is element first_index + i of the whole array.
    # A dropped element is written as 0 (a select, not x * 0), so a NaN or inf there
    # does not leak into the output.
    if same_data(x, y):
        apply_dropout_mask_in_place(y, seed, threshold, scale, first_index)
        return
    zero = x.dtype.type(0)
    key = splitmix64_mix(seed)
    for i in range(x.size):
        y[i] = x[i] * scale if is_kept(key, first_index + i, threshold) else zero


@serial_kernel
def apply_dropout_mask_in_place(y, seed, threshold, scale, first_index):
    # apply_dropout_mask_serial with x = y.
    zero = y.dtype.type(0)
    key = splitmix64_mix(seed)
    for i in range(y.size):
        y[i] = y[i] * scale if is_kept(key, first_index + i, threshold) else zero


@kernel
def apply_dropout_mask(x, y, seed, threshold, scale):
    # x, y: (n,)
    for c in prange((x.size + CHUNK - 1) // CHUNK):
        lo = c * CHUNK
        hi = min(lo + CHUNK, x.size)
        apply_dropout_mask_serial(x[lo:hi], y[lo:hi], seed, threshold, scale, lo)
