"""What every optimizer shares: validated hyper-parameters, state per parameter, clipping.

An optimizer is bound to a model's parameter list once: each state slot (moments,
velocities) is one zeroed 1-D buffer, viewed per parameter in the list's order. Each step
then clips the gradients by global norm when ``clip_norm`` is set and updates the
parameters in place through one engine op: per parameter (``apply``), or in one call over
buffers that hold all parameters and all gradients in that order (``apply_buffers``, as
``Sequential`` lays them out).
"""

import math
import numbers

import numpy as np

from numbanet import ops


def check_hyperparameter(name, value, *, low, high=math.inf, low_open=False, high_open=False):
    """``value`` as a float after checking it is a finite real number inside the given range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"`{name}` must be a finite number. Received: {name}={value!r}")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        upper = "inf" if math.isinf(high) else high
        raise ValueError(f"`{name}` must lie in {left}{low}, {upper}{right}. Received: {name}={value!r}")
    return float(value)


class Optimizer:
    """Base class: subclasses set ``slots`` (state arrays per parameter) and ``update``."""

    registry = {}
    slots = ()
    op_name = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        Optimizer.registry[cls.__name__] = cls

    def __init__(self, lr, clip_norm=None):
        self.lr = check_hyperparameter("lr", lr, low=0.0, low_open=True)
        self.clip_norm = None if clip_norm is None else check_hyperparameter(
            "clip_norm", clip_norm, low=0.0, low_open=True
        )
        self.iterations = 0
        self.size = 0
        self.buffers = {}
        self.state = {}

    def bind(self, params):
        """Allocate zeroed state for ``params`` (the model's parameter list, in order, one dtype)."""
        params = list(params)
        dtypes = {p.dtype for p in params}
        if len(dtypes) > 1:
            raise TypeError(f"the parameters must share one dtype. Received: {sorted(d.name for d in dtypes)}")
        dtype = dtypes.pop() if dtypes else np.float32
        self.size = sum(p.size for p in params)
        self.buffers = {slot: np.zeros(self.size, dtype=dtype) for slot in self.slots}
        self.state = {slot: _views(buffer, params) for slot, buffer in self.buffers.items()}

    def clip(self, grads):
        """Global L2 norm of ``grads`` before clipping; scales them in place above ``clip_norm``."""
        if self.clip_norm is None:
            return ops.global_norm(grads)
        return ops.clip_grad_norm(grads, self.clip_norm)

    def apply(self, params, grads):
        """One update of every parameter from its gradient (state bound by :meth:`bind`)."""
        self.iterations += 1
        for i, (param, grad) in enumerate(zip(params, grads)):
            self.update(param, grad, *(self.state[slot][i] for slot in self.slots))

    def apply_buffers(self, param_buffer, grad_buffer):
        """:meth:`apply` in one op call: ``param_buffer`` holds the bound parameters and
        ``grad_buffer`` their gradients, each flattened and laid end to end in order."""
        if param_buffer.shape != (self.size,):
            raise ValueError(
                f"`param_buffer` must be 1-D and hold the {self.size} bound parameters. "
                f"Received: shape {param_buffer.shape}"
            )
        self.iterations += 1
        self.update(param_buffer, grad_buffer, *self.buffers.values())

    def update(self, param, grad, *state):
        """Update ``param`` in place from ``grad`` and its state arrays (one per slot, in order)."""
        raise NotImplementedError

    def get_config(self):
        return {"lr": self.lr, "clip_norm": self.clip_norm}

    def state_arrays(self, prefix=""):
        """State as ``.npz`` entries: ``{prefix}{slot}.{index}``."""
        return {f"{prefix}{slot}.{i}": a for slot, arrays in self.state.items() for i, a in enumerate(arrays)}

    def load_state_arrays(self, arrays, iterations, prefix=""):
        """Restore state written by :meth:`state_arrays` into the bound arrays."""
        for slot, bound in self.state.items():
            for i, target in enumerate(bound):
                stored = arrays[f"{prefix}{slot}.{i}"]
                if stored.shape != target.shape or stored.dtype != target.dtype:
                    raise ValueError(f"optimizer state {slot}.{i} does not match parameter {i}")
                np.copyto(target, stored)
        self.iterations = int(iterations)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _views(buffer, arrays):
    """Consecutive views of the 1-D ``buffer`` shaped like ``arrays``."""
    views, start = [], 0
    for a in arrays:
        views.append(buffer[start:start + a.size].reshape(a.shape))
        start += a.size
    return views
