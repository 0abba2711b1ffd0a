"""bias_add x (N, C) + b (C,) and bias_grad, the column sums of dy (N, C); bias_relu,
max(x + b, 0), and bias_relu_backward, the masked dy and its column sums."""

import numpy as np

import numbanet

from .common import (
    DTYPES, ERROR_UNIT, IMPLS, THREADS, InPlaceRatio, OpSpeed, in_place_ratio, normal, scaled_error,
    skip_all_but, skip_single_thread_references, to_torch, torch,
)

SIZES = {"128x256": (128, 256), "10000x1000": (10_000, 1000)}
ERROR_CASES = {
    "ordinary 128x256": (128, 256),
    "long columns 1000000x10": (1_000_000, 10),
}


def bias_add_call(impl, x, b):
    if impl == "numbanet":
        return lambda: numbanet.bias_add(x, b)
    if impl == "numpy":
        return lambda: x + b
    tx, tb = to_torch(x, b)
    return lambda: tx + tb


def bias_grad_call(impl, dy):
    if impl == "numbanet":
        return lambda: numbanet.bias_grad(dy)
    if impl == "numpy":
        return lambda: dy.sum(axis=0)
    (t,) = to_torch(dy)
    return lambda: t.sum(dim=0)


def bias_relu_call(impl, x, b):
    if impl == "numbanet":
        return lambda: numbanet.bias_relu(x, b)
    if impl == "numpy":
        return lambda: np.maximum(x + b, 0)
    tx, tb = to_torch(x, b)
    return lambda: torch.relu(tx + tb)


def bias_relu_backward_call(impl, dy, y):
    if impl == "numbanet":
        return lambda: numbanet.bias_relu_backward(dy, y)
    if impl == "numpy":
        def masked_and_summed():
            dx = np.where(y > 0, dy, 0)
            return dx, dx.sum(axis=0)
        return masked_and_summed
    tdy, ty = to_torch(dy, y)

    def torch_masked_and_summed():
        dx = torch.where(ty > 0, tdy, 0)
        return dx, dx.sum(dim=0)
    return torch_masked_and_summed


SPEED_PARAMS = [IMPLS, DTYPES, list(SIZES), THREADS]
PEAKMEM_ONLY = dict(impl=["numbanet", "numpy"], dtype=["float32"], size=["10000x1000"], threads=["all"])


class BiasAdd(OpSpeed):
    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        shape = SIZES[size]
        return bias_add_call(impl, normal(shape, dtype, seed=17), normal(shape[1:], dtype, seed=18))

    @skip_single_thread_references(SPEED_PARAMS)
    def time_bias_add(self, impl, dtype, size, threads):
        self.op()

    @skip_all_but(SPEED_PARAMS, OpSpeed.param_names, **PEAKMEM_ONLY)
    def peakmem_bias_add(self, impl, dtype, size, threads):
        self.op()


class BiasGrad(OpSpeed):
    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        return bias_grad_call(impl, normal(SIZES[size], dtype, seed=19))

    @skip_single_thread_references(SPEED_PARAMS)
    def time_bias_grad(self, impl, dtype, size, threads):
        self.op()


class BiasRelu(OpSpeed):
    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        shape = SIZES[size]
        return bias_relu_call(impl, normal(shape, dtype, seed=17), normal(shape[1:], dtype, seed=18))

    @skip_single_thread_references(SPEED_PARAMS)
    def time_bias_relu(self, impl, dtype, size, threads):
        self.op()


class BiasReluBackward(OpSpeed):
    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        shape = SIZES[size]
        y = np.maximum(normal(shape, dtype, seed=20), 0)
        return bias_relu_backward_call(impl, normal(shape, dtype, seed=19), y)

    @skip_single_thread_references(SPEED_PARAMS)
    def time_bias_relu_backward(self, impl, dtype, size, threads):
        self.op()


class BiasAddInPlace(InPlaceRatio):
    """Dense layers add their bias in place: bias_add(x, b, out=x) against out=another array."""

    def inputs(self, shape):
        return normal(shape, np.float32, seed=17), normal(shape[1:], np.float32, seed=18)

    def track_bias_add_in_place_ratio(self, size):
        return in_place_ratio(numbanet.bias_add, *self.args)


class BiasError:
    """float32 vs float64 on the same inputs (numpy's float32 error beside)."""

    params = [["numbanet", "numpy"], list(ERROR_CASES)]
    param_names = ["impl", "case"]
    unit = ERROR_UNIT

    def setup(self, impl, case):
        shape = ERROR_CASES[case]
        x32, b32 = normal(shape, np.float32, seed=17), normal(shape[1:], np.float32, seed=18)
        self.inputs = {dt: (x32.astype(dt), b32.astype(dt)) for dt in (np.float32, np.float64)}

    def track_bias_add_error(self, impl, case):
        return scaled_error(*(bias_add_call(impl, *self.inputs[dt])() for dt in (np.float32, np.float64)))

    def track_bias_grad_error(self, impl, case):
        return scaled_error(*(bias_grad_call(impl, self.inputs[dt][0])() for dt in (np.float32, np.float64)))

    def track_bias_relu_error(self, impl, case):
        return scaled_error(*(bias_relu_call(impl, *self.inputs[dt])() for dt in (np.float32, np.float64)))

    def track_bias_relu_backward_error(self, impl, case):
        """The column sums (the masked dy is exact); y = relu(x) keeps the mask the same in both dtypes."""
        sums = (bias_relu_backward_call(impl, x, np.maximum(x, 0))()[1]
                for x in (self.inputs[dt][0] for dt in (np.float32, np.float64)))
        return scaled_error(*sums)
