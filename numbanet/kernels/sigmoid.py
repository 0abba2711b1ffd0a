"""Logistic sigmoid, its backward, and binary cross-entropy from logits.

Legend: n = number of elements (any shape, flattened by the op).

Every exp here has a non-positive argument: with e = exp(-|z|) in (0, 1],
sigmoid(z) = 1 / (1 + e) for z >= 0 and e / (1 + e) for z < 0, so neither branch
overflows, and a select (not a branch) keeps the loop vectorised.
"""

import numpy as np
from numba import prange

from numbanet._config import kernel
from numbanet.kernels.exp import vexp


@kernel
def sigmoid_forward(z, y):
    # z, y: (n,). y = 1 / (1 + exp(-z)), piecewise as in the header.
    one = z.dtype.type(1)
    for i in prange(z.shape[0]):
        e = vexp(-abs(z[i]))
        y[i] = (one if z[i] >= 0 else e) / (one + e)


@kernel
def sigmoid_backward(dy, y, dz):
    # dy, y, dz: (n,), y = sigmoid(z). dz = dy * y * (1 - y).
    one = y.dtype.type(1)
    for i in prange(y.shape[0]):
        dz[i] = dy[i] * y[i] * (one - y[i])


@kernel
def bce_with_logits_forward(z, t, loss):
    # z, t, loss: (n,). loss = max(z, 0) - z * t + log1p(exp(-|z|)).
    zero = z.dtype.type(0)
    for i in prange(z.shape[0]):
        loss[i] = (z[i] if z[i] > zero else zero) - z[i] * t[i] + np.log1p(vexp(-abs(z[i])))


@kernel
def bce_with_logits_backward(z, t, inv_n, dz):
    # z, t, dz: (n,). dz = (sigmoid(z) - t) * inv_n, the gradient of the mean loss.
    one = z.dtype.type(1)
    for i in prange(z.shape[0]):
        e = vexp(-abs(z[i]))
        dz[i] = ((one if z[i] >= 0 else e) / (one + e) - t[i]) * inv_n
