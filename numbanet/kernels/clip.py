"""Global-norm gradient clipping and the all-finite check.

Dimension legend: N = number of elements of one array (flattened), L = LANES.

Each ``*_parallel`` kernel has a ``*_serial`` twin with the same loop on one thread,
for arrays too small to pay for waking the thread pool; both give identical bits.
"""

import numpy as np
from numba import prange

from numbanet._config import kernel, serial_kernel

# Elements per chunk of the sum of squares: its partition depends only on N, never
# on the thread count, so the norm is bit-identical for any number of threads.
CHUNK = 4096
# Independent float64 accumulators per chunk, element i into lane i % L: a lane
# loop this long stays a loop that LLVM vectorises behind a runtime alias check,
# where 32 lanes were unrolled and left scalar (measured: 3x slower).
LANES = 64
# Chunks a parallel task reads in lockstep, as kernels/kahan.py's: one sequential
# stream waits on memory; four keep more reads in flight. Each chunk's sum is unchanged.
STREAMS = 4


@serial_kernel
def chunk_sum_of_squares(x, start, stop, scale, sums):
    """Sum of (x[i] * scale)**2 over x[start:stop] in float64; x: (N,), scale float64,
    sums: (L,) float64 scratch for the lanes.

    Squares of float32 values are exact in float64; float64 input is summed plainly
    in float64 (a norm needs no more).
    """
    sums[:] = 0.0
    full_stop = start + (stop - start) // LANES * LANES
    for base in range(start, full_stop, LANES):
        # A row view read at literal offsets: x[base + lane] would carry Numba's
        # negative-index wraparound and compile to a gather.
        row = x[base:base + LANES]
        for lane in range(LANES):
            value = np.float64(row[lane]) * scale
            sums[lane] += value * value
    for i in range(full_stop, stop):
        value = np.float64(x[i]) * scale
        sums[i - full_stop] += value * value
    total = sums[0]
    for lane in range(1, LANES):
        total += sums[lane]
    return total


@serial_kernel
def chunk_sums_of_squares_in_lockstep(x, first, step, scale, partials, sums):
    """partials[c] = ``chunk_sum_of_squares`` of the STREAMS full chunks c = first,
    first + step, ..., their rows read in turn; x: (N,), sums: (STREAMS, L) float64
    scratch."""
    sums[:] = 0.0
    for offset in range(0, CHUNK, LANES):
        for q in range(STREAMS):
            base = (first + q * step) * CHUNK + offset
            row, lane_sums = x[base:base + LANES], sums[q]
            for lane in range(LANES):
                value = np.float64(row[lane]) * scale
                lane_sums[lane] += value * value
    for q in range(STREAMS):
        total = sums[q, 0]
        for lane in range(1, LANES):
            total += sums[q, lane]
        partials[first + q * step] = total


@serial_kernel
def sum_of_squares_tasks(n):
    """(chunks, groups, tasks) of ``sum_of_squares_parallel`` for N = n: a task per
    group of STREAMS full chunks, then one per chunk left (at most STREAMS)."""
    n_chunks = (n + CHUNK - 1) // CHUNK
    n_groups = n // CHUNK // STREAMS
    return n_chunks, n_groups, n_groups + n_chunks - STREAMS * n_groups


@kernel
def sum_of_squares_parallel(x, scale, partials, sums):
    """Sum of (x * scale)**2 in float64 over fixed chunks added in chunk order; x: (N,).

    Scratch from the caller, sized by ``sum_of_squares_tasks``: partials (chunks,) and
    sums (tasks, STREAMS, L), both float64.
    """
    # Task t < G reads chunks t, t + G, t + 2G, t + 3G in lockstep (G = groups); each
    # later task, one of the chunks left.
    n_chunks, n_groups, n_tasks = sum_of_squares_tasks(x.shape[0])
    for task in prange(n_tasks):
        t = np.int64(task)  # a prange index is unsigned: mixed with signed ones, float64
        if t < n_groups:
            chunk_sums_of_squares_in_lockstep(x, t, n_groups, scale, partials, sums[t])
        else:
            c = t - n_groups + STREAMS * n_groups
            partials[c] = chunk_sum_of_squares(x, c * CHUNK, min((c + 1) * CHUNK, x.shape[0]), scale, sums[t, 0])
    total = np.float64(0)
    for c in range(n_chunks):
        total += partials[c]
    return total


@serial_kernel
def sum_of_squares_serial(x, scale, sums):
    """``sum_of_squares_parallel`` on one thread (identical bits); x: (N,), sums: (L,)
    float64 scratch."""
    total = np.float64(0)
    for c in range((x.shape[0] + CHUNK - 1) // CHUNK):
        total += chunk_sum_of_squares(x, c * CHUNK, min((c + 1) * CHUNK, x.shape[0]), scale, sums)
    return total


@kernel
def scale_parallel(x, coef):
    """x *= coef in place; x: (N,), coef of x's dtype."""
    for i in prange(x.shape[0]):
        x[i] *= coef


@serial_kernel
def scale_serial(x, coef):
    """``scale_parallel`` on one thread; x: (N,)."""
    for i in range(x.shape[0]):
        x[i] *= coef


@kernel
def count_nonfinite_parallel(x):
    """Number of inf and NaN elements of x: (N,) (x - x is 0 exactly when x is finite)."""
    count = 0
    for i in prange(x.shape[0]):
        count += x[i] - x[i] != 0
    return count


@serial_kernel
def count_nonfinite_serial(x):
    """``count_nonfinite_parallel`` on one thread; x: (N,)."""
    count = 0
    for i in range(x.shape[0]):
        count += x[i] - x[i] != 0
    return count
