"""softmax and log_softmax over the last axis of logits (N, C)."""

import numpy as np

import numbanet

from .common import (
    DTYPES, ERROR_UNIT, IMPLS, REFERENCES, THREADS, OpSpeed, interleaved_ratio, normal, require,
    scaled_error, set_threads, skip_all_but, skip_single_thread_references, to_torch, torch,
)

LOGITS = {"128x10": (128, 10), "8192x1000": (8192, 1000)}

ERROR_CASES = {
    "ordinary 8192x1000": ((8192, 1000), 1.0),
    "large logits 128x10": ((128, 10), 1e4),
    "long rows 16x100000": ((16, 100_000), 1.0),
}


def logits(size, dtype):
    return normal(LOGITS[size], dtype, seed=3, scale=3.0)


def numpy_softmax(x):
    """exp(x - max) / sum(exp(x - max)), the stable formula in numpy."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def numpy_log_softmax(x):
    """z - log(sum(exp(z))) with z = x - max."""
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def softmax_call(impl, x):
    if impl == "numbanet":
        return lambda: numbanet.softmax(x)
    if impl == "numpy":
        return lambda: numpy_softmax(x)
    (t,) = to_torch(x)
    return lambda: torch.softmax(t, dim=-1)


def log_softmax_call(impl, x):
    if impl == "numbanet":
        return lambda: numbanet.log_softmax(x)
    if impl == "numpy":
        return lambda: numpy_log_softmax(x)
    (t,) = to_torch(x)
    return lambda: torch.log_softmax(t, dim=-1)


SPEED_PARAMS = [IMPLS, DTYPES, list(LOGITS), THREADS]
PEAKMEM_ONLY = dict(impl=["numbanet", "numpy"], dtype=["float32"], size=["8192x1000"], threads=["all"])


class Softmax(OpSpeed):
    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        return softmax_call(impl, logits(size, dtype))

    @skip_single_thread_references(SPEED_PARAMS)
    def time_softmax(self, impl, dtype, size, threads):
        self.op()

    @skip_all_but(SPEED_PARAMS, OpSpeed.param_names, **PEAKMEM_ONLY)
    def peakmem_softmax(self, impl, dtype, size, threads):
        self.op()


class LogSoftmax(OpSpeed):
    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        return log_softmax_call(impl, logits(size, dtype))

    @skip_single_thread_references(SPEED_PARAMS)
    def time_log_softmax(self, impl, dtype, size, threads):
        self.op()

    @skip_all_but(SPEED_PARAMS, OpSpeed.param_names, **PEAKMEM_ONLY)
    def peakmem_log_softmax(self, impl, dtype, size, threads):
        self.op()


class SoftmaxRatio:
    """numbanet / reference time in float32 on all threads, interleaved in one process."""

    params = [REFERENCES, list(LOGITS)]
    param_names = ["reference", "size"]
    unit = "ratio"

    def setup(self, reference, size):
        require(reference)
        set_threads("all")
        self.x = logits(size, np.float32)
        self.reference = reference

    def track_softmax_ratio(self, reference, size):
        return interleaved_ratio(softmax_call("numbanet", self.x), softmax_call(reference, self.x))

    def track_log_softmax_ratio(self, reference, size):
        return interleaved_ratio(log_softmax_call("numbanet", self.x), log_softmax_call(reference, self.x))


class SoftmaxError:
    """float32 vs float64 on the same logits (numpy's float32 error beside)."""

    params = [["numbanet", "numpy"], list(ERROR_CASES)]
    param_names = ["impl", "case"]
    unit = ERROR_UNIT

    def setup(self, impl, case):
        shape, scale = ERROR_CASES[case]
        self.x32 = normal(shape, np.float32, seed=4, scale=scale)
        self.x64 = self.x32.astype(np.float64)

    def track_softmax_error(self, impl, case):
        return scaled_error(softmax_call(impl, self.x32)(), softmax_call(impl, self.x64)())

    def track_log_softmax_error(self, impl, case):
        return scaled_error(log_softmax_call(impl, self.x32)(), log_softmax_call(impl, self.x64)())
