"""gather_pixels: batches of 128 uint8 images gathered from a 60000 x 784 dataset as floats
p / 255, a new random batch each call (as a training epoch draws them)."""

import itertools

import numpy as np

import numbanet

from .common import (
    DTYPES, ERROR_UNIT, IMPLS, THREADS, OpSpeed, scaled_error, skip_single_thread_references, to_torch, torch,
)

SIZES = {"128 of 60000x784": (60_000, 784, 128)}
_datasets = {}


def dataset(n, d):
    """Random uint8 images, made once per process (47 MB for MNIST's training set)."""
    if (n, d) not in _datasets:
        _datasets[n, d] = np.random.default_rng(21).integers(0, 256, (n, d), dtype=np.uint8)
    return _datasets[n, d]


def batches(n, batch_size):
    """The index arrays of one shuffled epoch."""
    order = np.random.default_rng(22).permutation(n)
    return [order[i:i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]


def gather_pixels_call(impl, x, index_batches, dtype):
    if impl == "numbanet":
        indices = itertools.cycle(index_batches)
        out = np.empty((len(index_batches[0]), x.shape[1]), dtype)
        return lambda: numbanet.gather_pixels(x, next(indices), out=out)
    if impl == "numpy":
        indices = itertools.cycle(index_batches)
        return lambda: np.divide(x[next(indices)].astype(dtype), dtype.type(255))
    tx, *index_tensors = to_torch(x, *index_batches)
    tensors = itertools.cycle(index_tensors)
    torch_dtype = getattr(torch, dtype.name)
    return lambda: tx.index_select(0, next(tensors)).to(torch_dtype) / 255


SPEED_PARAMS = [IMPLS, DTYPES, list(SIZES), THREADS]


class GatherPixels(OpSpeed):
    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        n, d, batch_size = SIZES[size]
        return gather_pixels_call(impl, dataset(n, d), batches(n, batch_size), dtype)

    @skip_single_thread_references(SPEED_PARAMS)
    def time_gather_pixels(self, impl, dtype, size, threads):
        self.op()


class PixelsError:
    """float32 vs float64 of the same batch: half an ulp of float32 at most."""

    unit = ERROR_UNIT

    def setup(self):
        self.x = dataset(1000, 784)

    def track_gather_pixels_error(self):
        index = np.arange(1000)
        return scaled_error(*(numbanet.gather_pixels(self.x, index, dtype=dt) for dt in (np.float32, np.float64)))
