"""The fused Adam update, in place, in the parameters' own dtype.

Dimension legend: N = number of parameters (all arrays flattened).

One pass reads param, grad, m, v and writes param, m, v (seven array passes, the
least Adam can do): the update is memory-bound, so fusing it is the optimisation.
The bias corrections are scalars the caller computes once per step.

np.divide, not `/`: outside prange Numba's Python error model turns `/` into a
zero test that raises ZeroDivisionError (for eps = 0) and keeps the loop scalar.
"""

import numpy as np
from numba import prange

from numbanet._config import kernel, serial_kernel


@kernel
def adam_update_parallel(param, grad, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2, step_size, inv_bc2, eps):
    """Adam step on param, m, v in place; param, grad, m, v: (N,), scalars of their dtype.

    m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;
    param -= step_size m / (sqrt(v inv_bc2) + eps), where step_size = lr / (1 - beta1^t)
    and inv_bc2 = 1 / (1 - beta2^t), so that this is lr m_hat / (sqrt(v_hat) + eps).
    """
    for i in prange(param.shape[0]):
        g = grad[i]
        m_new = beta1 * m[i] + one_minus_beta1 * g
        v_new = beta2 * v[i] + one_minus_beta2 * (g * g)
        m[i] = m_new
        v[i] = v_new
        param[i] -= np.divide(step_size * m_new, np.sqrt(v_new * inv_bc2) + eps)


@serial_kernel
def adam_update_serial(param, grad, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2, step_size, inv_bc2, eps):
    """``adam_update_parallel`` on one thread (identical bits); param, grad, m, v: (N,)."""
    for i in range(param.shape[0]):
        g = grad[i]
        m_new = beta1 * m[i] + one_minus_beta1 * g
        v_new = beta2 * v[i] + one_minus_beta2 * (g * g)
        m[i] = m_new
        v[i] = v_new
        param[i] -= np.divide(step_size * m_new, np.sqrt(v_new * inv_bc2) + eps)
