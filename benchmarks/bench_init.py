"""Weight initialisers: Glorot-uniform and He-normal, Keras-style fans."""

import numpy as np

import numbanet

from .common import DTYPES, ERROR_UNIT, IMPLS, require, scaled_error, torch

SHAPES = {"784x256": (784, 256), "3x3x32x64": (3, 3, 32, 64)}


def fans(shape):
    """(fan_in, fan_out): a dense (in, out) or a conv kernel (kh, kw, cin, cout)."""
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def numpy_glorot_uniform(shape, rng, dtype):
    fan_in, fan_out = fans(shape)
    limit = np.sqrt(6 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def numpy_he_normal(shape, rng, dtype):
    """Keras draws from a normal truncated at 2 std; the plain normal is the reference cost."""
    return rng.normal(0, np.sqrt(2 / fans(shape)[0]), size=shape).astype(dtype)


def torch_dense_or_conv(shape, dtype):
    """torch's weight layout: (out, in) or (cout, cin, kh, kw)."""
    layout = (shape[1], shape[0]) if len(shape) == 2 else (shape[3], shape[2], shape[0], shape[1])
    return torch.empty(layout, dtype=getattr(torch, dtype.name))


def init_call(impl, name, shape, dtype):
    rng = np.random.default_rng(0)
    if impl == "numbanet":
        fn = getattr(numbanet, name)
        return lambda: fn(shape, rng=rng, dtype=dtype)
    if impl == "numpy":
        fn = numpy_glorot_uniform if name == "glorot_uniform" else numpy_he_normal
        return lambda: fn(shape, rng, dtype)
    w = torch_dense_or_conv(shape, dtype)
    if name == "glorot_uniform":
        return lambda: torch.nn.init.xavier_uniform_(w)
    return lambda: torch.nn.init.kaiming_normal_(w)


class Init:
    """Serial: the generator's draw dominates, so there is no thread parameter."""

    params = [IMPLS, DTYPES, list(SHAPES)]
    param_names = ["impl", "dtype", "size"]

    def setup(self, impl, dtype, size):
        require(impl)
        args = (SHAPES[size], np.dtype(dtype))
        self.glorot = init_call(impl, "glorot_uniform", *args)
        self.he = init_call(impl, "he_normal", *args)
        self.glorot()
        self.he()

    def time_glorot_uniform(self, impl, dtype, size):
        self.glorot()

    def time_he_normal(self, impl, dtype, size):
        self.he()


class InitError:
    """float32 vs float64 weights from the same seed: the same draws, rounded."""

    params = [list(SHAPES)]
    param_names = ["size"]
    unit = ERROR_UNIT

    def _error(self, name, size):
        fn = getattr(numbanet, name)
        return scaled_error(*(fn(SHAPES[size], rng=0, dtype=dt) for dt in (np.float32, np.float64)))

    def track_glorot_uniform_error(self, size):
        return self._error("glorot_uniform", size)

    def track_he_normal_error(self, size):
        return self._error("he_normal", size)
