"""Row-wise softmax and log-softmax, and the row reductions cross-entropy shares.

Legend: N = rows, K = entries per row (the reduced last axis).

Each row is max -> exp(x - max) -> sum, all in the input dtype. The row max runs in
16 lanes and the row sum in SUM_LANES (partials combined in a fixed tree): that breaks
the serial dependency chain of a running reduction, lets LLVM keep the lanes in SIMD
registers, and fixes the summation order, so the result does not depend on the thread
count (threads only ever split whole rows). ``vexp`` (kernels/exp.py) keeps the exp
vectorised for float32. Rows shorter than one 16-lane block (10 classes) go through
the ``*_short_rows`` kernels, which work on a transposed copy of a block of rows but
take the same steps in the same order as the row kernels (max and sum in order, as
their tails), so the results are bitwise the same.
"""

import numpy as np
from numba import prange

from numbanet._config import kernel, serial_kernel
from numbanet.kernels.exp import vexp

# Lanes of the compensated row sum. 32 rather than 16: a 1000-wide softmax row in the L1
# cache took 0.90-0.93x the time (15 of 15 paired rounds), with 64 1.03-1.04x.
SUM_LANES = 32


@serial_kernel
def row_max(x):
    # x: (K,) -> max over x ignoring NaN (-inf for an empty or all-NaN row). NaN needs no
    # special case: it reaches every output of its row through the row sum.
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = x.dtype.type(-np.inf)
    m8 = m9 = m10 = m11 = m12 = m13 = m14 = m15 = x.dtype.type(-np.inf)
    k16 = x.shape[0] - x.shape[0] % 16
    for j in range(0, k16, 16):
        m0 = x[j] if x[j] > m0 else m0
        m1 = x[j + 1] if x[j + 1] > m1 else m1
        m2 = x[j + 2] if x[j + 2] > m2 else m2
        m3 = x[j + 3] if x[j + 3] > m3 else m3
        m4 = x[j + 4] if x[j + 4] > m4 else m4
        m5 = x[j + 5] if x[j + 5] > m5 else m5
        m6 = x[j + 6] if x[j + 6] > m6 else m6
        m7 = x[j + 7] if x[j + 7] > m7 else m7
        m8 = x[j + 8] if x[j + 8] > m8 else m8
        m9 = x[j + 9] if x[j + 9] > m9 else m9
        m10 = x[j + 10] if x[j + 10] > m10 else m10
        m11 = x[j + 11] if x[j + 11] > m11 else m11
        m12 = x[j + 12] if x[j + 12] > m12 else m12
        m13 = x[j + 13] if x[j + 13] > m13 else m13
        m14 = x[j + 14] if x[j + 14] > m14 else m14
        m15 = x[j + 15] if x[j + 15] > m15 else m15
    for j in range(k16, x.shape[0]):
        m0 = x[j] if x[j] > m0 else m0
    q0 = max(max(m0, m1), max(m2, m3))
    q1 = max(max(m4, m5), max(m6, m7))
    q2 = max(max(m8, m9), max(m10, m11))
    q3 = max(max(m12, m13), max(m14, m15))
    return max(max(q0, q1), max(q2, q3))


@serial_kernel
def exp_shifted_sum(x, shift, e, lanes):
    # x: (K,); e: (K,) or None; lanes: (2 * SUM_LANES,) scratch. Returns
    # sum(exp(x - shift)), the terms stored in e unless it is None (log-softmax needs only
    # the sum: a row of 1000 in the L1 cache took 0.70x the time without the stores).
    # Whole blocks of SUM_LANES are summed Kahan-compensated in as many lanes
    # (lanes[:SUM_LANES] sums, lanes[SUM_LANES:] compensations) that the vectoriser keeps
    # in SIMD registers, then combined pairwise; the last K % SUM_LANES terms are added
    # plainly. Compensation keeps float32 softmax/log-softmax within ~2 eps at K = 1000,
    # where a plain 16-lane sum reached 4-5 eps (as torch does).
    L = SUM_LANES
    kL = x.shape[0] - x.shape[0] % L
    tail = x.dtype.type(0)
    for j in range(kL, x.shape[0]):
        v = vexp(x[j] - shift)
        if e is not None:
            e[j] = v
        tail += v
    if kL == 0:
        return tail
    for lane in range(2 * L):
        lanes[lane] = x.dtype.type(0)
    for j in range(0, kL, L):
        for lane in range(L):
            v = vexp(x[j + lane] - shift)
            if e is not None:
                e[j + lane] = v
            y = v - lanes[L + lane]  # Kahan: the term less the running compensation
            t = lanes[lane] + y
            lanes[L + lane] = (t - lanes[lane]) - y
            lanes[lane] = t
    for lane in range(L):
        lanes[lane] -= lanes[L + lane]
    width = L // 2
    while width >= 1:
        for lane in range(width):
            lanes[lane] += lanes[lane + width]
        width //= 2
    return lanes[0] + tail


