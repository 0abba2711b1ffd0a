"""Matrix product with in-place transposes: ``matmul(a, b, trans_a=, trans_b=)``."""

import threading

import numba
import numpy as np

from numbanet.kernels import matmul as kernels

from ._validate import as_float_array, check_out, common_dtype, is_plain_float, is_writeable_as

__all__ = ["matmul"]

# Below this many multiply-adds a parallel launch (about 5 us with TBB here) costs more
# than it saves: the 128x256x10 output layer and its backward shapes run serially.
SERIAL_MACS = 1 << 21

# op(a) is packed into 16-row strips from this many elements (a transposed one
# always): read in place, its rows sit a large power-of-two stride apart and collide
# in the L1 cache (2.4x slower at 1024^3).
PACK_A_ELEMENTS = 1 << 18

# A transposed op(a) times a B of at most this many columns (x.T @ dy with 10
# classes) takes the kernel whose vectors run down C's columns (1.3-1.5x faster
# there than 16-wide rows of C with 6 idle lanes).
SKINNY_COLUMNS = 16

# An op(a) read in place takes that kernel up to this many columns (h @ W with 10
# classes) on AVX-512, where its blocks take 5 columns at a time: it transposes each
# strip of a first (128x256 float32: 3.2 us), which pays for the idle lanes up to 10
# float32 columns (128x256x10: 11.1-14.3 against 14.4-17.0 us for the row tiles;
# 128x256x16, no idle lane: 18.7-20.3 against 10.9-11.4). float64 strips move through
# 4 x 4 blocks (128x256: 12.8 us), paid for by one block of columns only (128x256x5:
# 18.2-22.5 against 23.1 us for the row tiles; x10: 25.0-31.5 against 23.3-24.8). With
# AVX2's 2-column blocks it does not pay, and a keeps its rows (AVX2 code run on a Zen
# 4: 128x256x10 14.0-14.1 against 13.2-15.0 us, 128x512x10 32-35 against 25-27).
# Keyed by the itemsize of the dtype.
SKINNY_NN_COLUMNS = {4: 10, 8: 5} if kernels.SKINNY_COLUMNS == 5 else {4: 0, 8: 0}

# Packed panels of op(b) up to this size are shared by row tasks rather than packed per
# column task: they stay in a Zen 3's 512 KiB L2 while every strip of op(a) reads them
# (in a 784-512-256-10 epoch at 1 and 2 threads, 128x512x256 and 128x256x512 with
# trans_b: 0.85-0.93x the time of column tasks; at 2 threads 128x784x512, 1.5 MiB of
# panels: 1.03-1.12x). A Zen 4's 1 MiB L2 does not change it: at 1 MiB, 128x784x256
# takes row tasks, and 2-thread 784-256-10 epochs took 1.26x as long (medians of 8).
SHARED_PANEL_BYTES = 512 * 1024

# A cache line: the packing workspaces start on one.
CACHE_LINE = 64

_workspaces = threading.local()


