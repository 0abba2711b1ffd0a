"""matmul: accuracy against a correctly rounded float64 reference, edge shapes,
non-finite propagation, transposes and views, out=, errors, thread invariance."""

import importlib
import itertools
import math
import threading
import tracemalloc

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import (
    EPS, assert_bitwise_equal, assert_thread_invariant, float64_instructions, fused_pair, run_with_threads,
)
from numbanet import _config, matmul
from numbanet.kernels import matmul as kernels
from numbanet.kernels.views import rows_of_8

matmul_op = importlib.import_module("numbanet.ops.matmul")

TRANSPOSES = list(itertools.product([False, True], repeat=2))

# (M, K, N): odd and prime sizes; with trans_a, N <= 16 takes the skinny kernel (the
# M = 521 one over full 32- or 64-row strips and a partial one); the last two reach the
# packed-operand and parallel paths (an operand of >= 2**18 elements, >= 2**21
# multiply-adds).
SHAPES = [(1, 1, 1), (3, 17, 257), (257, 3, 17), (17, 257, 3), (16, 32, 16), (20, 520, 521), (521, 520, 3)]


def operands(M, K, N, dtype, trans_a=False, trans_b=False, seed=0):
    """op(a) (M, K) and op(b) (K, N) as stored: transposed ones are C-contiguous (K, M) / (N, K)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((K, M) if trans_a else (M, K)).astype(dtype)
    b = rng.standard_normal((N, K) if trans_b else (K, N)).astype(dtype)
    return a, b


def reference(a, b):
    """Correctly rounded sum of the float64 products, element by element (math.fsum)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    c = np.empty((a.shape[0], b.shape[1]))
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            c[i, j] = math.fsum(a[i] * b[:, j])
    return c


def assert_within_bound(c, a, b):
    """|C - C_ref| <= gamma_K * (|A| |B|) with gamma_K = (K + 2) * eps of C's dtype."""
    K = a.shape[1]
    bound = (K + 2) * EPS[c.dtype.type] * (np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64)))
    error = np.abs(c.astype(np.float64) - reference(a, b))
    assert np.all(error <= bound), f"max error / bound = {np.max(error / np.maximum(bound, 1e-300))}"


@pytest.mark.parametrize("trans_a, trans_b", TRANSPOSES)
@pytest.mark.parametrize("M, K, N", SHAPES)
def test_matches_reference_within_error_bound(dtype, M, K, N, trans_a, trans_b):
    a, b = operands(M, K, N, dtype, trans_a, trans_b)
    c = matmul(a, b, trans_a=trans_a, trans_b=trans_b)
    assert c.shape == (M, N) and c.dtype == dtype
    assert_within_bound(c, a.T if trans_a else a, b.T if trans_b else b)


@pytest.mark.parametrize("trans_a, trans_b", TRANSPOSES)
@pytest.mark.parametrize("M, K, N", [(3, 17, 5), (17, 1, 33), (130, 9, 16), (20, 520, 521), (521, 520, 3)])
def test_equals_naive_reference_kernel_bitwise(M, K, N, trans_a, trans_b):
    # Every path (in place, packed, skinny, serial, parallel) sums over k in order like
    # the naive loop, so the results are identical, not just close.
    a, b = operands(M, K, N, np.float32, trans_a, trans_b)
    a_op, b_op = np.ascontiguousarray(a.T if trans_a else a), np.ascontiguousarray(b.T if trans_b else b)
    expected = np.empty((M, N), np.float32)
    kernels.matmul_reference(a_op, b_op, expected)
    assert_bitwise_equal(matmul(a, b, trans_a=trans_a, trans_b=trans_b), expected)


