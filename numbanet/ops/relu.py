"""Rectified linear unit: ``relu`` and ``relu_backward``."""

import numpy as np

from numbanet.kernels import relu as kernels
from numbanet.ops._validate import (
    as_float_array,
    check_out,
    check_same_shape,
    common_dtype,
    is_alias_or_apart,
    is_plain_float,
    is_writeable_as,
    not_aliased_by,
)

__all__ = ["relu", "relu_backward"]

# A select per element streams at memory speed: one thread covers the MLP's
# activations in microseconds, less than waking the thread pool costs.
PARALLEL_MIN_SIZE = 1 << 18


def relu(x, *, out=None):
    """``max(x, 0)`` elementwise, with ``relu(NaN) = NaN``.

    A select, no arithmetic: every kept value, denormals included, is returned
    exactly, and a NaN is kept because ``NaN <= 0`` is false.

    Parameters
    ----------
    x : array_like of float32 or float64
        Any shape; strided arrays are copied. Python sequences become float64.
    out : numpy.ndarray, optional
        C-contiguous array of ``x``'s shape and dtype. May be ``x`` itself (in place).

    Returns
    -------
    numpy.ndarray
        ``relu(x)`` in ``x.dtype``; ``out`` when given.

    Raises
    ------
    TypeError
        If ``x`` is not float32 or float64, or ``out`` has another dtype.
    ValueError
        If ``out`` has another shape, is not C-contiguous, or overlaps ``x`` without
        being ``x`` itself.

    Notes
    -----
    ``-0.0`` and every negative number give ``+0.0``. The result does not depend on
    the number of threads.
    """
    # Fast path, checks only: a plain float ``x`` (is_plain_float) and no ``out``, or an
    # ``out`` of its shape and dtype that is ``x`` or lies outside it; anything else
    # takes the full validation. ravel() of a C-contiguous array is the view reshape(-1)
    # makes, at a quarter of the cost.
    if is_plain_float(x) and (out is None or is_writeable_as(out, x.shape, x.dtype) and is_alias_or_apart(out, x)):
        y = np.empty(x.shape, x.dtype) if out is None else out
    else:
        x = as_float_array(x, "x")
        y = check_out(out, x.shape, x.dtype, *not_aliased_by(out, x))
    forward = kernels.relu_forward if x.size >= PARALLEL_MIN_SIZE else kernels.relu_forward_serial
    forward(x.ravel(), y.ravel())
    return y


def relu_backward(dy, x, *, out=None):
    """``dx = dy`` where ``x > 0``, ``0`` where ``x <= 0``, NaN where ``x`` is NaN.

    A select on the forward input, no multiply: a NaN or inf in ``dy`` reaches ``dx``
    only where the unit was active; a NaN input, whose slope is undefined, gives NaN.

    Parameters
    ----------
    dy : array_like of float32 or float64
        Gradient of the loss with respect to ``relu(x)``.
    x : array_like of float32 or float64
        The forward input, same shape and dtype as ``dy``.
    out : numpy.ndarray, optional
        C-contiguous array of that shape and dtype. May be ``dy`` or ``x`` itself
        (in place).

    Returns
    -------
    numpy.ndarray
        ``dx`` in the inputs' dtype; ``out`` when given.

    Raises
    ------
    TypeError
        If an input is not float32 or float64, the dtypes differ, or ``out`` has
        another dtype.
    ValueError
        If the shapes differ, or ``out`` has another shape, is not C-contiguous, or
        overlaps an input without being that input.

    Notes
    -----
    At ``x == 0`` the subgradient 0 is used, as PyTorch and Keras do. PyTorch also
    gives 0 where ``x`` is NaN; here the NaN is propagated so that a NaN forward pass
    cannot produce a clean-looking gradient.
    """
    if _is_plain_backward(dy, x, out):
        dx = np.empty(x.shape, x.dtype) if out is None else out
    else:
        dy = as_float_array(dy, "dy")
        x = as_float_array(x, "x")
        dtype = common_dtype(dy=dy, x=x)
        check_same_shape(dy=dy, x=x)
        dx = check_out(out, x.shape, dtype, *not_aliased_by(out, dy, x))
    backward = kernels.relu_backward if x.size >= PARALLEL_MIN_SIZE else kernels.relu_backward_serial
    backward(dy.ravel(), x.ravel(), dx.ravel())
    return dx


def _is_plain_backward(dy, x, out):
    # Fast path, checks only: plain float ``dy`` and ``x`` (is_plain_float) of one dtype
    # and shape, and no ``out``, or an ``out`` of that shape and dtype that is each
    # input or lies outside it. False sends relu_backward to the full validation.
    return (is_plain_float(dy) and is_plain_float(x) and dy.dtype is x.dtype and dy.shape == x.shape
            and (out is None or is_writeable_as(out, x.shape, x.dtype)
                 and is_alias_or_apart(out, dy) and is_alias_or_apart(out, x)))
