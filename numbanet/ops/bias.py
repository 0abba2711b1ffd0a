"""Bias add and its gradient: ``bias_add`` and ``bias_grad``."""

import numpy as np

from numbanet.kernels import bias as kernels
from numbanet.ops._validate import (
    as_float_array,
    check_out,
    common_dtype,
    is_alias_or_apart,
    is_plain_float,
    is_writeable_as,
    not_aliased_by,
    scratch,
)

__all__ = ["bias_add", "bias_grad"]

# An add (or a compensated add) per element streams at memory speed: below this
# size one thread finishes before the thread pool would have woken up.
PARALLEL_MIN_SIZE = 1 << 18


def bias_add(x, b, *, out=None):
    """``y[n, c] = x[n, c] + b[c]``.

    One rounding per element, no reduction: the result is the correctly rounded sum.

    Parameters
    ----------
    x : array_like of float32 or float64
        2-D, shape (N, C). Strided arrays are copied; Python sequences become float64.
    b : array_like of float32 or float64
        1-D, shape (C,), same dtype as ``x``.
    out : numpy.ndarray, optional
        C-contiguous array of shape (N, C) and ``x``'s dtype. May be ``x`` itself (in
        place); may not overlap ``b``.

    Returns
    -------
    numpy.ndarray
        ``x + b`` in ``x.dtype``; ``out`` when given.

    Raises
    ------
    TypeError
        If an input is not float32 or float64, the dtypes differ, or ``out`` has
        another dtype.
    ValueError
        If ``x`` is not 2-D, ``b`` is not 1-D of length C, or ``out`` has another
        shape, is not C-contiguous, overlaps ``b``, or overlaps ``x`` without being
        ``x`` itself.

    Notes
    -----
    Its gradient with respect to ``b`` is :func:`bias_grad` of the upstream
    gradient; with respect to ``x`` it is the upstream gradient itself.
    """
    if _is_plain_add(x, b, out):
        y = np.empty(x.shape, x.dtype) if out is None else out
    else:
        x = as_float_array(x, "x", ndim=2)
        b = as_float_array(b, "b", ndim=1)
        dtype = common_dtype(x=x, b=b)
        if b.shape[0] != x.shape[1]:
            raise ValueError(
                f"`b` must have shape (x.shape[1],) = ({x.shape[1]},). "
                f"Received: b.shape={b.shape}, x.shape={x.shape}"
            )
        y = check_out(out, x.shape, dtype, b, *not_aliased_by(out, x))
    forward = kernels.bias_add_forward if x.size >= PARALLEL_MIN_SIZE else kernels.bias_add_forward_serial
    forward(x, b, y)
    return y


def _is_plain_add(x, b, out):
    # Fast path, checks only: plain float ``x`` (2-D) and ``b`` (1-D) of one dtype with
    # len(b) == x.shape[1], and no ``out``, or an ``out`` of x's shape and dtype that is
    # ``x`` or lies outside it, and lies outside ``b``. False sends bias_add to the full
    # validation.
    return (is_plain_float(x, 2) and is_plain_float(b, 1) and b.dtype is x.dtype and b.shape[0] == x.shape[1]
            and (out is None or is_writeable_as(out, x.shape, x.dtype)
                 and is_alias_or_apart(out, x) and not np.may_share_memory(out, b)))


def bias_grad(dy, *, out=None):
    """``db[c] = sum_n dy[n, c]``: the gradient of :func:`bias_add` with respect to ``b``.

    Each column is summed in ``dy``'s dtype with Neumaier compensation over fixed
    blocks of 256 rows, and the block sums are combined in block order, compensated.

    Parameters
    ----------
    dy : array_like of float32 or float64
        2-D, shape (N, C). Strided arrays are copied; Python sequences become float64.
    out : numpy.ndarray, optional
        C-contiguous array of shape (C,) and ``dy``'s dtype, not overlapping ``dy``.

    Returns
    -------
    numpy.ndarray
        Shape (C,) in ``dy.dtype`` (zeros when N = 0); ``out`` when given.

    Raises
    ------
    TypeError
        If ``dy`` is not float32 or float64, or ``out`` has another dtype.
    ValueError
        If ``dy`` is not 2-D, or ``out`` has another shape, is not C-contiguous or
        overlaps ``dy``.

    Notes
    -----
    Error at most about ``eps * |sum| + N * eps**2 * sum(|dy|)`` per column: a
    float32 column of ``1e8`` and a thousand ``0.1`` lands within one ulp (8) of the
    exact ``100000100``, where a plain float32 sum stays at ``1e8``. The summation order depends only on N, so
    the result is bit-identical for any number of threads. An infinite element
    gives that infinity, ``+inf`` with ``-inf`` or a NaN gives NaN, and a running
    sum that overflows gives ``±inf`` (as ``numpy.sum`` does), all in that column
    only.
    """
    dy = as_float_array(dy, "dy", ndim=2)
    db = check_out(out, (dy.shape[1],), dy.dtype, dy)
    # Blocks are the unit of parallel work: fewer than two means nothing to share.
    parallel = dy.size >= PARALLEL_MIN_SIZE and dy.shape[0] > kernels.ROWS
    backward = kernels.bias_add_backward if parallel else kernels.bias_add_backward_serial
    n_blocks = max(1, -(-dy.shape[0] // kernels.ROWS))
    backward(dy, db, scratch("bias_grad", (2 * n_blocks + 1, dy.shape[1]), dy.dtype))
    return db