def _workspace(name, dtype, rows, width):
    """A (>= rows, width) scratch array, 64-byte aligned, reused by later calls.

    One per Python thread, name, dtype and width (two threads calling matmul at once
    never share one), grown when a call needs more rows, so steady-state calls allocate
    nothing. The alignment puts each 16-wide row of a packed panel on one cache line.
    """
    cache = _workspaces.__dict__  # this thread's own
    key = (name, dtype, width)
    work = cache.get(key)
    if work is None or work.shape[0] < rows:
        size = max(rows, 1) * width
        raw = np.empty(size + CACHE_LINE // dtype.itemsize, dtype=dtype)
        start = (-raw.ctypes.data % CACHE_LINE) // dtype.itemsize
        work = cache[key] = raw[start:start + size].reshape(-1, width)
    return work


def _as_operand(x, name, trans):
    """``x`` as a C-contiguous 2-D float array and its transpose flag.

    A transposed view of a C-contiguous array (``w.T``) is read through the flag
    instead of being copied; any other strided array is copied.
    """
    if isinstance(x, np.ndarray) and x.ndim == 2 and not x.flags.c_contiguous and x.T.flags.c_contiguous:
        return as_float_array(x.T, name, ndim=2), not trans
    return as_float_array(x, name, ndim=2), trans


def _checked_operands(a, b, trans_a, trans_b):
    """matmul's full checks of operands that are not two plain C-contiguous 2-D arrays
    of one float dtype: (a, b, trans_a, trans_b) ready for the kernels."""
    given_a, given_b = a, b
    a, trans_a_read = _as_operand(a, "a", trans_a)
    b, trans_b_read = _as_operand(b, "b", trans_b)
    common_dtype(a=a, b=b)
    if (a.shape[0] if trans_a_read else a.shape[1]) != (b.shape[1] if trans_b_read else b.shape[0]):
        raise _inner_mismatch(given_a, given_b, trans_a, trans_b)
    return a, b, trans_a_read, trans_b_read


def _inner_mismatch(a, b, trans_a, trans_b):
    """The error for operands as given whose inner dimensions differ."""
    return ValueError(
        f"The inner dimensions of `a` and `b` must match. Received: a.shape={np.shape(a)} "
        f"(trans_a={trans_a}), b.shape={np.shape(b)} (trans_b={trans_b})"
    )


def _is_valid_out(out, shape, dtype, a, b):
    """Cheap acceptance of a caller-given ``out`` (``check_out`` decides otherwise)."""
    if not is_writeable_as(out, shape, dtype):
        return False
    # Two distinct arrays that each own their data cannot overlap: a flag read instead
    # of np.may_share_memory (0.3-0.6 us a call) for the common case.
    owns = out.flags.owndata
    return (((owns and out is not a and a.flags.owndata) or not np.may_share_memory(out, a))
            and ((owns and out is not b and b.flags.owndata) or not np.may_share_memory(out, b)))


def _column_tasks(M, K, N, itemsize, packed_a, threads):
    """Whether parallel tasks are columns of tiles (each packing its panel of B) rather
    than rows of tiles (each packing its strip of op(a) when op(a) is packed).

    On one thread, rows: each 16-row strip of C is finished while its rows are in the
    cache, after all of B has been packed, a block of its rows at a time unless it is
    transposed (128x10x256: 0.6-0.8x the time of columns; 128 x K x N for K, N in
    256-1024, B packed a row at a time: 0.83-1.04x, 0.93x at 128x784x512). On more, a
    task packs the operand it owns, so each thread mostly reads what it wrote; the other
    operand is shared. A packed op(a) goes to row tasks (x.T @ dy, 784x128x512: 0.8x the
    time of column tasks), an op(a) read in place to column tasks (x @ w, 128x784x256:
    0.85x the time of row tasks) when its panels of B would not stay in the L2 cache
    (SHARED_PANEL_BYTES), as long as there are two tasks per thread.
    """
    if threads == 1 or K * N * itemsize <= SHARED_PANEL_BYTES:
        return False
    tasks = 2 * threads
    n_strips, n_panels = (M + kernels.TILE - 1) // kernels.TILE, (N + kernels.TILE - 1) // kernels.TILE
    return n_panels >= tasks and not (packed_a and n_strips >= tasks)


def matmul(a, b, *, trans_a=False, trans_b=False, out=None):
    """C = op(a) @ op(b), where op(x) is x, or x.T when its flag is set.

    Each element of C is summed over k in order, in the inputs' dtype, in registers
    (blocks of 16 columns and 4-8 rows of C sized to the host's vector registers, 8
    columns and 4-6 rows for float64 on AVX2; for a B of at most 16 columns and a
    transposed ``a``, or at most 10 (float64: 5) and any ``a`` on AVX-512, blocks down
    C's columns, 2 (AVX2) or 5 (AVX-512) columns at a time). As BLAS does, the kernel
    packs B into 16-column panels and a transposed or large ``a`` into 16-row strips,
    so the caller never makes a transposed copy; results are bit-identical for any
    thread count. The packing buffers live in per-thread workspaces reused across calls:
    with ``out`` given, a steady-state call allocates nothing.

    Parameters
    ----------
    a : ndarray, float32 or float64, shape (M, K), or (K, M) with ``trans_a``
    b : ndarray of the same dtype, shape (K, N), or (N, K) with ``trans_b``
    trans_a, trans_b : bool
        Use the transpose of ``a`` / ``b`` without copying it.
    out : ndarray, optional
        C-contiguous (M, N) array of the inputs' dtype, not overlapping them.

    Returns
    -------
    ndarray, shape (M, N)
        ``out`` when given. Zeros when K = 0.

    Raises
    ------
    TypeError
        If ``a`` or ``b`` is not float32/float64, their dtypes differ, or ``out`` has
        another dtype.
    ValueError
        If an input is not 2-D, the inner dimensions differ, or ``out`` has the wrong
        shape, is not C-contiguous or overlaps an input.

    Notes
    -----
    The error of each element is within the classical bound
    ``|C - C_exact| <= K * eps * (|op(a)| @ |op(b)|)``; NaN and inf reach only the
    rows and columns of C that depend on them (as ``0 * inf`` makes NaN).
    """
    trans_a, trans_b = bool(trans_a), bool(trans_b)
    if not (is_plain_float(a, 2) and is_plain_float(b, 2) and a.dtype is b.dtype):
        a, b, trans_a, trans_b = _checked_operands(a, b, trans_a, trans_b)
    dtype = a.dtype
    M, K = a.shape[::-1] if trans_a else a.shape
    K_b, N = b.shape[::-1] if trans_b else b.shape
    if K != K_b:
        raise _inner_mismatch(a, b, trans_a, trans_b)
    if out is None:
        out = np.empty((M, N), dtype=dtype)
    elif not _is_valid_out(out, (M, N), dtype, a, b):
        out = check_out(out, (M, N), dtype, a, b)
    if M == 0 or N == 0:
        return out
    if K == 0:
        out.fill(0)
        return out

    # The threads the product runs on: one below SERIAL_MACS, and on one the serial
    # kernel, as a launch of the parallel kernel's two regions costs 15-20 us there
    # (1 us to ask).
    threads = 1 if M * N * K < SERIAL_MACS else numba.get_num_threads()
    serial = threads == 1
    if serial and N <= (SKINNY_COLUMNS if trans_a else SKINNY_NN_COLUMNS[dtype.itemsize]):
        work = _workspace("skinny", dtype, *kernels.skinny_workspace_shape(K, dtype))
        kernels.matmul_skinny(a, trans_a, b, trans_b, out, work)
        return out
    pack_a = trans_a or M * K >= PACK_A_ELEMENTS
    work = _workspace("b", dtype, kernels.workspace_rows(M, K, N), kernels.TILE)
    if serial and not pack_a:
        kernels.matmul_rows_serial(a, b, trans_b, out, work)
        return out
    a_rows = _workspace("a", dtype, kernels.packed_a_rows(M), K) if pack_a else a
    tiles = kernels.matmul_tiles_serial if serial else kernels.matmul_tiles
    column_tasks = _column_tasks(M, K, N, dtype.itemsize, pack_a, threads)
    tiles(a, trans_a, b, trans_b, out, pack_a, a_rows, work, column_tasks)
    return out