@settings(max_examples=25, deadline=None)
@given(M=st.integers(1, 40), K=st.integers(1, 40), N=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_transposed_product_is_bitwise_the_transpose(M, K, N, seed):
    # (A B).T = B.T A.T with the same products summed in the same order.
    a, b = operands(M, K, N, np.float64, seed=seed)
    assert_bitwise_equal(matmul(a, b).T, matmul(b, a, trans_a=True, trans_b=True))


@pytest.mark.parametrize("trans_a, trans_b", TRANSPOSES)
@pytest.mark.parametrize("M, K, N", [(0, 3, 4), (3, 0, 4), (3, 4, 0), (0, 0, 0)])
def test_zero_size_dimensions(dtype, M, K, N, trans_a, trans_b):
    a, b = operands(M, K, N, dtype, trans_a, trans_b)
    c = matmul(a, b, trans_a=trans_a, trans_b=trans_b)
    assert c.shape == (M, N) and c.dtype == dtype
    assert np.all(c == 0)
    out = np.full((M, N), np.nan, dtype)
    assert matmul(a, b, trans_a=trans_a, trans_b=trans_b, out=out) is out
    assert np.all(out == 0)


def test_one_element(dtype):
    c = matmul(np.array([[3.0]], dtype), np.array([[-0.5]], dtype))
    assert c.dtype == dtype and c.tolist() == [[-1.5]]


def test_python_lists_are_float64():
    c = matmul([[1, 2], [3, 4]], [[5], [6]])
    assert c.dtype == np.float64 and c.tolist() == [[17.0], [39.0]]


def test_huge_magnitudes_stay_within_bound(dtype):
    # 1e30 * 1 is representable in float32, so nothing overflows and the bound holds.
    a, b = operands(17, 33, 19, dtype)
    a = (np.sign(a) * 1e30).astype(dtype)
    c = matmul(a, b)
    assert np.all(np.isfinite(c))
    assert_within_bound(c, a, b)


# 9 with trans_a: the skinny kernel's odd last column; 10 (and 9) without: one partial
# panel of B, packed by gathering its columns
@pytest.mark.parametrize("N", [18, 10, 9])
@pytest.mark.parametrize("trans_a, trans_b", TRANSPOSES)
def test_nan_and_inf_reach_only_dependent_entries(dtype, trans_a, trans_b, N):
    M, K = 19, 7  # partial tiles and strips, so padded rows and columns are exercised
    a, b = operands(M, K, N, dtype)
    b[2] = np.abs(b[2]) + 1  # row 2 of B is positive: inf * b stays +inf
    a[M - 1, 3] = np.nan     # the last row (the one partial tiles repeat)
    a[5, 2] = np.inf
    b[4, N - 1] = np.nan     # the last column
    a_in, b_in = (np.ascontiguousarray(a.T) if trans_a else a), (np.ascontiguousarray(b.T) if trans_b else b)
    c = matmul(a_in, b_in, trans_a=trans_a, trans_b=trans_b)
    assert np.all(np.isnan(c[M - 1])) and np.all(np.isnan(c[:, N - 1]))
    assert np.all(c[5, : N - 1] == np.inf)
    rest = np.delete(np.delete(c, [5, M - 1], axis=0), N - 1, axis=1)
    assert np.all(np.isfinite(rest))


@pytest.mark.parametrize("trans_a, trans_b", TRANSPOSES)
def test_strided_and_transposed_views_match_contiguous(dtype, trans_a, trans_b):
    a, b = operands(13, 21, 34, dtype, trans_a, trans_b)
    expected = matmul(a, b, trans_a=trans_a, trans_b=trans_b)
    # Strided views are copied.
    a_big, b_big = np.zeros((a.shape[0] * 2, a.shape[1] * 3), dtype), np.zeros((b.shape[0] * 3, b.shape[1] * 2), dtype)
    a_big[::2, ::3], b_big[::3, ::2] = a, b
    c = matmul(a_big[::2, ::3], b_big[::3, ::2], trans_a=trans_a, trans_b=trans_b)
    assert_bitwise_equal(c, expected)
    # A transposed view of a C-contiguous array flips the flag instead of copying.
    a_t, b_t = np.ascontiguousarray(a.T).T, np.ascontiguousarray(b.T).T
    assert not a_t.flags.c_contiguous and not b_t.flags.c_contiguous
    assert_bitwise_equal(matmul(a_t, b_t, trans_a=trans_a, trans_b=trans_b), expected)


def test_out_is_written_and_returned(dtype):
    a, b = operands(5, 6, 7, dtype)
    out = np.empty((5, 7), dtype)
    assert matmul(a, b, out=out) is out
    assert_bitwise_equal(out, matmul(a, b))


def test_bad_out_raises(dtype):
    a, b = operands(5, 6, 7, dtype)
    with pytest.raises(ValueError, match=r"`out` must have shape \(5, 7\)"):
        matmul(a, b, out=np.empty((7, 5), dtype))
    other = np.float64 if dtype == np.float32 else np.float32
    with pytest.raises(TypeError, match="`out` must have dtype"):
        matmul(a, b, out=np.empty((5, 7), other))
    with pytest.raises(ValueError, match="C-contiguous"):
        matmul(a, b, out=np.empty((7, 5), dtype).T)
    square = np.ones((5, 5), dtype)
    with pytest.raises(ValueError, match="overlap"):
        matmul(square, square, out=square)
    # out owns its data and b is a view of it, or out is a view overlapping a.
    with pytest.raises(ValueError, match="overlap"):
        matmul(square, square[:], out=square)
    rows = np.ones((8, 5), dtype)
    with pytest.raises(ValueError, match="overlap"):
        matmul(rows[:5], square, out=rows[3:])
    out = np.full((5, 5), np.nan, dtype)
    assert matmul(rows[:5], square, out=out) is out and np.all(out == 5)


def test_mismatched_inner_dimensions_name_both_shapes():
    with pytest.raises(ValueError, match=r"a\.shape=\(3, 4\) \(trans_a=False\), b\.shape=\(5, 6\) \(trans_b=True\)"):
        matmul(np.ones((3, 4)), np.ones((5, 6)), trans_b=True)
    with pytest.raises(ValueError, match="inner dimensions"):
        matmul(np.ones((3, 4)), np.ones((3, 4)))
    # Operands that take the full checks (a transposed view read through the flag, a
    # list) are named as given, not as the kernels read them.
    with pytest.raises(ValueError, match=r"a\.shape=\(3, 4\) \(trans_a=False\), b\.shape=\(5, 6\) \(trans_b=False\)"):
        matmul(np.ones((4, 3)).T, np.ones((5, 6)))
    with pytest.raises(ValueError, match=r"a\.shape=\(1, 2\) \(trans_a=True\), b\.shape=\(2, 1\) \(trans_b=False\)"):
        matmul([[1.0, 2.0]], [[1.0], [2.0]], trans_a=True)


@pytest.mark.parametrize("shape_a, shape_b", [((3,), (3, 2)), ((2, 3), (3,)), ((1, 2, 3), (3, 2)), ((), (1, 1))])
def test_wrong_ndim_raises(shape_a, shape_b):
    with pytest.raises(ValueError, match="must be 2-D"):
        matmul(np.ones(shape_a), np.ones(shape_b))


@pytest.mark.parametrize("bad", [np.int64, np.int32, np.bool_, np.complex64, np.float16, object])
def test_non_float_dtypes_raise(bad):
    good = np.ones((2, 2))
    with pytest.raises(TypeError, match=r"`a` must be float32 or float64\. Received: a\.dtype="):
        matmul(np.ones((2, 2), bad), good)
    with pytest.raises(TypeError, match=r"`b` must be float32 or float64\. Received: b\.dtype="):
        matmul(good, np.ones((2, 2), bad))


def test_mixed_dtypes_raise():
    with pytest.raises(TypeError, match=r"a\.dtype=float32, b\.dtype=float64"):
        matmul(np.ones((2, 2), np.float32), np.ones((2, 2), np.float64))


@pytest.mark.parametrize("trans_a, trans_b", TRANSPOSES)
def test_thread_invariant(dtype, trans_a, trans_b):
    a, b = operands(37, 300, 201, dtype, trans_a, trans_b)  # 2.2M multiply-adds: the parallel path
    assert_thread_invariant(matmul, a, b, trans_a=trans_a, trans_b=trans_b)


@pytest.mark.parametrize("trans_b", [False, True])
def test_thread_invariant_across_task_kinds(dtype, trans_b):
    # B's panels exceed SHARED_PANEL_BYTES, so one thread runs row tasks (B packed in
    # blocks of rows when not transposed) and two run column tasks, each packing its own
    # panel.
    M, K, N = 20, 700, 201
    assert K * N * np.dtype(dtype).itemsize > matmul_op.SHARED_PANEL_BYTES
    a, b = operands(M, K, N, dtype, False, trans_b)
    assert matmul_op._column_tasks(M, K, N, np.dtype(dtype).itemsize, False, 2)
    assert not matmul_op._column_tasks(M, K, N, np.dtype(dtype).itemsize, False, 1)
    assert_thread_invariant(matmul, a, b, trans_b=trans_b)


@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True)])
def test_large_products_launch_threads_only_when_there_are_several(trans_a, trans_b, monkeypatch):
    # On one thread a large product runs the serial twin: launching the parallel kernel's
    # two regions would cost 15-20 us for the same tiles in the same order.
    kernels_called = []
    monkeypatch.setattr(matmul_op.kernels, "matmul_tiles", lambda *args: kernels_called.append("parallel"))
    for serial in ("matmul_tiles_serial", "matmul_rows_serial"):
        monkeypatch.setattr(matmul_op.kernels, serial, lambda *args: kernels_called.append("serial"))
    a, b = operands(37, 300, 201, np.float32, trans_a, trans_b)  # 2.2M multiply-adds
    for threads in (1, 2):
        run_with_threads(threads, matmul, a, b, trans_a=trans_a, trans_b=trans_b)
    assert kernels_called == ["serial", "parallel" if numba.config.NUMBA_NUM_THREADS > 1 else "serial"]


