"""sigmoid, sigmoid_backward and binary cross-entropy from logits."""

import math

import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from helpers import EPS, assert_bitwise_equal, assert_thread_invariant, float64_instructions
from numbanet import binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_grad, sigmoid, sigmoid_backward
from numbanet.kernels import sigmoid as kernels

BCE_OPS = [binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_grad]


def expit(x):
    return scipy.special.expit(np.asarray(x, np.float64))


def assert_relative_close(y, ref, ulps):
    finite = np.isfinite(ref)
    np.testing.assert_array_equal(y[~finite], ref[~finite].astype(y.dtype))
    err = np.abs(y[finite] - ref[finite]) / np.maximum(np.abs(ref[finite]), np.finfo(y.dtype).smallest_normal)
    assert err.max(initial=0) <= ulps * EPS[y.dtype.type]


def test_matches_expit(dtype):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(1000) * 10, rng.uniform(-110, 110, 1000), np.linspace(-5, 5, 257)]).astype(dtype)
    assert_relative_close(sigmoid(x), expit(x), 4)


EXTREMES = [0.0, -0.0, 1e4, -1e4, 1e30, -1e30, 300, -300, 400, -400, 745, -745, np.inf, -np.inf, np.nan]


def test_extremes_match_expit(dtype):
    tiny = np.finfo(dtype).smallest_subnormal
    x = np.array(EXTREMES + [tiny, -tiny], dtype=dtype)
    assert_relative_close(sigmoid(x), expit(x), 4)


def test_huge_inputs_are_finite_and_in_range(dtype):
    y = sigmoid(np.array([1e30, -1e30], dtype=dtype))
    assert np.isfinite(y).all() and (0 <= y).all() and (y <= 1).all()
    np.testing.assert_array_equal(y, [1, 0])


@pytest.mark.parametrize("shape", [(), (0,), (1,), (3,), (17,), (257,), (3, 0), (2, 3, 5), (1, 17), (17, 1)])
def test_any_shape(dtype, shape):
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    y = sigmoid(x)
    assert y.shape == shape and y.dtype == dtype
    assert_relative_close(y.reshape(-1), expit(x).reshape(-1), 4)


def test_strided_input_equals_contiguous(dtype):
    base = np.random.default_rng(2).standard_normal((20, 34)).astype(dtype)
    for view in (base[:, ::2], base.T):
        assert_bitwise_equal(sigmoid(view), sigmoid(np.ascontiguousarray(view)))


def test_thread_invariant(dtype):
    x = np.random.default_rng(3).standard_normal(100_003).astype(dtype) * 20
    assert_thread_invariant(sigmoid, x)
    t = np.random.default_rng(4).uniform(0, 1, x.size).astype(dtype)
    assert_thread_invariant(binary_cross_entropy_with_logits, x, t)
    assert_thread_invariant(binary_cross_entropy_with_logits_grad, x, t)


@settings(max_examples=60, deadline=None)
@given(x=hnp.arrays(np.float64, st.integers(1, 50), elements=st.floats(allow_nan=False)), single=st.booleans())
def test_monotone(x, single):
    x = np.sort(np.clip(x, -3e38, 3e38).astype(np.float32) if single else x)
    y = sigmoid(x)
    assert (np.diff(y) >= 0).all() and (0 <= y).all() and (y <= 1).all()


def test_out_and_in_place(dtype):
    x = np.random.default_rng(5).standard_normal((4, 5)).astype(dtype)
    expected = sigmoid(x)
    out = np.empty_like(x)
    assert sigmoid(x, out=out) is out
    assert_bitwise_equal(out, expected)
    assert sigmoid(x, out=x) is x
    assert_bitwise_equal(x, expected)


def test_bad_inputs():
    for x in (np.ones(3, np.int32), np.ones(3, bool), np.ones(3, complex), np.ones(3, np.float16)):
        with pytest.raises(TypeError, match="`x`"):
            sigmoid(x)
    x = np.ones((2, 3))
    with pytest.raises(TypeError, match="`out`"):
        sigmoid(x, out=np.empty((2, 3), np.float32))
    with pytest.raises(ValueError, match="`out`"):
        sigmoid(x, out=np.empty(6))
    with pytest.raises(ValueError, match="`out`"):
        sigmoid(x, out=np.empty((2, 6))[:, ::2])
    with pytest.raises(ValueError, match="`out`"):
        buffer = np.ones(7)
        sigmoid(buffer[:6], out=buffer[1:])


def test_backward_matches_formula_and_central_differences(dtype):
    x = np.random.default_rng(6).standard_normal((3, 7)) * 4
    dy = np.random.default_rng(7).standard_normal((3, 7))
    y = sigmoid(x)
    numeric = (expit(x + 1e-6) - expit(x - 1e-6)) / 2e-6
    np.testing.assert_allclose(sigmoid_backward(dy, y), dy * numeric, rtol=1e-7, atol=1e-10)
    y32, dy32 = y.astype(dtype), dy.astype(dtype)
    ref = dy32.astype(np.float64) * y32 * (1 - y32.astype(np.float64))
    np.testing.assert_allclose(sigmoid_backward(dy32, y32), ref, rtol=4 * EPS[dtype], atol=0)


def test_zero_dimensional_inputs(dtype):
    x = np.array(2.0, dtype)
    assert sigmoid(x).shape == ()
    assert sigmoid_backward(x, x).shape == () and sigmoid_backward(x, x) == -2 * 2
    assert binary_cross_entropy_with_logits_grad(x, np.array(1.0, dtype)).shape == ()


