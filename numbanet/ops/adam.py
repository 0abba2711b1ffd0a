"""The fused Adam update: ``adam_step``."""

import functools
import operator

import numpy as np

from numbanet.kernels.adam import adam_update_parallel, adam_update_serial
from numbanet.ops._validate import (
    as_float_array,
    as_in_place_array,
    as_scalar,
    check_disjoint,
    check_same_shape,
    common_dtype,
    is_plain_float,
    is_writeable_as,
)

__all__ = ["adam_step"]

# Below this many parameters (biases, small layers) one thread finishes the update
# sooner than the thread pool wakes up.
SERIAL_MAX = 2**14


def as_step(step):
    """``step`` as an int after checking it is an integer >= 1 (the 1-based step count)."""
    if isinstance(step, (bool, np.bool_)):
        raise TypeError(f"`step` must be an integer. Received: {step!r}")
    try:
        step = operator.index(step)
    except TypeError as exc:
        raise TypeError(f"`step` must be an integer. Received: {step!r}") from exc
    if step < 1:
        raise ValueError(f"`step` must be >= 1 (the 1-based step count). Received: step={step}")
    return step


def as_beta(value, name):
    """``value`` as a float after checking 0 <= value < 1."""
    value = as_scalar(value, name, low=0.0)
    if value >= 1.0:
        raise ValueError(f"`{name}` must be < 1. Received: {name}={value}")
    return value


def _kernel_scalars(dtype, lr, beta1, beta2, eps, step):
    """The kernel's scalar arguments in ``dtype`` after checking the hyper-parameters:
    beta1, 1 - beta1, beta2, 1 - beta2, lr / (1 - beta1^t), 1 / (1 - beta2^t), eps (the
    bias corrections computed in float64)."""
    lr = as_scalar(lr, "lr", low=0.0)
    beta1 = as_beta(beta1, "beta1")
    beta2 = as_beta(beta2, "beta2")
    eps = as_scalar(eps, "eps", low=0.0)
    inv_bc1 = 1.0 / (1.0 - beta1**step)
    inv_bc2 = 1.0 / (1.0 - beta2**step)
    t = dtype.type
    return t(beta1), t(1.0 - beta1), t(beta2), t(1.0 - beta2), t(lr * inv_bc1), t(inv_bc2), t(eps)


# An optimizer passes the same Python floats and step to the update of every parameter
# of a step: their checks and casts are done once per step (errors are raised, never
# cached). One entry: a larger cache keyed by the step rebuilds its dict (about 1 KiB)
# every few dozen steps.
_cached_kernel_scalars = functools.lru_cache(maxsize=1)(_kernel_scalars)
_EXACT_NUMBERS = (float, int)


def _is_plain(param, grad, m, v, step):
    # Fast path, checks only: a plain float ``grad`` (is_plain_float); ``param``, ``m``
    # and ``v`` writeable C-contiguous ndarrays of its shape and dtype; all four pairwise
    # outside each other's bounds; an int ``step`` >= 1. False sends adam_step to the
    # full validation.
    if not is_plain_float(grad):
        return False
    shape, dtype = grad.shape, grad.dtype
    return (is_writeable_as(param, shape, dtype)
            and is_writeable_as(m, shape, dtype) and is_writeable_as(v, shape, dtype)
            and type(step) is int and step >= 1
            and not (np.may_share_memory(param, grad) or np.may_share_memory(param, m)
                     or np.may_share_memory(param, v) or np.may_share_memory(grad, m)
                     or np.may_share_memory(grad, v) or np.may_share_memory(m, v)))


def adam_step(param, grad, m, v, step, *, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-7):
    """param -= lr * m_hat / (sqrt(v_hat) + eps), m_hat = m/(1-beta1^t), v_hat = v/(1-beta2^t).

    One fused pass first updates m = beta1 m + (1-beta1) g and v = beta2 v + (1-beta2) g^2
    in place; the bias corrections 1/(1-beta^t) and lr/(1-beta1^t) are computed once in
    float64, then everything runs in the parameters' dtype.

    Parameters
    ----------
    param, m, v : ndarray of float32 or float64
        Parameters, first and second moments (start at zeros), updated in place: one
        dtype, one shape, writeable, C-contiguous, not sharing memory.
    grad : array_like
        Gradient of ``param``'s shape and dtype (strided arrays are copied).
    step : int
        The 1-based count of this step (t above).
    lr : float, optional
        Learning rate, ``>= 0``.
    beta1, beta2 : float, optional
        Moment decay rates, in ``[0, 1)``.
    eps : float, optional
        Added to sqrt(v_hat), ``>= 0``.

    Returns
    -------
    None

    Raises
    ------
    TypeError
        If an array is not float32/float64 (or ``param``, ``m``, ``v`` not ndarrays),
        the dtypes are mixed, ``step`` is not an integer or a hyper-parameter not a
        real number.
    ValueError
        If the shapes differ, ``param``/``m``/``v`` are not writeable C-contiguous
        arrays (updating a copy would be silently lost) or share memory, ``step < 1``,
        or a hyper-parameter is out of range or not finite.

    Notes
    -----
    ε sits outside the square root of the bias-corrected v, as in PyTorch and optax
    (Keras adds ε to the uncorrected sqrt(v), a different update in the first
    steps). ``eps = 0`` is allowed as in PyTorch; a parameter whose gradient has
    always been 0 then gets 0/0 = NaN. Elementwise: bit-identical for any number of
    threads. The update reads and writes seven arrays once each and runs at memory
    bandwidth; ``benchmarks/bench_adam.py`` compares it with torch's fused Adam.
    """
    if _is_plain(param, grad, m, v, step):
        dtype = grad.dtype
    else:
        param = as_in_place_array(param, "param")
        m = as_in_place_array(m, "m")
        v = as_in_place_array(v, "v")
        grad = as_float_array(grad, "grad")
        dtype = common_dtype(param=param, grad=grad, m=m, v=v)
        check_same_shape(param=param, grad=grad, m=m, v=v)
        check_disjoint(param=param, grad=grad, m=m, v=v)
        step = as_step(step)
    exact = (type(lr) in _EXACT_NUMBERS and type(beta1) in _EXACT_NUMBERS
             and type(beta2) in _EXACT_NUMBERS and type(eps) in _EXACT_NUMBERS)
    scalars = (_cached_kernel_scalars if exact else _kernel_scalars)(dtype, lr, beta1, beta2, eps, step)
    if param.size == 0:
        return None
    update = adam_update_serial if param.size <= SERIAL_MAX else adam_update_parallel
    update(param.ravel(), grad.ravel(), m.ravel(), v.ravel(), *scalars)
    return None
