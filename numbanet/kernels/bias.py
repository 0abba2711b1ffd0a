"""Bias add and its gradient (column sums), alone or fused with a ReLU.

Dimensions: N = rows (batch), C = columns (features).

The bias gradient sums each column over fixed blocks of ROWS rows with Neumaier
compensation, then combines the block partials in block order, again compensated:
the summation order depends only on N, never on the thread count. The fused ReLU
kernels do relu's select on the same values in the same order, so they give the bits
of bias add then relu, and of relu_backward then the bias gradient.
"""

import numpy as np
from numba import prange

from numbanet._config import kernel, serial_kernel
from numbanet.kernels.in_place import same_data

# Rows per parallel task of bias_add_forward.
ADD_ROWS = 64
# Rows per block of the bias gradient: fixes the summation order.
ROWS = 256


@serial_kernel
def bias_add_forward_serial(x, b, y):
    # x, y: (N, C); b: (C,)
    if same_data(x, y):
        bias_add_in_place(y, b)
        return
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            y[n, c] = x[n, c] + b[c]


@serial_kernel
def bias_add_in_place(y, b):
    # y: (N, C); b: (C,)
    for n in range(y.shape[0]):
        for c in range(y.shape[1]):
            y[n, c] += b[c]


@kernel
def bias_add_forward(x, b, y):
    # x, y: (N, C); b: (C,)
    for block in prange((x.shape[0] + ADD_ROWS - 1) // ADD_ROWS):
        lo = block * ADD_ROWS
        hi = min(lo + ADD_ROWS, x.shape[0])
        bias_add_forward_serial(x[lo:hi], b, y[lo:hi])


@serial_kernel
def bias_relu_forward_serial(x, b, y):
    # x, y: (N, C); b: (C,). y = max(x + b, 0); `v <= 0` is False for NaN, so NaN passes.
    if same_data(x, y):
        bias_relu_in_place(y, b)
        return
    zero = x.dtype.type(0)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            v = x[n, c] + b[c]
            y[n, c] = zero if v <= zero else v


@serial_kernel
def bias_relu_in_place(y, b):
    # y: (N, C); b: (C,)
    zero = y.dtype.type(0)
    for n in range(y.shape[0]):
        for c in range(y.shape[1]):
            v = y[n, c] + b[c]
            y[n, c] = zero if v <= zero else v


@kernel
def bias_relu_forward(x, b, y):
    # x, y: (N, C); b: (C,)
    for block in prange((x.shape[0] + ADD_ROWS - 1) // ADD_ROWS):
        lo = block * ADD_ROWS
        hi = min(lo + ADD_ROWS, x.shape[0])
        bias_relu_forward_serial(x[lo:hi], b, y[lo:hi])


@serial_kernel
def neumaier_add(s, v):
    """(s + v rounded, the rounding error): Neumaier's compensation without a branch."""
    t = s + v
    s_is_bigger = abs(s) >= abs(v)
    big = s if s_is_bigger else v
    small = v if s_is_bigger else s
    return t, (big - t) + small


@serial_kernel
def column_sums_block(dy, total, compensation):
    # dy: (rows, C); total, compensation: (C,) Neumaier sum and its running error.
    # Columns are independent lanes, so the compensated loop vectorises across C.
    zero = dy.dtype.type(0)
    for c in range(dy.shape[1]):
        total[c] = zero
        compensation[c] = zero
    for n in range(dy.shape[0]):
        for c in range(dy.shape[1]):
            total[c], error = neumaier_add(total[c], dy[n, c])
            compensation[c] += error


@serial_kernel
def relu_column_sums_block(dy, y, dx, total, compensation):
    # dy, y, dx: (rows, C); total, compensation as in column_sums_block, over dx:
    # dx = dy where y > 0, 0 where y <= 0, and y itself (NaN) where y is NaN.
    zero = dy.dtype.type(0)
    for c in range(dy.shape[1]):
        total[c] = zero
        compensation[c] = zero
    for n in range(dy.shape[0]):
        for c in range(dy.shape[1]):
            out = y[n, c]
            v = dy[n, c] if out > zero else (zero if out <= zero else out)
            dx[n, c] = v
            total[c], error = neumaier_add(total[c], v)
            compensation[c] += error


@serial_kernel
def combine_column_sums(totals, compensations, db, err):
    # totals, compensations: (blocks, C) block partials; db: (C,); err: (C,) scratch.
    # The block totals are summed like rows, in block order, straight into db; their
    # errors are small and added plainly. A non-finite total is returned as is: its
    # compensation holds inf - inf = NaN.
    column_sums_block(totals, db, err)
    for block in range(compensations.shape[0]):
        for c in range(db.size):
            err[c] += compensations[block, c]
    for c in range(db.size):
        db[c] = db[c] + err[c] if np.isfinite(db[c]) else db[c]


@serial_kernel
def bias_add_backward_serial(dy, db, work):
    # dy: (N, C); db: (C,); work: (2 * blocks + 1, C) caller-given scratch, blocks =
    # max(1, ceil(N / ROWS)): block totals, their compensations, the combine's error.
    n_blocks = (work.shape[0] - 1) // 2
    totals = work[:n_blocks]
    compensations = work[n_blocks:2 * n_blocks]
    for block in range(n_blocks):
        lo = block * ROWS
        column_sums_block(dy[lo:lo + ROWS], totals[block], compensations[block])
    combine_column_sums(totals, compensations, db, work[2 * n_blocks])


@kernel
def bias_add_backward(dy, db, work):
    # dy: (N, C); db: (C,); work as in the serial loop. Same blocks and order as the
    # serial loop, blocks in parallel.
    n_blocks = (work.shape[0] - 1) // 2
    totals = work[:n_blocks]
    compensations = work[n_blocks:2 * n_blocks]
    for block in prange(n_blocks):
        lo = block * ROWS
        column_sums_block(dy[lo:lo + ROWS], totals[block], compensations[block])
    combine_column_sums(totals, compensations, db, work[2 * n_blocks])


@serial_kernel
def bias_relu_backward_serial(dy, y, dx, db, work):
    # dy, y, dx: (N, C), y = relu(x + b) of the forward; db: (C,); work as in
    # bias_add_backward_serial. dx = relu_backward(dy, x + b), db = its column sums.
    n_blocks = (work.shape[0] - 1) // 2
    totals = work[:n_blocks]
    compensations = work[n_blocks:2 * n_blocks]
    for block in range(n_blocks):
        lo = block * ROWS
        relu_column_sums_block(dy[lo:lo + ROWS], y[lo:lo + ROWS], dx[lo:lo + ROWS],
                               totals[block], compensations[block])
    combine_column_sums(totals, compensations, db, work[2 * n_blocks])


@kernel
def bias_relu_backward(dy, y, dx, db, work):
    # As bias_relu_backward_serial, blocks in parallel.
    n_blocks = (work.shape[0] - 1) // 2
    totals = work[:n_blocks]
    compensations = work[n_blocks:2 * n_blocks]
    for block in prange(n_blocks):
        lo = block * ROWS
        relu_column_sums_block(dy[lo:lo + ROWS], y[lo:lo + ROWS], dx[lo:lo + ROWS],
                               totals[block], compensations[block])
    combine_column_sums(totals, compensations, db, work[2 * n_blocks])
