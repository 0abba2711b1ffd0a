"""Compensated summation: ``kahan_sum``."""

import numpy as np

from numbanet.kernels.kahan import CHUNK, kahan_sum_parallel, kahan_sum_serial
from numbanet.ops._validate import as_float_array

__all__ = ["kahan_sum"]

# Up to a few chunks the work (under a microsecond per chunk) costs less than
# waking the thread pool, so small arrays are summed on the calling thread.
SERIAL_MAX = 4 * CHUNK
# Power of two that rescales the terms after an intermediate overflow: exact for
# normal numbers, and N * max(dtype) * 2**-64 cannot overflow for any N < 2**63.
OVERFLOW_SCALE = 2.0**-64


def kahan_sum(x):
    """Sum of all elements of ``x``, accumulated in ``x.dtype`` with compensation.

    Each addition's rounding error is recovered exactly (Knuth's TwoSum, the
    branch-free form of Neumaier's compensation) and carried beside the sum.

    Parameters
    ----------
    x : array_like of float32 or float64
        Any shape; strided arrays are copied. Python sequences become float64.

    Returns
    -------
    numpy.float32 or numpy.float64
        The sum, in ``x.dtype``; ``0`` for an empty array.

    Raises
    ------
    TypeError
        If ``x`` is not float32 or float64.

    Notes
    -----
    The error is at most about one rounding of the result plus ``N * eps**2 *
    sum(|x|)``: float32 ``1e8`` followed by a million ``0.1`` gives ``1.001e8``
    where a sequential float32 sum stays at ``1e8``. The elements are summed in
    fixed chunks of ``CHUNK`` whose partial sums are combined in chunk order, so
    the result is bit-identical for any number of threads.

    An infinite element gives that infinity, ``+inf`` with ``-inf`` or a NaN gives
    NaN, and a sum that overflows the dtype gives ``±inf``. Should an intermediate
    overflow while the total fits (large terms of both signs), the sum is recomputed
    once with every term scaled by ``2**-64``.
    """
    x = as_float_array(x, "x").reshape(-1)
    if x.shape[0] == 0:
        return x.dtype.type(0)
    summed = kahan_sum_serial if x.shape[0] <= SERIAL_MAX else kahan_sum_parallel
    out = np.empty(1, x.dtype)
    summed(x, x.dtype.type(1), out)
    if np.isfinite(out[0]):
        return out[0]
    scale = x.dtype.type(OVERFLOW_SCALE)
    summed(x, scale, out)
    if not np.isfinite(out[0]):
        return out[0]
    with np.errstate(over="ignore"):
        return out[0] / scale
