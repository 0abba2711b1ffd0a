"""conv2d and its gradients against scipy.signal.correlate2d in float64."""

import numpy as np
import pytest
from scipy.signal import correlate2d

from helpers import EPS, assert_bitwise_equal, assert_thread_invariant, float64_instructions, fused_pair
from numbanet.kernels import conv as kernels
from numbanet.ops.conv import (
    conv2d,
    conv2d_backward_bias,
    conv2d_backward_input,
    conv2d_backward_weight,
    conv2d_output_shape,
)

# (N, H, W, C, F, KH, KW, stride): 1x1 kernels, 1 channel, prime sizes, strides 2 and 3,
# and counts of positions, taps and channels on both sides of the kernels' 4 x 16,
# 2 x 32, 3 x 32 and 6 x 16 tiles.
GEOMETRIES = [
    (2, 7, 9, 2, 5, 3, 3, 1),
    (3, 17, 13, 1, 17, 3, 3, 1),
    (2, 11, 8, 3, 16, 2, 3, 2),
    (1, 10, 11, 5, 7, 3, 2, 3),
    (2, 5, 7, 4, 3, 1, 1, 1),
    (1, 3, 3, 1, 1, 3, 3, 1),
    (9, 6, 6, 17, 33, 3, 3, 1),
    (10, 5, 6, 1, 35, 2, 2, 1),
]


def _pad_same(x, KH, KW):
    top, left = (KH - 1) // 2, (KW - 1) // 2
    return np.pad(x, ((0, 0), (top, KH - 1 - top), (left, KW - 1 - left), (0, 0)))


