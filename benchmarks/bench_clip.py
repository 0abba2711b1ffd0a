"""Gradient norms and clipping over a list of arrays, and the all-finite check."""

import numpy as np

import numbanet

from .common import (
    DTYPES, ERROR_UNIT, IMPLS, THREADS, OpSpeed, normal, scaled_error, skip_all_but,
    skip_single_thread_references, to_torch, torch,
)

SIZES = {
    "784-256-10 grads": [(784, 256), (256,), (256, 10), (10,)],
    "10M": [(10_000_000,)],
}
ERROR_CASES = {
    "784-256-10 grads": (SIZES["784-256-10 grads"], 1.0),
    "large 10M": ([(10_000_000,)], 1e15),  # the sum of squares nears float32's limit
}


def gradients(size, dtype, scale=1.0):
    shapes = SIZES[size] if isinstance(size, str) else size
    return [normal(shape, dtype, seed=20 + i, scale=scale) for i, shape in enumerate(shapes)]


def numpy_global_norm(arrays):
    return np.sqrt(sum(np.vdot(a, a) for a in arrays))


def global_norm_call(impl, arrays):
    if impl == "numbanet":
        return lambda: numbanet.global_norm(arrays)
    if impl == "numpy":
        return lambda: numpy_global_norm(arrays)
    tensors = to_torch(*arrays)
    return lambda: torch.nn.utils.get_total_norm(tensors)


def clip_grad_norm_call(impl, arrays, max_norm):
    """Clips ``arrays`` in place (the caller passes copies)."""
    if impl == "numbanet":
        return lambda: numbanet.clip_grad_norm(arrays, max_norm)
    if impl == "numpy":
        def clip():
            norm = numpy_global_norm(arrays)
            if norm > max_norm:
                for a in arrays:
                    a *= a.dtype.type(max_norm / norm)
            return norm
        return clip
    params = [torch.zeros(a.shape, dtype=t.dtype, requires_grad=True) for a, t in zip(arrays, to_torch(*arrays))]
    for p, t in zip(params, to_torch(*arrays)):
        p.grad = t
    return lambda: torch.nn.utils.clip_grad_norm_(params, max_norm)


def all_finite_call(impl, x):
    if impl == "numbanet":
        return lambda: numbanet.all_finite(x)
    if impl == "numpy":
        return lambda: np.isfinite(x).all()
    (t,) = to_torch(x)
    return lambda: bool(torch.isfinite(t).all())


SPEED_PARAMS = [IMPLS, DTYPES, list(SIZES), THREADS]
PEAKMEM_ONLY = dict(impl=["numbanet", "numpy"], dtype=["float32"], size=["10M"], threads=["all"])


class GlobalNorm(OpSpeed):
    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        return global_norm_call(impl, gradients(size, dtype))

    @skip_single_thread_references(SPEED_PARAMS)
    def time_global_norm(self, impl, dtype, size, threads):
        self.op()


class ClipGradNorm(OpSpeed):
    """Every timed call clips: the arrays are fresh copies (norm far above max_norm=1)."""

    params = SPEED_PARAMS
    rebuild_after_warmup = True

    def build(self, impl, dtype, size):
        return clip_grad_norm_call(impl, [g.copy() for g in gradients(size, dtype)], 1.0)

    @skip_single_thread_references(SPEED_PARAMS)
    def time_clip_grad_norm(self, impl, dtype, size, threads):
        self.op()

    @skip_all_but(SPEED_PARAMS, OpSpeed.param_names, **PEAKMEM_ONLY)
    def peakmem_clip_grad_norm(self, impl, dtype, size, threads):
        self.op()


class AllFinite(OpSpeed):
    """All elements finite: the full scan (no early exit possible)."""

    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        return all_finite_call(impl, gradients(size, dtype)[0])

    @skip_single_thread_references(SPEED_PARAMS)
    def time_all_finite(self, impl, dtype, size, threads):
        self.op()


class ClipError:
    """float32 vs float64 on the same gradients (numpy's float32 error beside).

    ``all_finite`` returns a bool, identical in both dtypes by construction: no metric.
    """

    params = [["numbanet", "numpy"], list(ERROR_CASES)]
    param_names = ["impl", "case"]
    unit = ERROR_UNIT

    def setup(self, impl, case):
        shapes, scale = ERROR_CASES[case]
        grads32 = gradients(shapes, np.float32, scale)
        self.grads = {dt: [g.astype(dt) for g in grads32] for dt in (np.float32, np.float64)}

    def track_global_norm_error(self, impl, case):
        return scaled_error(*(global_norm_call(impl, self.grads[dt])() for dt in (np.float32, np.float64)))

    def track_clip_grad_norm_error(self, impl, case):
        """Error of the clipped arrays (max_norm = half the norm) and of the returned norm."""
        results = {}
        for dt in (np.float32, np.float64):
            arrays = [g.copy() for g in self.grads[dt]]
            max_norm = float(numpy_global_norm(self.grads[np.float64])) / 2
            norm = clip_grad_norm_call(impl, arrays, max_norm)()
            results[dt] = (norm, np.concatenate([a.ravel() for a in arrays]))
        return max(scaled_error(results[np.float32][i], results[np.float64][i]) for i in (0, 1))
