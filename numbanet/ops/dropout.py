"""Inverted dropout: ``dropout`` and ``dropout_backward``."""

import math

import numpy as np

from numbanet.kernels import dropout as kernels
from numbanet.ops._validate import as_float_array, as_scalar, as_seed, check_out, not_aliased_by

__all__ = ["dropout", "dropout_backward"]

# One hash and a select per element: below this size one thread finishes before
# the thread pool would have woken up.
PARALLEL_MIN_SIZE = 1 << 17


def dropout(x, rate, *, seed, out=None):
    """``y = x / (1 - rate)`` where element i is kept, ``0`` where it is dropped.

    Element i (C order) is kept when ``h(seed, i) < (1 - rate) * 2**64``, with ``h``
    the i-th output of a SplitMix64 stream keyed by ``seed``: the mask is a pure
    function of (seed, index), the same for any thread count, and never stored.

    Parameters
    ----------
    x : array_like of float32 or float64
        Any shape; strided arrays are copied. Python sequences become float64.
    rate : float
        Probability of dropping an element, ``0 <= rate < 1``; 0 returns a copy.
    seed : int
        Mask key, ``0 <= seed < 2**64``; use a fresh one per step.
    out : numpy.ndarray, optional
        C-contiguous array of ``x``'s shape and dtype. May be ``x`` itself (in place).

    Returns
    -------
    numpy.ndarray
        The dropped-out ``x`` in ``x.dtype``; ``out`` when given.

    Raises
    ------
    TypeError
        If ``x`` is not float32 or float64, ``out`` has another dtype, ``rate`` is
        not a number or ``seed`` is not an integer.
    ValueError
        If ``rate`` is outside ``[0, 1)`` or not finite, ``seed`` is outside
        ``[0, 2**64)``, or ``out`` has another shape, is not C-contiguous, or
        overlaps ``x`` without being ``x`` itself.

    Notes
    -----
    A kept element is ``x * fl(1 / (1 - rate))``: two roundings, relative error
    at most ``eps`` of the dtype against the exact quotient. A dropped element is
    exactly 0 even where ``x`` is NaN or inf (a select, not a multiply by 0 as in
    PyTorch). The keep probability is exact to
    ``2**-64``; the mask of ``seed`` is the same for float32 and float64.
    """
    x = as_float_array(x, "x")
    return _apply_mask(x, rate, seed, out)


def dropout_backward(dy, rate, *, seed, out=None):
    """``dx = dy / (1 - rate)`` where the forward pass kept the element, ``0`` elsewhere.

    The mask is recomputed from (seed, index) exactly as :func:`dropout` drew it, so
    nothing is stored between the passes.

    Parameters
    ----------
    dy : array_like of float32 or float64
        Gradient of the loss with respect to the dropout output.
    rate : float
        The forward pass's ``rate``.
    seed : int
        The forward pass's ``seed``.
    out : numpy.ndarray, optional
        C-contiguous array of ``dy``'s shape and dtype. May be ``dy`` itself.

    Returns
    -------
    numpy.ndarray
        ``dx`` in ``dy.dtype``; ``out`` when given.

    Raises
    ------
    TypeError
        As :func:`dropout`, for ``dy``.
    ValueError
        As :func:`dropout`, for ``dy``.

    Notes
    -----
    Dropout is linear in its input for a fixed mask, so the backward pass is the
    forward map applied to ``dy``; a NaN in ``dy`` at a dropped element gives 0.
    """
    dy = as_float_array(dy, "dy")
    return _apply_mask(dy, rate, seed, out)


def _apply_mask(x, rate, seed, out):
    rate = as_scalar(rate, "rate", low=0.0)
    if rate >= 1.0:
        raise ValueError(f"`rate` must be < 1. Received: rate={rate}")
    seed = as_seed(seed)
    y = check_out(out, x.shape, x.dtype, *not_aliased_by(out, x))
    if rate == 0.0:
        np.copyto(y, x)
        return y
    keep = 1.0 - rate
    # keep * 2**64 is exact; for rate <= 2**-54, keep rounds to 1 and the threshold
    # is capped, dropping an element with probability 2**-64.
    threshold = np.uint64(min(int(math.ldexp(keep, 64)), 2**64 - 1))
    scale = x.dtype.type(1.0 / keep)
    args = (x.reshape(-1), y.reshape(-1), np.uint64(seed), threshold, scale)
    if x.size >= PARALLEL_MIN_SIZE:
        kernels.apply_dropout_mask(*args)
    else:
        kernels.apply_dropout_mask_serial(*args, 0)
    return y
