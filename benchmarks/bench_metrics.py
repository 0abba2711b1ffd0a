"""argmax per row and classification accuracy of logits (N, C) against labels (N,)."""

import numpy as np

import numbanet

from .bench_softmax import LOGITS, logits
from .common import (
    DTYPES, ERROR_UNIT, IMPLS, THREADS, OpSpeed, labels, scaled_error,
    skip_single_thread_references, to_torch, torch,
)


def argmax_call(impl, x):
    if impl == "numbanet":
        return lambda: numbanet.argmax(x)
    if impl == "numpy":
        return lambda: x.argmax(axis=1)
    (t,) = to_torch(x)
    return lambda: t.argmax(dim=1)


def accuracy_call(impl, x, y):
    if impl == "numbanet":
        return lambda: numbanet.accuracy(x, y)
    if impl == "numpy":
        return lambda: (x.argmax(axis=1) == y).mean()
    t, ty = to_torch(x, y)
    return lambda: (t.argmax(dim=1) == ty).double().mean()


SPEED_PARAMS = [IMPLS, DTYPES, list(LOGITS), THREADS]


class Argmax(OpSpeed):
    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        return argmax_call(impl, logits(size, dtype))

    @skip_single_thread_references(SPEED_PARAMS)
    def time_argmax(self, impl, dtype, size, threads):
        self.op()


class Accuracy(OpSpeed):
    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        x = logits(size, dtype)
        return accuracy_call(impl, x, labels(x.shape[0], x.shape[1], seed=5))

    @skip_single_thread_references(SPEED_PARAMS)
    def time_accuracy(self, impl, dtype, size, threads):
        self.op()


class MetricsError:
    """float32 vs float64 on the same logits: 0 unless a row's first maximum moves."""

    unit = ERROR_UNIT

    def setup(self):
        x32 = logits("8192x1000", np.float32)
        self.x = {dt: x32.astype(dt) for dt in (np.float32, np.float64)}
        self.y = labels(8192, 1000, seed=5)

    def track_argmax_error(self):
        return scaled_error(*(numbanet.argmax(self.x[dt]) for dt in (np.float32, np.float64)))

    def track_accuracy_error(self):
        return scaled_error(*(numbanet.accuracy(self.x[dt], self.y) for dt in (np.float32, np.float64)))
