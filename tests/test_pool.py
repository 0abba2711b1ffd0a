"""max_pool2d and its gradient against loops over the windows in the test."""

import numpy as np
import pytest

from helpers import assert_bitwise_equal, assert_thread_invariant, float64_instructions
from numbanet.kernels import pool as kernels
from numbanet.ops.pool import max_pool2d, max_pool2d_backward


def reference_pool(x, S):
    """Max and gradient routing per window; np.argmax picks the first maximum or first NaN."""
    N, H, W, C = x.shape
    OH, OW = H // S, W // S
    y = np.empty((N, OH, OW, C), dtype=x.dtype)
    where = np.empty((N, OH, OW, C), dtype=np.intp)
    for n, i, j, c in np.ndindex(N, OH, OW, C):
        window = x[n, i * S : (i + 1) * S, j * S : (j + 1) * S, c].ravel()
        where[n, i, j, c] = np.argmax(window)
        y[n, i, j, c] = window[where[n, i, j, c]]
    return y, where


def reference_pool_backward(dy, x, S):
    _, where = reference_pool(x, S)
    dx = np.zeros_like(x)
    for n, i, j, c in np.ndindex(dy.shape):
        a, b = divmod(where[n, i, j, c], S)
        dx[n, i * S + a, j * S + b, c] = dy[n, i, j, c]
    return dx


@pytest.mark.parametrize(
    "shape, S",
    [((2, 4, 6, 3), 2), ((3, 7, 9, 5), 2), ((1, 17, 13, 1), 3), ((2, 5, 5, 2), 1), ((1, 3, 3, 4), 3), ((2, 26, 26, 32), 2)],
)
def test_forward_and_backward_match_reference(shape, S, dtype):
    rng = np.random.default_rng(shape[1])
    x = rng.standard_normal(shape).astype(dtype)
    y = max_pool2d(x, S)
    expected, _ = reference_pool(x, S)
    assert_bitwise_equal(y, expected)
    dy = rng.standard_normal(y.shape).astype(dtype)
    assert_bitwise_equal(max_pool2d_backward(dy, x, S), reference_pool_backward(dy, x, S))


def test_ties_go_to_the_first_maximum():
    x = np.zeros((1, 4, 4, 2))
    x[0, 0, 1, 0] = x[0, 1, 0, 0] = 5.0
    x[0, 2:, 2:, 1] = -np.inf
    dx = max_pool2d_backward(np.ones((1, 2, 2, 2)), x, 2)
    assert dx[0, 0, 1, 0] == 1 and dx[0, 1, 0, 0] == 0
    assert dx[0, 0, 0, 1] == 1 and dx[0, 2, 2, 1] == 1 and np.sum(dx) == 8
    assert max_pool2d(x, 2)[0, 1, 1, 1] == -np.inf


def test_nan_in_a_window_wins_and_takes_the_gradient(dtype):
    x = np.zeros((1, 2, 4, 1), dtype=dtype)
    x[0, :, :2, 0] = [[1.0, 9.0], [np.nan, np.nan]]
    x[0, :, 2:, 0] = [[np.inf, 2.0], [np.nan, -np.inf]]
    y = max_pool2d(x, 2)
    assert np.all(np.isnan(y))
    dx = max_pool2d_backward(np.array([[[[3.0], [4.0]]]], dtype=dtype), x, 2)
    assert_bitwise_equal(dx[0, :, :, 0], np.array([[0, 0, 0, 0], [3, 0, 4, 0]], dtype=dtype))


def test_gradient_by_central_differences():
    rng = np.random.default_rng(7)
    x = rng.permutation(2 * 7 * 5 * 3).reshape(2, 7, 5, 3) / 10.0  # distinct values: no ties
    g = rng.standard_normal(max_pool2d(x, 2).shape)
    numeric = np.empty_like(x)
    h = 1e-6
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + h
        up = np.sum(max_pool2d(x, 2) * g)
        x[i] = saved - h
        down = np.sum(max_pool2d(x, 2) * g)
        x[i] = saved
        numeric[i] = (up - down) / (2 * h)
    np.testing.assert_allclose(max_pool2d_backward(g, x, 2), numeric, rtol=1e-7, atol=1e-8)


