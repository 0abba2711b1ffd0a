"""uint8 images to floats: ``gather_pixels``."""

import numpy as np

from numbanet.kernels import pixels as kernels
from numbanet.ops._validate import FLOAT_DTYPES, as_labels, check_out

__all__ = ["gather_pixels"]

# From this many output values the images are gathered in parallel: 128 MNIST images
# (100,352 values) took 0.87-0.88x the time on two threads in loops; 784-256-10 epochs
# 0.935x (median of 10 alternating rounds), no change on one thread.
PARALLEL_MIN_SIZE = 1 << 16


def gather_pixels(x, index, *, out=None, dtype=np.float32):
    """``out[i] = x[index[i]] / 255``: the images ``index`` of ``x`` as floats in [0, 1].

    Each value is the correctly rounded quotient p / 255 in the output dtype, as
    ``numpy.divide`` gives it (a multiplication by the rounded 1/255 alone is an ulp off
    for 126 of the 256 float32 values; one fused correction makes it exact).

    Parameters
    ----------
    x : numpy.ndarray of uint8
        C-contiguous, shape (N, ...): N images (or rows of pixels) of any shape.
    index : array_like of int
        1-D, the images to gather, each in [0, N); repeats allowed.
    out : numpy.ndarray, optional
        C-contiguous float32 or float64 array of shape (len(index), ...) (the shape
        of an image of ``x``).
    dtype : {numpy.float32, numpy.float64}
        The output dtype when ``out`` is not given.

    Returns
    -------
    numpy.ndarray
        Shape (len(index),) + x.shape[1:]; ``out`` when given.

    Raises
    ------
    TypeError
        If ``x`` is not a uint8 ndarray, ``index`` is not integer, or the output
        dtype is not float32 or float64.
    ValueError
        If ``x`` is not C-contiguous or has no image dimension, ``index`` is not 1-D
        or holds an index outside [0, N), or ``out`` has another shape or is not
        C-contiguous.
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8:
        raise TypeError(f"`x` must be a uint8 numpy array. Received: {getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim < 2 or not x.flags.c_contiguous:
        raise ValueError(f"`x` must be C-contiguous with shape (N, ...). Received: x.shape={x.shape}")
    index = np.asarray(index)
    if index.ndim != 1:
        raise ValueError(f"`index` must be 1-D. Received: index.shape={index.shape}")
    index = as_labels(index, index.shape[0], x.shape[0], name="index")
    if out is not None and not isinstance(out, np.ndarray):
        raise TypeError(f"`out` must be a numpy array. Received: {type(out).__name__}")
    out_dtype = np.dtype(dtype) if out is None else out.dtype
    if out_dtype not in FLOAT_DTYPES:
        raise TypeError(f"the output must be float32 or float64. Received: {out_dtype}")
    y = check_out(out, (index.shape[0],) + x.shape[1:], out_dtype, x)
    if y.size:
        gather = kernels.gather_pixels_parallel if y.size >= PARALLEL_MIN_SIZE else kernels.gather_pixels
        gather(x.reshape(x.shape[0], -1), index, y.reshape(index.shape[0], -1))
    return y
