"""sigmoid, its backward, and binary cross-entropy with logits (mean over elements)."""

import numpy as np

import numbanet

from .common import (
    DTYPES, ERROR_UNIT, IMPLS, REFERENCES, THREADS, OpSpeed, interleaved_ratio, normal, require,
    scaled_error, set_threads, skip_all_but, skip_single_thread_references, to_torch, torch,
    uniform,
)

SIZES = {"128x256": (128, 256), "10M": (10_000_000,)}

ERROR_CASES = {
    "ordinary 1M": ((1_000_000,), 3.0),
    "tails 1M": ((1_000_000,), 100.0),  # |x| up to ~400: exp overflows float32 past 88
}


def activations(size, dtype, scale=3.0):
    return normal(SIZES[size] if isinstance(size, str) else size, dtype, seed=6, scale=scale)


def binary_targets(shape, dtype):
    return np.round(uniform(shape, dtype, seed=7))


def numpy_sigmoid(x):
    """1 / (1 + exp(-x)) for x >= 0, exp(x) / (1 + exp(x)) below: exp never overflows."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def numpy_bce_with_logits(x, t):
    """mean(max(x, 0) - x*t + log1p(exp(-|x|)))."""
    return (np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))).mean()


def numpy_bce_with_logits_grad(x, t):
    return (numpy_sigmoid(x) - t) / x.size


def sigmoid_call(impl, x):
    if impl == "numbanet":
        return lambda: numbanet.sigmoid(x)
    if impl == "numpy":
        return lambda: numpy_sigmoid(x)
    (t,) = to_torch(x)
    return lambda: torch.sigmoid(t)


def sigmoid_backward_call(impl, dy, y):
    if impl == "numbanet":
        return lambda: numbanet.sigmoid_backward(dy, y)
    if impl == "numpy":
        return lambda: dy * y * (1 - y)
    tdy, ty = to_torch(dy, y)
    return lambda: torch.ops.aten.sigmoid_backward(tdy, ty)


def bce_call(impl, x, t):
    if impl == "numbanet":
        return lambda: numbanet.binary_cross_entropy_with_logits(x, t)
    if impl == "numpy":
        return lambda: numpy_bce_with_logits(x, t)
    tx, tt = to_torch(x, t)
    return lambda: torch.nn.functional.binary_cross_entropy_with_logits(tx, tt)


def bce_grad_call(impl, x, t):
    if impl == "numbanet":
        return lambda: numbanet.binary_cross_entropy_with_logits_grad(x, t)
    if impl == "numpy":
        return lambda: numpy_bce_with_logits_grad(x, t)
    tx, tt = to_torch(x, t)

    def grad():
        leaf = tx.detach().requires_grad_()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(leaf, tt)
        return torch.autograd.grad(loss, leaf)[0]

    return grad


SPEED_PARAMS = [IMPLS, DTYPES, list(SIZES), THREADS]
PEAKMEM_ONLY = dict(impl=["numbanet", "numpy"], dtype=["float32"], size=["10M"], threads=["all"])


class Sigmoid(OpSpeed):
    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        return sigmoid_call(impl, activations(size, dtype))

    @skip_single_thread_references(SPEED_PARAMS)
    def time_sigmoid(self, impl, dtype, size, threads):
        self.op()

    @skip_all_but(SPEED_PARAMS, OpSpeed.param_names, **PEAKMEM_ONLY)
    def peakmem_sigmoid(self, impl, dtype, size, threads):
        self.op()


class SigmoidBackward(OpSpeed):
    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        y = uniform(SIZES[size], dtype, seed=8)
        return sigmoid_backward_call(impl, activations(size, dtype), y)

    @skip_single_thread_references(SPEED_PARAMS)
    def time_sigmoid_backward(self, impl, dtype, size, threads):
        self.op()


class BinaryCrossEntropyWithLogits(OpSpeed):
    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        return bce_call(impl, activations(size, dtype), binary_targets(SIZES[size], dtype))

    @skip_single_thread_references(SPEED_PARAMS)
    def time_binary_cross_entropy_with_logits(self, impl, dtype, size, threads):
        self.op()


class BinaryCrossEntropyWithLogitsGrad(OpSpeed):
    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        return bce_grad_call(impl, activations(size, dtype), binary_targets(SIZES[size], dtype))

    @skip_single_thread_references(SPEED_PARAMS)
    def time_binary_cross_entropy_with_logits_grad(self, impl, dtype, size, threads):
        self.op()


class SigmoidRatio:
    """numbanet / reference time in float32 on all threads, interleaved in one process."""

    params = [REFERENCES, list(SIZES)]
    param_names = ["reference", "size"]
    unit = "ratio"

    def setup(self, reference, size):
        require(reference)
        set_threads("all")
        self.x = activations(size, np.float32)

    def track_sigmoid_ratio(self, reference, size):
        return interleaved_ratio(sigmoid_call("numbanet", self.x), sigmoid_call(reference, self.x))


class SigmoidError:
    """float32 vs float64 on the same inputs (numpy's float32 error beside)."""

    params = [["numbanet", "numpy"], list(ERROR_CASES)]
    param_names = ["impl", "case"]
    unit = ERROR_UNIT

    def setup(self, impl, case):
        shape, scale = ERROR_CASES[case]
        x32 = activations(shape, np.float32, scale=scale)
        t32 = binary_targets(shape, np.float32)
        y32 = uniform(shape, np.float32, seed=8)
        self.inputs = {
            dt: (x32.astype(dt), t32.astype(dt), y32.astype(dt)) for dt in (np.float32, np.float64)
        }
        self.impl = impl

    def _error(self, make_call, pick):
        results = [make_call(self.impl, *pick(*self.inputs[dt]))() for dt in (np.float32, np.float64)]
        return scaled_error(*results)

    def track_sigmoid_error(self, impl, case):
        return self._error(sigmoid_call, lambda x, t, y: (x,))

    def track_sigmoid_backward_error(self, impl, case):
        return self._error(sigmoid_backward_call, lambda x, t, y: (x, y))

    def track_binary_cross_entropy_with_logits_error(self, impl, case):
        return self._error(bce_call, lambda x, t, y: (x, t))

    def track_binary_cross_entropy_with_logits_grad_error(self, impl, case):
        return self._error(bce_grad_call, lambda x, t, y: (x, t))
