"""relu / relu_backward against an elementwise float64 reference.

ReLU is a select, so float32 results must equal the reference bit for bit.
"""

import importlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from helpers import (
    assert_bitwise_equal,
    assert_thread_invariant,
    float64_instructions,
    scattered_extremes,
    validated_calls,
)
from numbanet import relu, relu_backward
from numbanet.kernels import relu as kernels
from numbanet.ops.relu import PARALLEL_MIN_SIZE

relu_module = importlib.import_module("numbanet.ops.relu")


def relu_reference(x):
    """max(x, 0) with NaN kept, element by element in Python floats."""
    flat = [v if (v != v or v > 0.0) else 0.0 for v in np.asarray(x, np.float64).ravel().tolist()]
    return np.array(flat, dtype=np.float64).reshape(np.shape(x))


def relu_backward_reference(dy, x):
    pairs = zip(np.asarray(dy, np.float64).ravel().tolist(), np.asarray(x, np.float64).ravel().tolist())
    flat = [d if v > 0.0 else (v if v != v else 0.0) for d, v in pairs]
    return np.array(flat, dtype=np.float64).reshape(np.shape(x))


def extreme_values(dtype):
    tiny = np.finfo(dtype).smallest_subnormal
    big = np.finfo(dtype).max
    return np.array(
        [0.0, -0.0, 1.0, -1.0, 1e4, -1e4, 1e30, -1e30, np.inf, -np.inf, np.nan, tiny, -tiny, big, -big],
        dtype=dtype,
    )


@pytest.mark.parametrize("shape", [(0,), (1,), (3,), (17,), (257,), (3, 17), (2, 3, 5), (0, 4)])
def test_relu_matches_reference(dtype, shape):
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    assert_bitwise_equal(relu(x), relu_reference(x).astype(dtype))


def test_relu_extreme_inputs(dtype):
    x = extreme_values(dtype)
    y = relu(x)
    assert_bitwise_equal(y, relu_reference(x).astype(dtype))
    assert np.isnan(y[10]) and y[8] == np.inf and y[9] == 0.0
    assert y[11] == np.finfo(dtype).smallest_subnormal  # denormal kept, not flushed
    assert not np.signbit(y[1])  # -0.0 -> +0.0


def test_relu_backward_matches_reference(dtype):
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.standard_normal(257).astype(dtype), extreme_values(dtype)])
    dy = rng.standard_normal(x.shape).astype(dtype)
    assert_bitwise_equal(relu_backward(dy, x), relu_backward_reference(dy, x).astype(dtype))


def test_relu_backward_nan_and_inf_go_only_where_they_belong(dtype):
    x = np.array([1.0, -1.0, 0.0, np.nan, 2.0, -2.0], dtype)
    dy = np.array([np.nan, np.nan, np.inf, 1.0, np.inf, -np.inf], dtype)
    dx = relu_backward(dy, x)
    assert np.isnan(dx[0])  # active unit passes dy's NaN
    assert dx[1] == 0.0 and dx[2] == 0.0 and dx[5] == 0.0  # inactive units block dy
    assert np.isnan(dx[3])  # NaN input: undefined slope
    assert dx[4] == np.inf


def test_relu_backward_central_differences():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((7, 11))
    x[np.abs(x) < 1e-2] = 0.5  # keep the kink out of the finite-difference stencil
    w = rng.standard_normal(x.shape)
    h = 1e-6
    numeric = np.empty_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        numeric[i] = (np.vdot(w, relu(xp)) - np.vdot(w, relu(xm))) / (2 * h)
    np.testing.assert_allclose(relu_backward(w, x), numeric, rtol=1e-7, atol=1e-9)


def test_strided_inputs(dtype):
    base = np.random.default_rng(4).standard_normal((34, 18)).astype(dtype)
    strided = base[::2, ::3]
    assert not strided.flags.c_contiguous
    assert_bitwise_equal(relu(strided), relu(np.ascontiguousarray(strided)))
    dy = base.T[::3, ::2]
    expected = relu_backward(np.ascontiguousarray(dy), strided.T.copy())
    assert_bitwise_equal(relu_backward(dy, strided.T), expected)


def test_python_lists_become_float64():
    y = relu([[-1.0, 2.0]])
    assert y.dtype == np.float64 and y.tolist() == [[0.0, 2.0]]