def test_steady_state_calls_allocate_nothing():
    # Packing buffers and partial-tile scratch live in a per-thread workspace reused
    # across calls: after warm-up, repeated calls with out= allocate nothing. Any
    # per-call leak would be >= 16 B a call, 800 B over 50 calls.
    cases = [(32, 20, 256, False, False), (40, 300, 35, True, True), (256, 128, 10, True, False),
             (600, 500, 19, False, False)]  # last: packed A, parallel
    for M, K, N, trans_a, trans_b in cases:
        a, b = operands(M, K, N, np.float32, trans_a, trans_b)
        out = np.empty((M, N), np.float32)
        tracemalloc.start()
        try:
            for _ in range(3):
                matmul(a, b, trans_a=trans_a, trans_b=trans_b, out=out)
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(50):
                matmul(a, b, trans_a=trans_a, trans_b=trans_b, out=out)
            after, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert after - before < 256, (M, K, N)
        assert peak - before < 1024, (M, K, N)


def test_threads_use_separate_workspaces():
    # Two Python threads calling matmul at once must not pack into one buffer. The
    # kernels hold the GIL today, so the results alone could not show sharing; the
    # workspaces themselves must be distinct.
    shapes = [(64, 40, 48, False, True), (48, 56, 64, True, True)]
    inputs = [operands(*shape[:3], np.float32, *shape[3:], seed=i) for i, shape in enumerate(shapes)]
    expected = [matmul(a, b, trans_a=shape[3], trans_b=shape[4]) for (a, b), shape in zip(inputs, shapes)]
    start, failures, workspaces = threading.Barrier(2), [], []

    def worker(i):
        (a, b), shape = inputs[i], shapes[i]
        start.wait()
        for _ in range(200):
            c = matmul(a, b, trans_a=shape[3], trans_b=shape[4])
            if c.tobytes() != expected[i].tobytes():
                failures.append(i)
        workspaces.append(matmul_op._workspace("b", np.dtype(np.float32), 1, kernels.TILE))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(workspaces) == 2 and not np.shares_memory(workspaces[0], workspaces[1])


