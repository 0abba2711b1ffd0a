"""softmax / log_softmax against scipy.special in float64."""

import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from helpers import EPS, assert_bitwise_equal, assert_thread_invariant, float64_instructions
from numbanet import log_softmax, softmax
from numbanet.kernels import softmax as kernels
from numbanet.ops.softmax import SERIAL_MAX_SIZE

OPS = {"softmax": (softmax, scipy.special.softmax), "log_softmax": (log_softmax, scipy.special.log_softmax)}


def tolerance(dtype, k):
    """Bound on |y - y_ref| / max(|y_ref|, 1): exp and log errors plus a sum of k terms."""
    return 4 * EPS[dtype] * (2 + np.log2(max(k, 1)))


def reference(name, x):
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return OPS[name][1](np.asarray(x, dtype=np.float64), axis=-1)


def assert_close_to_reference(name, x, y):
    ref = reference(name, x)
    assert y.dtype == x.dtype and y.shape == x.shape
    finite = np.isfinite(ref)
    np.testing.assert_array_equal(y[~finite], ref[~finite].astype(x.dtype))  # inf/NaN exactly
    err = np.abs(y[finite] - ref[finite]) / np.maximum(np.abs(ref[finite]), 1)
    assert err.max(initial=0) <= tolerance(x.dtype.type, x.shape[-1])


@pytest.fixture(params=sorted(OPS))
def name(request):
    return request.param


@pytest.mark.parametrize("shape", [(1,), (3,), (17,), (257,), (1, 1), (1, 17), (17, 1), (3, 257), (257, 3), (40, 1000)])
def test_matches_scipy(name, dtype, shape):
    x = (np.random.default_rng(0).standard_normal(shape) * 5).astype(dtype)
    assert_close_to_reference(name, x, OPS[name][0](x))


def test_serial_and_parallel_paths_agree(name, dtype):
    x = np.random.default_rng(1).standard_normal((64, 300)).astype(dtype)
    assert x.size > SERIAL_MAX_SIZE
    parallel = OPS[name][0](x)
    serial = np.empty_like(x)
    getattr(kernels, f"{name}_forward_serial")(x, serial)
    assert_bitwise_equal(parallel, serial)


@pytest.mark.parametrize("k", [1, 2, 10, 15])
def test_short_rows_equal_the_row_kernels(name, dtype, k):
    # Rows of K < 16 take the block-of-rows kernels; they must give the row kernels'
    # bits, special values included.
    x = (np.random.default_rng(6).standard_normal((300, k)) * 5).astype(dtype)
    x[1, 0], x[2, :], x[3, -1], x[4, 0] = np.inf, -np.inf, np.nan, -np.inf
    expected = np.empty_like(x)
    getattr(kernels, f"{name}_forward_serial")(x, expected)
    assert_bitwise_equal(OPS[name][0](x), expected)
    short = np.empty_like(x)
    work = np.full(kernels.short_rows_work_shape(*x.shape, True), np.nan, dtype)  # scratch is written before read
    getattr(kernels, f"{name}_forward_short")(x, short, work)
    assert_bitwise_equal(short, expected)


def test_short_rows_serial_and_parallel_paths_agree(name, dtype):
    x = np.random.default_rng(7).standard_normal((2000, 10)).astype(dtype)
    assert x.size > SERIAL_MAX_SIZE
    serial = np.empty_like(x)
    getattr(kernels, f"{name}_forward_short_serial")(x, serial, np.full(kernels.short_rows_work_shape(*x.shape, False), np.nan, dtype))
    assert_bitwise_equal(OPS[name][0](x), serial)
    assert_thread_invariant(OPS[name][0], x)


def test_thread_invariant(name, dtype):
    x = np.random.default_rng(2).standard_normal((64, 301)).astype(dtype)
    assert_thread_invariant(OPS[name][0], x)


def test_issue_examples(dtype):
    np.testing.assert_allclose(softmax(np.array([1000, 1001, 999], dtype=dtype)), [0.245, 0.665, 0.090], atol=5e-4)
    y = log_softmax(np.array([1000, 0], dtype=dtype))
    assert np.isfinite(y).all()
    np.testing.assert_array_equal(y, [0, -1000])


@pytest.mark.parametrize(
    "row",
    [
        [1e4, -1e4, 0],
        [1e30, -1e30, 0],
        [-1e30, -1e30, -1e30],
        [np.inf, 0, 1],
        [-np.inf, 0, 1],
        [-np.inf, -np.inf, -np.inf],
        [np.nan, 0, 1],
        [np.inf, np.nan, 0],
        [np.inf, -np.inf, 0],
        [np.inf, np.inf, 0],
    ],
)
@pytest.mark.parametrize("k", [3, kernels.SUM_LANES + 3])
def test_extreme_and_nonfinite_rows_match_scipy(name, dtype, row, k):
    # Longer rows put the special entries among the sum's lanes and its tail (and the
    # max's 16 lanes and tail); rows of K = 3 take the short-row kernels.
    x = np.zeros((2, k), dtype=dtype)
    x[0, [0, 7, kernels.SUM_LANES + 1] if k > 3 else [0, 1, 2]] = row
    y = OPS[name][0](x)
    assert_close_to_reference(name, x, y)
    np.testing.assert_array_equal(y[1], OPS[name][0](np.zeros(k, dtype)))  # other rows untouched


def test_denormal_inputs_give_uniform_rows(name, dtype):
    x = np.full((2, 5), np.finfo(dtype).smallest_subnormal, dtype=dtype)
    x[1] *= -1
    assert_close_to_reference(name, x, OPS[name][0](x))


