"""kahan_sum: compensated sum of all elements, against numpy's pairwise np.sum."""

import math

import numpy as np

import numbanet

from .common import (
    DTYPES, ERROR_UNIT, IMPLS, THREADS, OpSpeed, log_uniform_signed, normal, scaled_error,
    set_threads, skip_all_but, skip_single_thread_references, to_torch, torch,
    triad_bandwidth_ratio, uniform,
)

SIZES = {"10k": (10_000,), "10M": (10_000_000,)}

ERROR_CASES = {
    "ordinary 1M": lambda: normal((1_000_000,), np.float32, seed=9),
    "long positive 10M": lambda: uniform((10_000_000,), np.float32, seed=9),
    "wide range 1M": lambda: log_uniform_signed((1_000_000,), np.float32, seed=9),
}

SUMS = {
    "kahan_sum": lambda x: numbanet.kahan_sum(x),
    "naive sequential": lambda x: np.cumsum(x)[-1],  # one running float32 total
    "np.sum": np.sum,  # pairwise in blocks
}


def sum_call(impl, x):
    if impl == "numbanet":
        return lambda: numbanet.kahan_sum(x)
    if impl == "numpy":
        return lambda: np.sum(x)
    (t,) = to_torch(x)
    return lambda: torch.sum(t)


SPEED_PARAMS = [IMPLS, DTYPES, list(SIZES), THREADS]


class KahanSum(OpSpeed):
    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        return sum_call(impl, normal(SIZES[size], dtype, seed=9))

    @skip_single_thread_references(SPEED_PARAMS)
    def time_kahan_sum(self, impl, dtype, size, threads):
        self.op()

    @skip_all_but(SPEED_PARAMS, OpSpeed.param_names, impl=["numbanet"], dtype=["float32"],
                  size=["10M"], threads=["all"])
    def peakmem_kahan_sum(self, impl, dtype, size, threads):
        self.op()


class KahanSumBandwidth:
    """kahan_sum's bandwidth (one read of 10M float32) / a STREAM triad's, interleaved."""

    params = [THREADS]
    param_names = ["threads"]
    unit = "fraction of triad bandwidth"

    def setup(self, threads):
        set_threads(threads)
        self.x = normal(SIZES["10M"], np.float32, seed=9)
        numbanet.kahan_sum(self.x)

    def track_kahan_sum_bandwidth(self, threads):
        return triad_bandwidth_ratio(
            lambda: numbanet.kahan_sum(self.x), self.x.nbytes, self.x.size, self.x.dtype
        )


class KahanSumError:
    """float32 error of three ways to sum the same data, against the exact sum (math.fsum).

    The float64 result here is the correctly rounded sum of the float32 inputs, so the
    numbers show what compensation buys over a running total and over pairwise summation.
    """

    params = [list(SUMS), list(ERROR_CASES)]
    param_names = ["method", "case"]
    unit = ERROR_UNIT
    timeout = 120

    def setup(self, method, case):
        self.x = ERROR_CASES[case]()
        self.exact = math.fsum(self.x.astype(np.float64).tolist())

    def track_sum_error(self, method, case):
        return scaled_error(SUMS[method](self.x), self.exact)
