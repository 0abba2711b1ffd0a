"""The SGD-with-momentum update, in place, in the parameters' own dtype.

Dimension legend: N = number of parameters (all arrays flattened).

PyTorch's form: the velocity accumulates raw gradients and the learning rate
multiplies it at the update (not Sutskever's velocity = momentum v - lr g).
"""

from numba import prange

from numbanet._config import kernel, serial_kernel


@kernel
def sgd_update_parallel(param, grad, velocity, lr, momentum):
    """velocity = momentum velocity + grad; param -= lr velocity; all (N,), in place."""
    for i in prange(param.shape[0]):
        vel = momentum * velocity[i] + grad[i]
        velocity[i] = vel
        param[i] -= lr * vel


@serial_kernel
def sgd_update_serial(param, grad, velocity, lr, momentum):
    """``sgd_update_parallel`` on one thread; param, grad, velocity: (N,)."""
    for i in range(param.shape[0]):
        vel = momentum * velocity[i] + grad[i]
        velocity[i] = vel
        param[i] -= lr * vel
