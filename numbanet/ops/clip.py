"""Global-norm gradient clipping: ``global_norm``, ``clip_grad_norm``, ``all_finite``."""

import math

import numpy as np

from numbanet.kernels.clip import (
    CHUNK,
    LANES,
    STREAMS,
    count_nonfinite_parallel,
    count_nonfinite_serial,
    scale_parallel,
    scale_serial,
    sum_of_squares_parallel,
    sum_of_squares_serial,
    sum_of_squares_tasks,
)
from numbanet.ops._validate import (
    FLOAT_DTYPES,
    as_float_array,
    as_in_place_array,
    as_scalar,
    check_disjoint,
    common_dtype,
    scratch,
)

__all__ = ["global_norm", "clip_grad_norm", "all_finite"]

# Up to a few chunks the work (under a microsecond per chunk) costs less than
# waking the thread pool, so small arrays (biases, small layers) stay on the
# calling thread.
SERIAL_MAX = 4 * CHUNK
# Rescaling after a float64 square overflowed (|x| > 1.3e154): 2**-600 brings every
# float64 into range, and the terms it flushes to zero are below 2**-1000 of the largest.
OVERFLOW_SCALE = 2.0**-600
# Added to the norm before dividing, as torch.nn.utils.clip_grad_norm_ does.
NORM_EPS = 1e-6


def _float_arrays(arrays, name, *, in_place):
    """The arrays of a sequence (or one bare ndarray), of one float dtype, flattened."""
    if isinstance(arrays, np.ndarray):
        arrays = [arrays]
    try:
        arrays = list(arrays)
    except TypeError as exc:
        raise TypeError(f"`{name}` must be a sequence of arrays. Received: {type(arrays).__name__}") from exc
    check = as_in_place_array if in_place else as_float_array
    flat = []
    for i, a in enumerate(arrays):
        # Arrays that pass as they are skip the checker, which needs a formatted name.
        if not _usable_as_is(a, in_place):
            a = check(a, f"{name}[{i}]")
        # A C-contiguous array's ravel() is the view reshape(-1) makes, at a quarter of the cost.
        flat.append(a.ravel())
    if flat and (_mixed_dtypes(flat) or (in_place and _any_overlap(flat))):
        named = {f"{name}[{i}]": a for i, a in enumerate(flat)}
        common_dtype(**named)
        check_disjoint(**named)
    return flat


def _usable_as_is(a, in_place):
    if not isinstance(a, np.ndarray) or a.dtype not in FLOAT_DTYPES:
        return False
    flags = a.flags
    return flags.c_contiguous and (flags.writeable or not in_place)


# Loops rather than generators: these run on every training step, whose allocations
# are kept small (tests/test_trainer.py), and a generator allocates its frame.
def _mixed_dtypes(arrays):
    dtype = arrays[0].dtype
    for a in arrays:
        if a.dtype != dtype:
            return True
    return False


def _any_overlap(arrays):
    for i in range(len(arrays)):
        for j in range(i + 1, len(arrays)):
            if np.may_share_memory(arrays[i], arrays[j]):
                return True
    return False


def _sum_of_squares(arrays, scale):
    """Sum of (a * scale)**2 over all arrays in float64, arrays added in order."""
    total = 0.0
    for a in arrays:
        if a.shape[0] <= SERIAL_MAX:
            total += sum_of_squares_serial(a, scale, scratch("norm_lanes", (LANES,), np.float64))
        else:
            n_chunks, _, n_tasks = sum_of_squares_tasks(a.shape[0])
            partials = scratch("norm_partials", (n_chunks,), np.float64)
            sums = scratch("norm_task_lanes", (n_tasks, STREAMS, LANES), np.float64)
            total += sum_of_squares_parallel(a, scale, partials, sums)
    return total