def test_float32_kernels_never_widen_to_float64():
    # float64_instructions recompiles a kernel with every helper it calls (tile,
    # packing, loads and stores), so matmul_tiles and matmul_skinny cover all of
    # them; the serial kernels (matmul_tiles_serial, matmul_rows_serial) run the same
    # helpers in a plain loop and are left out to save a 10 s compile each.
    a, b = operands(5, 6, 7, np.float32)
    c = np.empty((5, 7), np.float32)
    assert float64_instructions(kernels.matmul_reference, a, b, c) == []
    a_rows = np.empty((kernels.packed_a_rows(5), 6), np.float32)
    work = np.empty((kernels.workspace_rows(5, 6, 7), kernels.TILE), np.float32)
    assert float64_instructions(kernels.matmul_tiles, a, True, b, False, c, True, a_rows, work, False) == []
    work = np.empty(kernels.skinny_workspace_shape(5, a.dtype), np.float32)
    assert float64_instructions(kernels.matmul_skinny, a, True, b, False, c, work) == []


def test_rows_of_8_views_the_same_memory_as_rows_of_8_values():
    x = np.arange(48, dtype=np.float64).reshape(3, 16)
    view = numba.njit(lambda x: rows_of_8(x))(x)
    assert_bitwise_equal(view, x.reshape(6, 8))
    view[5, 7] = -1.0
    assert x[2, 15] == -1.0