def test_out_is_returned_and_in_place_is_allowed(dtype):
    x = np.random.default_rng(5).standard_normal(257).astype(dtype)
    expected = relu_reference(x).astype(dtype)
    out = np.empty_like(x)
    assert relu(x, out=out) is out
    assert_bitwise_equal(out, expected)
    dy = np.random.default_rng(6).standard_normal(257).astype(dtype)
    expected_dx = relu_backward_reference(dy, x).astype(dtype)
    assert relu_backward(dy, x, out=dy) is dy
    assert_bitwise_equal(dy, expected_dx)
    assert relu(x, out=x) is x
    assert_bitwise_equal(x, expected)


@pytest.mark.parametrize("n", [1, 257, PARALLEL_MIN_SIZE + 17])
def test_in_place_loops_equal_the_out_of_place_ones(dtype, n):
    # In place the kernels run loops of their own over the one array (kernels/in_place.py).
    x, dy = scattered_extremes(dtype, n, seed=1), scattered_extremes(dtype, n, seed=2)
    y, dx = relu(x), relu_backward(dy, x)
    assert_bitwise_equal(y, relu_reference(x).astype(dtype))
    into_x = x.copy()
    assert_bitwise_equal(relu(into_x, out=into_x), y)
    into_dy = dy.copy()
    assert_bitwise_equal(relu_backward(into_dy, x, out=into_dy), dx)
    into_x = x.copy()
    assert_bitwise_equal(relu_backward(dy, into_x, out=into_x), dx)


def test_parallel_path_matches_serial_and_is_thread_invariant(dtype):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(PARALLEL_MIN_SIZE + 17).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    assert_thread_invariant(relu, x)
    assert_thread_invariant(relu_backward, dy, x)
    y = np.empty_like(x)
    kernels.relu_forward_serial(x, y)
    assert_bitwise_equal(relu(x), y)
    kernels.relu_backward_serial(dy, x, y)
    assert_bitwise_equal(relu_backward(dy, x), y)


@pytest.mark.filterwarnings("ignore:Inspection disabled for cached code")
def test_float32_kernels_stay_in_float32():
    # The serial loops hold the arithmetic and are checked directly: the parallel
    # kernels' IR omits callees that were loaded from Numba's cache.
    x = np.ones(5, np.float32)
    assert float64_instructions(kernels.relu_forward_serial, x, x.copy()) == []
    assert float64_instructions(kernels.relu_forward, x, x.copy()) == []
    assert float64_instructions(kernels.relu_backward_serial, x, x.copy(), x.copy()) == []
    assert float64_instructions(kernels.relu_backward, x, x.copy(), x.copy()) == []


@pytest.mark.parametrize("bad", [np.int64, np.bool_, np.complex128, np.float16, object])
def test_bad_dtype_is_type_error(bad):
    x = np.zeros(3, dtype=bad)
    with pytest.raises(TypeError, match="`x` must be float32 or float64"):
        relu(x)
    with pytest.raises(TypeError, match="`dy` must be float32 or float64"):
        relu_backward(x, np.zeros(3))


def test_bad_arguments():
    x = np.zeros(4)
    with pytest.raises(TypeError, match="share one float dtype"):
        relu_backward(np.zeros(4, np.float32), x)
    with pytest.raises(ValueError, match="same shape"):
        relu_backward(np.zeros(5), x)
    with pytest.raises(TypeError, match="`out` must have dtype float64"):
        relu(x, out=np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="`out` must have shape"):
        relu(x, out=np.zeros(5))
    with pytest.raises(ValueError, match="C-contiguous"):
        relu(x, out=np.zeros(8)[::2])
    with pytest.raises(TypeError, match="`out` must be a numpy array"):
        relu(x, out=[0.0] * 4)


def test_shifted_overlap_is_rejected():
    buffer = np.arange(-4.0, 5.0)
    with pytest.raises(ValueError, match="overlap"):
        relu(buffer[:-1], out=buffer[1:])
    with pytest.raises(ValueError, match="overlap"):
        relu_backward(buffer[1:], np.ones(8), out=buffer[:-1])


@given(hnp.arrays(np.float64, hnp.array_shapes(max_dims=2, max_side=9), elements=st.floats(allow_nan=False)))
def test_relu_splits_x_into_positive_and_negative_parts(x):
    y = relu(x)
    assert np.all(y >= 0)
    np.testing.assert_array_equal(y - relu(-x), x)
    np.testing.assert_array_equal(relu(y), y)


