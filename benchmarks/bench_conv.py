"""conv2d and its input/weight/bias gradients at the convnet's shapes (batch 128, 3x3, "valid").

Size names are "<layer> NxHxWxC->F": conv1 28x28x1 -> 26x26x32, conv2 13x13x32 -> 11x11x64.
numbanet computes NHWC with Keras-layout weights (KH, KW, C, F); PyTorch gets the same
values as plain contiguous NCHW tensors with (F, C, KH, KW) weights (its default layout,
the one a torch convnet trains in), converted in ``setup`` so layout changes are not
timed. The NumPy reference is im2col (a copied (N*OH*OW, KH*KW*C) patch matrix) and
``@``; its input gradient multiplies back into patches and adds them per tap (col2im).
"""

import numpy as np

import numbanet

from .common import (
    DTYPES, ERROR_UNIT, IMPLS, THREADS, OpSpeed, interleaved_ratio, log_uniform_signed, normal,
    require, scaled_error, set_threads, skip_all_but, skip_single_thread_references, torch,
)

SIZES = {
    "conv1 128x28x28x1->32": ((128, 28, 28, 1), (3, 3, 1, 32)),
    "conv2 128x13x13x32->64": ((128, 13, 13, 32), (3, 3, 32, 64)),
}

ERROR_CASES = {
    "ordinary conv1": ("conv1 128x28x28x1->32", normal),
    "ordinary conv2": ("conv2 128x13x13x32->64", normal),
    "wide range conv2": ("conv2 128x13x13x32->64", log_uniform_signed),
}


def operands(size, dtype, make=normal):
    """Input x (N, H, W, C), weights w (KH, KW, C, F), bias b (F,) and output gradient dy."""
    x_shape, w_shape = SIZES[size]
    x = make(x_shape, dtype, seed=21)
    w = make(w_shape, dtype, seed=22)
    b = make(w_shape[3:], dtype, seed=23)
    dy = make(numbanet.conv2d_output_shape(x_shape, w_shape), dtype, seed=24)
    return x, w, b, dy


# --------------------------------------------------------------------------- numpy (im2col)

def im2col(x, kh, kw):
    """Patches (N*OH*OW, KH*KW*C) of a "valid", stride-1 convolution, row order (kh, kw, c)."""
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))  # (N, OH, OW, C, KH, KW)
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, kh * kw * x.shape[3])


def numpy_conv2d(x, w, b):
    KH, KW, C, F = w.shape
    N, H, W, _ = x.shape
    return (im2col(x, KH, KW) @ w.reshape(-1, F) + b).reshape(N, H - KH + 1, W - KW + 1, F)


def numpy_conv2d_backward_input(dy, w, x_shape):
    KH, KW, C, F = w.shape
    N, OH, OW, _ = dy.shape
    dpatches = (dy.reshape(-1, F) @ w.reshape(-1, F).T).reshape(N, OH, OW, KH, KW, C)
    dx = np.zeros(x_shape, dtype=dy.dtype)
    for kh in range(KH):
        for kw in range(KW):
            dx[:, kh:kh + OH, kw:kw + OW] += dpatches[:, :, :, kh, kw]
    return dx


def numpy_conv2d_backward_weight(dy, x, w_shape):
    KH, KW, C, F = w_shape
    return (im2col(x, KH, KW).T @ dy.reshape(-1, F)).reshape(w_shape)


def numpy_conv2d_backward_bias(dy):
    return dy.sum(axis=(0, 1, 2))


# --------------------------------------------------------------------------- calls

def nchw(x):
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def torch_operands(x, w, b, dy):
    """NCHW tensors x, dy; (F, C, KH, KW) weights; bias."""
    return nchw(x), torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1))), torch.from_numpy(b), nchw(dy)


def torch_backward(tx, tw, tdy, mask):
    """aten's convolution backward computing only the gradients ``mask`` asks for."""
    bias_sizes = [tw.shape[0]] if mask[2] else None
    return torch.ops.aten.convolution_backward(
        tdy, tx, tw, bias_sizes, [1, 1], [0, 0], [1, 1], False, [0, 0], 1, mask
    )


def conv_calls(impl, x, w, b, dy):
    """Zero-argument calls {op: call} of ``impl``'s forward and three gradients."""
    if impl == "numbanet":
        return {
            "forward": lambda: numbanet.conv2d(x, w, b),
            "input": lambda: numbanet.conv2d_backward_input(dy, w, x.shape),
            "weight": lambda: numbanet.conv2d_backward_weight(dy, x, w.shape),
            "bias": lambda: numbanet.conv2d_backward_bias(dy),
        }
    if impl == "numpy":
        return {
            "forward": lambda: numpy_conv2d(x, w, b),
            "input": lambda: numpy_conv2d_backward_input(dy, w, x.shape),
            "weight": lambda: numpy_conv2d_backward_weight(dy, x, w.shape),
            "bias": lambda: numpy_conv2d_backward_bias(dy),
        }
    tx, tw, tb, tdy = torch_operands(x, w, b, dy)
    return {
        "forward": lambda: torch.nn.functional.conv2d(tx, tw, tb),
        "input": lambda: torch_backward(tx, tw, tdy, [True, False, False]),
        "weight": lambda: torch_backward(tx, tw, tdy, [False, True, False]),
        "bias": lambda: torch_backward(tx, tw, tdy, [False, False, True]),
    }


