"""Input checks shared by the public ops.

Every op turns its inputs into C-contiguous float32/float64 arrays (or integer label
vectors) here before a kernel sees them, so kernels never validate. Errors follow one
form: the argument's name, what it must be, and what was received.

Every check runs on each op call, so the happy path is kept cheap: attribute reads and
identity or bounds tests only, no strings or dicts built unless an error is raised.
"""

import math
import threading

import numpy as np

from numbanet.kernels.checks import all_in_range

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_FLOAT32, _FLOAT64 = FLOAT_DTYPES
_INTP = np.dtype(np.intp)


# The fast paths: cheap exact tests that accept only what the full checks would pass
# unchanged. A False sends the op to the full checks, which raise the errors.


def is_plain_float(x, ndim=None):
    """Whether ``as_float_array(x, name, ndim)`` would return ``x`` itself: an ndarray
    (no subclass) whose dtype is numpy's own float32 or float64 object (so native byte
    order), C-contiguous, with ``ndim`` dimensions (an int, or None for any)."""
    return (type(x) is np.ndarray and (x.dtype is _FLOAT32 or x.dtype is _FLOAT64)
            and (ndim is None or x.ndim == ndim) and x.flags.c_contiguous)


def is_writeable_as(a, shape, dtype):
    """Whether ``a`` is a writeable C-contiguous ndarray of exactly ``shape`` and the
    dtype object ``dtype``: what ``check_out`` and ``as_in_place_array`` require,
    overlap aside (the caller tests it)."""
    if type(a) is not np.ndarray or a.dtype is not dtype or a.shape != shape:
        return False
    flags = a.flags
    return flags.c_contiguous and flags.writeable


def is_alias_or_apart(out, x):
    """Whether ``out`` is ``x`` itself or lies outside ``x``'s bounds: then
    ``check_out(out, ..., *not_aliased_by(out, x))`` finds no overlap."""
    return out is x or not np.may_share_memory(out, x)


def as_float_array(x, name, ndim=None):
    """Return ``x`` as a C-contiguous float32/float64 array, copying only if strided.

    NumPy arrays must already be float32 or float64 (``TypeError`` otherwise); Python
    sequences and scalars are converted to float64. ``ndim`` is an int or a tuple of
    allowed ints.
    """
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"`{name}` must be a float32 or float64 array. Received: {type(x).__name__}"
            ) from exc
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"`{name}` must be float32 or float64. Received: {name}.dtype={x.dtype}")
    if ndim is not None and x.ndim != ndim and (isinstance(ndim, int) or x.ndim not in ndim):
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        wanted = " or ".join(f"{d}-D" for d in allowed)
        raise ValueError(f"`{name}` must be {wanted}. Received: {name}.ndim={x.ndim}, shape={x.shape}")
    # ascontiguousarray would also turn a 0-D array into 1-D.
    return x if x.flags.c_contiguous else np.ascontiguousarray(x)


def common_dtype(**arrays):
    """The one float dtype shared by all ``arrays``; ``TypeError`` naming them if mixed."""
    values = iter(arrays.values())
    dtype = next(values).dtype
    for a in values:
        if a.dtype is not dtype and a.dtype != dtype:
            received = ", ".join(f"{name}.dtype={a.dtype}" for name, a in arrays.items())
            raise TypeError(f"`{'`, `'.join(arrays)}` must share one float dtype. Received: {received}")
    return dtype


def check_same_shape(**arrays):
    """``ValueError`` naming the arrays unless they all have one shape."""
    values = iter(arrays.values())
    shape = next(values).shape
    for a in values:
        if a.shape != shape:
            received = ", ".join(f"{name}.shape={a.shape}" for name, a in arrays.items())
            raise ValueError(f"`{'`, `'.join(arrays)}` must have the same shape. Received: {received}")


def check_out(out, shape, dtype, *inputs, name="out"):
    """Validate a caller-given output array, or allocate one when ``out`` is None.

    A given ``out`` must be a writeable C-contiguous ndarray of exactly ``shape`` and
    ``dtype``; it may not overlap any of ``inputs`` unless it *is* that input (ops
    whose kernels read an element before writing it allow exact in-place use by
    passing only the inputs that must stay distinct).
    """
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"`{name}` must be a numpy array. Received: {type(out).__name__}")
    if out.dtype is not dtype and out.dtype != dtype:
        raise TypeError(f"`{name}` must have dtype {np.dtype(dtype)}. Received: {name}.dtype={out.dtype}")
    if out.shape != shape and out.shape != tuple(shape):
        raise ValueError(f"`{name}` must have shape {tuple(shape)}. Received: {name}.shape={out.shape}")
    flags = out.flags
    if not (flags.c_contiguous and flags.writeable):
        raise ValueError(f"`{name}` must be a writeable C-contiguous array")
    for x in inputs:
        # The bounds test is cheap; the exact one runs only when the bounds overlap.
        if np.may_share_memory(out, x) and np.shares_memory(out, x):
            raise ValueError(f"`{name}` must not overlap the op's inputs")
    return out


