"""Softmax cross-entropy from logits (loss and gradient fused), and from probabilities.

Legend: N = rows (samples), K = classes.

Per row, loss = log(sum(exp(z - max))) - (z[label] - max): the log-sum-exp with the
row max subtracted, never a log of a probability. Row losses are kept in the logits'
dtype; only their mean is accumulated in float64 (``sum_as_float64``).
"""

import numpy as np
from numba import prange

from numbanet._config import kernel, serial_kernel
from numbanet.kernels.softmax import (
    ROWS_PER_TASK, SHORT_ROWS_PER_TASK, SUM_LANES, exp_shifted_columns, exp_shifted_sum, row_max,
    short_block_views, transpose_rows_max,
)


@serial_kernel
def softmax_cross_entropy_row(z, label, inv_n, dz, lanes):
    # z, dz: (K,); lanes: (2 * SUM_LANES,) scratch. Returns the row loss;
    # dz = (softmax(z) - onehot(label)) * inv_n, and dz is the exp buffer first.
    m = row_max(z)
    s = exp_shifted_sum(z, m, dz, lanes)
    e_label = dz[label]
    scale = inv_n / s
    for j in range(z.shape[0]):
        dz[j] = dz[j] * scale
    one = z.dtype.type(1)
    dz[label] = (e_label / s - one) * inv_n
    return np.log(s) - (z[label] - m)


@kernel
def softmax_cross_entropy_forward_backward(z, labels, loss, dz):
    # z, dz: (N, K); labels: (N,) intp in [0, K); loss: (N,) per-row losses. Tasks of
    # ROWS_PER_TASK rows in parallel, each with its own lane scratch.
    inv_n = z.dtype.type(1) / z.dtype.type(z.shape[0])
    for task in prange((z.shape[0] + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        lanes = np.empty(2 * SUM_LANES, dtype=z.dtype)
        for i in range(task * ROWS_PER_TASK, min((task + 1) * ROWS_PER_TASK, z.shape[0])):
            loss[i] = softmax_cross_entropy_row(z[i], labels[i], inv_n, dz[i], lanes)


@serial_kernel
def softmax_cross_entropy_forward_backward_serial(z, labels, loss, dz):
    # z, dz: (N, K); labels: (N,); loss: (N,). For small batches, where a parallel launch
    # costs more than the rows.
    inv_n = z.dtype.type(1) / z.dtype.type(z.shape[0])
    lanes = np.empty(2 * SUM_LANES, dtype=z.dtype)
    for i in range(z.shape[0]):
        loss[i] = softmax_cross_entropy_row(z[i], labels[i], inv_n, dz[i], lanes)


@serial_kernel
def softmax_cross_entropy_short_rows(z, labels, inv_n, loss, dz, work):
    # z, dz: (r, K) C-contiguous, K < 16; labels, loss: (r,); work: (K + 2, >= r)
    # scratch. softmax_cross_entropy_row of every row, its max, exps and sums taken over
    # the whole block at once (see the short-row kernels of kernels/softmax.py).
    t, m, s = short_block_views(work, z.shape[0])
    transpose_rows_max(z, t, m)
    exp_shifted_columns(t, m, s)
    one = z.dtype.type(1)
    for i in range(z.shape[0]):
        label = labels[i]
        e_label = t[label, i]
        scale = inv_n / s[i]
        for j in range(z.shape[1]):
            dz[i, j] = t[j, i] * scale
        dz[i, label] = (e_label / s[i] - one) * inv_n
        loss[i] = np.log(s[i]) - (z[i, label] - m[i])


@kernel
def softmax_cross_entropy_forward_backward_short(z, labels, loss, dz, work):
    # softmax_cross_entropy_forward_backward for K < 16, in tasks of SHORT_ROWS_PER_TASK
    # rows, each with its row of work (short_rows_work_shape(N, K, True)).
    inv_n = z.dtype.type(1) / z.dtype.type(z.shape[0])
    for task in prange((z.shape[0] + SHORT_ROWS_PER_TASK - 1) // SHORT_ROWS_PER_TASK):
        lo = task * SHORT_ROWS_PER_TASK
        hi = min(lo + SHORT_ROWS_PER_TASK, z.shape[0])
        softmax_cross_entropy_short_rows(z[lo:hi], labels[lo:hi], inv_n, loss[lo:hi], dz[lo:hi], work[task])


@serial_kernel
def softmax_cross_entropy_forward_backward_short_serial(z, labels, loss, dz, work):
    # softmax_cross_entropy_forward_backward_short on one thread: its blocks of rows, in
    # order; work: short_rows_work_shape(N, K, False).
    inv_n = z.dtype.type(1) / z.dtype.type(z.shape[0])
    for lo in range(0, z.shape[0], SHORT_ROWS_PER_TASK):
        hi = min(lo + SHORT_ROWS_PER_TASK, z.shape[0])
        softmax_cross_entropy_short_rows(z[lo:hi], labels[lo:hi], inv_n, loss[lo:hi], dz[lo:hi], work[0])


@serial_kernel
def cross_entropy_from_probs_forward(p, labels, lo, hi, loss):
    # p: (N, K) probabilities; labels: (N,); loss: (N,) = -log(clip(p[i, label], lo, hi)).
    for i in range(p.shape[0]):
        q = p[i, labels[i]]
        q = lo if q < lo else q  # comparisons keep NaN
        q = hi if q > hi else q
        loss[i] = -np.log(q)


@serial_kernel
def sum_as_float64(v):
    # v: (n,) -> float64 sum over 4 lanes in a fixed order. Exempt from the float32
    # purity rule: accumulating the mean loss in float64 is its contract.
    s0 = s1 = s2 = s3 = np.float64(0)
    n4 = v.shape[0] - v.shape[0] % 4
    for j in range(0, n4, 4):
        b = v[j : j + 4]
        s0 += np.float64(b[0])
        s1 += np.float64(b[1])
        s2 += np.float64(b[2])
        s3 += np.float64(b[3])
    for j in range(n4, v.shape[0]):
        s0 += np.float64(v[j])
    return (s0 + s1) + (s2 + s3)
