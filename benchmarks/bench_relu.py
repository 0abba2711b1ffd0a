"""relu and its backward on activations: the MLP's hidden layer and 10M elements."""

import numpy as np

import numbanet

from .common import (
    DTYPES, ERROR_UNIT, IMPLS, THREADS, InPlaceRatio, OpSpeed, in_place_ratio, normal, scaled_error,
    skip_all_but, skip_single_thread_references, to_torch, torch,
)

SIZES = {"128x256": (128, 256), "10000x1000": (10_000, 1000)}
ERROR_CASES = {
    "ordinary 1M": ((1000, 1000), 1.0),
    "huge and tiny 1M": ((1000, 1000), 1e30),
}


def relu_call(impl, x):
    if impl == "numbanet":
        return lambda: numbanet.relu(x)
    if impl == "numpy":
        return lambda: np.maximum(x, 0)
    (t,) = to_torch(x)
    return lambda: torch.relu(t)


def relu_backward_call(impl, dy, x):
    if impl == "numbanet":
        return lambda: numbanet.relu_backward(dy, x)
    if impl == "numpy":
        return lambda: np.where(x > 0, dy, 0)
    tdy, tx = to_torch(dy, x)
    return lambda: torch.ops.aten.threshold_backward(tdy, tx, 0)


SPEED_PARAMS = [IMPLS, DTYPES, list(SIZES), THREADS]
PEAKMEM_ONLY = dict(impl=["numbanet", "numpy"], dtype=["float32"], size=["10000x1000"], threads=["all"])


class Relu(OpSpeed):
    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        return relu_call(impl, normal(SIZES[size], dtype, seed=13))

    @skip_single_thread_references(SPEED_PARAMS)
    def time_relu(self, impl, dtype, size, threads):
        self.op()

    @skip_all_but(SPEED_PARAMS, OpSpeed.param_names, **PEAKMEM_ONLY)
    def peakmem_relu(self, impl, dtype, size, threads):
        self.op()


class ReluBackward(OpSpeed):
    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        shape = SIZES[size]
        return relu_backward_call(impl, normal(shape, dtype, seed=14), normal(shape, dtype, seed=13))

    @skip_single_thread_references(SPEED_PARAMS)
    def time_relu_backward(self, impl, dtype, size, threads):
        self.op()


class ReluBackwardInPlace(InPlaceRatio):
    """relu_backward(dy, x, out=dy) against out=another array (random signs in x)."""

    def inputs(self, shape):
        return normal(shape, np.float32, seed=14), normal(shape, np.float32, seed=13)

    def track_relu_backward_in_place_ratio(self, size):
        return in_place_ratio(numbanet.relu_backward, *self.args)


class ReluError:
    """float32 vs float64 on the same inputs: exact operations, so 0 unless broken."""

    params = [list(ERROR_CASES)]
    param_names = ["case"]
    unit = ERROR_UNIT

    def setup(self, case):
        shape, scale = ERROR_CASES[case]
        x32, dy32 = normal(shape, np.float32, seed=13, scale=scale), normal(shape, np.float32, seed=14)
        self.inputs = {dt: (x32.astype(dt), dy32.astype(dt)) for dt in (np.float32, np.float64)}

    def track_relu_error(self, case):
        return scaled_error(*(numbanet.relu(self.inputs[dt][0]) for dt in (np.float32, np.float64)))

    def track_relu_backward_error(self, case):
        return scaled_error(*(numbanet.relu_backward(self.inputs[dt][1], self.inputs[dt][0])
                              for dt in (np.float32, np.float64)))