@serial_kernel
def softmax_row(x, y, lanes):
    # x, y: (K,); lanes: (2 * SUM_LANES,) scratch. y = exp(x - max) / sum(exp(x - max));
    # y doubles as the exp buffer.
    s = exp_shifted_sum(x, row_max(x), y, lanes)
    inv_s = x.dtype.type(1) / s
    for j in range(x.shape[0]):
        y[j] = y[j] * inv_s


@serial_kernel
def log_softmax_row(x, y, lanes):
    # x, y: (K,); lanes: (2 * SUM_LANES,) scratch. y = (x - max) - log(sum(exp(x - max))).
    m = row_max(x)
    if m == np.inf:
        log_softmax_row_with_inf(x, y)
        return
    if m == -np.inf:  # as scipy.special.log_softmax: an infinite max is replaced by 0
        m = x.dtype.type(0)
    log_s = np.log(exp_shifted_sum(x, m, None, lanes))
    for j in range(x.shape[0]):
        y[j] = (x[j] - m) - log_s


@serial_kernel
def log_softmax_row_with_inf(x, y):
    # x, y: (K,), x holding +inf. With the max replaced by 0 (scipy) the sum of exp(x) is
    # +inf, or NaN if x holds a NaN; computed directly because a compensated sum turns
    # inf into NaN.
    log_s = x.dtype.type(np.inf)
    for j in range(x.shape[0]):
        if x[j] != x[j]:
            log_s = x[j]
    for j in range(x.shape[0]):
        y[j] = x[j] - log_s


# Rows per parallel task: each task allocates its lane scratch once. Which
# rows share a task never changes a result.
ROWS_PER_TASK = 16


