"""bias_add / bias_grad against float64 references (exact sums, math.fsum)."""

import importlib
import math

import numpy as np
import pytest

from helpers import (
    EPS,
    assert_bitwise_equal,
    assert_thread_invariant,
    float64_instructions,
    scattered_extremes,
    validated_calls,
)
from numbanet import bias_add, bias_grad, bias_relu, bias_relu_backward, relu, relu_backward
from numbanet.kernels import bias as kernels
from numbanet.ops.bias import PARALLEL_MIN_SIZE

bias_module = importlib.import_module("numbanet.ops.bias")

SHAPES = [(0, 3), (1, 1), (3, 17), (17, 3), (257, 5), (600, 1), (3, 0)]


def column_fsums(dy):
    """Correctly rounded float64 column sums."""
    dy = np.asarray(dy, np.float64)
    return np.array([math.fsum(dy[:, c]) for c in range(dy.shape[1])])


def assert_column_sums_close(db, dy):
    """Neumaier's bound, ``eps |S| + N eps**2 sum |dy|``, with a factor 2 of slack."""
    eps = EPS[db.dtype.type]
    exact = column_fsums(dy)
    magnitude = column_fsums(np.abs(np.asarray(dy, np.float64)))
    bound = 2 * (eps * np.abs(exact) + dy.shape[0] * eps**2 * magnitude)
    bound += np.finfo(db.dtype).smallest_subnormal
    assert np.all(np.abs(db.astype(np.float64) - exact) <= bound)


@pytest.mark.parametrize("shape", SHAPES)
def test_bias_add_is_correctly_rounded(dtype, shape):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(dtype)
    b = rng.standard_normal(shape[1]).astype(dtype)
    # A float64 sum of two float32 values is exact, so rounding it once is the reference.
    exact = x.astype(np.float64) + b.astype(np.float64)[None, :]
    expected = exact.astype(dtype) if dtype == np.float32 else exact
    assert_bitwise_equal(bias_add(x, b), expected)


@pytest.mark.parametrize("shape", SHAPES)
def test_bias_grad_matches_fsum(dtype, shape):
    dy = np.random.default_rng(2).standard_normal(shape).astype(dtype) * dtype(1e4)
    db = bias_grad(dy)
    assert db.shape == (shape[1],) and db.dtype == dtype
    assert_column_sums_close(db, dy)


def test_bias_grad_compensation_recovers_small_terms():
    # A plain float32 column sum stays at 1e8 (each 0.1 is below half an ulp of 1e8).
    dy = np.full((1001, 2), 0.1, np.float32)
    dy[0] = 1e8
    dy[500, 1] = -1e8  # cancellation in the middle of the second column
    db = bias_grad(dy)
    assert_column_sums_close(db, dy)
    assert abs(float(db[0]) - (1e8 + 1000 * float(np.float32(0.1)))) <= 8  # one float32 ulp at 1e8


def test_bias_grad_across_many_blocks(dtype):
    rng = np.random.default_rng(3)
    dy = (rng.standard_normal((5 * kernels.ROWS + 3, 4)) * np.logspace(-8, 8, 4)).astype(dtype)
    assert_column_sums_close(bias_grad(dy), dy)


def test_bias_grad_non_finite_stays_in_its_column(dtype):
    big = np.finfo(dtype).max
    tiny = np.finfo(dtype).smallest_subnormal
    dy = np.ones((300, 6), dtype)
    dy[7, 0] = np.inf
    dy[9, 1] = np.inf
    dy[290, 1] = -np.inf
    dy[100, 2] = np.nan
    dy[:2, 3] = big  # the running sum overflows
    dy[:, 4] = tiny  # denormals sum exactly
    db = bias_grad(dy)
    assert db[0] == np.inf
    assert np.isnan(db[1]) and np.isnan(db[2])
    assert db[3] == np.inf
    assert db[4] == dtype(300) * tiny
    assert db[5] == 300.0


def test_bias_grad_extreme_finite_values(dtype):
    dy = np.array([[1e30, 1e4], [-1e30, -1e4], [1.0, 3.0]], dtype)
    assert_bitwise_equal(bias_grad(dy), np.array([1.0, 3.0], dtype))


