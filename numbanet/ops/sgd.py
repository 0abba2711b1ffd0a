"""The SGD-with-momentum update: ``sgd_step``."""

from numbanet.kernels.sgd import sgd_update_parallel, sgd_update_serial
from numbanet.ops._validate import (
    as_float_array,
    as_in_place_array,
    as_scalar,
    check_disjoint,
    check_same_shape,
    common_dtype,
)

__all__ = ["sgd_step"]

# Below this many parameters (biases, small layers) one thread finishes the update
# sooner than the thread pool wakes up.
SERIAL_MAX = 2**14


def sgd_step(param, grad, velocity, *, lr, momentum=0.0):
    """velocity = momentum * velocity + grad, then param -= lr * velocity, in place.

    PyTorch's form of heavy-ball momentum: the velocity accumulates raw gradients and
    lr scales it at the update, so changing lr mid-training takes effect at once.

    Parameters
    ----------
    param, velocity : ndarray of float32 or float64
        Parameters and momentum buffer (start at zeros), updated in place: one dtype,
        one shape, writeable, C-contiguous, not sharing memory.
    grad : array_like
        Gradient of ``param``'s shape and dtype (strided arrays are copied).
    lr : float
        Learning rate, ``>= 0``.
    momentum : float, optional
        ``>= 0``; 0 is plain SGD (the velocity then holds the last gradient).

    Returns
    -------
    None

    Raises
    ------
    TypeError
        If an array is not float32/float64 (or ``param``, ``velocity`` not ndarrays),
        the dtypes are mixed, or a hyper-parameter is not a real number.
    ValueError
        If the shapes differ, ``param``/``velocity`` are not writeable C-contiguous
        arrays or share memory, or ``lr``/``momentum`` is negative or not finite.

    Notes
    -----
    Equivalent to Sutskever's ``u = momentum u - lr g; param += u`` with ``u = -lr
    velocity`` while lr is constant. No dampening, Nesterov or weight decay. Computed
    in the parameters' dtype; elementwise, so bit-identical for any number of threads.
    """
    param = as_in_place_array(param, "param")
    velocity = as_in_place_array(velocity, "velocity")
    grad = as_float_array(grad, "grad")
    dtype = common_dtype(param=param, grad=grad, velocity=velocity)
    check_same_shape(param=param, grad=grad, velocity=velocity)
    check_disjoint(param=param, grad=grad, velocity=velocity)
    lr = as_scalar(lr, "lr", low=0.0)
    momentum = as_scalar(momentum, "momentum", low=0.0)
    if param.size == 0:
        return None
    update = sgd_update_serial if param.size <= SERIAL_MAX else sgd_update_parallel
    update(param.reshape(-1), grad.reshape(-1), velocity.reshape(-1), dtype.type(lr), dtype.type(momentum))
    return None