def split_halves(panel):
    """A (K, 16) panel as two (K, 8) halves one after the other, in the same shape."""
    return np.concatenate([panel[:, :8], panel[:, 8:]]).reshape(panel.shape)


def as_tiles_read(panel):
    """A (K, 16) panel of op(b) laid out as the host's tiles read it (SPLIT_F64_PANELS)."""
    return split_halves(panel) if kernels.SPLIT_F64_PANELS and panel.dtype == np.float64 else panel


@pytest.mark.parametrize("block, rows", [(kernels._tile8, 8), (kernels._tile4, 4),
                                         (kernels._tile_f64_halves, 16), (kernels._tile_f64_rows, 16)])
def test_every_register_block_equals_naive_reference_bitwise(dtype, block, rows):
    # The host runs only its own blocks (ROWS_F32, _tile_f64); this covers all of them.
    # a has one row fewer than the block reads, so its last row is repeated.
    # _tile_f64_halves reads a panel split into its two (K, 8) halves (SPLIT_F64_PANELS).
    a, v = operands(rows, 37, 16, dtype)
    panel = split_halves(v) if block is kernels._tile_f64_halves else v
    out = np.full((rows + 1, 20), np.nan, dtype)
    block(a, 1, panel, out, 1, 2)
    expected = np.empty((rows - 1, 16), dtype)
    kernels.matmul_reference(a[1:], v, expected)
    assert_bitwise_equal(out[1:rows, 2:18], expected)
    assert_bitwise_equal(out[rows, 2:18], expected[-1])


@pytest.mark.parametrize("M", [1, 2, 3, 5, 7, 13, 15, 16, 18, 31])
def test_partial_row_tiles_equal_naive_reference_bitwise(dtype, M):
    # The last tile's rows end inside or at the edge of a register block, with op(a)
    # read in place and packed, in tasks of tile columns and of tile rows.
    for trans_a, pack_a, column_tasks in itertools.product((False, True), repeat=3):
        a, b = operands(M, 19, 21, dtype, trans_a)
        a_op = np.ascontiguousarray(a.T) if trans_a else a
        expected = np.empty((M, 21), dtype)
        kernels.matmul_reference(a_op, b, expected)
        c = np.full((M, 21), np.nan, dtype)
        a_rows = np.full((kernels.packed_a_rows(M), 19), np.nan, dtype) if pack_a or trans_a else a
        work = np.full((kernels.workspace_rows(M, 19, 21), kernels.TILE), np.nan, dtype)
        kernels.matmul_tiles_serial(a, trans_a, b, False, c, pack_a, a_rows, work, column_tasks)
        assert_bitwise_equal(c, expected)