def test_backward_out_in_place_and_errors(dtype):
    dy, y = np.full(5, 2, dtype), np.full(5, 0.5, dtype)
    assert sigmoid_backward(dy, y, out=dy) is dy
    np.testing.assert_array_equal(dy, 0.5)
    with pytest.raises(TypeError, match="`dy`, `y` must share one float dtype"):
        sigmoid_backward(np.ones(5, np.float32), np.ones(5))
    with pytest.raises(ValueError, match="must have the same shape"):
        sigmoid_backward(np.ones(5), np.ones(4))
    with pytest.raises(TypeError, match="`y`"):
        sigmoid_backward(np.ones(5), np.ones(5, np.int64))


def bce_reference(z, t):
    z, t = np.asarray(z, np.float64), np.asarray(t, np.float64)
    return math.fsum((np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))).ravel()) / z.size


@pytest.mark.parametrize("shape", [(1,), (17,), (3, 257)])
def test_bce_matches_reference(dtype, shape):
    rng = np.random.default_rng(8)
    z = (rng.standard_normal(shape) * 6).astype(dtype)
    t = rng.uniform(0, 1, shape).astype(dtype)
    loss = binary_cross_entropy_with_logits(z, t)
    assert type(loss) is np.float64
    assert abs(loss - bce_reference(z, t)) <= 8 * EPS[dtype] * max(bce_reference(z, t), 1)
    # the naive form agrees where it is safe
    p = expit(z)
    naive = -np.mean(t * np.log(p) + (1 - t) * np.log1p(-p))
    assert abs(loss - naive) <= 1e-5 if dtype == np.float32 else abs(loss - naive) <= 1e-9


def test_bce_extreme_logits(dtype):
    z = np.array([1e4, -1e4, 1e30, -1e30, 100, -100], dtype)
    t = np.array([1, 0, 1, 0, 0, 1], dtype)
    loss = binary_cross_entropy_with_logits(z, t)
    assert loss == pytest.approx(bce_reference(z, t), rel=8 * EPS[dtype])
    grad = binary_cross_entropy_with_logits_grad(z, t)
    np.testing.assert_allclose(grad, (expit(z) - t) / 6, rtol=4 * EPS[dtype], atol=1e-30)


def test_bce_nan_propagates_only_where_it_is(dtype):
    z = np.array([0.5, np.nan, -1], dtype)
    t = np.array([1, 0, 0], dtype)
    assert np.isnan(binary_cross_entropy_with_logits(z, t))
    grad = binary_cross_entropy_with_logits_grad(z, t)
    assert np.isnan(grad[1]) and np.isfinite(grad[[0, 2]]).all()


def test_bce_grad_central_differences():
    rng = np.random.default_rng(9)
    z, t = rng.standard_normal((3, 5)) * 3, rng.uniform(0, 1, (3, 5))
    numeric = np.empty_like(z)
    for idx in np.ndindex(z.shape):
        step = np.zeros_like(z)
        step[idx] = 1e-6
        numeric[idx] = (binary_cross_entropy_with_logits(z + step, t) - binary_cross_entropy_with_logits(z - step, t)) / 2e-6
    np.testing.assert_allclose(binary_cross_entropy_with_logits_grad(z, t), numeric, rtol=1e-6, atol=1e-10)


def test_bce_grad_out(dtype):
    z, t = np.array([0.0, 2.0], dtype), np.array([1.0, 0.0], dtype)
    expected = binary_cross_entropy_with_logits_grad(z, t)
    out = np.empty_like(z)
    assert binary_cross_entropy_with_logits_grad(z, t, out=out) is out
    assert_bitwise_equal(out, expected)
    assert binary_cross_entropy_with_logits_grad(z, t, out=z) is z
    assert_bitwise_equal(z, expected)


def test_bce_zero_size(dtype):
    z = np.empty((0, 3), dtype)
    assert np.isnan(binary_cross_entropy_with_logits(z, z))
    assert binary_cross_entropy_with_logits_grad(z, z).shape == (0, 3)


@pytest.mark.parametrize("op", BCE_OPS)
def test_bce_bad_inputs(op):
    with pytest.raises(TypeError, match="`logits`, `targets` must share one float dtype"):
        op(np.zeros(3, np.float32), np.zeros(3))
    with pytest.raises(TypeError, match="`targets`"):
        op(np.zeros(3), np.zeros(3, np.int64))
    with pytest.raises(TypeError, match="`logits`"):
        op(np.zeros(3, bool), np.zeros(3))
    with pytest.raises(ValueError, match="must have the same shape"):
        op(np.zeros(3), np.zeros((3, 1)))
    with pytest.raises(ValueError, match=r"`targets` must lie in \[0, 1\]"):
        op(np.zeros(3), np.array([0, 1.5, 1]))
    with pytest.raises(ValueError, match=r"`targets` must lie in \[0, 1\]"):
        op(np.zeros(3), np.array([0, -0.1, 1]))


@pytest.mark.parametrize(
    "kernel, n_args",
    [(kernels.sigmoid_forward, 2), (kernels.sigmoid_backward, 3), (kernels.bce_with_logits_forward, 3)],
)
def test_float32_kernels_stay_float32(kernel, n_args):
    x = np.ones(5, np.float32)
    assert float64_instructions(kernel, *[x] * n_args) == []


def test_bce_backward_kernel_stays_float32():
    x = np.ones(5, np.float32)
    assert float64_instructions(kernels.bce_with_logits_backward, x, x, np.float32(1), x) == []