@kernel
def softmax_forward(x, y):
    # x, y: (N, K). Tasks of ROWS_PER_TASK rows in parallel.
    for task in prange((x.shape[0] + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        lanes = np.empty(2 * SUM_LANES, dtype=x.dtype)
        for i in range(task * ROWS_PER_TASK, min((task + 1) * ROWS_PER_TASK, x.shape[0])):
            softmax_row(x[i], y[i], lanes)


@serial_kernel
def softmax_forward_serial(x, y):
    # x, y: (N, K). For small inputs, where a parallel launch costs more than the rows.
    lanes = np.empty(2 * SUM_LANES, dtype=x.dtype)
    for i in range(x.shape[0]):
        softmax_row(x[i], y[i], lanes)


@kernel
def log_softmax_forward(x, y):
    # x, y: (N, K). Tasks of ROWS_PER_TASK rows in parallel.
    for task in prange((x.shape[0] + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        lanes = np.empty(2 * SUM_LANES, dtype=x.dtype)
        for i in range(task * ROWS_PER_TASK, min((task + 1) * ROWS_PER_TASK, x.shape[0])):
            log_softmax_row(x[i], y[i], lanes)


@serial_kernel
def log_softmax_forward_serial(x, y):
    # x, y: (N, K). For small inputs, where a parallel launch costs more than the rows.
    lanes = np.empty(2 * SUM_LANES, dtype=x.dtype)
    for i in range(x.shape[0]):
        log_softmax_row(x[i], y[i], lanes)


# Short rows (K < 16) are taken a block of R rows at a time through a transposed copy
# t (K, R): each step then runs over the R rows of one column j, contiguous in t, so
# it vectorises (R independent chains instead of one chain of K per row). Each row's
# max and sum still run over j in order, as in row_max's and exp_shifted_sum's tails.
# A block is at most SHORT_ROWS_PER_TASK rows, on one thread too: t's K rows lie R
# values apart, and at a 4 KiB stride (R = 1024 float32) all of them fall in one L1
# set (log_softmax of 1024 x 10 in one block: 1.7x the time of four).
SHORT_ROW = 16
SHORT_ROWS_PER_TASK = 256


def short_rows_work_shape(n, k, parallel):
    """Shape of the scratch the ``*_short`` kernels take for (n, k) input, n >= 1: per
    task (one per thread at once) a (k + 2, R) block holding t, then m and s."""
    rows = min(n, SHORT_ROWS_PER_TASK)
    return ((n + rows - 1) // rows if parallel else 1, k + 2, rows)


@serial_kernel
def short_block_views(work, r):
    # work: (K + 2, R) scratch -> t (K, R), m (r,), s (r,) for a block of r <= R rows;
    # t's first r columns hold the block. Views of whole rows: no reshape, which widens
    # integers to double in Numba.
    k = work.shape[0] - 2
    return work[:k], work[k, :r], work[k + 1, :r]


@serial_kernel
def transpose_rows_max(x, t, m):
    # x: (r, K); t: (K, >= r), t[:, :r] <- x.T; m: (r,) <- row maxima ignoring NaN
    # (-inf for an all-NaN row). One pass over x: the copy and the max read each entry
    # once. The max is kept in a register: kept in m[i] across the j loop, LLVM writes
    # it back with a masked store, slow on x86.
    for i in range(x.shape[0]):
        mi = x.dtype.type(-np.inf)
        for j in range(x.shape[1]):
            t[j, i] = x[i, j]
            mi = x[i, j] if x[i, j] > mi else mi
        m[i] = mi


@serial_kernel
def exp_shifted_columns(t, m, s):
    # t: (K, >= r); m, s: (r,). t[j, i] <- exp(t[j, i] - m[i]) and s[i] <- its sum over j
    # in order, for i < r.
    for i in range(s.shape[0]):
        s[i] = t.dtype.type(0)
    for j in range(t.shape[0]):
        for i in range(s.shape[0]):
            t[j, i] = vexp(t[j, i] - m[i])
            s[i] += t[j, i]


@serial_kernel
def softmax_short_rows(x, y, work):
    # x, y: (r, K) C-contiguous, K < 16; work: (K + 2, >= r) scratch. softmax_row of every row.
    t, m, s = short_block_views(work, x.shape[0])
    transpose_rows_max(x, t, m)
    exp_shifted_columns(t, m, s)
    for i in range(x.shape[0]):
        s[i] = x.dtype.type(1) / s[i]
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            y[i, j] = t[j, i] * s[i]


@serial_kernel
def log_softmax_short_rows(x, y, work):
    # x, y: (r, K) C-contiguous, K < 16; work: (K + 2, >= r) scratch. log_softmax_row of every row.
    t, m, s = short_block_views(work, x.shape[0])
    transpose_rows_max(x, t, m)
    for i in range(x.shape[0]):
        if m[i] == -np.inf:
            m[i] = x.dtype.type(0)
    exp_shifted_columns(t, m, s)
    for i in range(x.shape[0]):
        s[i] = np.log(s[i])
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            y[i, j] = (x[i, j] - m[i]) - s[i]
    for i in range(x.shape[0]):
        if m[i] == np.inf:
            log_softmax_row_with_inf(x[i], y[i])


@serial_kernel
def softmax_forward_short_serial(x, y, work):
    # x, y: (N, K), K < 16; work: short_rows_work_shape(N, K, False). The parallel
    # kernel's blocks of rows, in order.
    for lo in range(0, x.shape[0], SHORT_ROWS_PER_TASK):
        hi = min(lo + SHORT_ROWS_PER_TASK, x.shape[0])
        softmax_short_rows(x[lo:hi], y[lo:hi], work[0])


@serial_kernel
def log_softmax_forward_short_serial(x, y, work):
    # x, y: (N, K), K < 16; work: short_rows_work_shape(N, K, False). The parallel
    # kernel's blocks of rows, in order.
    for lo in range(0, x.shape[0], SHORT_ROWS_PER_TASK):
        hi = min(lo + SHORT_ROWS_PER_TASK, x.shape[0])
        log_softmax_short_rows(x[lo:hi], y[lo:hi], work[0])


@kernel
def softmax_forward_short(x, y, work):
    # x, y: (N, K), K < 16; work: short_rows_work_shape(N, K, True). Tasks of
    # SHORT_ROWS_PER_TASK rows in parallel, each with its row of work.
    for task in prange((x.shape[0] + SHORT_ROWS_PER_TASK - 1) // SHORT_ROWS_PER_TASK):
        lo = task * SHORT_ROWS_PER_TASK
        hi = min(lo + SHORT_ROWS_PER_TASK, x.shape[0])
        softmax_short_rows(x[lo:hi], y[lo:hi], work[task])


@kernel
def log_softmax_forward_short(x, y, work):
    # x, y: (N, K), K < 16; work: short_rows_work_shape(N, K, True). Tasks of
    # SHORT_ROWS_PER_TASK rows in parallel, each with its row of work.
    for task in prange((x.shape[0] + SHORT_ROWS_PER_TASK - 1) // SHORT_ROWS_PER_TASK):
        lo = task * SHORT_ROWS_PER_TASK
        hi = min(lo + SHORT_ROWS_PER_TASK, x.shape[0])
        log_softmax_short_rows(x[lo:hi], y[lo:hi], work[task])