@pytest.mark.parametrize("M, K, N, trans_b", [(128, 10, 256, True), (128, 256, 10, False), (37, 10, 10, True),
                                           (50, 3, 40, False), (16, 5, 3, False)])
def test_small_products_equal_naive_reference_bitwise(dtype, M, K, N, trans_b):
    # The MLP's small products (dl @ W2.T with K = 10; h @ W2 with one partial panel of
    # 10 columns, packed by gathering from each row of B) and partial tiles on either
    # edge, through the op (matmul_rows_serial, for these serial products of an a read
    # in place) and both task shapes of the serial twin of matmul_tiles.
    a, b = operands(M, K, N, dtype, trans_b=trans_b)
    expected = np.empty((M, N), dtype)
    kernels.matmul_reference(a, np.ascontiguousarray(b.T) if trans_b else b, expected)
    out = np.full((M, N), np.nan, dtype)
    assert_bitwise_equal(matmul(a, b, trans_b=trans_b, out=out), expected)
    for column_tasks in (False, True):
        c = np.full((M, N), np.nan, dtype)
        work = np.full((kernels.workspace_rows(M, K, N), kernels.TILE), np.nan, dtype)
        kernels.matmul_tiles_serial(a, False, b, trans_b, c, False, a, work, column_tasks)
        assert_bitwise_equal(c, expected)


@pytest.mark.parametrize("column_tasks", [False, True])
def test_both_task_shapes_equal_naive_reference_bitwise_in_parallel(dtype, column_tasks):
    # The parallel kernel with either task shape (tile columns packing their own panel
    # of B, or tile rows packing their own strip of op(a) after B's panels are packed in
    # groups), partial tiles on both edges. N = 73: five panels, the partial one in the
    # second packing group.
    M, K, N = 37, 23, 73
    assert (N + kernels.TILE - 1) // kernels.TILE > kernels.PACK_GROUP and N % kernels.TILE
    for trans_a, trans_b in itertools.product((False, True), repeat=2):
        a, b = operands(M, K, N, dtype, trans_a, trans_b)
        expected = np.empty((M, N), dtype)
        kernels.matmul_reference(np.ascontiguousarray(a.T) if trans_a else a,
                                 np.ascontiguousarray(b.T) if trans_b else b, expected)
        c = np.full((M, N), np.nan, dtype)
        a_rows = np.full((kernels.packed_a_rows(M), K), np.nan, dtype)
        work = np.full((kernels.workspace_rows(M, K, N), kernels.TILE), np.nan, dtype)
        kernels.matmul_tiles(a, trans_a, b, trans_b, c, True, a_rows, work, column_tasks)
        assert_bitwise_equal(c, expected)


@pytest.mark.parametrize("block, rows, columns", [(kernels._skinny_block32x5, 32, 5),
                                                  (kernels._skinny_block32, 32, 2),
                                                  (kernels._skinny_block16, 16, 2)])
def test_every_skinny_block_equals_naive_reference_bitwise(dtype, block, rows, columns):
    # The host runs only its own skinny blocks (SKINNY_COLUMNS, SKINNY_ROWS,
    # SKINNY_ROWS_F64); this covers all of them. The block reads rows i0:i0+rows of
    # op(a) = a.T and columns j0 to j0 + columns - 1 of v; the last column of v is
    # repeated past its end.
    a, v = operands(rows + 3, 29, 7, dtype, trans_a=True)
    out = np.full((columns, rows), np.nan, dtype)
    expected = np.empty((rows + 3, 7), dtype)
    kernels.matmul_reference(np.ascontiguousarray(a.T), v, expected)
    block(a, 3, v, 6, out)
    for u in range(columns):
        assert_bitwise_equal(out[u], expected[3:, 6])
    block(a, 2, v, 1, out)
    assert_bitwise_equal(out, expected[2:rows + 2, 1:1 + columns].T)


