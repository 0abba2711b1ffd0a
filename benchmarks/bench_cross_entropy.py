"""Cross-entropy of logits (N, C) with integer labels (N,): loss, gradient, fused, from probs."""

import functools

import numpy as np

import numbanet

from .bench_softmax import ERROR_CASES, LOGITS, logits, numpy_log_softmax, numpy_softmax
from .common import (
    DTYPES, ERROR_UNIT, IMPLS, REFERENCES, THREADS, OpSpeed, interleaved_ratio, labels, normal,
    require, scaled_error, set_threads, skip_all_but, skip_single_thread_references, to_torch,
    torch,
)

PROBS_CLIP = (1e-7, 1 - 1e-7)


def targets(n, n_classes):
    return labels(n, n_classes, seed=5)


@functools.lru_cache(maxsize=None)
def probabilities(size, dtype):
    return numpy_softmax(logits(size, dtype))


def numpy_cross_entropy(x, y):
    """mean(-log_softmax(x)[i, y_i])."""
    return -numpy_log_softmax(x)[np.arange(len(y)), y].mean()


def numpy_cross_entropy_grad(x, y):
    """(softmax(x) - onehot(y)) / N."""
    grad = numpy_softmax(x)
    grad[np.arange(len(y)), y] -= 1
    grad /= len(y)
    return grad


def numpy_softmax_cross_entropy(x, y):
    """Loss and gradient from one pass of max, exp and sum."""
    rows = np.arange(len(y))
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=-1, keepdims=True)
    loss = (np.log(s[:, 0]) - z[rows, y]).mean()
    grad = e / s
    grad[rows, y] -= 1
    grad /= len(y)
    return loss, grad


def numpy_cross_entropy_from_probs(p, y):
    return -np.log(np.clip(p[np.arange(len(y)), y], *PROBS_CLIP)).mean()


def _torch_loss_and_grad(t, ty):
    leaf = t.detach().requires_grad_()
    loss = torch.nn.functional.cross_entropy(leaf, ty)
    (grad,) = torch.autograd.grad(loss, leaf)
    return loss, grad


def cross_entropy_call(impl, x, y):
    if impl == "numbanet":
        return lambda: numbanet.cross_entropy(x, y)
    if impl == "numpy":
        return lambda: numpy_cross_entropy(x, y)
    t, ty = to_torch(x, y)
    return lambda: torch.nn.functional.cross_entropy(t, ty)


def cross_entropy_grad_call(impl, x, y):
    if impl == "numbanet":
        return lambda: numbanet.cross_entropy_grad(x, y)
    if impl == "numpy":
        return lambda: numpy_cross_entropy_grad(x, y)
    t, ty = to_torch(x, y)
    return lambda: _torch_loss_and_grad(t, ty)[1]


def softmax_cross_entropy_call(impl, x, y):
    if impl == "numbanet":
        return lambda: numbanet.softmax_cross_entropy(x, y)
    if impl == "numpy":
        return lambda: numpy_softmax_cross_entropy(x, y)
    t, ty = to_torch(x, y)
    return lambda: _torch_loss_and_grad(t, ty)


def cross_entropy_from_probs_call(impl, p, y):
    if impl == "numbanet":
        return lambda: numbanet.cross_entropy_from_probs(p, y)
    if impl == "numpy":
        return lambda: numpy_cross_entropy_from_probs(p, y)
    t, ty = to_torch(p, y)
    return lambda: torch.nn.functional.nll_loss(torch.log(torch.clamp(t, *PROBS_CLIP)), ty)


def logits_and_labels(size, dtype):
    x = logits(size, dtype)
    return x, targets(*x.shape)


SPEED_PARAMS = [IMPLS, DTYPES, list(LOGITS), THREADS]
PEAKMEM_ONLY = dict(impl=["numbanet", "numpy"], dtype=["float32"], size=["8192x1000"], threads=["all"])


