"""Softmax cross-entropy: from logits (loss, gradient, or both fused) and from probabilities."""

import numpy as np

from numbanet.kernels import cross_entropy as _k
from numbanet.kernels.softmax import SHORT_ROW, short_rows_work_shape
from numbanet.ops._validate import as_float_array, as_labels, check_out, scratch

__all__ = ["cross_entropy", "cross_entropy_grad", "softmax_cross_entropy", "cross_entropy_from_probs"]

# Up to this many logits the rows run on one thread: a parallel launch (~12 us with
# TBB, facts.md) costs more than splitting ~1 ns/element of work over 2 cores saves.
SERIAL_MAX_SIZE = 1 << 14

PROB_CLIP = 1e-7

# {parallel: kernel} for the fused loss; rows of K < SHORT_ROW take the block-of-rows
# pair, which also takes its scratch.
_ROW_KERNELS = {True: _k.softmax_cross_entropy_forward_backward,
                False: _k.softmax_cross_entropy_forward_backward_serial}
_SHORT_ROW_KERNELS = {True: _k.softmax_cross_entropy_forward_backward_short,
                      False: _k.softmax_cross_entropy_forward_backward_short_serial}


def _logits_and_labels(logits, labels, name="logits"):
    logits = as_float_array(logits, name, ndim=2)
    n, k = logits.shape
    if n == 0:
        raise ValueError(f"`{name}` must have at least one row. Received: {name}.shape={logits.shape}")
    return logits, as_labels(labels, n, k)


def _forward_backward(logits, labels, dlogits):
    row_loss = scratch("row_loss", logits.shape[:1], logits.dtype)
    parallel = logits.size > SERIAL_MAX_SIZE
    if logits.shape[1] < SHORT_ROW:
        work = scratch("short_rows", short_rows_work_shape(*logits.shape, parallel), logits.dtype)
        _SHORT_ROW_KERNELS[parallel](logits, labels, row_loss, dlogits, work)
    else:
        _ROW_KERNELS[parallel](logits, labels, row_loss, dlogits)
    return np.float64(_k.sum_as_float64(row_loss) / logits.shape[0])


def softmax_cross_entropy(logits, labels, *, grad_out=None):
    """Mean cross-entropy -mean_i log softmax(logits_i)[labels_i] and its gradient, fused.

    One pass per row: max, exp(z - max) and its compensated sum give the row loss
    log(sum) - (z[label] - max) and the gradient (softmax - onehot) / N together.

    Parameters
    ----------
    logits : ndarray, float32 or float64, (N, K), N >= 1
    labels : array_like of integers, (N,)
        Class indices in [0, K), any integer dtype (uint8 included).
    grad_out : ndarray, optional
        C-contiguous (N, K) array of the logits' dtype for the gradient, not overlapping
        ``logits``.

    Returns
    -------
    loss : numpy.float64
        The mean loss; row losses in the logits' dtype, their mean in float64.
    grad : ndarray
        ``(softmax(logits) - onehot(labels)) / N`` in the logits' dtype, ``grad_out``
        itself when given.

    Raises
    ------
    TypeError
        Non-float ``logits``/``grad_out``, non-integer ``labels``.
    ValueError
        ``logits`` not 2-D or with N = 0, ``labels`` of the wrong shape or out of
        range, ``grad_out`` of the wrong shape, non-contiguous or overlapping.

    Notes
    -----
    ``softmax_cross_entropy([[1000, 0]], [1])`` is exactly 1000. A non-finite logit
    makes its own row's loss and gradient non-finite and no other row's gradient.
    """
    logits, labels = _logits_and_labels(logits, labels)
    grad = check_out(grad_out, logits.shape, logits.dtype, logits, name="grad_out")
    return _forward_backward(logits, labels, grad), grad


def cross_entropy(logits, labels):
    """Mean softmax cross-entropy -mean_i log softmax(logits_i)[labels_i], from logits.

    Log-sum-exp with the row max subtracted (never a log of a probability); the row
    losses are averaged in float64.

    Parameters
    ----------
    logits : ndarray, float32 or float64, (N, K), N >= 1
    labels : array_like of integers, (N,)
        Class indices in [0, K), any integer dtype (uint8 included).

    Returns
    -------
    numpy.float64

    Raises
    ------
    TypeError
        Non-float ``logits``, non-integer ``labels``.
    ValueError
        ``logits`` not 2-D or with N = 0, ``labels`` of the wrong shape or out of range.

    Notes
    -----
    ``cross_entropy([[1000, 0]], [1]) == 1000``. Computed by the fused kernel of
    :func:`softmax_cross_entropy`, the gradient going to a scratch array.
    """
    logits, labels = _logits_and_labels(logits, labels)
    return _forward_backward(logits, labels, scratch("dlogits", logits.shape, logits.dtype))


def cross_entropy_grad(logits, labels):
    """Gradient of the mean cross-entropy w.r.t. the logits: (softmax(logits) - onehot) / N.

    The softmax is the stable one (row max subtracted, compensated row sum).

    Parameters
    ----------
    logits : ndarray, float32 or float64, (N, K), N >= 1
    labels : array_like of integers, (N,)
        Class indices in [0, K), any integer dtype (uint8 included).

    Returns
    -------
    ndarray
        (N, K) in the logits' dtype.

    Raises
    ------
    TypeError
        Non-float ``logits``, non-integer ``labels``.
    ValueError
        ``logits`` not 2-D or with N = 0, ``labels`` of the wrong shape or out of range.
    """
    logits, labels = _logits_and_labels(logits, labels)
    grad = np.empty_like(logits)
    _forward_backward(logits, labels, grad)
    return grad


def cross_entropy_from_probs(probs, labels):
    """Mean cross-entropy -mean_i log(clip(probs[i, labels_i], 1e-7, 1 - 1e-7)).

    Clipping keeps log away from 0 and 1 for users who hold probabilities; prefer
    :func:`cross_entropy` on logits, which needs no clipping.

    Parameters
    ----------
    probs : ndarray, float32 or float64, (N, K), N >= 1
        Probabilities; values are clipped, not checked.
    labels : array_like of integers, (N,)
        Class indices in [0, K), any integer dtype (uint8 included).

    Returns
    -------
    numpy.float64
        Row losses in the probabilities' dtype, averaged in float64.

    Raises
    ------
    TypeError
        Non-float ``probs``, non-integer ``labels``.
    ValueError
        ``probs`` not 2-D or with N = 0, ``labels`` of the wrong shape or out of range.
    """
    probs, labels = _logits_and_labels(probs, labels, name="probs")
    lo, hi = probs.dtype.type(PROB_CLIP), probs.dtype.type(1 - PROB_CLIP)
    row_loss = scratch("row_loss", probs.shape[:1], probs.dtype)
    _k.cross_entropy_from_probs_forward(probs, labels, lo, hi, row_loss)
    return np.float64(_k.sum_as_float64(row_loss) / probs.shape[0])
