"""Predictions and their accuracy: ``argmax`` and ``accuracy``."""

import numpy as np

from numbanet.kernels import metrics as kernels
from numbanet.ops._validate import as_float_array, as_labels, check_out

__all__ = ["argmax", "accuracy"]

# A compare per element: the MLP's 128x10 output takes well under a microsecond on
# one thread, so anything below this size runs without waking the thread pool.
PARALLEL_MIN_SIZE = 1 << 16


def argmax(x, *, out=None):
    """``index[n] = argmax_k x[n, k]``: the first maximum of each row.

    Exact comparisons only; NaN counts as larger than every number and the first NaN
    of a row wins, as in ``numpy.argmax(x, axis=1)``.

    Parameters
    ----------
    x : array_like of float32 or float64
        2-D, shape (N, K) with K >= 1. Strided arrays are copied; Python sequences
        become float64.
    out : numpy.ndarray, optional
        C-contiguous intp array of shape (N,).

    Returns
    -------
    numpy.ndarray
        intp array of shape (N,); ``out`` when given.

    Raises
    ------
    TypeError
        If ``x`` is not float32 or float64, or ``out`` is not intp.
    ValueError
        If ``x`` is not 2-D or has no columns, or ``out`` has another shape, is not
        C-contiguous or overlaps ``x``.

    Notes
    -----
    Ties (``+0.0`` and ``-0.0`` included) go to the lower index; a row of ``-inf``
    gives 0.
    """
    x = as_float_array(x, "x", ndim=2)
    _check_has_columns(x, "x")
    index = check_out(out, (x.shape[0],), np.intp, x)
    rows = kernels.argmax_rows if x.size >= PARALLEL_MIN_SIZE else kernels.argmax_rows_serial
    rows(x, index)
    return index


def accuracy(logits, labels):
    """``mean_n [argmax_k logits[n, k] == labels[n]]``.

    Correct rows are counted as integers (exact, any thread count) and divided by N
    once.

    Parameters
    ----------
    logits : array_like of float32 or float64
        2-D, shape (N, K) with N >= 1 and K >= 1 (logits or probabilities: only the
        argmax matters).
    labels : array_like of int
        1-D of length N, any integer dtype, each in ``[0, K)``.

    Returns
    -------
    numpy.float64
        The fraction of rows whose :func:`argmax` equals the label.

    Raises
    ------
    TypeError
        If ``logits`` is not float32 or float64, or ``labels`` is not integer.
    ValueError
        If ``logits`` is not 2-D, has no rows or no columns, or ``labels`` has the
        wrong length or a label outside ``[0, K)``.

    Notes
    -----
    A row containing NaN predicts the index of its first NaN, as :func:`argmax`.
    """
    logits = as_float_array(logits, "logits", ndim=2)
    _check_has_columns(logits, "logits")
    if logits.shape[0] == 0:
        raise ValueError(f"`logits` must have at least one row. Received: logits.shape={logits.shape}")
    labels = as_labels(labels, logits.shape[0], logits.shape[1])
    count = kernels.count_correct if logits.size >= PARALLEL_MIN_SIZE else kernels.count_correct_serial
    return np.float64(count(logits, labels)) / np.float64(logits.shape[0])


def _check_has_columns(x, name):
    if x.shape[1] == 0:
        raise ValueError(f"`{name}` must have at least one column. Received: {name}.shape={x.shape}")