def test_bias_add_extreme_values(dtype):
    x = np.array([[1e30, np.inf, np.nan, 1.0, np.finfo(dtype).max]], dtype)
    b = np.array([-1e30, -np.inf, 0.0, np.finfo(dtype).smallest_subnormal, np.finfo(dtype).max], dtype)
    y = bias_add(x, b)
    assert y[0, 0] == 0.0 and np.isnan(y[0, 1]) and np.isnan(y[0, 2])
    assert y[0, 3] == 1.0 and y[0, 4] == np.inf


def test_bias_grad_is_the_gradient_of_bias_add():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((9, 5))
    b = rng.standard_normal(5)
    w = rng.standard_normal((9, 5))
    h = 1e-6
    numeric = np.empty_like(b)
    for c in range(b.size):
        bp, bm = b.copy(), b.copy()
        bp[c] += h
        bm[c] -= h
        numeric[c] = (np.vdot(w, bias_add(x, bp)) - np.vdot(w, bias_add(x, bm))) / (2 * h)
    np.testing.assert_allclose(bias_grad(w), numeric, rtol=1e-7, atol=1e-9)


def test_strided_inputs(dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((40, 18)).astype(dtype)[::2, ::3]
    b = rng.standard_normal(12).astype(dtype)[::2]
    assert_bitwise_equal(bias_add(x, b), bias_add(x.copy(), b.copy()))
    assert_bitwise_equal(bias_grad(x.T), bias_grad(x.T.copy()))


def test_python_lists_become_float64():
    assert bias_add([[1.0, 2.0]], [0.5, 0.25]).tolist() == [[1.5, 2.25]]
    assert bias_grad([[1.0, 2.0], [3.0, 4.0]]).dtype == np.float64


def test_out_and_in_place(dtype):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((17, 3)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    expected = bias_add(x, b)
    out = np.empty_like(x)
    assert bias_add(x, b, out=out) is out
    assert_bitwise_equal(out, expected)
    assert bias_add(x, b, out=x) is x
    assert_bitwise_equal(x, expected)
    db = np.empty(3, dtype)
    assert bias_grad(x, out=db) is db
    assert_bitwise_equal(db, bias_grad(x))


@pytest.mark.parametrize("rows", [1, 17, PARALLEL_MIN_SIZE // 257 + 3])
def test_in_place_loop_equals_the_out_of_place_one(dtype, rows):
    # In place the kernel runs a loop of its own over the one array (kernels/in_place.py).
    x = scattered_extremes(dtype, (rows, 257), seed=3)
    b = scattered_extremes(dtype, 257, seed=4)
    with np.errstate(invalid="ignore", over="ignore"):
        expected = x + b
    assert_bitwise_equal(bias_add(x, b), expected)
    in_place = x.copy()
    assert_bitwise_equal(bias_add(in_place, b, out=in_place), expected)


def test_parallel_paths_match_serial_and_are_thread_invariant(dtype):
    rng = np.random.default_rng(7)
    dy = rng.standard_normal((PARALLEL_MIN_SIZE // 257 + 3, 257)).astype(dtype)
    b = rng.standard_normal(257).astype(dtype)
    assert_thread_invariant(bias_add, dy, b)
    assert_thread_invariant(bias_grad, dy)
    db = np.empty(257, dtype)
    kernels.bias_add_backward_serial(dy, db, np.empty((2 * (-(-dy.shape[0] // kernels.ROWS)) + 1, 257), dtype))
    assert_bitwise_equal(bias_grad(dy), db)
    y = np.empty_like(dy)
    kernels.bias_add_forward_serial(dy, b, y)
    assert_bitwise_equal(bias_add(dy, b), y)


@pytest.mark.filterwarnings("ignore:Inspection disabled for cached code")
def test_float32_kernels_stay_in_float32():
    # The serial loops hold the arithmetic and are checked directly: the parallel
    # kernels' IR omits callees that were loaded from Numba's cache.
    x = np.ones((3, 4), np.float32)
    b = np.ones(4, np.float32)
    for forward in (kernels.bias_add_forward_serial, kernels.bias_add_forward):
        assert float64_instructions(forward, x, b, x.copy()) == []
    for backward in (kernels.bias_add_backward_serial, kernels.bias_add_backward):
        assert float64_instructions(backward, x, b, np.empty((3, 4), np.float32)) == []
    assert float64_instructions(kernels.column_sums_block, x, b, b.copy()) == []
    assert float64_instructions(kernels.bias_relu_forward_serial, x, b, x.copy()) == []
    assert float64_instructions(kernels.relu_column_sums_block, x, x.copy(), x.copy(), b, b.copy()) == []
    work = np.empty((3, 4), np.float32)
    assert float64_instructions(kernels.bias_relu_backward_serial, x, x.copy(), x.copy(), b, work) == []
    assert float64_instructions(kernels.combine_column_sums, x, x.copy(), b, b.copy()) == []


def test_bad_arguments():
    x = np.ones((3, 4))
    b = np.ones(4)
    for bad in (np.int64, np.bool_, np.complex128, np.float16, object):
        with pytest.raises(TypeError, match="`x` must be float32 or float64"):
            bias_add(x.astype(bad), b)
        with pytest.raises(TypeError, match="`b` must be float32 or float64"):
            bias_add(x, b.astype(bad))
        with pytest.raises(TypeError, match="`dy` must be float32 or float64"):
            bias_grad(x.astype(bad))
    with pytest.raises(TypeError, match="share one float dtype"):
        bias_add(x, b.astype(np.float32))
    with pytest.raises(ValueError, match="`x` must be 2-D"):
        bias_add(b, b)
    with pytest.raises(ValueError, match="`b` must be 1-D"):
        bias_add(x, x)
    with pytest.raises(ValueError, match=r"`b` must have shape \(x.shape\[1\],\) = \(4,\)"):
        bias_add(x, np.ones(3))
    with pytest.raises(ValueError, match="`dy` must be 2-D"):
        bias_grad(b)
    with pytest.raises(ValueError, match="`out` must have shape"):
        bias_add(x, b, out=np.ones((4, 3)))
    with pytest.raises(TypeError, match="`out` must have dtype"):
        bias_grad(x, out=np.ones(4, np.float32))
    with pytest.raises(ValueError, match="`out` must have shape"):
        bias_grad(x, out=np.ones(3))
    with pytest.raises(ValueError, match="C-contiguous"):
        bias_grad(x, out=np.ones(8)[::2])


def test_overlapping_out_is_rejected():
    buffer = np.ones(20)
    x = buffer[:12].reshape(3, 4)
    with pytest.raises(ValueError, match="overlap"):
        bias_add(x, np.ones(4), out=buffer[4:16].reshape(3, 4))
    b = buffer[:4]
    with pytest.raises(ValueError, match="overlap"):
        bias_add(np.ones((1, 4)), b, out=b.reshape(1, 4))
    with pytest.raises(ValueError, match="overlap"):
        bias_grad(x, out=buffer[:4])


def test_bias_add_fast_path_equals_the_validated_path(dtype, monkeypatch):
    # Plain C-contiguous x and b skip the validation, with or without out= (in place
    # too); a Fortran-ordered copy of x, or an out= that is an exact alias but another
    # object, takes it to the same kernel.
    rng = np.random.default_rng(10)
    x = rng.standard_normal((17, 3)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    names = validated_calls(monkeypatch, bias_module)
    y = bias_add(x, b)
    out = bias_add(x, b, out=np.empty_like(x))
    in_place = x.copy()
    bias_add(in_place, b, out=in_place)
    assert names == []
    assert_bitwise_equal(y, (x.astype(np.float64) + b).astype(dtype))
    assert_bitwise_equal(out, y)
    assert_bitwise_equal(in_place, y)
    assert_bitwise_equal(bias_add(np.asfortranarray(x), b), y)
    alias = x.copy()
    bias_add(alias, b, out=alias[...])
    assert_bitwise_equal(alias, y)
    assert names == ["x", "b", "x", "b"]


def read_only(a):
    a.flags.writeable = False
    return a


def add_in_place(x, b):
    return bias_add(x, b, out=x)


# Inputs that pass most of the fast path's tests: each must still raise the full
# validation's error.
_X = np.ones((3, 4), np.float32)
_B = np.ones(4, np.float32)
_BUFFER = np.ones(20, np.float32)
ALMOST_VALID = [
    (lambda: bias_add(_X.astype(">f4"), _B), TypeError, r"`x` must be float32 or float64\. Received: x\.dtype=>f4"),
    (lambda: bias_add(_X, _B.astype(">f4")), TypeError, "`b` must be float32 or float64"),
    (lambda: bias_add(_X, _B.astype(np.float64)), TypeError, "share one float dtype"),
    (lambda: bias_add(_X, np.ones(3, np.float32)), ValueError, r"`b` must have shape \(x.shape\[1\],\)"),
    (lambda: bias_add(_X, _X), ValueError, "`b` must be 1-D"),
    (lambda: bias_add(_B, _B), ValueError, "`x` must be 2-D"),
    (lambda: bias_add(_X, _B, out=np.empty((3, 4), ">f4")), TypeError, "`out` must have dtype float32"),
    (lambda: bias_add(_X, _B, out=np.empty((4, 3), np.float32)), ValueError, "`out` must have shape"),
    (lambda: bias_add(_X, _B, out=np.empty((3, 4), np.float32, order="F")), ValueError, "C-contiguous"),
    (lambda: bias_add(_X, _B, out=read_only(np.empty((3, 4), np.float32))), ValueError, "C-contiguous"),
    (lambda: add_in_place(read_only(_X.copy()), _B), ValueError, "C-contiguous"),
    (lambda: bias_add(_BUFFER[:12].reshape(3, 4), _B, out=_BUFFER[4:16].reshape(3, 4)), ValueError, "overlap"),
    (lambda: bias_add(_X, _BUFFER[:4], out=_BUFFER[:12].reshape(3, 4)), ValueError, "overlap"),
    (lambda: add_in_place(_BUFFER[:12].reshape(3, 4), _BUFFER[8:12]), ValueError, "overlap"),
]


@pytest.mark.parametrize("call, error, message", ALMOST_VALID)
def test_almost_valid_input_raises_the_validation_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ----------------------------------------------------------------- bias_relu (fused)


def relu_of(z):
    """max(z, 0) with NaN kept, in z's dtype (the relu op's contract, by numpy)."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isnan(z) | (z > 0), z, z.dtype.type(0))


@pytest.mark.parametrize("shape", SHAPES)
def test_bias_relu_is_relu_of_the_correctly_rounded_sum(dtype, shape):
    rng = np.random.default_rng(11)
    x = rng.standard_normal(shape).astype(dtype)
    b = rng.standard_normal(shape[1]).astype(dtype)
    exact = x.astype(np.float64) + b.astype(np.float64)[None, :]
    assert_bitwise_equal(bias_relu(x, b), relu_of(exact.astype(dtype)))


@pytest.mark.parametrize("rows", [1, 17, PARALLEL_MIN_SIZE // 257 + 3])
def test_bias_relu_equals_bias_add_then_relu_also_in_place(dtype, rows):
    x = scattered_extremes(dtype, (rows, 257), seed=12)
    b = scattered_extremes(dtype, 257, seed=13)
    expected = relu(bias_add(x, b))
    assert np.any(np.isnan(expected)) and np.any(expected == np.inf)
    assert_bitwise_equal(bias_relu(x, b), expected)
    out = np.empty_like(x)
    assert bias_relu(x, b, out=out) is out
    assert_bitwise_equal(out, expected)
    assert bias_relu(x, b, out=x) is x
    assert_bitwise_equal(x, expected)


def reference_relu_backward(dy, y):
    """dx = dy where y > 0, 0 where y <= 0, NaN where y is NaN; float64 fsum column sums."""
    with np.errstate(invalid="ignore"):
        dx = np.where(y > 0, dy, np.where(np.isnan(y), y, y.dtype.type(0)))
    return dx, column_fsums(dx)


@pytest.mark.parametrize("shape", SHAPES + [(5 * 256 + 3, 4)])
def test_bias_relu_backward_masks_and_sums_the_columns(dtype, shape):
    rng = np.random.default_rng(14)
    dy = (rng.standard_normal(shape) * 1e3).astype(dtype)
    y = relu_of(rng.standard_normal(shape).astype(dtype))
    dx, db = bias_relu_backward(dy, y)
    expected_dx, _ = reference_relu_backward(dy, y)
    assert_bitwise_equal(dx, expected_dx)
    assert db.shape == (shape[1],) and db.dtype == dtype
    assert_column_sums_close(db, expected_dx)


@pytest.mark.parametrize("rows", [1, 300, PARALLEL_MIN_SIZE // 257 + 3])
def test_bias_relu_backward_equals_relu_backward_then_bias_grad(dtype, rows):
    z = scattered_extremes(dtype, (rows, 257), seed=15)
    dy = scattered_extremes(dtype, (rows, 257), seed=16)
    y = relu(z)
    expected_dx = relu_backward(dy, z)
    expected_db = bias_grad(expected_dx)
    dx, db = bias_relu_backward(dy, y)
    assert_bitwise_equal(dx, expected_dx)
    assert_same_bits_but_nan_payloads(db, expected_db)
    out, bias_out = np.empty_like(dy), np.empty(257, dtype)
    returned = bias_relu_backward(dy, y, out=out, bias_out=bias_out)
    assert returned[0] is out and returned[1] is bias_out
    assert_bitwise_equal(out, expected_dx)
    assert_same_bits_but_nan_payloads(bias_out, expected_db)


def assert_same_bits_but_nan_payloads(a, b):
    """NaN where the other is NaN (x86 passes on the first operand's sign and payload,
    which two compilations of one sum may order differently), the same bits elsewhere."""
    nan = np.isnan(a)
    np.testing.assert_array_equal(nan, np.isnan(b))
    assert_bitwise_equal(a[~nan], b[~nan])


def test_bias_relu_backward_lets_a_nan_through_only_where_the_unit_was_active(dtype):
    y = np.array([[1.0, 0.0, np.nan, 2.0]], dtype)
    dy = np.array([[np.nan, np.inf, 1.0, -0.0]], dtype)
    dx, db = bias_relu_backward(dy, y)
    assert np.isnan(dx[0, 0]) and dx[0, 1] == 0 and np.isnan(dx[0, 2])
    assert dx[0, 3] == 0 and np.signbit(dx[0, 3])  # -0.0 passes as it is
    np.testing.assert_array_equal(db, dx[0])  # one row: the sums are the row (+0.0 for -0.0)


def test_fused_parallel_paths_match_serial_and_are_thread_invariant(dtype):
    rng = np.random.default_rng(17)
    x = rng.standard_normal((PARALLEL_MIN_SIZE // 257 + 3, 257)).astype(dtype)
    b = rng.standard_normal(257).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    assert_thread_invariant(bias_relu, x, b)
    assert_thread_invariant(bias_relu_backward, dy, bias_relu(x, b))
    y = np.empty_like(x)
    kernels.bias_relu_forward_serial(x, b, y)
    assert_bitwise_equal(bias_relu(x, b), y)


def test_fused_ops_reject_bad_arguments():
    x = np.ones((3, 4))
    b = np.ones(4)
    with pytest.raises(TypeError, match="`x` must be float32 or float64"):
        bias_relu(x.astype(np.int64), b)
    with pytest.raises(ValueError, match=r"`b` must have shape \(x.shape\[1\],\) = \(4,\)"):
        bias_relu(x, np.ones(3))
    with pytest.raises(ValueError, match="overlap"):
        bias_relu(np.ones((1, 4)), b, out=b.reshape(1, 4))
    with pytest.raises(TypeError, match="`y` must be float32 or float64"):
        bias_relu_backward(x, x.astype(np.int32))
    with pytest.raises(TypeError, match="share one float dtype"):
        bias_relu_backward(x, x.astype(np.float32))
    with pytest.raises(ValueError, match="`dy` must be 2-D"):
        bias_relu_backward(b, b)
    with pytest.raises(ValueError, match="same shape"):
        bias_relu_backward(x, np.ones((4, 3)))
    with pytest.raises(ValueError, match="`out` must not overlap"):
        bias_relu_backward(x, x.copy(), out=x)
    with pytest.raises(ValueError, match="`bias_out` must have shape"):
        bias_relu_backward(x, x.copy(), bias_out=np.ones(3))
    buffer = np.ones(16)
    dx = buffer[:12].reshape(3, 4)
    with pytest.raises(ValueError, match="`bias_out` must not overlap"):
        bias_relu_backward(x, x.copy(), out=dx, bias_out=buffer[8:12])
