"""Inverted dropout (rate 0.2) and its backward, which recomputes the mask from the seed."""

import numpy as np

import numbanet

from .common import (
    DTYPES, ERROR_UNIT, IMPLS, THREADS, OpSpeed, normal, scaled_error, skip_all_but,
    skip_single_thread_references, to_torch, torch,
)

SIZES = {"128x256": (128, 256), "10000x1000": (10_000, 1000)}
RATE = 0.2
SEED = 1234


def numpy_mask(shape, dtype, rng):
    """Keep each element with probability 1 - RATE, scaled by 1 / (1 - RATE)."""
    return (rng.random(shape, dtype=np.float32) >= RATE).astype(dtype) / dtype.type(1 - RATE)


def dropout_call(impl, x):
    if impl == "numbanet":
        return lambda: numbanet.dropout(x, RATE, seed=SEED)
    if impl == "numpy":
        rng = np.random.default_rng(SEED)
        return lambda: x * numpy_mask(x.shape, x.dtype, rng)
    (t,) = to_torch(x)
    return lambda: torch.nn.functional.dropout(t, RATE, training=True)


def dropout_backward_call(impl, dy):
    """numpy and torch keep the forward's mask; numbanet recomputes it from the seed."""
    if impl == "numbanet":
        return lambda: numbanet.dropout_backward(dy, RATE, seed=SEED)
    if impl == "numpy":
        scaled_mask = numpy_mask(dy.shape, dy.dtype, np.random.default_rng(SEED))
        return lambda: dy * scaled_mask
    (tdy,) = to_torch(dy)
    mask = torch.rand(tdy.shape) >= RATE
    return lambda: torch.ops.aten.native_dropout_backward(tdy, mask, 1 / (1 - RATE))


SPEED_PARAMS = [IMPLS, DTYPES, list(SIZES), THREADS]
PEAKMEM_ONLY = dict(impl=["numbanet", "numpy"], dtype=["float32"], size=["10000x1000"], threads=["all"])


class Dropout(OpSpeed):
    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        return dropout_call(impl, normal(SIZES[size], dtype, seed=15))

    @skip_single_thread_references(SPEED_PARAMS)
    def time_dropout(self, impl, dtype, size, threads):
        self.op()

    @skip_all_but(SPEED_PARAMS, OpSpeed.param_names, **PEAKMEM_ONLY)
    def peakmem_dropout(self, impl, dtype, size, threads):
        self.op()


class DropoutBackward(OpSpeed):
    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        return dropout_backward_call(impl, normal(SIZES[size], dtype, seed=16))

    @skip_single_thread_references(SPEED_PARAMS)
    def time_dropout_backward(self, impl, dtype, size, threads):
        self.op()


class DropoutError:
    """float32 vs float64 with the same seed: the mask must match, leaving only rounding."""

    unit = ERROR_UNIT

    def setup(self):
        x32 = normal((1000, 1000), np.float32, seed=15)
        self.x = {dt: x32.astype(dt) for dt in (np.float32, np.float64)}

    def track_dropout_error(self):
        return scaled_error(*(numbanet.dropout(self.x[dt], RATE, seed=SEED) for dt in (np.float32, np.float64)))

    def track_dropout_backward_error(self):
        return scaled_error(*(numbanet.dropout_backward(self.x[dt], RATE, seed=SEED)
                              for dt in (np.float32, np.float64)))
