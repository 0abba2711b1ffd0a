"""adam_step in place over 200k (the 784-256-10 MLP) and 10M parameters."""

import numpy as np

import numbanet

from .common import (
    DTYPES, ERROR_UNIT, THREADS, OpSpeed, interleaved_ratio, normal, require, scaled_error,
    set_threads, skip_all_but, skip_single_thread_references, to_torch, torch, triad_bandwidth_ratio,
    uniform,
)

SIZES = {"200k": 200_000, "10M": 10_000_000}
IMPLS = ("numbanet", "numpy", "torch", "torch_fused")
HYPER = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-7)
STEP = 10
ERROR_CASES = {
    "ordinary 200k step 1": (1.0, 1),
    "ordinary 200k step 1000": (1.0, 1000),
    "tiny gradients 200k step 1000": (1e-9, 1000),  # sqrt(v) far below eps
}


def adam_state(n, dtype, grad_scale=1.0):
    """Copies of (param, grad, m, v): m and v as after some steps of such gradients."""
    param = normal((n,), dtype, seed=30).copy()
    grad = normal((n,), dtype, seed=31, scale=grad_scale)
    m = normal((n,), dtype, seed=32, scale=0.1 * grad_scale).copy()
    v = uniform((n,), dtype, seed=33, low=0.5 * grad_scale**2, high=1.5 * grad_scale**2).copy()
    return param, grad, m, v


def numpy_adam_step(param, grad, m, v, step, *, lr, beta1, beta2, eps):
    """The straightforward numpy Adam: bias-corrected moments, eps added to sqrt(v_hat)."""
    m *= beta1
    m += (1 - beta1) * grad
    v *= beta2
    v += (1 - beta2) * grad * grad
    m_hat = m / (1 - beta1**step)
    v_hat = v / (1 - beta2**step)
    param -= lr * m_hat / (np.sqrt(v_hat) + eps)


def adam_call(impl, param, grad, m, v, step=STEP):
    if impl == "numbanet":
        return lambda: numbanet.adam_step(param, grad, m, v, step, **HYPER)
    if impl == "numpy":
        return lambda: numpy_adam_step(param, grad, m, v, step, **HYPER)
    tp, tg = to_torch(param, grad)
    tp.grad = tg
    opt = torch.optim.Adam([tp], lr=HYPER["lr"], betas=(HYPER["beta1"], HYPER["beta2"]),
                           eps=HYPER["eps"], fused=impl == "torch_fused")
    return opt.step


SPEED_PARAMS = [IMPLS, DTYPES, list(SIZES), THREADS]


class AdamStep(OpSpeed):
    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        return adam_call(impl, *adam_state(SIZES[size], dtype))

    @skip_single_thread_references(SPEED_PARAMS)
    def time_adam_step(self, impl, dtype, size, threads):
        self.op()

    @skip_all_but(SPEED_PARAMS, OpSpeed.param_names, impl=["numbanet", "numpy"], dtype=["float32"],
                  size=["10M"], threads=["all"])
    def peakmem_adam_step(self, impl, dtype, size, threads):
        self.op()


class AdamRatio:
    """numbanet / reference time in float32 on all threads, interleaved in one process."""

    params = [["numpy", "torch", "torch_fused"], list(SIZES)]
    param_names = ["reference", "size"]
    unit = "ratio"

    def setup(self, reference, size):
        require(reference)
        set_threads("all")
        n = SIZES[size]
        self.numbanet = adam_call("numbanet", *adam_state(n, np.dtype(np.float32)))
        self.reference = adam_call(reference, *adam_state(n, np.dtype(np.float32)))

    def track_adam_step_ratio(self, reference, size):
        return interleaved_ratio(self.numbanet, self.reference)


class AdamBandwidth:
    """adam_step's bandwidth (7 passes: read p, g, m, v; write p, m, v) / a triad's."""

    params = [THREADS]
    param_names = ["threads"]
    unit = "fraction of triad bandwidth"

    def setup(self, threads):
        set_threads(threads)
        self.state = adam_state(SIZES["10M"], np.dtype(np.float32))
        adam_call("numbanet", *self.state)()

    def track_adam_step_bandwidth(self, threads):
        param = self.state[0]
        return triad_bandwidth_ratio(adam_call("numbanet", *self.state), 7 * param.nbytes,
                                     param.size, param.dtype)


class AdamError:
    """One step from the same state in float32 and float64: error of the new parameters."""

    params = [["numbanet", "numpy"], list(ERROR_CASES)]
    param_names = ["impl", "case"]
    unit = ERROR_UNIT

    def setup(self, impl, case):
        grad_scale, self.step = ERROR_CASES[case]
        state32 = adam_state(SIZES["200k"], np.dtype(np.float32), grad_scale)
        self.states = {dt: [a.astype(dt) for a in state32] for dt in (np.float32, np.float64)}

    def _steps(self, impl, zero_params=False):
        """The parameters after one step, per dtype (optionally starting from zeros)."""
        results = {}
        for dt in (np.float32, np.float64):
            state = [a.copy() for a in self.states[dt]]
            if zero_params:
                state[0][...] = 0
            adam_call(impl, *state, step=self.step)()
            results[dt] = state[0]
        return results

    def track_adam_step_error(self, impl, case):
        """Error of the new parameters (for |p| near 1 mostly their rounding to float32)."""
        results = self._steps(impl)
        return scaled_error(results[np.float32], results[np.float64])

    def track_adam_update_error(self, impl, case):
        """Error of the update alone (parameters start at 0), relative to the largest update:
        max|d32 - d64| / (eps32 * max|d64|)."""
        results = self._steps(impl, zero_params=True)
        d32, d64 = results[np.float32].astype(np.float64), results[np.float64]
        return float(np.max(np.abs(d32 - d64)) / (np.max(np.abs(d64)) * np.finfo(np.float32).eps))
