"""matmul: op(a) @ op(b) at the MLP's training shapes (batch 128) and 1024^3.

Size names are "<op> MxKxN": an (M, K) by (K, N) product; "tn" multiplies a stored
(K, M) array transposed (``dW = x.T @ dy``), "nt" a stored (N, K) one (``dx = dy @ W.T``).
"""

import numpy as np

import numbanet

from .common import (
    DTYPES, ERROR_UNIT, IMPLS, THREADS, OpSpeed, interleaved_ratio, log_uniform_signed,
    normal, require, scaled_error, set_threads, skip_all_but, skip_single_thread_references,
    to_torch,
)

SHAPES = {
    "nn 128x784x256": (128, 784, 256, False, False),  # x @ W1
    "tn 784x128x256": (784, 128, 256, True, False),   # dW1 = x.T @ dy
    "nt 128x256x784": (128, 256, 784, False, True),   # dx = dy @ W1.T
    "nn 128x256x10": (128, 256, 10, False, False),    # h @ W2
    "tn 256x128x10": (256, 128, 10, True, False),     # dW2 = h.T @ dy
    "nt 128x10x256": (128, 10, 256, False, True),     # dh = dy @ W2.T
    "nn 1024x1024x1024": (1024, 1024, 1024, False, False),
}


def operands(size, dtype, make=normal):
    """The stored arrays (a, b) of ``size`` and its transpose flags."""
    m, k, n, trans_a, trans_b = SHAPES[size]
    a = make((k, m) if trans_a else (m, k), dtype, seed=1)
    b = make((n, k) if trans_b else (k, n), dtype, seed=2)
    return a, b, trans_a, trans_b


def matmul_call(impl, a, b, trans_a, trans_b):
    """A zero-argument call of ``impl``'s op(a) @ op(b)."""
    if impl == "numbanet":
        return lambda: numbanet.matmul(a, b, trans_a=trans_a, trans_b=trans_b)
    if impl == "numpy":
        a_op, b_op = (a.T if trans_a else a), (b.T if trans_b else b)
        return lambda: a_op @ b_op
    ta, tb = to_torch(a, b)
    ta, tb = (ta.T if trans_a else ta), (tb.T if trans_b else tb)
    return lambda: ta @ tb


class Matmul(OpSpeed):
    params = [IMPLS, DTYPES, list(SHAPES), THREADS]
    timeout = 300  # a cold Numba cache compiles the register-tiled kernels in setup

    def build(self, impl, dtype, size):
        return matmul_call(impl, *operands(size, dtype))

    @skip_single_thread_references(params, keep=("numbanet", "numpy"))  # OpenBLAS on 1 thread
    def time_matmul(self, impl, dtype, size, threads):
        self.op()

    @skip_all_but(params, OpSpeed.param_names, dtype=["float32"],
                  size=["nn 1024x1024x1024"], threads=["all"])
    def peakmem_matmul(self, impl, dtype, size, threads):
        self.op()


class MatmulRatio:
    """numbanet / numpy (OpenBLAS) time, interleaved in one process: issue 5's targets."""

    params = [DTYPES, list(SHAPES), THREADS]
    param_names = ["dtype", "size", "threads"]
    unit = "ratio"
    timeout = 300

    def setup(self, dtype, size, threads):
        require("numpy", threads)
        set_threads(threads)
        args = operands(size, np.dtype(dtype))
        self.numbanet = matmul_call("numbanet", *args)
        self.numpy = matmul_call("numpy", *args)
        self.numbanet()

    def track_matmul_ratio(self, dtype, size, threads):
        return interleaved_ratio(self.numbanet, self.numpy)


ERROR_CASES = {
    "ordinary nn 128x784x256": ("nn 128x784x256", normal),
    "ordinary nt 128x256x784": ("nt 128x256x784", normal),
    "wide range nn 128x784x256": ("nn 128x784x256", log_uniform_signed),
    "long reduction nn 1024x1024x1024": ("nn 1024x1024x1024", normal),
}


class MatmulError:
    """float32 vs float64 result on the same inputs (numpy's float32 error beside)."""

    params = [["numbanet", "numpy"], list(ERROR_CASES)]
    param_names = ["impl", "case"]
    unit = ERROR_UNIT
    timeout = 300

    def setup(self, impl, case):
        size, make = ERROR_CASES[case]
        a, b, self.trans_a, self.trans_b = operands(size, np.float32, make)
        self.a64, self.b64 = a.astype(np.float64), b.astype(np.float64)
        self.a32, self.b32 = a, b

    def track_matmul_error(self, impl, case):
        y32 = matmul_call(impl, self.a32, self.b32, self.trans_a, self.trans_b)()
        y64 = matmul_call(impl, self.a64, self.b64, self.trans_a, self.trans_b)()
        return scaled_error(y32, y64)