def _norm(arrays):
    sum_sq = _sum_of_squares(arrays, 1.0)
    if math.isinf(sum_sq) and all(_count_nonfinite(a) == 0 for a in arrays):
        return math.sqrt(_sum_of_squares(arrays, OVERFLOW_SCALE)) / OVERFLOW_SCALE
    return math.sqrt(sum_sq)


def _count_nonfinite(x):
    count = count_nonfinite_serial if x.shape[0] <= SERIAL_MAX else count_nonfinite_parallel
    return count(x)


def global_norm(arrays):
    """Euclidean norm of all elements of all arrays: sqrt(sum_k sum_i a_k[i]**2).

    Squares are summed in float64 (exact squares for float32) over fixed chunks;
    a float64 square that overflows triggers one recomputation with scaled terms.

    Parameters
    ----------
    arrays : sequence of array_like of float32 or float64, or one ndarray
        Any shapes, one dtype; strided arrays are copied.

    Returns
    -------
    numpy.float64
        The norm; ``0`` for no arrays or only empty ones.

    Raises
    ------
    TypeError
        If ``arrays`` is not a sequence, an element is not float32/float64, or the
        dtypes are mixed.

    Notes
    -----
    Computed in float64 whatever the input dtype, so the float32 error is that of the
    float64 sum (about ``N * 1e-16`` relative). An inf gives ``inf`` and a NaN gives
    NaN; finite float64 values too large to square (above ``1.3e154``) are handled by
    rescaling, but squares below ``1e-308`` flush to zero as in any float64 sum. The
    chunks are combined in a fixed order: bit-identical for any number of threads.
    """
    return np.float64(_norm(_float_arrays(arrays, "arrays", in_place=False)))


def clip_grad_norm(arrays, max_norm):
    """Scale ``arrays`` in place by max_norm / (norm + 1e-6) when their global norm exceeds max_norm.

    The norm is that of :func:`global_norm` (float64, fixed chunks); the coefficient
    is computed in float64 and applied in the arrays' dtype.

    Parameters
    ----------
    arrays : sequence of ndarray of float32 or float64, or one ndarray
        The gradients; writeable, C-contiguous, one dtype, not sharing memory.
    max_norm : float
        Finite, ``> 0``.

    Returns
    -------
    numpy.float64
        The global norm before clipping.

    Raises
    ------
    TypeError
        If an element is not a float32/float64 ndarray, the dtypes are mixed, or
        ``max_norm`` is not a real number.
    ValueError
        If an array is not writeable and C-contiguous (scaling a copy would be
        silently lost), two arrays share memory, or ``max_norm`` is not finite and
        positive.

    Notes
    -----
    The coefficient ``max_norm / (norm + 1e-6)`` is torch's. Unlike
    ``torch.nn.utils.clip_grad_norm_`` (which then multiplies every gradient by 0
    for an infinite norm, turning inf entries into NaN, and by NaN for a NaN norm),
    a non-finite norm leaves the arrays untouched and is returned as it is, so the
    caller can see it and skip the step. Arrays are not touched when the norm is at
    most ``max_norm``.
    """
    arrays = _float_arrays(arrays, "arrays", in_place=True)
    max_norm = as_scalar(max_norm, "max_norm", low=0.0, low_open=True)
    norm = _norm(arrays)
    if math.isfinite(norm) and norm > max_norm:
        coef = arrays[0].dtype.type(max_norm / (norm + NORM_EPS))
        for a in arrays:
            scale = scale_serial if a.shape[0] <= SERIAL_MAX else scale_parallel
            scale(a, coef)
    return np.float64(norm)


def all_finite(x):
    """True when no element of ``x`` is inf or NaN.

    One parallel pass counting the elements where ``x - x != 0`` (no early exit).

    Parameters
    ----------
    x : array_like of float32 or float64
        Any shape; strided arrays are copied.

    Returns
    -------
    bool
        ``True`` for an empty array.

    Raises
    ------
    TypeError
        If ``x`` is not float32 or float64.
    """
    return bool(_count_nonfinite(as_float_array(x, "x").reshape(-1)) == 0)
