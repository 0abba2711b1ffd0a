"""Row argmax and the count of correct predictions.

Dimensions: N = rows (samples), K = columns (classes), K >= 1.

Ties go to the first maximum; NaN counts as larger than every number and the first
NaN wins, as in ``numpy.argmax``. Rows are independent and the count is an integer
sum, so the results are the same for any thread count.
"""

from numba import prange

from numbanet._config import kernel, serial_kernel

# Rows per parallel task.
ROWS = 1024


@serial_kernel
def row_argmax(row):
    # row: (K,) -> index of its first maximum (or first NaN)
    best = row[0]
    best_index = 0
    if best != best:
        return 0
    for k in range(1, row.size):
        v = row[k]
        if v != v:
            return k
        if v > best:
            best = v
            best_index = k
    return best_index


@serial_kernel
def argmax_rows_serial(x, index):
    # x: (N, K); index: (N,) intp
    for n in range(x.shape[0]):
        index[n] = row_argmax(x[n])


@kernel
def argmax_rows(x, index):
    # x: (N, K); index: (N,) intp
    for block in prange((x.shape[0] + ROWS - 1) // ROWS):
        lo = block * ROWS
        hi = min(lo + ROWS, x.shape[0])
        argmax_rows_serial(x[lo:hi], index[lo:hi])


@serial_kernel
def count_correct_serial(x, labels):
    # x: (N, K); labels: (N,) intp -> number of rows whose argmax equals the label
    correct = 0
    for n in range(x.shape[0]):
        if row_argmax(x[n]) == labels[n]:
            correct += 1
    return correct


@kernel
def count_correct(x, labels):
    # x: (N, K); labels: (N,) intp
    correct = 0
    for block in prange((x.shape[0] + ROWS - 1) // ROWS):
        lo = block * ROWS
        hi = min(lo + ROWS, x.shape[0])
        correct += count_correct_serial(x[lo:hi], labels[lo:hi])
    return correct
