"""Logistic sigmoid, its backward, and binary cross-entropy from logits."""

import numpy as np

from numbanet.kernels import cross_entropy as _ce
from numbanet.kernels import sigmoid as _k
from numbanet.ops._validate import as_float_array, check_out, check_same_shape, common_dtype, not_aliased_by, scratch

__all__ = [
    "sigmoid",
    "sigmoid_backward",
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_grad",
]


def sigmoid(x, *, out=None):
    """sigmoid(x) = 1 / (1 + exp(-x)), elementwise, any shape.

    Piecewise with e = exp(-|x|): 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0, so
    exp never sees a positive argument and never overflows.

    Parameters
    ----------
    x : ndarray, float32 or float64, any shape
    out : ndarray, optional
        C-contiguous array of ``x``'s shape and dtype (``out=x`` allowed, in place).

    Returns
    -------
    ndarray
        Values in [0, 1], ``out`` itself when given.

    Raises
    ------
    TypeError
        ``x`` or ``out`` of a dtype other than float32/float64.
    ValueError
        ``out`` of the wrong shape or non-contiguous, or overlapping ``x`` without
        being ``x``.

    Notes
    -----
    Matches ``scipy.special.expit``: sigmoid(+-inf) = 1 / 0, NaN stays NaN, and
    +-1e30 give 1 / 0 in both dtypes. float32 uses numbanet's vectorised exp.
    """
    shape = np.shape(x)  # as_float_array makes a 0-D array 1-D
    x = as_float_array(x, "x")
    out = check_out(out, shape, x.dtype, *not_aliased_by(out, x))
    _k.sigmoid_forward(x.reshape(-1), out.reshape(-1))
    return out


def sigmoid_backward(dy, y, *, out=None):
    """dx = dy * y * (1 - y), the sigmoid's backward from its output y = sigmoid(x).

    Uses the saved output, so no exp is recomputed.

    Parameters
    ----------
    dy : ndarray, float32 or float64, any shape
        Gradient of the loss w.r.t. y.
    y : ndarray, same shape and dtype as ``dy``
        The forward output.
    out : ndarray, optional
        C-contiguous array of that shape and dtype (``out=dy`` allowed, in place).

    Returns
    -------
    ndarray
        The gradient w.r.t. x, ``out`` itself when given.

    Raises
    ------
    TypeError
        Non-float or mixed dtypes.
    ValueError
        Mismatched shapes, ``out`` of the wrong shape, non-contiguous or overlapping.
    """
    shape = np.shape(dy)
    dy, y = as_float_array(dy, "dy"), as_float_array(y, "y")
    dtype = common_dtype(dy=dy, y=y)
    check_same_shape(dy=dy, y=y)
    out = check_out(out, shape, dtype, *not_aliased_by(out, dy, y))
    _k.sigmoid_backward(dy.reshape(-1), y.reshape(-1), out.reshape(-1))
    return out


def _logits_and_targets(logits, targets):
    logits, targets = as_float_array(logits, "logits"), as_float_array(targets, "targets")
    common_dtype(logits=logits, targets=targets)
    check_same_shape(logits=logits, targets=targets)
    # fmin/fmax skip NaN, so a NaN target cannot hide an out-of-range one.
    flat = targets.reshape(-1)
    if flat.size and (np.fmin.reduce(flat) < 0 or np.fmax.reduce(flat) > 1):
        bad = targets[(targets < 0) | (targets > 1)][0]
        raise ValueError(f"`targets` must lie in [0, 1]. Received: a target {bad}")
    return logits, targets


def binary_cross_entropy_with_logits(logits, targets):
    """Mean of max(z, 0) - z*t + log1p(exp(-|z|)) over all elements: BCE of sigmoid(z) vs t.

    The stable form of -t*log(sigmoid(z)) - (1-t)*log(1-sigmoid(z)): no exp of a
    positive argument and no log of a probability.

    Parameters
    ----------
    logits : ndarray, float32 or float64, any shape
    targets : ndarray, same shape and dtype
        Values in [0, 1] (NaN passes through).

    Returns
    -------
    numpy.float64
        The mean over all elements (NaN for zero elements); element losses in the
        logits' dtype, averaged in float64.

    Raises
    ------
    TypeError
        Non-float or mixed dtypes.
    ValueError
        Mismatched shapes, a target outside [0, 1].
    """
    logits, targets = _logits_and_targets(logits, targets)
    if logits.size == 0:
        return np.float64(np.nan)  # the mean of no terms
    loss = scratch("bce_loss", (logits.size,), logits.dtype)
    _k.bce_with_logits_forward(logits.reshape(-1), targets.reshape(-1), loss)
    return np.float64(_ce.sum_as_float64(loss)) / np.float64(logits.size)


def binary_cross_entropy_with_logits_grad(logits, targets, *, out=None):
    """Gradient of the mean BCE w.r.t. the logits: (sigmoid(z) - t) / n, n = number of elements.

    The sigmoid is the piecewise stable one.

    Parameters
    ----------
    logits : ndarray, float32 or float64, any shape
    targets : ndarray, same shape and dtype
        Values in [0, 1].
    out : ndarray, optional
        C-contiguous array of that shape and dtype (``out=logits`` allowed, in place).

    Returns
    -------
    ndarray
        ``out`` itself when given.

    Raises
    ------
    TypeError
        Non-float or mixed dtypes.
    ValueError
        Mismatched shapes, a target outside [0, 1], ``out`` of the wrong shape,
        non-contiguous or overlapping.
    """
    shape = np.shape(logits)
    logits, targets = _logits_and_targets(logits, targets)
    out = check_out(out, shape, logits.dtype, *not_aliased_by(out, logits, targets))
    inv_n = logits.dtype.type(1) / logits.dtype.type(max(logits.size, 1))
    _k.bce_with_logits_backward(logits.reshape(-1), targets.reshape(-1), inv_n, out.reshape(-1))
    return out