def reference_conv(x, w, b, stride, padding="valid"):
    """float64 correlation, one scipy.signal.correlate2d per (image, in, out) channel."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    KH, KW, C, F = w.shape
    if padding == "same":
        x = _pad_same(x, KH, KW)
    y = None
    for n in range(x.shape[0]):
        for f in range(F):
            plane = sum(correlate2d(x[n, :, :, c], w[:, :, c, f], mode="valid") for c in range(C))
            plane = plane[::stride, ::stride] + float(b[f])
            if y is None:
                y = np.empty((x.shape[0],) + plane.shape + (F,))
            y[n, :, :, f] = plane
    return y


def reference_backward(dy, x, w, stride):
    """float64 dx and dw of a valid correlation, one loop iteration per tap."""
    dy, x, w = (np.asarray(a, np.float64) for a in (dy, x, w))
    KH, KW = w.shape[:2]
    OH, OW = dy.shape[1:3]
    dx, dw = np.zeros_like(x), np.zeros_like(w)
    for kh in range(KH):
        for kw in range(KW):
            rows = slice(kh, kh + (OH - 1) * stride + 1, stride)
            cols = slice(kw, kw + (OW - 1) * stride + 1, stride)
            for c in range(x.shape[3]):
                for f in range(w.shape[3]):
                    dx[:, rows, cols, c] += dy[..., f] * w[kh, kw, c, f]
                    dw[kh, kw, c, f] = np.sum(x[:, rows, cols, c] * dy[..., f], dtype=np.float64)
    return dx, dw


def _random(rng, shape, dtype, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


def _assert_close(actual, expected, bound, dtype):
    assert actual.dtype == dtype
    assert actual.shape == expected.shape
    excess = np.abs(actual - expected) - bound
    assert np.all(excess <= 0), f"max excess {excess.max()}"


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_forward_matches_scipy(geometry, scale, dtype):
    N, H, W, C, F, KH, KW, s = geometry
    rng = np.random.default_rng(sum(geometry))
    x, w, b = _random(rng, (N, H, W, C), dtype, scale), _random(rng, (KH, KW, C, F), dtype), _random(rng, F, dtype)
    y = conv2d(x, w, b, stride=s)
    expected = reference_conv(x, w, b, s)
    bound = 2 * (KH * KW * C + 1) * EPS[dtype] * reference_conv(np.abs(x), np.abs(w), np.abs(b), s)
    _assert_close(y, expected, bound, dtype)


@pytest.mark.parametrize("kernel_size", [(1, 1), (2, 2), (3, 3), (4, 3), (5, 5)])
def test_same_padding_matches_scipy(kernel_size, dtype):
    KH, KW = kernel_size
    rng = np.random.default_rng(KH * 10 + KW)
    x, w, b = _random(rng, (2, 7, 6, 3), dtype), _random(rng, (KH, KW, 3, 4), dtype), _random(rng, 4, dtype)
    y = conv2d(x, w, b, padding="same")
    assert y.shape == (2, 7, 6, 4)
    bound = 2 * (KH * KW * 3 + 1) * EPS[dtype] * reference_conv(np.abs(x), np.abs(w), np.abs(b), 1, "same")
    _assert_close(y, reference_conv(x, w, b, 1, "same"), bound, dtype)


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_register_blocked_forward_equals_naive_loop(geometry, dtype):
    # Both tiles (4 x 16 and 2 x 32), whichever the op picks for the channel count.
    N, H, W, C, F, KH, KW, s = geometry
    rng = np.random.default_rng(1)
    x, w, b = _random(rng, (N, H, W, C), dtype), _random(rng, (KH, KW, C, F), dtype), _random(rng, F, dtype)
    naive = np.empty(conv2d_output_shape(x.shape, w.shape, stride=s), dtype=dtype)
    kernels.conv2d_forward_naive(x, w, b, s, naive)
    assert_bitwise_equal(conv2d(x, w, b, stride=s), naive)
    for forward in (kernels.conv2d_forward, kernels.conv2d_forward_wide):
        y = np.full_like(naive, np.nan)
        forward(x.reshape(N, H, W * C), w.reshape(KH, KW * C, F), b, C, s, y)
        assert_bitwise_equal(y, naive)


@pytest.mark.parametrize("KH, KW, C, F", [(3, 3, 17, 33), (3, 3, 32, 16), (3, 3, 32, 64), (2, 2, 1, 35), (2, 3, 2, 15)])
def test_weight_gradient_kernels_are_bit_identical(KH, KW, C, F, dtype):
    # The kernels add each element's terms in the same order, so which one the op
    # picks (by machine and channel count) never changes a result. The 16 x 16 channel
    # tile is checked in float32 only, as before, which keeps its long compile out of
    # the float64 cases.
    rng = np.random.default_rng(7)
    x, dy = _random(rng, (9, 6, 7, C), dtype), _random(rng, (9, 7 - KH, 8 - KW, F), dtype)
    tiled = [kernels.conv2d_backward_weight_avx2]
    if dtype == np.float32:
        tiled.append(kernels.conv2d_backward_weight_channels)
    by_taps = np.full((2, KH, KW, C, F), np.nan, dtype)
    kernels.conv2d_backward_weight(x, dy, 1, by_taps)
    for weight_kernel in tiled:
        dw_chunks = np.full_like(by_taps, np.nan)
        weight_kernel(x, dy, 1, dw_chunks)
        assert_bitwise_equal(dw_chunks, by_taps)
    by_rows = np.full_like(by_taps, np.nan)
    kernels.conv2d_backward_weight_rows(x.reshape(9, 6, 7 * C), dy, C, 1, by_rows.reshape(2, KH, KW * C, F))
    assert_bitwise_equal(by_rows, by_taps)


def _tap_matrix(w):
    """w (KH, KW, C, F) as the taps kernel's (F, K16): w.reshape(K, F).T, zero-padded to 16 columns."""
    KH, KW, C, F = w.shape
    K = KH * KW * C
    wk = np.zeros((F, -(-K // 16) * 16), w.dtype)
    wk[:, :K] = w.reshape(K, F).T
    return wk


# Beyond GEOMETRIES: more than 16 taps (3 x 3 x 3, 5 x 5 x 1: two tap tiles), tiles of
# 4 positions across several output rows (OW = 2, 1), 15 channels, 32 and 33 channels.
INPUT_GRADIENT_GEOMETRIES = GEOMETRIES + [
    (2, 9, 8, 3, 6, 3, 3, 1),
    (2, 9, 9, 1, 4, 5, 5, 2),
    (3, 4, 4, 2, 3, 3, 3, 1),
    (2, 9, 3, 2, 5, 2, 3, 1),
    (2, 8, 9, 15, 17, 3, 3, 2),
    (3, 7, 6, 32, 5, 3, 2, 1),
    (2, 9, 8, 33, 4, 2, 2, 2),
]


@pytest.mark.parametrize("geometry", INPUT_GRADIENT_GEOMETRIES)
def test_input_gradient_kernels_are_bit_identical(geometry, dtype):
    # AVX2's float64 kernel (2-position tiles) and the few-channel kernel (tiles over
    # taps, positions in descending order) add each element's terms in the same order
    # as the 4-position x 16-channel one, which the op's choice never changes.
    N, H, W, C, F, KH, KW, s = geometry
    rng = np.random.default_rng(8)
    w = _random(rng, (KH, KW, C, F), dtype)
    wt = np.ascontiguousarray(w.transpose(0, 1, 3, 2))
    dy = _random(rng, conv2d_output_shape((N, H, W, C), w.shape, stride=s), dtype)
    by_4, by_2, by_taps = (np.full((N, H, W, C), np.nan, dtype) for _ in range(3))
    kernels.conv2d_backward_input(dy, wt, s, by_4)
    kernels.conv2d_backward_input_avx2(dy, wt, s, by_2)
    wk = _tap_matrix(w)
    sums = np.empty((N, 4, wk.shape[1]), dtype)
    kernels.conv2d_backward_input_taps(dy, wk, KH, KW, C, s, by_taps.reshape(N, H, W * C), sums)
    assert_bitwise_equal(by_2, by_4)
    assert_bitwise_equal(by_taps, by_4)
    assert_bitwise_equal(conv2d_backward_input(dy, w, (N, H, W, C), stride=s), by_4)


@pytest.mark.parametrize("channels", [1, 3])
def test_input_gradient_same_padding_is_the_padded_valid_gradient(channels, dtype):
    # padding="same" runs the kernel on the padded input and crops it.
    rng = np.random.default_rng(9)
    w = _random(rng, (3, 3, channels, 5), dtype)
    dy = _random(rng, (2, 7, 6, 5), dtype)
    padded = conv2d_backward_input(dy, w, (2, 9, 8, channels))
    assert_bitwise_equal(conv2d_backward_input(dy, w, (2, 7, 6, channels), padding="same"), padded[:, 1:8, 1:7])


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_backward_matches_float64_reference(geometry, dtype):
    N, H, W, C, F, KH, KW, s = geometry
    rng = np.random.default_rng(2)
    x, w = _random(rng, (N, H, W, C), dtype), _random(rng, (KH, KW, C, F), dtype)
    dy = _random(rng, conv2d_output_shape(x.shape, w.shape, stride=s), dtype)
    dx_ref, dw_ref = reference_backward(dy, x, w, s)
    dx_bound, dw_bound = reference_backward(np.abs(dy), np.abs(x), np.abs(w), s)
    dx = conv2d_backward_input(dy, w, x.shape, stride=s)
    dw = conv2d_backward_weight(dy, x, w.shape, stride=s)
    db = conv2d_backward_bias(dy)
    _assert_close(dx, dx_ref, 2 * KH * KW * F * EPS[dtype] * dx_bound, dtype)
    _assert_close(dw, dw_ref, 2 * dy[..., 0].size * EPS[dtype] * dw_bound, dtype)
    db_ref = np.array([np.sum(dy[..., f], dtype=np.float64) for f in range(F)])
    db_bound = np.array([np.sum(np.abs(dy[..., f]), dtype=np.float64) for f in range(F)])
    _assert_close(db, db_ref, 2 * dy[..., 0].size * EPS[dtype] * db_bound, dtype)


@pytest.mark.parametrize("stride, padding", [(1, "valid"), (2, "valid"), (1, "same")])
def test_gradients_by_central_differences(stride, padding):
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((2, 5, 6, 2)), rng.standard_normal((3, 2, 2, 3)), rng.standard_normal(3)
    g = rng.standard_normal(conv2d_output_shape(x.shape, w.shape, stride=stride, padding=padding))

    def loss(x, w, b):
        return np.sum(conv2d(x, w, b, stride=stride, padding=padding) * g)

    def numeric(array, h=1e-5):
        grad = np.empty_like(array)
        for i in np.ndindex(array.shape):
            saved = array[i]
            array[i] = saved + h
            up = loss(x, w, b)
            array[i] = saved - h
            down = loss(x, w, b)
            array[i] = saved
            grad[i] = (up - down) / (2 * h)
        return grad

    options = {"stride": stride, "padding": padding}
    np.testing.assert_allclose(conv2d_backward_input(g, w, x.shape, **options), numeric(x), rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(conv2d_backward_weight(g, x, w.shape, **options), numeric(w), rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(conv2d_backward_bias(g), numeric(b), rtol=1e-7, atol=1e-8)


def test_stride_leaves_unread_inputs_with_zero_gradient():
    x = np.ones((1, 6, 6, 1))
    w = np.ones((2, 2, 1, 1))
    dy = np.ones(conv2d_output_shape(x.shape, w.shape, stride=3))
    dx = conv2d_backward_input(dy, w, x.shape, stride=3)
    read = np.zeros((6, 6))
    read[np.ix_([0, 1, 3, 4], [0, 1, 3, 4])] = 1
    assert_bitwise_equal(dx[0, :, :, 0], read)


def test_nan_and_inf_reach_only_the_outputs_that_read_them(dtype):
    x = np.ones((2, 6, 7, 2), dtype=dtype)
    x[0, 2, 3, 1] = np.nan
    x[1, 5, 6, 0] = np.inf
    w = np.ones((3, 3, 2, 4), dtype=dtype)
    y = conv2d(x, w)
    nan_windows = np.zeros(y.shape[1:3], dtype=bool)
    nan_windows[0:3, 1:4] = True
    assert np.all(np.isnan(y[0][nan_windows])) and np.all(y[0][~nan_windows] == 18)
    assert np.all(np.isposinf(y[1, 3, 4])) and np.sum(np.isinf(y[1])) == 4


def test_zero_size_batch(dtype):
    x = np.zeros((0, 5, 5, 2), dtype=dtype)
    w = np.ones((3, 3, 2, 4), dtype=dtype)
    assert conv2d(x, w).shape == (0, 3, 3, 4)
    dy = np.zeros((0, 3, 3, 4), dtype=dtype)
    assert conv2d_backward_input(dy, w, x.shape).shape == x.shape
    assert_bitwise_equal(conv2d_backward_weight(dy, x, w.shape), np.zeros_like(w))
    assert_bitwise_equal(conv2d_backward_bias(dy), np.zeros(4, dtype))


def test_strided_inputs_equal_contiguous_copies(dtype):
    rng = np.random.default_rng(4)
    x = _random(rng, (3, 14, 9, 6), dtype)[:, ::2, :, ::2]
    w = _random(rng, (3, 4, 3, 3), dtype).transpose(1, 0, 2, 3)
    dy = _random(rng, conv2d_output_shape(x.shape, w.shape), dtype)[:, :, ::-1]
    xc, wc, dyc = (np.ascontiguousarray(a) for a in (x, w, dy))
    assert_bitwise_equal(conv2d(x, w), conv2d(xc, wc))
    assert_bitwise_equal(conv2d_backward_input(dy, w, x.shape), conv2d_backward_input(dyc, wc, x.shape))
    assert_bitwise_equal(conv2d_backward_weight(dy, x, w.shape), conv2d_backward_weight(dyc, xc, w.shape))
    assert_bitwise_equal(conv2d_backward_bias(dy), conv2d_backward_bias(dyc))


def test_out_is_written_and_returned(dtype):
    rng = np.random.default_rng(5)
    x, w, b = _random(rng, (2, 6, 6, 3), dtype), _random(rng, (3, 3, 3, 4), dtype), _random(rng, 4, dtype)
    dy = _random(rng, (2, 4, 4, 4), dtype)
    for op, args, shape in [
        (conv2d, (x, w, b), dy.shape),
        (conv2d_backward_input, (dy, w, x.shape), x.shape),
        (conv2d_backward_weight, (dy, x, w.shape), w.shape),
        (conv2d_backward_bias, (dy,), b.shape),
    ]:
        out = np.full(shape, np.nan, dtype=dtype)
        assert op(*args, out=out) is out
        assert_bitwise_equal(out, op(*args))


def test_thread_invariance():
    rng = np.random.default_rng(6)
    x, w, b = _random(rng, (21, 9, 8, 5), np.float32), _random(rng, (3, 3, 5, 6), np.float32), _random(rng, 6, np.float32)
    dy = _random(rng, (21, 7, 6, 6), np.float32)
    assert_thread_invariant(conv2d, x, w, b)
    assert_thread_invariant(conv2d_backward_input, dy, w, x.shape)
    assert_thread_invariant(conv2d_backward_input, dy, w[:, :, :1], (21, 9, 8, 1))
    assert_thread_invariant(conv2d_backward_weight, dy, x, w.shape)
    assert_thread_invariant(conv2d_backward_bias, dy)


def test_float32_kernels_never_widen_to_double():
    f32 = np.float32
    x, w, b = np.ones((2, 5, 5, 3), f32), np.ones((3, 3, 3, 4), f32), np.ones(4, f32)
    y = np.empty((2, 3, 3, 4), f32)
    for forward in (kernels.conv2d_forward, kernels.conv2d_forward_wide):
        assert float64_instructions(forward, x.reshape(2, 5, 15), w.reshape(3, 9, 4), b, 3, 1, y) == []
    assert float64_instructions(kernels.conv2d_backward_input, y, np.ones((3, 3, 4, 3), f32), 1, x) == []
    assert float64_instructions(kernels.conv2d_backward_input_avx2, y, np.ones((3, 3, 4, 3), f32), 1, x) == []
    wk, sums = np.ones((4, 32), f32), np.empty((2, 4, 32), f32)
    assert float64_instructions(kernels.conv2d_backward_input_taps, y, wk, 3, 3, 3, 1, x.reshape(2, 5, 15), sums) == []
    dw_chunks = np.empty((1, 3, 3, 3, 4), f32)
    assert float64_instructions(kernels.conv2d_backward_weight, x, y, 1, dw_chunks) == []
    assert float64_instructions(kernels.conv2d_backward_weight_channels, x, y, 1, dw_chunks) == []
    assert float64_instructions(kernels.conv2d_backward_weight_avx2, x, y, 1, dw_chunks) == []
    assert float64_instructions(kernels.conv2d_backward_weight_rows, x.reshape(2, 5, 15), y, 3, 1, dw_chunks.reshape(1, 3, 9, 4)) == []
    assert float64_instructions(kernels.sum_weight_chunks, dw_chunks, w) == []
    assert float64_instructions(kernels.conv2d_backward_bias, y, np.empty((1, 4), f32), b) == []


@pytest.mark.parametrize(
    "x_shape, w_shape, options, match",
    [
        ((2, 5, 5), (3, 3, 1, 2), {}, r"`x` must be 4-D\. Received: x\.ndim=3"),
        ((2, 5, 5, 1), (3, 3, 2), {}, r"`w` must be 4-D"),
        ((2, 5, 5, 3), (3, 3, 2, 4), {}, r"`w` must have in_channels=3 .* w\.shape=\(3, 3, 2, 4\)"),
        ((2, 2, 5, 1), (3, 3, 1, 4), {}, r"`x` must be at least as large as the kernel"),
        ((2, 5, 5, 1), (0, 3, 1, 4), {}, r"`w` must have a kernel of at least 1x1"),
        ((2, 5, 5, 1), (3, 3, 1, 4), {"stride": 0}, r"`stride` must be >= 1\. Received: stride=0"),
        ((2, 5, 5, 1), (3, 3, 1, 4), {"padding": "full"}, r"`padding` must be 'valid' or 'same'\. Received: padding='full'"),
        ((2, 5, 5, 1), (3, 3, 1, 4), {"padding": "same", "stride": 2}, r"padding='same' requires stride=1\. Received: stride=2"),
    ],
)
def test_bad_shapes_and_options_raise_value_error(x_shape, w_shape, options, match):
    with pytest.raises(ValueError, match=match):
        conv2d(np.ones(x_shape), np.ones(w_shape), **options)


def test_bad_arguments_raise():
    x, w = np.ones((2, 5, 5, 1)), np.ones((3, 3, 1, 4))
    with pytest.raises(TypeError, match=r"`x` must be float32 or float64\. Received: x\.dtype=int64"):
        conv2d(np.ones((2, 5, 5, 1), dtype=np.int64), w)
    with pytest.raises(TypeError, match=r"`x`, `w` must share one float dtype"):
        conv2d(x.astype(np.float32), w)
    with pytest.raises(TypeError, match=r"`x`, `b` must share one float dtype"):
        conv2d(x, w, np.ones(4, np.float32))
    with pytest.raises(ValueError, match=r"`b` must have length out_channels=4\. Received: b\.shape=\(3,\)"):
        conv2d(x, w, np.ones(3))
    with pytest.raises(TypeError, match=r"`stride` must be an int\. Received: stride=1\.5"):
        conv2d(x, w, stride=1.5)
    with pytest.raises(ValueError, match=r"`out` must have shape \(2, 3, 3, 4\)"):
        conv2d(x, w, out=np.empty((2, 3, 3, 3)))
    with pytest.raises(TypeError, match=r"`out` must have dtype float64"):
        conv2d(x, w, out=np.empty((2, 3, 3, 4), np.float32))
    dy = np.ones((2, 3, 3, 4))
    with pytest.raises(ValueError, match=r"`dy` must have the forward output's shape \(2, 2, 2, 4\)"):
        conv2d_backward_input(dy, w, x.shape, stride=2)
    with pytest.raises(ValueError, match=r"`x_shape` must be a tuple of 4 non-negative ints"):
        conv2d_backward_input(dy, w, (2, 5, 5))
    with pytest.raises(ValueError, match=r"`w_shape` must be a tuple of 4 non-negative ints"):
        conv2d_backward_weight(dy, x, (3, 3, 1, 4.0))
    with pytest.raises(ValueError, match=r"`dy` must be 4-D"):
        conv2d_backward_bias(np.ones((2, 4)))


@pytest.mark.parametrize("channels_out", [1, 16, 32])
def test_each_tap_is_one_fused_multiply_add(dtype, channels_out):
    # A 1 x 1 convolution over 2 channels is x . y per output, with the pair whose
    # fused sum is eps'^2 and whose separately rounded sum is 0: the forward's plain
    # loop (F = 1) and both tiles (16 and 32 output channels), and the weight gradient.
    x, y, expected = fused_pair(dtype)
    images = np.tile(x, (2, 5, 6, 1))
    w = np.tile(y[None, None, :, None], (1, 1, 1, channels_out))
    assert (conv2d(images, w) == expected).all()
    dy = np.zeros((2, 5, 6, channels_out), dtype)
    dy[0, 0, 0], dy[0, 0, 1] = -(1 + 2 * (x[1] - 1)), x[1]
    taps = np.zeros((2, 5, 6, 2), dtype)
    taps[0, 0, 0], taps[0, 0, 1] = 1, x[1]
    assert (conv2d_backward_weight(dy, taps, w.shape)[0, 0, 0] == expected).all()


@pytest.mark.parametrize("channels_in", [1, 2, 16])
def test_input_gradient_adds_each_term_by_one_fused_multiply_add(dtype, channels_in):
    # dx[n, i, j, c] of a 1 x 1 convolution with 2 output channels is dy . w[c]: the
    # pair whose fused sum is eps'^2 and whose separately rounded sum is 0, for the
    # few-channel kernel's tiles (1 and 2 channels) and the 16-channel tile.
    x, y, expected = fused_pair(dtype)
    dy = np.tile(x, (2, 5, 6, 1))
    w = np.tile(y[None, None, None, :], (1, 1, channels_in, 1))
    assert (conv2d_backward_input(dy, w, (2, 5, 6, channels_in)) == expected).all()