def test_strided_inputs_and_out(dtype):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 10, 18, 6)).astype(dtype)[:, ::-1, ::2, 1::2]
    dy = rng.standard_normal((2, 3, 3, 6)).astype(dtype)[:, :, ::-1, ::2]
    xc, dyc = np.ascontiguousarray(x), np.ascontiguousarray(dy)
    out = np.empty((2, 3, 3, 3), dtype=dtype)
    assert max_pool2d(x, 3, out=out) is out
    assert_bitwise_equal(out, max_pool2d(xc, 3))
    dx = np.full(x.shape, np.nan, dtype=dtype)
    assert max_pool2d_backward(dy, x, 3, out=dx) is dx
    assert_bitwise_equal(dx, max_pool2d_backward(dyc, xc, 3))


def test_zero_size_batch(dtype):
    x = np.zeros((0, 4, 4, 2), dtype=dtype)
    assert max_pool2d(x).shape == (0, 2, 2, 2)
    assert max_pool2d_backward(np.zeros((0, 2, 2, 2), dtype=dtype), x).shape == x.shape


def test_thread_invariance():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((9, 7, 9, 5)).astype(np.float32)
    dy = rng.standard_normal((9, 3, 4, 5)).astype(np.float32)
    assert_thread_invariant(max_pool2d, x)
    assert_thread_invariant(max_pool2d_backward, dy, x)


def test_float32_kernels_never_widen_to_double():
    x = np.ones((2, 4, 4, 3), np.float32)
    y = np.empty((2, 2, 2, 3), np.float32)
    assert float64_instructions(kernels.max_pool2d_forward, x, 2, y) == []
    assert float64_instructions(kernels.max_pool2d_backward, y, x, 2, np.empty_like(x)) == []
    assert float64_instructions(kernels.max_pool2d_backward_2x2, y, x, np.empty_like(x)) == []


@pytest.mark.parametrize("shape", [(2, 5, 7, 3), (3, 4, 4, 17), (1, 2, 3, 1)])
def test_2x2_backward_kernel_equals_general_kernel(shape, dtype):
    # Ties, NaNs in several window positions and odd leftover rows/columns.
    rng = np.random.default_rng(shape[3])
    x = rng.standard_normal(shape).astype(dtype)
    x[0, 0, 0] = x[0, 0, 1]
    x[0, 1, 1, 0] = x[-1, 1, 0, -1] = x[-1, 0, 1, -1] = np.nan
    dy = rng.standard_normal((shape[0], shape[1] // 2, shape[2] // 2, shape[3])).astype(dtype)
    general, by_2x2 = np.full_like(x, np.nan), np.full_like(x, np.nan)
    kernels.max_pool2d_backward(dy, x, 2, general)
    kernels.max_pool2d_backward_2x2(dy, x, by_2x2)
    assert_bitwise_equal(by_2x2, general)


def test_bad_arguments_raise():
    x = np.ones((2, 4, 4, 1))
    with pytest.raises(TypeError, match=r"`x` must be float32 or float64\. Received: x\.dtype=uint8"):
        max_pool2d(x.astype(np.uint8))
    with pytest.raises(ValueError, match=r"`x` must be 4-D\. Received: x\.ndim=3"):
        max_pool2d(np.ones((2, 4, 4)))
    with pytest.raises(TypeError, match=r"`pool_size` must be an int\. Received: pool_size=2\.0"):
        max_pool2d(x, 2.0)
    with pytest.raises(ValueError, match=r"`pool_size` must be >= 1\. Received: pool_size=0"):
        max_pool2d(x, 0)
    with pytest.raises(ValueError, match=r"`x` must be at least pool_size x pool_size"):
        max_pool2d(x, 5)
    with pytest.raises(ValueError, match=r"`out` must have shape \(2, 2, 2, 1\)"):
        max_pool2d(x, out=np.empty((2, 2, 2, 2)))
    with pytest.raises(ValueError, match=r"`dy` must have the forward output's shape \(2, 2, 2, 1\)"):
        max_pool2d_backward(np.ones((2, 2, 1, 1)), x)
    with pytest.raises(TypeError, match=r"`dy`, `x` must share one float dtype"):
        max_pool2d_backward(np.ones((2, 2, 2, 1), np.float32), x)