def layer_call(calls):
    """Forward then all three gradients: one Conv2D layer's work in a training step."""
    def layer():
        for op in ("forward", "input", "weight", "bias"):
            calls[op]()
    return layer


# --------------------------------------------------------------------------- speed

SPEED_PARAMS = [IMPLS, DTYPES, list(SIZES), THREADS]


class ConvSpeed(OpSpeed):
    """Base: ``build`` returns the call named by ``op``."""

    params = SPEED_PARAMS
    timeout = 600  # a cold Numba cache compiles the register-tiled kernels in setup
    op_name = None

    def build(self, impl, dtype, size):
        return conv_calls(impl, *operands(size, dtype))[self.op_name]


class Conv2d(ConvSpeed):
    op_name = "forward"

    @skip_single_thread_references(SPEED_PARAMS, sizes=list(SIZES))
    def time_conv2d(self, impl, dtype, size, threads):
        self.op()

    @skip_all_but(SPEED_PARAMS, OpSpeed.param_names, impl=["numbanet", "numpy"], dtype=["float32"],
                  size=["conv2 128x13x13x32->64"], threads=["all"])
    def peakmem_conv2d(self, impl, dtype, size, threads):
        self.op()


class Conv2dBackwardInput(ConvSpeed):
    op_name = "input"

    @skip_single_thread_references(SPEED_PARAMS, sizes=list(SIZES))
    def time_conv2d_backward_input(self, impl, dtype, size, threads):
        self.op()


class Conv2dBackwardWeight(ConvSpeed):
    op_name = "weight"

    @skip_single_thread_references(SPEED_PARAMS, sizes=list(SIZES))
    def time_conv2d_backward_weight(self, impl, dtype, size, threads):
        self.op()


class Conv2dBackwardBias(ConvSpeed):
    op_name = "bias"

    @skip_single_thread_references(SPEED_PARAMS, sizes=list(SIZES))
    def time_conv2d_backward_bias(self, impl, dtype, size, threads):
        self.op()


# --------------------------------------------------------------------------- ratios

class ConvRatio:
    """numbanet / PyTorch time in float32 on all threads, interleaved in one process:
    each op, and a whole layer (forward + input, weight and bias gradients)."""

    params = [list(SIZES)]
    param_names = ["size"]
    unit = "ratio"
    timeout = 600

    def setup(self, size):
        require("torch")
        set_threads("all")
        args = operands(size, np.dtype("float32"))
        self.numbanet = conv_calls("numbanet", *args)
        self.torch = conv_calls("torch", *args)

    def _ratio(self, op):
        return interleaved_ratio(self.numbanet[op], self.torch[op])

    def track_conv2d_ratio(self, size):
        return self._ratio("forward")

    def track_conv2d_backward_input_ratio(self, size):
        return self._ratio("input")

    def track_conv2d_backward_weight_ratio(self, size):
        return self._ratio("weight")

    def track_conv2d_backward_bias_ratio(self, size):
        return self._ratio("bias")

    def track_conv2d_layer_ratio(self, size):
        return interleaved_ratio(layer_call(self.numbanet), layer_call(self.torch))


# --------------------------------------------------------------------------- error

class ConvError:
    """float32 vs float64 on the same inputs, forward and each gradient (numpy's im2col beside)."""

    params = [["numbanet", "numpy"], list(ERROR_CASES)]
    param_names = ["impl", "case"]
    unit = ERROR_UNIT
    timeout = 900  # setup_cache runs every kernel in both dtypes: cold-cache compilation

    def setup_cache(self):
        errors = {}
        for impl in self.params[0]:
            for case, (size, make) in ERROR_CASES.items():
                args32 = operands(size, np.dtype("float32"), make)
                calls32 = conv_calls(impl, *args32)
                calls64 = conv_calls(impl, *(a.astype(np.float64) for a in args32))
                for op in calls32:
                    errors[impl, case, op] = scaled_error(calls32[op](), calls64[op]())
        return errors

    def track_conv2d_error(self, errors, impl, case):
        return errors[impl, case, "forward"]

    def track_conv2d_backward_input_error(self, errors, impl, case):
        return errors[impl, case, "input"]

    def track_conv2d_backward_weight_error(self, errors, impl, case):
        return errors[impl, case, "weight"]

    def track_conv2d_backward_bias_error(self, errors, impl, case):
        return errors[impl, case, "bias"]