@pytest.mark.parametrize("shape", [(0,), (0, 5), (3, 0)])
def test_zero_size(name, dtype, shape):
    y = OPS[name][0](np.empty(shape, dtype=dtype))
    assert y.shape == shape and y.dtype == dtype


def test_strided_input_equals_contiguous(name, dtype):
    base = np.random.default_rng(3).standard_normal((20, 34)).astype(dtype)
    for view in (base[:, ::2], base.T[:17], base[::3]):
        assert not view.flags.c_contiguous
        assert_bitwise_equal(OPS[name][0](view), OPS[name][0](np.ascontiguousarray(view)))


def test_python_list_is_float64(name):
    assert OPS[name][0]([[1, 2], [3, 4]]).dtype == np.float64


def test_axis_last_is_accepted(name, dtype):
    x = np.random.default_rng(4).standard_normal((3, 5)).astype(dtype)
    expected = OPS[name][0](x)
    assert_bitwise_equal(OPS[name][0](x, axis=1), expected)
    assert_bitwise_equal(OPS[name][0](x, axis=np.int64(-1)), expected)
    assert_bitwise_equal(OPS[name][0](x[0], axis=0), OPS[name][0](x[0]))


@pytest.mark.parametrize("ndim, axis", [(2, 0), (2, -2), (2, 2), (1, 1), (1, -2), (2, 1.0), (2, -1.0), (2, True), (2, None)])
def test_bad_axis(name, ndim, axis):
    with pytest.raises(ValueError, match="`axis`"):
        OPS[name][0](np.ones((2,) * ndim), axis=axis)


@pytest.mark.parametrize("x", [np.ones(3, np.int64), np.ones(3, bool), np.ones(3, complex), np.ones(3, np.float16), np.array([1.0, None]),
                               np.ones((2, 3), ">f4"), np.ones((2, 3), np.int32)])
def test_bad_dtype(name, x):
    with pytest.raises(TypeError, match="`x`"):
        OPS[name][0](x)


@pytest.mark.parametrize("shape", [(), (2, 3, 4)])
def test_bad_ndim(name, shape):
    with pytest.raises(ValueError, match=r"`x` must be 1-D or 2-D"):
        OPS[name][0](np.ones(shape))


def test_out_is_written_and_returned(name, dtype):
    x = np.random.default_rng(5).standard_normal((4, 9)).astype(dtype)
    out = np.empty_like(x)
    assert OPS[name][0](x, out=out) is out
    assert_bitwise_equal(out, OPS[name][0](x))


def test_bad_out(name):
    x = np.ones((4, 6))
    with pytest.raises(TypeError, match="`out`"):
        OPS[name][0](x, out=np.empty((4, 6), np.float32))
    with pytest.raises(ValueError, match="`out`"):
        OPS[name][0](x, out=np.empty((6, 4)))
    with pytest.raises(ValueError, match="`out`"):
        OPS[name][0](x, out=np.empty((4, 12))[:, ::2])
    with pytest.raises(ValueError, match="`out`"):
        OPS[name][0](x, out=x)


finite_rows = hnp.arrays(
    np.float64,
    st.tuples(st.integers(1, 5), st.integers(1, 40)),
    elements=st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=60, deadline=None)
@given(x=finite_rows, single=st.booleans())
def test_softmax_rows_are_finite_and_sum_to_one(x, single):
    x = np.clip(x, -1e30, 1e30).astype(np.float32) if single else x
    y = softmax(x)
    assert np.isfinite(y).all() and (y >= 0).all() and (y <= 1).all()
    np.testing.assert_allclose(y.astype(np.float64).sum(axis=1), 1, rtol=0, atol=x.shape[1] * EPS[y.dtype.type])


@settings(max_examples=60, deadline=None)
@given(x=finite_rows)
def test_log_softmax_is_finite_and_nonpositive(x):
    y = log_softmax(x)
    assert np.isfinite(y).all() and (y <= 0).all()


@pytest.mark.parametrize("kernel", [kernels.softmax_forward, kernels.softmax_forward_serial, kernels.log_softmax_forward, kernels.log_softmax_forward_serial])
def test_float32_kernels_stay_float32(kernel):
    x = np.ones((2, 3), np.float32)
    assert float64_instructions(kernel, x, x.copy()) == []


@pytest.mark.parametrize("kernel", [kernels.softmax_forward_short, kernels.softmax_forward_short_serial,
                                    kernels.log_softmax_forward_short, kernels.log_softmax_forward_short_serial])
def test_float32_short_row_kernels_stay_float32(kernel):
    x = np.ones((2, 3), np.float32)
    assert float64_instructions(kernel, x, x.copy(), np.empty(kernels.short_rows_work_shape(2, 3, True), np.float32)) == []


@pytest.mark.parametrize("shape", [(128, 10), (3, 257), (64, 300)])
def test_fast_path_equals_the_validated_path(name, dtype, shape):
    # A C-contiguous 2-D array with the default axis and no out skips validation; an
    # explicit axis, out= or a 1-D row take the full path to the same kernels.
    x = np.random.default_rng(8).standard_normal(shape).astype(dtype)
    fast = OPS[name][0](x)
    assert_bitwise_equal(OPS[name][0](x, axis=1), fast)
    assert_bitwise_equal(OPS[name][0](x, out=np.empty_like(x)), fast)
    assert_bitwise_equal(OPS[name][0](x[1]), fast[1])