class CrossEntropy(OpSpeed):
    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        return cross_entropy_call(impl, *logits_and_labels(size, dtype))

    @skip_single_thread_references(SPEED_PARAMS)
    def time_cross_entropy(self, impl, dtype, size, threads):
        self.op()

    @skip_all_but(SPEED_PARAMS, OpSpeed.param_names, **PEAKMEM_ONLY)
    def peakmem_cross_entropy(self, impl, dtype, size, threads):
        self.op()


class CrossEntropyGrad(OpSpeed):
    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        return cross_entropy_grad_call(impl, *logits_and_labels(size, dtype))

    @skip_single_thread_references(SPEED_PARAMS)
    def time_cross_entropy_grad(self, impl, dtype, size, threads):
        self.op()

    @skip_all_but(SPEED_PARAMS, OpSpeed.param_names, **PEAKMEM_ONLY)
    def peakmem_cross_entropy_grad(self, impl, dtype, size, threads):
        self.op()


class SoftmaxCrossEntropy(OpSpeed):
    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        return softmax_cross_entropy_call(impl, *logits_and_labels(size, dtype))

    @skip_single_thread_references(SPEED_PARAMS)
    def time_softmax_cross_entropy(self, impl, dtype, size, threads):
        self.op()

    @skip_all_but(SPEED_PARAMS, OpSpeed.param_names, **PEAKMEM_ONLY)
    def peakmem_softmax_cross_entropy(self, impl, dtype, size, threads):
        self.op()


class CrossEntropyFromProbs(OpSpeed):
    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        p = probabilities(size, dtype)
        return cross_entropy_from_probs_call(impl, p, targets(*p.shape))

    @skip_single_thread_references(SPEED_PARAMS)
    def time_cross_entropy_from_probs(self, impl, dtype, size, threads):
        self.op()


class SoftmaxCrossEntropyRatio:
    """Fused loss + gradient, numbanet / reference time in float32 on all threads."""

    params = [REFERENCES, list(LOGITS)]
    param_names = ["reference", "size"]
    unit = "ratio"

    def setup(self, reference, size):
        require(reference)
        set_threads("all")
        self.args = logits_and_labels(size, np.float32)

    def track_softmax_cross_entropy_ratio(self, reference, size):
        return interleaved_ratio(
            softmax_cross_entropy_call("numbanet", *self.args),
            softmax_cross_entropy_call(reference, *self.args),
        )


class CrossEntropyError:
    """float32 vs float64 on the same logits/probabilities (numpy's float32 error beside)."""

    params = [["numbanet", "numpy"], list(ERROR_CASES)]
    param_names = ["impl", "case"]
    unit = ERROR_UNIT

    def setup(self, impl, case):
        shape, scale = ERROR_CASES[case]
        x32 = normal(shape, np.float32, seed=4, scale=scale)
        self.y = targets(*shape)
        self.x = {np.float32: x32, np.float64: x32.astype(np.float64)}
        p32 = numpy_softmax(x32.astype(np.float64)).astype(np.float32)
        self.p = {np.float32: p32, np.float64: p32.astype(np.float64)}

    def _error(self, call, inputs):
        return scaled_error(call(inputs[np.float32], self.y)(), call(inputs[np.float64], self.y)())

    def track_cross_entropy_error(self, impl, case):
        return self._error(functools.partial(cross_entropy_call, impl), self.x)

    def track_cross_entropy_grad_error(self, impl, case):
        return self._error(functools.partial(cross_entropy_grad_call, impl), self.x)

    def track_softmax_cross_entropy_error(self, impl, case):
        """The larger of the loss's and the gradient's error."""
        (loss32, grad32), (loss64, grad64) = (
            softmax_cross_entropy_call(impl, self.x[dt], self.y)() for dt in (np.float32, np.float64)
        )
        return max(scaled_error(loss32, loss64), scaled_error(grad32, grad64))

    def track_cross_entropy_from_probs_error(self, impl, case):
        return self._error(functools.partial(cross_entropy_from_probs_call, impl), self.p)
