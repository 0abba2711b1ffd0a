"""Convolutional layers over NHWC images: Conv2D, MaxPool2D and Flatten."""

import numbers

import numpy as np

from numbanet import ops
from numbanet.ops.conv import (
    conv2d,
    conv2d_backward_bias,
    conv2d_backward_input,
    conv2d_backward_weight,
    conv2d_output_shape,
)
from numbanet.ops.pool import max_pool2d, max_pool2d_backward

from .layer import Layer


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return int(value)


def _image_shape(layer, input_shape, channels=None):
    """The per-sample (H, W, C) a layer receives; ``ValueError`` naming the layer otherwise."""
    if input_shape is None:
        return None
    shape = tuple(input_shape)
    if len(shape) != 3 or (channels is not None and shape[2] != channels):
        wanted = f"(H, W, {channels})" if channels is not None else "(H, W, C)"
        raise ValueError(f"{layer!r} needs images of per-sample shape {wanted}. Received: {shape}")
    return shape


class Conv2D(Layer):
    """y = conv2d(x, W, b): x (N, H, W, in_channels) -> (N, OH, OW, out_channels).

    The kernel W has the Keras layout (kh, kw, in_channels, out_channels), so
    checkpoints match Keras' weights; Glorot-uniform init (Keras' default), zero bias.
    ``input_shape`` (per-sample (H, W, in_channels), optional) lets a first layer take
    images given as (N, H*W*C), (N, H, W) or (N, H, W, C).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding="valid", *, input_shape=None):
        super().__init__()
        self.in_channels = _positive_int("in_channels", in_channels)
        self.out_channels = _positive_int("out_channels", out_channels)
        if isinstance(kernel_size, numbers.Integral):
            kernel_size = (kernel_size, kernel_size)
        self.kernel_size = tuple(_positive_int("kernel_size", k) for k in kernel_size)
        if len(self.kernel_size) != 2:
            raise ValueError(f"`kernel_size` must be an int or a pair of ints. Received: kernel_size={kernel_size!r}")
        self.stride = _positive_int("stride", stride)
        self.padding = padding
        self.input_shape = None if input_shape is None else tuple(int(d) for d in input_shape)
        self.output_shape(self.input_shape)  # validates padding/stride and input_shape
        self._x = None

    def build(self, dtype, rng):
        super().build(dtype, rng)
        shape = self.kernel_size + (self.in_channels, self.out_channels)
        self.add_param("kernel", ops.glorot_uniform(shape, rng=rng, dtype=self.dtype))
        self.add_param("bias", np.zeros(self.out_channels, dtype=self.dtype))

    def output_shape(self, input_shape):
        image = _image_shape(self, input_shape, self.in_channels)
        w_shape = self.kernel_size + (self.in_channels, self.out_channels)
        x_shape = (1,) + (image if image is not None else (max(self.kernel_size),) * 2 + (self.in_channels,))
        try:
            out = conv2d_output_shape(x_shape, w_shape, stride=self.stride, padding=self.padding)
        except ValueError as exc:
            raise ValueError(f"{self!r}: {exc}") from None
        return out[1:] if image is not None else None

    def forward(self, x, *, training):
        if x.ndim == 3 and self.in_channels == 1:
            x = x[..., np.newaxis]
        self._x = x
        w_shape = self.params["kernel"].shape
        out_shape = conv2d_output_shape(x.shape, w_shape, stride=self.stride, padding=self.padding)
        out = self.buffer("out", out_shape)
        conv2d(x, self.params["kernel"], self.params["bias"], stride=self.stride, padding=self.padding, out=out)
        self.watch("conv2d", out)
        return out

    def backward(self, dout):
        x, kernel = self._x, self.params["kernel"]
        stride, padding = self.stride, self.padding
        dw = conv2d_backward_weight(dout, x, kernel.shape, stride=stride, padding=padding, out=self.grads["kernel"])
        self.watch("conv2d_backward_weight", dw)
        self.watch("conv2d_backward_bias", conv2d_backward_bias(dout, out=self.grads["bias"]))
        if not self.needs_input_grad:
            return None
        dx = conv2d_backward_input(dout, kernel, x.shape, stride=stride, padding=padding, out=self.buffer("dx", x.shape))
        self.watch("conv2d_backward_input", dx)
        return dx

    def get_config(self):
        config = {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size),
            "stride": self.stride,
            "padding": self.padding,
        }
        if self.input_shape is not None:
            config["input_shape"] = list(self.input_shape)
        return config


class MaxPool2D(Layer):
    """y = max over non-overlapping pool_size x pool_size windows of x (N, H, W, C).

    Trailing rows/columns that do not fill a window are dropped (Keras "valid"
    pooling); the backward routes dy to each window's first maximum, recomputed from x.
    """

    def __init__(self, pool_size=2):
        super().__init__()
        self.pool_size = _positive_int("pool_size", pool_size)
        self._x = None

    def output_shape(self, input_shape):
        image = _image_shape(self, input_shape)
        if image is None:
            return None
        H, W, C = image
        if H < self.pool_size or W < self.pool_size:
            raise ValueError(f"{self!r} needs images of at least {self.pool_size}x{self.pool_size}. Received: {image}")
        return (H // self.pool_size, W // self.pool_size, C)

    def forward(self, x, *, training):
        self._x = x
        N, H, W, C = x.shape
        out = self.buffer("out", (N, H // self.pool_size, W // self.pool_size, C))
        self.watch("max_pool2d", max_pool2d(x, self.pool_size, out=out))
        return out

    def backward(self, dout):
        if not self.needs_input_grad:
            return None
        dx = max_pool2d_backward(dout, self._x, self.pool_size, out=self.buffer("dx", self._x.shape))
        self.watch("max_pool2d_backward", dx)
        return dx

    def get_config(self):
        return {"pool_size": self.pool_size}


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1*d2*...) as a view; backward reshapes dy back."""

    def __init__(self):
        super().__init__()
        self._shape = None

    def output_shape(self, input_shape):
        return None if input_shape is None else (int(np.prod(input_shape)),)

    def forward(self, x, *, training):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        if not self.needs_input_grad:
            return None
        return dout.reshape(self._shape)