def as_labels(labels, n, n_classes, name="labels"):
    """Return integer ``labels`` as a C-contiguous intp vector of length ``n``.

    Any integer dtype is accepted (uint8 included); every label must lie in
    ``[0, n_classes)``.
    """
    # Fast path, checks only: a C-contiguous intp ndarray of shape (n,), in range, is
    # returned as it is; anything else takes the full checks.
    if (type(labels) is np.ndarray and labels.dtype is _INTP and labels.shape == (n,)
            and labels.flags.c_contiguous and all_in_range(labels, n_classes)):
        return labels
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"`{name}` must be integers. Received: {name}.dtype={labels.dtype}")
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"`{name}` must be 1-D of length {n}. Received: {name}.shape={labels.shape}")
    if n and not _labels_in_range(labels, n_classes):
        lo, hi = int(labels.min()), int(labels.max())
        bad = lo if lo < 0 else hi
        raise ValueError(f"`{name}` must lie in [0, {n_classes}). Received: a label {bad}")
    return np.ascontiguousarray(labels, dtype=np.intp)


_UNSIGNED = {size: np.dtype(f"u{size}") for size in (1, 2, 4, 8)}


def _labels_in_range(labels, n_classes):
    if labels.dtype.isnative:
        # Read as unsigned, a negative label is huge: one max() tests both bounds.
        return labels.view(_UNSIGNED[labels.dtype.itemsize]).max() < n_classes
    return labels.min() >= 0 and labels.max() < n_classes


def as_scalar(value, name, *, low=None, high=None, low_open=False):
    """Return ``value`` as a float after checking it is finite and in range."""
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"`{name}` must be a real number. Received: {value!r}") from exc
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite. Received: {name}={value}")
    if low is not None and (value < low or (low_open and value == low)):
        bound = f"> {low}" if low_open else f">= {low}"
        raise ValueError(f"`{name}` must be {bound}. Received: {name}={value}")
    if high is not None and value > high:
        raise ValueError(f"`{name}` must be <= {high}. Received: {name}={value}")
    return value


def not_aliased_by(out, *arrays):
    """The ``arrays`` that ``out`` is not an exact alias of (same first element,
    shape, strides and dtype); pass them to ``check_out`` for its overlap check.

    An elementwise kernel may write over an input it reads at the same index, but a
    shifted or partial overlap would read elements it has already written: only an
    exact alias is safe, so only an exact alias is exempt.
    """
    if not isinstance(out, np.ndarray):
        return arrays
    return tuple(a for a in arrays if not _same_elements(out, a))


def _same_elements(a, b):
    if a is b:
        return True
    # Cheap tests first: most calls stop at the bounds test (disjoint arrays), and
    # the data pointers are read only for overlapping arrays of one layout.
    return (
        a.shape == b.shape
        and a.strides == b.strides
        and a.dtype == b.dtype
        and np.may_share_memory(a, b)
        and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    )


def as_seed(seed, name="seed"):
    """Return ``seed`` as a Python int after checking it is an integer in [0, 2**64)."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"`{name}` must be an integer. Received: {type(seed).__name__}")
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise ValueError(f"`{name}` must lie in [0, 2**64). Received: {name}={seed}")
    return seed


def as_in_place_array(x, name):
    """Return ``x`` after checking it can be updated in place by a kernel.

    It must be a float32/float64 ndarray (``TypeError``), writeable and C-contiguous
    (``ValueError``): an in-place op that worked on a contiguous copy would silently
    lose its result.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"`{name}` must be a numpy array (it is updated in place). Received: {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"`{name}` must be float32 or float64. Received: {name}.dtype={x.dtype}")
    flags = x.flags
    if not (flags.c_contiguous and flags.writeable):
        raise ValueError(f"`{name}` must be a writeable C-contiguous array (it is updated in place)")
    return x


def check_disjoint(**arrays):
    """``ValueError`` naming two of the C-contiguous ``arrays`` that share memory."""
    values = tuple(arrays.values())
    for i in range(len(values) - 1):
        a = values[i]
        for j in range(i + 1, len(values)):
            # For C-contiguous arrays overlapping bounds are shared memory; this
            # bounds test is far cheaper than np.shares_memory's exact one.
            if np.may_share_memory(a, values[j]):
                names = tuple(arrays)
                raise ValueError(f"`{names[i]}` and `{names[j]}` must not share memory (both are updated in place)")


_scratch = threading.local()


def scratch(name, shape, dtype):
    """A reusable uninitialised array of ``shape`` and ``dtype`` for the calling thread.

    For an op's internal workspace (per-row losses, block partials): reused across
    calls so that a training step allocates nothing, and per thread so that ops called
    from several threads never share one. ``name`` keeps apart the workspaces of an op
    that needs several; an array is valid until the same thread asks for it again.
    """
    arrays = getattr(_scratch, "arrays", None)
    if arrays is None:
        arrays = _scratch.arrays = {}
    key = (name, shape, dtype)
    array = arrays.get(key)
    if array is None:
        # Bounded: a run uses a few shapes; many distinct ones (tests) just start over.
        if len(arrays) >= 64:
            arrays.clear()
        array = arrays[key] = np.empty(shape, dtype=dtype)
    return array