@pytest.mark.parametrize("shape", [(3, 17), (2, 3, 5)])
def test_fast_path_equals_the_validated_path(dtype, shape, monkeypatch):
    # Plain C-contiguous arrays skip the validation, with or without out= (in place
    # too); Fortran-ordered copies of the same values, or an out= that is an exact
    # alias but another object, take it to the same kernels.
    rng = np.random.default_rng(9)
    x = rng.standard_normal(shape).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    names = validated_calls(monkeypatch, relu_module)
    y, dx = relu(x), relu_backward(dy, x)
    out_y, out_dx = relu(x, out=np.empty_like(x)), relu_backward(dy, x, out=np.empty_like(x))
    in_place_y, in_place_dx = x.copy(), dy.copy()
    relu(in_place_y, out=in_place_y)
    relu_backward(in_place_dx, x, out=in_place_dx)
    assert names == []
    assert_bitwise_equal(y, relu_reference(x).astype(dtype))
    for fast in (out_y, in_place_y):
        assert_bitwise_equal(fast, y)
    for fast in (out_dx, in_place_dx):
        assert_bitwise_equal(fast, dx)
    assert_bitwise_equal(relu(np.asfortranarray(x)), y)
    assert_bitwise_equal(relu_backward(np.asfortranarray(dy), np.asfortranarray(x)), dx)
    alias = x.copy()
    relu(alias, out=alias[...])
    assert_bitwise_equal(alias, y)
    alias = dy.copy()
    relu_backward(alias, x, out=alias[...])
    assert_bitwise_equal(alias, dx)
    assert names == ["x", "dy", "x", "x", "dy", "x"]


def read_only(a):
    a.flags.writeable = False
    return a


def relu_in_place(x):
    return relu(x, out=x)


# Inputs that pass most of the fast paths' tests: each must still raise the full
# validation's error.
_X = np.ones((3, 4), np.float32)
_BUFFER = np.arange(-4.0, 9.0, dtype=np.float32)
ALMOST_VALID = [
    (lambda: relu(_X.astype(">f4")), TypeError, r"`x` must be float32 or float64\. Received: x\.dtype=>f4"),
    (lambda: relu(_X, out=np.empty((3, 4), ">f4")), TypeError, "`out` must have dtype float32"),
    (lambda: relu(_X, out=np.empty((4, 3), np.float32)), ValueError, "`out` must have shape"),
    (lambda: relu(_X, out=np.empty((3, 4), np.float32, order="F")), ValueError, "writeable C-contiguous"),
    (lambda: relu(_X, out=read_only(np.empty((3, 4), np.float32))), ValueError, "writeable C-contiguous"),
    (lambda: relu_in_place(read_only(_X.copy())), ValueError, "writeable C-contiguous"),
    (lambda: relu(_BUFFER[:12], out=_BUFFER[1:]), ValueError, "`out` must not overlap"),
    (lambda: relu_backward(_X.astype(">f4"), _X), TypeError, "`dy` must be float32 or float64"),
    (lambda: relu_backward(_X, _X.astype(">f4")), TypeError, "`x` must be float32 or float64"),
    (lambda: relu_backward(_X, _X.astype(np.float64)), TypeError, "share one float dtype"),
    (lambda: relu_backward(_X, _X.reshape(4, 3)), ValueError, "same shape"),
    (lambda: relu_backward(_X, _X, out=np.empty((3, 4), ">f4")), TypeError, "`out` must have dtype float32"),
    (lambda: relu_backward(_X, _X, out=np.empty((3, 4), np.float32, order="F")), ValueError, "C-contiguous"),
    (lambda: relu_backward(_X, _X, out=read_only(np.empty((3, 4), np.float32))), ValueError, "C-contiguous"),
    (lambda: relu_backward(_BUFFER[1:], _BUFFER[:12], out=_BUFFER[1:]), ValueError, "`out` must not overlap"),
    (lambda: relu_backward(_BUFFER[1:], _BUFFER[:12], out=_BUFFER[:12]), ValueError, "`out` must not overlap"),
]


@pytest.mark.parametrize("call, error, message", ALMOST_VALID)
def test_almost_valid_input_raises_the_validation_error(call, error, message):
    with pytest.raises(error, match=message):
        call()
