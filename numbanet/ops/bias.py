"""Bias add and its gradient: ``bias_add`` and ``bias_grad``; fused with a ReLU:
``bias_relu`` and ``bias_relu_backward``."""

import numpy as np

from numbanet.kernels import bias as kernels
from numbanet.ops._validate import (
    as_float_array,
    check_out,
    check_same_shape,
    common_dtype,
    is_alias_or_apart,
    is_plain_float,
    is_writeable_as,
    not_aliased_by,
    scratch,
)

__all__ = ["bias_add", "bias_grad", "bias_relu", "bias_relu_backward"]

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
    x, b, y = _add_operands(x, b, out)
    forward = kernels.bias_add_forward if x.size >= PARALLEL_MIN_SIZE else kernels.bias_add_forward_serial
    forward(x, b, y)
    return y


def _add_operands(x, b, out):
    """(x, b, the output array) of ``x + b`` after the checks :func:`bias_add` documents."""
    if _is_plain_add(x, b, out):
        return x, b, np.empty(x.shape, x.dtype) if out is None else out
    x = as_float_array(x, "x", ndim=2)
    b = as_float_array(b, "b", ndim=1)
    dtype = common_dtype(x=x, b=b)
    if b.shape[0] != x.shape[1]:
        raise ValueError(
            f"`b` must have shape (x.shape[1],) = ({x.shape[1]},). "
            f"Received: b.shape={b.shape}, x.shape={x.shape}"
        )
    return x, b, check_out(out, x.shape, dtype, b, *not_aliased_by(out, x))


def _is_plain_add(x, b, out):
    # Fast path, checks only: plain float ``x`` (2-D) and ``b`` (1-D) of one dtype with
    # len(b) == x.shape[1], and no ``out``, or an ``out`` of x's shape and dtype that is
    # ``x`` or lies outside it, and lies outside ``b``. False sends bias_add to the full
    # validation.
    return (is_plain_float(x, 2) and is_plain_float(b, 1) and b.dtype is x.dtype and b.shape[0] == x.shape[1]
            and (out is None or is_writeable_as(out, x.shape, x.dtype)
                 and is_alias_or_apart(out, x) and not np.may_share_memory(out, b)))


def bias_relu(x, b, *, out=None):
    """``y[n, c] = max(x[n, c] + b[c], 0)``: :func:`bias_add` then ``relu`` in one pass.

    The sum is rounded once, then selected as ``relu`` does: bit for bit
    ``relu(bias_add(x, b))``, NaN kept, ``-0.0`` and negatives giving ``+0.0``.

    Parameters
    ----------
    x : array_like of float32 or float64
        2-D, shape (N, C). Strided arrays are copied; Python sequences become float64.
    b : array_like of float32 or float64
        1-D, shape (C,), same dtype as ``x``.
    out : numpy.ndarray, optional
        C-contiguous array of shape (N, C) and ``x``'s dtype. May be ``x`` itself (in
        place, as a dense layer applies it to its matmul's output); may not overlap ``b``.

    Returns
    -------
    numpy.ndarray
        ``relu(x + b)`` in ``x.dtype``; ``out`` when given.

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
    Its gradients are :func:`bias_relu_backward` of the upstream gradient and this
    output.
    """
    x, b, y = _add_operands(x, b, out)
    forward = kernels.bias_relu_forward if x.size >= PARALLEL_MIN_SIZE else kernels.bias_relu_forward_serial
    forward(x, b, y)
    return y


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
    serial, parallel = kernels.bias_add_backward_serial, kernels.bias_add_backward
    _column_sums_kernel(dy, serial, parallel)(dy, db, _column_sums_work(dy))
    return db


def bias_relu_backward(dy, y, *, out=None, bias_out=None):
    """Gradients of :func:`bias_relu` from its output ``y``: ``(dx, db)``.

    ``dx = dy`` where ``y > 0``, ``0`` where ``y <= 0`` and NaN where ``y`` is NaN (as
    ``relu_backward(dy, x + b)``, since ``y > 0`` exactly where ``x + b > 0``);
    ``db`` = the column sums of ``dx``, summed as :func:`bias_grad` sums. One pass:
    bit for bit ``relu_backward`` then ``bias_grad``.

    Parameters
    ----------
    dy : array_like of float32 or float64
        2-D, shape (N, C): the gradient of the loss with respect to ``y``.
    y : array_like of float32 or float64
        The output of :func:`bias_relu`, same shape and dtype.
    out : numpy.ndarray, optional
        C-contiguous (N, C) array of that dtype for ``dx``, not overlapping the inputs.
    bias_out : numpy.ndarray, optional
        C-contiguous (C,) array of that dtype for ``db``, not overlapping the inputs or
        ``out``.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``dx`` (``out`` when given) and ``db`` (``bias_out`` when given).

    Raises
    ------
    TypeError
        If an input is not float32 or float64, the dtypes differ, or an output has
        another dtype.
    ValueError
        If the inputs are not 2-D of one shape, or an output has another shape, is
        not C-contiguous or overlaps what it may not.

    Notes
    -----
    ``db`` has :func:`bias_grad`'s error bound and its NaN and inf behaviour; the
    result does not depend on the number of threads.
    """
    dy = as_float_array(dy, "dy", ndim=2)
    y = as_float_array(y, "y", ndim=2)
    dtype = common_dtype(dy=dy, y=y)
    check_same_shape(dy=dy, y=y)
    dx = check_out(out, dy.shape, dtype, dy, y)
    db = check_out(bias_out, (dy.shape[1],), dtype, dy, y, dx, name="bias_out")
    serial, parallel = kernels.bias_relu_backward_serial, kernels.bias_relu_backward
    _column_sums_kernel(dy, serial, parallel)(dy, y, dx, db, _column_sums_work(dy))
    return dx, db


def _column_sums_kernel(dy, serial, parallel):
    # Blocks are the unit of parallel work: fewer than two means nothing to share.
    return parallel if dy.size >= PARALLEL_MIN_SIZE and dy.shape[0] > kernels.ROWS else serial


def _column_sums_work(dy):
    """Scratch of the column-sum kernels: block totals, their compensations, one more row."""
    n_blocks = max(1, -(-dy.shape[0] // kernels.ROWS))
    return scratch("bias_grad", (2 * n_blocks + 1, dy.shape[1]), dy.dtype)
