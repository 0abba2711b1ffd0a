"""Weight initialisers: ``glorot_uniform`` and ``he_normal``.

There is no kernel: NumPy's ``Generator`` draws the weights. Initialisation runs once
per layer, and the Generator's streams are reproducible by seed, which a compiled
loop would have to re-implement for no gain.

Fans follow Keras: a dense kernel of shape (fan_in, fan_out); a convolution kernel
of shape (kh, kw, cin, cout) has fan_in = kh*kw*cin and fan_out = kh*kw*cout.
"""

import math

import numpy as np

from numbanet.ops._validate import FLOAT_DTYPES, as_seed

__all__ = ["glorot_uniform", "he_normal"]

# Standard deviation of a standard normal truncated to [-2, 2]; dividing by it makes
# the truncated draw's variance the target one (Keras uses the same constant).
TRUNCATED_NORMAL_STDDEV = 0.87962566103423978


def glorot_uniform(shape, *, rng, dtype=np.float32):
    """``W ~ U(-limit, limit)`` with ``limit = sqrt(6 / (fan_in + fan_out))``.

    Drawn in float64 and rounded once to ``dtype``: the float32 weights of a seed are
    the float64 weights of that seed, rounded.

    Parameters
    ----------
    shape : tuple of int
        (fan_in, fan_out) or (kh, kw, cin, cout), every entry >= 1.
    rng : numpy.random.Generator or int
        The generator to draw from (it advances), or a seed for
        ``numpy.random.default_rng``.
    dtype : float32 or float64, optional
        Defaults to float32.

    Returns
    -------
    numpy.ndarray
        New C-contiguous array of ``shape`` and ``dtype``; variance
        ``2 / (fan_in + fan_out)``.

    Raises
    ------
    TypeError
        If ``shape`` is not a sequence of integers, ``rng`` is neither a Generator
        nor an integer, or ``dtype`` is not float32 or float64.
    ValueError
        If ``shape`` is not 2-D or 4-D, has an entry < 1, or the seed is negative or
        not below ``2**64``.

    Notes
    -----
    Same seed, shape and dtype give the same weights.
    """
    fan_in, fan_out = _fans(shape)
    generator = _as_generator(rng)
    dtype = _as_float_dtype(dtype)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return generator.uniform(-limit, limit, size=tuple(shape)).astype(dtype)


def he_normal(shape, *, rng, dtype=np.float32):
    """``W ~ N(0, 2 / fan_in)`` truncated at two of its standard deviations.

    Standard normal draws beyond ``±2`` are redrawn (as Keras' ``he_normal`` does),
    then scaled by ``sqrt(2 / fan_in) / 0.87962566``, so that the truncated variance
    is exactly ``2 / fan_in``.

    Parameters
    ----------
    shape : tuple of int
        (fan_in, fan_out) or (kh, kw, cin, cout), every entry >= 1.
    rng : numpy.random.Generator or int
        The generator to draw from (it advances), or a seed for
        ``numpy.random.default_rng``.
    dtype : float32 or float64, optional
        Defaults to float32.

    Returns
    -------
    numpy.ndarray
        New C-contiguous array of ``shape`` and ``dtype``; every entry within
        ``2 * sqrt(2 / fan_in) / 0.87962566`` of 0.

    Raises
    ------
    TypeError
        If ``shape`` is not a sequence of integers, ``rng`` is neither a Generator
        nor an integer, or ``dtype`` is not float32 or float64.
    ValueError
        If ``shape`` is not 2-D or 4-D, has an entry < 1, or the seed is negative or
        not below ``2**64``.

    Notes
    -----
    Truncation keeps rare large weights out of a fresh network; the variance, not
    the untruncated standard deviation, is what He et al. derive. Drawn in float64
    and rounded once to ``dtype``. Same seed, shape and dtype give the same weights.
    """
    fan_in, _ = _fans(shape)
    generator = _as_generator(rng)
    dtype = _as_float_dtype(dtype)
    z = generator.standard_normal(size=tuple(shape))
    outside = np.abs(z) > 2.0
    while outside.any():
        z[outside] = generator.standard_normal(size=int(outside.sum()))
        outside = np.abs(z) > 2.0
    stddev = math.sqrt(2.0 / fan_in) / TRUNCATED_NORMAL_STDDEV
    return (z * stddev).astype(dtype)


def _fans(shape):
    """(fan_in, fan_out) of a dense or convolution kernel shape, validated."""
    dims = tuple(shape) if isinstance(shape, (tuple, list)) else None
    if dims is None or not all(_is_int(d) for d in dims):
        raise TypeError(f"`shape` must be a tuple of integers. Received: shape={shape!r}")
    dims = tuple(int(d) for d in dims)
    if len(dims) not in (2, 4):
        raise ValueError(
            "`shape` must be (fan_in, fan_out) or (kh, kw, cin, cout). "
            f"Received: shape={dims} ({len(dims)}-D)"
        )
    if min(dims) < 1:
        raise ValueError(f"`shape` entries must be >= 1. Received: shape={dims}")
    if len(dims) == 2:
        return dims
    receptive_field = dims[0] * dims[1]
    return receptive_field * dims[2], receptive_field * dims[3]


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _as_generator(rng):
    if isinstance(rng, np.random.Generator):
        return rng
    if not _is_int(rng):
        raise TypeError(
            f"`rng` must be a numpy.random.Generator or an int seed. Received: {type(rng).__name__}"
        )
    return np.random.default_rng(as_seed(rng, "rng"))


def _as_float_dtype(dtype):
    if dtype is None:
        raise TypeError("`dtype` must be float32 or float64. Received: dtype=None")
    try:
        resolved = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"`dtype` must be float32 or float64. Received: dtype={dtype!r}") from exc
    if resolved not in FLOAT_DTYPES:
        raise TypeError(f"`dtype` must be float32 or float64. Received: dtype={resolved}")
    return resolved
