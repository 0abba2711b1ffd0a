"""What every optimizer shares: validated hyper-parameters, state per parameter, clipping.

An optimizer is bound to a model's parameter list once (its state arrays — moments,
velocities — are allocated there, matching each parameter's shape and dtype); each step
then clips the gradients by global norm when ``clip_norm`` is set and updates every
parameter in place through one engine op.
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
        self.state = {}

    def bind(self, params):
        """Allocate zeroed state for ``params`` (the model's parameter list, in order)."""
        self.state = {slot: [np.zeros_like(p) for p in params] for slot in self.slots}

    def clip(self, grads):
        """Global L2 norm of ``grads`` before clipping; scales them in place above ``clip_norm``."""
        if self.clip_norm is None:
            return ops.global_norm(grads)
        return ops.clip_grad_norm(grads, self.clip_norm)

    def apply(self, params, grads):
        """One update of every parameter from its gradient (state bound by :meth:`bind`)."""
        self.iterations += 1
        for i, (param, grad) in enumerate(zip(params, grads)):
            self.update(i, param, grad)

    def update(self, index, param, grad):
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
