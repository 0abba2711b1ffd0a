"""2-D convolution (cross-correlation, like Keras and torch) and its gradients.

Images are NHWC (batch, height, width, channels); weights use the Keras layout
(kernel_h, kernel_w, in_channels, out_channels). ``padding="valid"`` uses only
windows inside the image; ``padding="same"`` (stride 1 only) zero-pads so the output
has the input's height and width, with the odd pixel of padding at the bottom and
right like TensorFlow.
"""

import numbers

import numpy as np

from numbanet._config import VECTOR_BYTES
from numbanet.kernels import conv as kernels
from numbanet.ops._validate import as_float_array, check_out, common_dtype, scratch

# Input channels from which the forward tiles 4 positions x 16 channels instead of
# 2 x 32, and the weight gradient tiles 16 x 16 channels (AVX-512) or 6 taps of a
# window row x 16 channels (AVX2) instead of 4 or 3 taps, each with its own row of x.
CHANNEL_TILE = 16

__all__ = [
    "conv2d",
    "conv2d_backward_input",
    "conv2d_backward_weight",
    "conv2d_backward_bias",
    "conv2d_output_shape",
]


def conv2d_output_shape(x_shape, w_shape, *, stride=1, padding="valid"):
    """Shape (N, OH, OW, F) of ``conv2d`` for inputs of ``x_shape`` and weights of ``w_shape``.

    ``OH = (H - KH) // stride + 1`` for ``"valid"``, ``OH = H`` for ``"same"``.

    Raises
    ------
    ValueError
        For shapes that are not 4-D, mismatched channels, a kernel larger than the
        image under ``"valid"``, a bad ``stride`` or ``padding``.
    """
    x_shape = _shape4(x_shape, "x")
    w_shape = _shape4(w_shape, "w")
    stride = _check_stride(stride)
    padding = _check_padding(padding, stride)
    N, H, W, C = x_shape
    KH, KW, CW, F = w_shape
    if KH < 1 or KW < 1:
        raise ValueError(f"`w` must have a kernel of at least 1x1. Received: w.shape={w_shape}")
    if CW != C:
        raise ValueError(
            f"`w` must have in_channels={C} to match `x` (N, H, W, C). "
            f"Received: x.shape={x_shape}, w.shape={w_shape}"
        )
    if padding == "same":
        return (N, H, W, F)
    if H < KH or W < KW:
        raise ValueError(
            f"`x` must be at least as large as the kernel under padding='valid'. "
            f"Received: x.shape={x_shape}, w.shape={w_shape}"
        )
    return (N, (H - KH) // stride + 1, (W - KW) // stride + 1, F)


def conv2d(x, w, b=None, *, stride=1, padding="valid", out=None):
    """y[n, i, j, f] = b[f] + sum_{kh, kw, c} x[n, i*s + kh, j*s + kw, c] * w[kh, kw, c, f].

    Direct convolution that reads x in place (no im2col copy) with tiles of sums held
    in registers (4 positions x 16 channels; 2 x 32 below 16 input channels), adding
    each output's taps in order.

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C), float32 or float64
    w : ndarray, shape (KH, KW, C, F), same dtype (Keras layout)
    b : ndarray, shape (F,), same dtype, optional (zero when omitted)
    stride : int >= 1, keyword-only
    padding : {"valid", "same"}, keyword-only; "same" requires stride 1
    out : ndarray, shape ``conv2d_output_shape(...)``, optional

    Returns
    -------
    ndarray, shape (N, OH, OW, F)
        The array written (``out`` when given).

    Raises
    ------
    TypeError
        For a non-float or mixed dtype, or a non-integer stride.
    ValueError
        For wrong ndim or shapes, a bad ``stride``/``padding`` or a bad ``out``.

    Notes
    -----
    Each output is one dot product of length K = KH*KW*C added term by term in
    float32 or float64 (error ~ K * eps * sum |x||w|); bit-identical for any thread
    count.
    """
    x = as_float_array(x, "x", ndim=4)
    w = as_float_array(w, "w", ndim=4)
    dtype = common_dtype(x=x, w=w)
    shape = conv2d_output_shape(x.shape, w.shape, stride=stride, padding=padding)
    if b is None:
        b = np.zeros(shape[3], dtype=dtype)
    else:
        b = as_float_array(b, "b", ndim=1)
        common_dtype(x=x, b=b)
        if b.shape[0] != shape[3]:
            raise ValueError(
                f"`b` must have length out_channels={shape[3]}. Received: b.shape={b.shape}"
            )
    out = check_out(out, shape, dtype, x, w, b)
    if padding == "same":
        x = _pad_same(x, w.shape)
    # Few input channels make short window rows, where a tile's setup per row of x
    # dominates: 2 neighbouring positions x 32 channels share one row of x per tap row.
    KH, KW, C, F = w.shape
    forward = kernels.conv2d_forward_wide if C < CHANNEL_TILE else kernels.conv2d_forward
    forward(_window_rows(x), w.reshape(KH, KW * C, F), b, C, stride, out)
    return out


def conv2d_backward_input(dy, w, x_shape, *, stride=1, padding="valid", out=None):
    """dx[n, i*s + kh, j*s + kw, c] += sum_f dy[n, i, j, f] * w[kh, kw, c, f] (gradient of conv2d w.r.t. x).

    Per tap a register-tiled matmul of dy with w[kh, kw]^T (transposed once per
    call; 4-position x 16-channel tiles, 2 x 16 in float64 on AVX2), added into the
    shifted input positions; below 16 input channels, tiles of 4 positions x 16 taps
    (kh, kw, c) instead. One image per task.

    Parameters
    ----------
    dy : ndarray, shape ``conv2d_output_shape(x_shape, w.shape, ...)``
    w : ndarray, shape (KH, KW, C, F), same dtype
    x_shape : tuple of 4 ints, the shape (N, H, W, C) of the forward input
    stride, padding : as given to ``conv2d``
    out : ndarray, shape ``x_shape``, optional

    Returns
    -------
    ndarray, shape ``x_shape``
        The array written (``out`` when given); 0 at inputs no window reads.

    Raises
    ------
    TypeError, ValueError
        As ``conv2d``; ``ValueError`` also when ``dy`` does not have the forward
        output's shape.

    Notes
    -----
    Each dx element adds, tap by tap in (kh, kw) order, that tap's sum over f;
    bit-identical for any thread count.
    """
    dy = as_float_array(dy, "dy", ndim=4)
    w = as_float_array(w, "w", ndim=4)
    dtype = common_dtype(dy=dy, w=w)
    x_shape = _shape4(x_shape, "x_shape")
    _check_dy(dy, x_shape, w.shape, stride, padding)
    out = check_out(out, x_shape, dtype, dy, w)
    if padding == "same":
        top, left = _same_pads(w.shape)
        N, H, W, C = x_shape
        padded = np.empty((N, H + w.shape[0] - 1, W + w.shape[1] - 1, C), dtype=dtype)
        _backward_input(dy, w, 1, padded)
        out[...] = padded[:, top : top + H, left : left + W]
    else:
        _backward_input(dy, w, stride, out)
    return out


def _backward_input(dy, w, stride, dx):
    """dx <- the input gradient under 'valid' padding, by the kernel for w's shape and dtype.

    Below 16 input channels a 16-channel tile is mostly empty: tiles of 4 positions x
    16 of the KH*KW*C taps instead, with w as (F, taps) zero-padded to 16 columns.
    Otherwise 4 positions x 16 channels with w transposed to (KH, KW, F, C); AVX2's 16
    ymm registers hold that tile in float32 (8 ymm) but not in float64 (16 ymm:
    spills), which has a 2 x 16 kernel there.
    """
    KH, KW, C, F = w.shape
    dtype = dy.dtype
    if C < CHANNEL_TILE:
        K = KH * KW * C
        wk = scratch("conv_wk", (F, -(-K // 16) * 16), dtype)
        wk[:, :K] = w.reshape(K, F).T
        wk[:, K:] = 0
        sums = scratch("conv_tap_sums", (dy.shape[0], 4, wk.shape[1]), dtype)
        kernels.conv2d_backward_input_taps(dy, wk, KH, KW, C, stride, _window_rows(dx), sums)
        return
    wt = scratch("conv_wt", (KH, KW, F, C), dtype)
    wt[...] = w.transpose(0, 1, 3, 2)
    if VECTOR_BYTES < 64 and dtype == np.float64:
        kernels.conv2d_backward_input_avx2(dy, wt, stride, dx)
    else:
        kernels.conv2d_backward_input(dy, wt, stride, dx)


def conv2d_backward_weight(dy, x, w_shape, *, stride=1, padding="valid", out=None):
    """dw[kh, kw, c, f] = sum_{n, i, j} x[n, i*s + kh, j*s + kw, c] * dy[n, i, j, f] (gradient of conv2d w.r.t. w).

    Tiles of sums held in registers, shaped for the CPU's SIMD registers: with
    AVX-512 16 x 16 channels (4 taps x 16 channels below 16 input channels), with AVX2
    6 taps x 16 channels (3 taps x 32 channels below 16 input channels); the batch is
    summed in fixed chunks of ``BATCH_CHUNK`` images whose partial sums are added in
    chunk order.

    Parameters
    ----------
    dy : ndarray, shape ``conv2d_output_shape(x.shape, w_shape, ...)``
    x : ndarray, shape (N, H, W, C), same dtype, the forward input
    w_shape : tuple of 4 ints, (KH, KW, C, F)
    stride, padding : as given to ``conv2d``
    out : ndarray, shape ``w_shape``, optional

    Returns
    -------
    ndarray, shape ``w_shape``
        The array written (``out`` when given); zeros when N = 0.

    Raises
    ------
    TypeError, ValueError
        As ``conv2d_backward_input``.

    Notes
    -----
    Each element is a sum of N*OH*OW products (error ~ (N*OH*OW/8 + 8) * eps *
    sum |x||dy|); bit-identical for any thread count.
    """
    dy = as_float_array(dy, "dy", ndim=4)
    x = as_float_array(x, "x", ndim=4)
    dtype = common_dtype(dy=dy, x=x)
    w_shape = _shape4(w_shape, "w_shape")
    _check_dy(dy, x.shape, w_shape, stride, padding)
    out = check_out(out, w_shape, dtype, dy, x)
    if padding == "same":
        x = _pad_same(x, w_shape)
        stride = 1
    n_chunks = _n_chunks(x.shape[0])
    if n_chunks == 0:
        out[...] = 0
        return out
    dw_chunks = scratch("conv_dw_chunks", (n_chunks,) + w_shape, dtype)
    # With AVX-512, inputs with many channels have contiguous 16-channel runs to tile
    # over; the first layer's single channel does not, so its tile spans 4 taps instead.
    # AVX2's registers hold neither tile at full speed: there many channels take 6
    # consecutive taps of a window row x 16 channels, few channels 3 taps x 32.
    KH, KW, C, F = w_shape
    if VECTOR_BYTES < 64:
        if C >= CHANNEL_TILE:
            kernels.conv2d_backward_weight_rows(
                _window_rows(x), dy, C, stride, dw_chunks.reshape(n_chunks, KH, KW * C, F)
            )
        else:
            kernels.conv2d_backward_weight_avx2(x, dy, stride, dw_chunks)
    elif x.shape[3] >= CHANNEL_TILE:
        kernels.conv2d_backward_weight_channels(x, dy, stride, dw_chunks)
    else:
        kernels.conv2d_backward_weight(x, dy, stride, dw_chunks)
    kernels.sum_weight_chunks(dw_chunks, out)
    return out


def conv2d_backward_bias(dy, *, out=None):
    """db[f] = sum_{n, i, j} dy[n, i, j, f] (gradient of conv2d w.r.t. b).

    The batch is summed in fixed chunks of ``BATCH_CHUNK`` images, combined in chunk
    order.

    Parameters
    ----------
    dy : ndarray, shape (N, OH, OW, F), float32 or float64
    out : ndarray, shape (F,), optional

    Returns
    -------
    ndarray, shape (F,)
        The array written (``out`` when given); zeros when N = 0.

    Raises
    ------
    TypeError, ValueError
        For a non-float dtype, a non-4-D ``dy`` or a bad ``out``.

    Notes
    -----
    Bit-identical for any thread count.
    """
    dy = as_float_array(dy, "dy", ndim=4)
    F = dy.shape[3]
    out = check_out(out, (F,), dy.dtype, dy)
    n_chunks = _n_chunks(dy.shape[0])
    if n_chunks == 0:
        out[...] = 0
        return out
    db_chunks = scratch("conv_db_chunks", (n_chunks, F), dy.dtype)
    kernels.conv2d_backward_bias(dy, db_chunks, out)
    return out


def _window_rows(x):
    """(N, H, W, C) C-contiguous input viewed as (N, H, W*C): each window row contiguous."""
    N, H, W, C = x.shape
    return x.reshape(N, H, W * C)


def _n_chunks(n):
    return -(-n // kernels.BATCH_CHUNK)


def _shape4(shape, name):
    # No generator and no message unless raising: called by every op of a training
    # step, whose allocations are kept small (tests/test_trainer.py).
    try:
        dims = tuple(shape)
    except TypeError as exc:
        raise ValueError(_shape4_message(shape, name)) from exc
    if len(dims) != 4 or not all(map(_is_size, dims)):
        raise ValueError(_shape4_message(shape, name))
    return tuple(map(int, dims))


def _shape4_message(shape, name):
    return f"`{name}` must be a tuple of 4 non-negative ints. Received: {shape!r}"


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_size(value):
    return _is_int(value) and value >= 0


def _check_stride(stride):
    if not _is_int(stride):
        raise TypeError(f"`stride` must be an int. Received: stride={stride!r}")
    if stride < 1:
        raise ValueError(f"`stride` must be >= 1. Received: stride={stride}")
    return int(stride)


def _check_padding(padding, stride):
    if padding not in ("valid", "same"):
        raise ValueError(f"`padding` must be 'valid' or 'same'. Received: padding={padding!r}")
    if padding == "same" and stride != 1:
        raise ValueError(f"padding='same' requires stride=1. Received: stride={stride}")
    return padding


def _check_dy(dy, x_shape, w_shape, stride, padding):
    expected = conv2d_output_shape(x_shape, w_shape, stride=stride, padding=padding)
    if dy.shape != expected:
        raise ValueError(
            f"`dy` must have the forward output's shape {expected}. Received: dy.shape={dy.shape}"
        )


def _same_pads(w_shape):
    """Top and left zero padding for 'same' (the odd one goes bottom/right, like TensorFlow)."""
    return (w_shape[0] - 1) // 2, (w_shape[1] - 1) // 2


def _pad_same(x, w_shape):
    N, H, W, C = x.shape
    top, left = _same_pads(w_shape)
    padded = np.zeros((N, H + w_shape[0] - 1, W + w_shape[1] - 1, C), dtype=x.dtype)
    padded[:, top : top + H, left : left + W] = x
    return padded
