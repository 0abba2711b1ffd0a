"""Checks and conversions for a model's inputs: images or feature rows, and labels.

Images may come as (N, 784), (N, 28, 28) or (N, 28, 28, 1) — any shape whose per-sample
size matches the model's first layer — either as float32/float64 in [0, 1] or as uint8
pixels that are scaled by 1/255 batch by batch (``ops.gather_pixels``, so a dataset is
never copied whole).
"""

import math

import numpy as np


def as_model_input(x, input_shape, dtype, name="x"):
    """Return ``x`` as a C-contiguous (N, *input_shape) array: uint8 as is, floats in ``dtype``.

    ``input_shape`` is the per-sample shape of the model's first layer (None: keep
    ``x``'s own). Float inputs must be finite and within [0, 1].
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"`{name}` must be a numpy array. Received: {type(x).__name__}")
    if x.dtype != np.uint8 and x.dtype not in (np.float32, np.float64):
        raise TypeError(f"`{name}` must be uint8, float32 or float64. Received: {name}.dtype={x.dtype}")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"`{name}` must hold at least one sample, shape (N, ...). Received: {name}.shape={x.shape}")
    if input_shape is not None:
        per_sample = math.prod(x.shape[1:])
        if per_sample != math.prod(input_shape):
            raise ValueError(
                f"`{name}` must have {math.prod(input_shape)} values per sample "
                f"(e.g. shape (N, {math.prod(input_shape)})). Received: {name}.shape={x.shape}"
            )
        x = x.reshape((x.shape[0],) + tuple(input_shape))
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    lo, hi = float(x.min()), float(x.max())
    if not (0.0 <= lo and hi <= 1.0):
        raise ValueError(
            f"`{name}` must hold finite values in [0, 1] (or uint8 pixels 0..255). "
            f"Received: min={lo}, max={hi}"
        )
    return np.ascontiguousarray(x, dtype=dtype)


def as_class_labels(y, n, n_classes, name="y"):
    """Return integer labels ``y`` as a C-contiguous intp vector of length ``n`` in [0, n_classes)."""
    y = np.asarray(y)
    if y.dtype.kind not in "iu":
        raise TypeError(f"`{name}` must hold integer labels. Received: {name}.dtype={y.dtype}")
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"`{name}` must be 1-D with one label per sample ({n}). Received: {name}.shape={y.shape}")
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or (n_classes is not None and hi >= n_classes):
        raise ValueError(f"`{name}` must lie in [0, {n_classes}). Received: labels from {lo} to {hi}")
    return np.ascontiguousarray(y, dtype=np.intp)
