"""sgd_step in place (momentum 0.9) over 200k and 10M parameters."""

import numpy as np

import numbanet

from .common import (
    DTYPES, ERROR_UNIT, IMPLS, THREADS, OpSpeed, normal, scaled_error, skip_all_but,
    skip_single_thread_references, to_torch, torch,
)

SIZES = {"200k": 200_000, "10M": 10_000_000}
LR, MOMENTUM = 0.01, 0.9


def sgd_state(n, dtype):
    """Copies of (param, grad, velocity)."""
    return (normal((n,), dtype, seed=40).copy(), normal((n,), dtype, seed=41),
            normal((n,), dtype, seed=42, scale=0.1).copy())


def numpy_sgd_step(param, grad, velocity):
    """PyTorch's convention: velocity = momentum * velocity + grad; param -= lr * velocity."""
    velocity *= MOMENTUM
    velocity += grad
    param -= LR * velocity


def sgd_call(impl, param, grad, velocity):
    if impl == "numbanet":
        return lambda: numbanet.sgd_step(param, grad, velocity, lr=LR, momentum=MOMENTUM)
    if impl == "numpy":
        return lambda: numpy_sgd_step(param, grad, velocity)
    tp, tg = to_torch(param, grad)
    tp.grad = tg
    return torch.optim.SGD([tp], lr=LR, momentum=MOMENTUM).step


SPEED_PARAMS = [IMPLS, DTYPES, list(SIZES), THREADS]


class SgdStep(OpSpeed):
    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        return sgd_call(impl, *sgd_state(SIZES[size], dtype))

    @skip_single_thread_references(SPEED_PARAMS)
    def time_sgd_step(self, impl, dtype, size, threads):
        self.op()

    @skip_all_but(SPEED_PARAMS, OpSpeed.param_names, impl=["numbanet", "numpy"], dtype=["float32"],
                  size=["10M"], threads=["all"])
    def peakmem_sgd_step(self, impl, dtype, size, threads):
        self.op()


class SgdError:
    """One step from the same state in float32 and float64: error of the new parameters."""

    params = [["numbanet", "numpy"]]
    param_names = ["impl"]
    unit = ERROR_UNIT

    def setup(self, impl):
        state32 = sgd_state(SIZES["200k"], np.float32)
        self.states = {dt: [a.astype(dt) for a in state32] for dt in (np.float32, np.float64)}

    def track_sgd_step_error(self, impl):
        for dt in (np.float32, np.float64):
            sgd_call(impl, *self.states[dt])()
        return scaled_error(self.states[np.float32][0], self.states[np.float64][0])