@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("M, K, N", [(1, 1, 1), (45, 9, 10), (64, 16, 16), (70, 33, 3)])
def test_skinny_kernel_equals_naive_reference_bitwise(dtype, M, K, N, trans_a):
    # Called directly, so every host covers both of its layouts of op(a) (the op sends
    # an a not transposed here only on AVX-512): whole and partial strips, K's tail
    # past the transposed blocks, and a last block of columns past N.
    a, b = operands(M, K, N, dtype, trans_a)
    expected = np.empty((M, N), dtype)
    kernels.matmul_reference(np.ascontiguousarray(a.T if trans_a else a), b, expected)
    c = np.full((M, N), np.nan, dtype)
    work = np.full(kernels.skinny_workspace_shape(K, np.dtype(dtype)), np.nan, dtype)
    kernels.matmul_skinny(a, trans_a, b, False, c, work)
    assert_bitwise_equal(c, expected)


@pytest.mark.parametrize("K", [1, 3, 4, 7, 8, 9, 17, 33])
@pytest.mark.parametrize("R", [16, 21, 35])
def test_transposing_packs_equal_elementwise_copies(dtype, K, R):
    # The packs of a transposed operand move whole blocks through transpose_block and
    # the rest (K's tail, a last strip past R) element by element.
    rows = np.random.default_rng(4).standard_normal((R, K)).astype(dtype)  # packed as (K, 16) panels
    columns = np.ascontiguousarray(rows.T)  # (K, R), packed as (16, K) strips
    for r0 in range(0, R, kernels.TILE):
        source = np.minimum(np.arange(r0, r0 + kernels.TILE), R - 1)
        panel = np.full((K, kernels.TILE), np.nan, dtype)
        kernels._pack_strip(rows, False, r0, panel)
        assert_bitwise_equal(panel, as_tiles_read(rows[source].T))
        strip = np.full((kernels.TILE, K), np.nan, dtype)
        kernels._pack_rows(columns, True, r0, strip)
        assert_bitwise_equal(strip, rows[source])


@pytest.mark.parametrize("features, vector_bytes", [("+avx2,+avx512f,+fma", 64), ("+avx2,-avx512f,+fma", 32),
                                                    ("+avx2,+avx512bw", 32), (None, None)])
def test_register_blocks_are_sized_for_the_cpu_numba_targets(monkeypatch, features, vector_bytes):
    # NUMBA_CPU_FEATURES (numba.config.CPU_FEATURES) overrides the host's own features;
    # only AVX-512 Foundation ("avx512f") means 64-byte registers.
    import llvmlite.binding

    monkeypatch.setattr(numba.config, "CPU_FEATURES", features)
    if vector_bytes is None:
        vector_bytes = 64 if llvmlite.binding.get_host_cpu_features().get("avx512f", False) else 32
    assert _config._host_vector_bytes() == vector_bytes


@pytest.mark.parametrize("M, N, trans_a", [(1, 1, False), (20, 18, False), (300, 10, True), (40, 3, True)])
def test_each_term_is_one_fused_multiply_add(dtype, M, N, trans_a):
    # Every element of C is x . y for the pair whose fused sum is eps'^2 and whose
    # separately rounded sum is 0; the shapes reach the tile blocks (float32 and
    # float64), partial tiles and the skinny kernel.
    x, y, expected = fused_pair(dtype)
    a = np.tile(x, (M, 1))
    c = matmul(np.ascontiguousarray(a.T) if trans_a else a, np.tile(y[:, None], (1, N)), trans_a=trans_a)
    assert (c == expected).all()
