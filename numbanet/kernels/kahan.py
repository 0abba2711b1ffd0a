"""Compensated summation in the input's own dtype.

Dimension legend: N = number of elements (the array flattened), L = LANES,
C = number of chunks of CHUNK elements.

Every pair (sum, err) below holds a value sum + err, err being the rounding error
that the float addition into ``sum`` dropped. Knuth's TwoSum recovers that error
exactly and without a branch (Neumaier's compensation, branch-free), so a running
sum loses nothing when an addend is larger than the sum so far, the case where
Kahan's original update fails.
"""

import numpy as np
from numba import prange

from numbanet._config import kernel, serial_kernel

# Elements per chunk: the unit of parallel work and of the fixed summation order.
# The chunk partition depends only on N, never on the thread count, so the result
# is bit-identical for any number of threads.
CHUNK = 4096
# Independent compensated accumulators per chunk, element i going to lane i % L.
# Independent lanes hide the latency of the TwoSum chain; 64 of them (four AVX-512
# registers of float32) keep the lane loop a loop that LLVM vectorises behind a
# runtime alias check, where 16 were unrolled and left scalar (measured).
LANES = 64
# Chunks a parallel task reads in lockstep, each from its own quarter of x: a task
# reading one chunk after another is one sequential stream, whose reads wait on
# memory (10M float32 at 1 thread: 0.41-0.55 of a triad's bandwidth in three runs);
# four streams keep more reads in flight (0.54-0.71; eight, no better). Each
# chunk's sum is unchanged.
STREAMS = 4


@serial_kernel
def add_pair(sums, errs, i, value, value_err):
    """(sums[i], errs[i]) += (value, value_err), keeping the rounding error of the sum.

    Knuth's TwoSum: s = fl(a + b) and e = (a - (s - b')) + (b - b'), b' = s - a,
    give s + e = a + b exactly.
    """
    a = sums[i]
    s = a + value
    b_virtual = s - a
    e = (a - (s - b_virtual)) + (value - b_virtual)
    sums[i] = s
    errs[i] += e + value_err


@serial_kernel
def chunk_sum(x, start, stop, scale, chunk_sums, chunk_errs, c):
    """(chunk_sums[c], chunk_errs[c]) = compensated sum of x[start:stop] * scale; x: (N,).

    L lanes each run TwoSum over every L-th element, then the lanes are folded in
    lane order. ``scale`` (1, or a power of two when rescaling after an overflow)
    is exact for normal numbers.
    """
    zero = x.dtype.type(0)
    sums = np.full(LANES, zero)
    errs = np.full(LANES, zero)
    full_stop = start + (stop - start) // LANES * LANES
    for base in range(start, full_stop, LANES):
        # A row view read at literal offsets: x[base + lane] would carry Numba's
        # negative-index wraparound and compile to a gather.
        row = x[base:base + LANES]
        for lane in range(LANES):
            add_pair(sums, errs, lane, row[lane] * scale, zero)
    for i in range(full_stop, stop):
        add_pair(sums, errs, i - full_stop, x[i] * scale, zero)
    for lane in range(1, LANES):
        add_pair(sums, errs, 0, sums[lane], errs[lane])
    chunk_sums[c] = sums[0]
    chunk_errs[c] = errs[0]


@serial_kernel
def chunk_sums_in_lockstep(x, first, step, scale, chunk_sums, chunk_errs):
    """``chunk_sum`` of the STREAMS full chunks first, first + step, ..., their rows
    read in turn so that STREAMS sequential reads are in flight; x: (N,)."""
    zero = x.dtype.type(0)
    sums = np.full((STREAMS, LANES), zero)
    errs = np.full((STREAMS, LANES), zero)
    for offset in range(0, CHUNK, LANES):
        for q in range(STREAMS):
            base = (first + q * step) * CHUNK + offset
            row, lane_sums, lane_errs = x[base:base + LANES], sums[q], errs[q]
            for lane in range(LANES):
                add_pair(lane_sums, lane_errs, lane, row[lane] * scale, zero)
    for q in range(STREAMS):
        lane_sums, lane_errs = sums[q], errs[q]
        for lane in range(1, LANES):
            add_pair(lane_sums, lane_errs, 0, lane_sums[lane], lane_errs[lane])
        chunk_sums[first + q * step] = lane_sums[0]
        chunk_errs[first + q * step] = lane_errs[0]


@serial_kernel
def fold_chunks(chunk_sums, chunk_errs, out):
    """out[0] = the chunk pairs folded in chunk order; chunk_sums, chunk_errs: (C,), out: (1,)."""
    for c in range(1, chunk_sums.shape[0]):
        add_pair(chunk_sums, chunk_errs, 0, chunk_sums[c], chunk_errs[c])
    # A non-finite sum (inf or NaN input, or an overflow) leaves NaN in the error
    # from inf - inf; the sum alone is then the answer.
    if np.isfinite(chunk_sums[0]):
        out[0] = chunk_sums[0] + chunk_errs[0]
    else:
        out[0] = chunk_sums[0]


@kernel
def kahan_sum_parallel(x, scale, out):
    """out[0] = compensated sum of x * scale; x: (N,) with N >= 1, out: (1,); chunks run in parallel."""
    # Task t < G reads chunks t, t + G, t + 2G, t + 3G in lockstep (G = full chunks //
    # STREAMS); each later task, one of the (at most STREAMS) chunks left.
    n_chunks = (x.shape[0] + CHUNK - 1) // CHUNK
    n_groups = x.shape[0] // CHUNK // STREAMS
    chunk_sums = np.empty(n_chunks, x.dtype)
    chunk_errs = np.empty(n_chunks, x.dtype)
    for task in prange(n_groups + n_chunks - STREAMS * n_groups):
        t = np.int64(task)  # a prange index is unsigned: mixed with signed ones, float64
        if t < n_groups:
            chunk_sums_in_lockstep(x, t, n_groups, scale, chunk_sums, chunk_errs)
        else:
            c = t - n_groups + STREAMS * n_groups
            chunk_sum(x, c * CHUNK, min((c + 1) * CHUNK, x.shape[0]), scale, chunk_sums, chunk_errs, c)
    fold_chunks(chunk_sums, chunk_errs, out)


@serial_kernel
def kahan_sum_serial(x, scale, out):
    """``kahan_sum_parallel`` on one thread (identical bits); x: (N,), out: (1,)."""
    n_chunks = (x.shape[0] + CHUNK - 1) // CHUNK
    chunk_sums = np.empty(n_chunks, x.dtype)
    chunk_errs = np.empty(n_chunks, x.dtype)
    for c in range(n_chunks):
        chunk_sum(x, c * CHUNK, min((c + 1) * CHUNK, x.shape[0]), scale, chunk_sums, chunk_errs, c)
    fold_chunks(chunk_sums, chunk_errs, out)
