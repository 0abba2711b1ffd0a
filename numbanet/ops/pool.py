"""2-D max pooling over non-overlapping square windows of NHWC images, and its gradient."""

import numbers

from numbanet.kernels import pool as kernels
from numbanet.ops._validate import as_float_array, check_out, common_dtype

__all__ = ["max_pool2d", "max_pool2d_backward"]


def max_pool2d(x, pool_size=2, *, out=None):
    """y[n, i, j, c] = max_{0 <= a, b < S} x[n, i*S + a, j*S + b, c] with S = pool_size.

    Windows of S x S with stride S; trailing rows/columns that do not fill a window
    are dropped (Keras "valid" pooling). Ties go to the first maximum in row-major
    order and a NaN in a window wins (like torch).

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C), float32 or float64, with H, W >= pool_size
    pool_size : int >= 1
    out : ndarray, shape (N, H // S, W // S, C), optional

    Returns
    -------
    ndarray, shape (N, H // S, W // S, C)
        The array written (``out`` when given).

    Raises
    ------
    TypeError
        For a non-float dtype or a non-integer ``pool_size``.
    ValueError
        For a non-4-D ``x``, ``pool_size < 1``, an image smaller than the window or
        a bad ``out``.

    Notes
    -----
    Exact (no arithmetic); bit-identical for any thread count.
    """
    x = as_float_array(x, "x", ndim=4)
    S = _check_pool(x.shape, pool_size)
    N, H, W, C = x.shape
    out = check_out(out, (N, H // S, W // S, C), x.dtype, x)
    kernels.max_pool2d_forward(x, S, out)
    return out


def max_pool2d_backward(dy, x, pool_size=2, *, out=None):
    """dx = dy routed to each window's maximum (the position ``max_pool2d`` picked), 0 elsewhere.

    The maximum's position is recomputed from ``x`` with the forward's rule (first
    maximum, NaN wins), so the forward keeps no index buffer.

    Parameters
    ----------
    dy : ndarray, shape (N, H // S, W // S, C)
    x : ndarray, shape (N, H, W, C), same dtype, the forward input
    pool_size : int >= 1, as given to ``max_pool2d``
    out : ndarray, shape (N, H, W, C), optional

    Returns
    -------
    ndarray, shape (N, H, W, C)
        The array written (``out`` when given).

    Raises
    ------
    TypeError, ValueError
        As ``max_pool2d``; ``ValueError`` also when ``dy`` does not have the forward
        output's shape.

    Notes
    -----
    Exact (no arithmetic); bit-identical for any thread count.
    """
    dy = as_float_array(dy, "dy", ndim=4)
    x = as_float_array(x, "x", ndim=4)
    dtype = common_dtype(dy=dy, x=x)
    S = _check_pool(x.shape, pool_size)
    N, H, W, C = x.shape
    expected = (N, H // S, W // S, C)
    if dy.shape != expected:
        raise ValueError(f"`dy` must have the forward output's shape {expected}. Received: dy.shape={dy.shape}")
    out = check_out(out, x.shape, dtype, dy, x)
    if S == 2:
        kernels.max_pool2d_backward_2x2(dy, x, out)
    else:
        kernels.max_pool2d_backward(dy, x, S, out)
    return out


def _check_pool(x_shape, pool_size):
    if isinstance(pool_size, bool) or not isinstance(pool_size, numbers.Integral):
        raise TypeError(f"`pool_size` must be an int. Received: pool_size={pool_size!r}")
    if pool_size < 1:
        raise ValueError(f"`pool_size` must be >= 1. Received: pool_size={pool_size}")
    if x_shape[1] < pool_size or x_shape[2] < pool_size:
        raise ValueError(
            f"`x` must be at least pool_size x pool_size in height and width. "
            f"Received: x.shape={x_shape}, pool_size={pool_size}"
        )
    return int(pool_size)
