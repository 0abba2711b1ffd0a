"""vexp, the vectorisable exp behind softmax, cross-entropy and sigmoid (kernels/exp.py)."""

import numba
import numpy as np

from helpers import assert_thread_invariant, float64_instructions
from numbanet import _config
from numbanet.kernels.exp import exp_forward

# float32 target from issue 5 is <= 2 ULP; the Cephes polynomial measures 0.94 ULP.
MAX_ULP_FLOAT32 = 1.0
MAX_ULP_FLOAT64 = 1.0  # float64 is libm exp


def vexp(x):
    out = np.empty_like(x)
    exp_forward(x, out)
    return out


def ulp_error(y, x, dtype):
    """|y - exp(x)| in units of the last place of exp(x) rounded to ``dtype``.

    The reference is exp in float64 (long double for float64 inputs); the unit of a
    denormal result is the smallest denormal.
    """
    finfo = np.finfo(dtype)
    with np.errstate(over="ignore"):
        ref = np.exp(x.astype(np.longdouble))
        ref_rounded = ref.astype(dtype)
    exponent = np.floor(np.log2(np.maximum(ref, np.longdouble(finfo.smallest_normal))))
    ulp = np.exp2(exponent - finfo.nmant)
    with np.errstate(invalid="ignore"):
        err = np.abs(y.astype(np.longdouble) - ref) / ulp
    return np.where(y == ref_rounded, 0, err)  # covers inf == inf and exact 0


def float32_grid():
    """Every 1021st float32 bit pattern whose exp is neither 1 nor overflows/flushes."""
    bits = np.arange(0, 2**32, 1021, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    return x[np.isfinite(x) & (x > -105) & (x < 89)]


def test_float32_ulp_error_across_the_range():
    x = float32_grid()
    assert x.size > 1_000_000 // 1021 * 40  # the grid covers the range densely
    err = ulp_error(vexp(x), x, np.float32)
    assert err.max() <= MAX_ULP_FLOAT32


def test_float32_ulp_error_on_softmax_arguments():
    # softmax feeds vexp with x - max in [-~100, 0]; sample it uniformly too.
    x = -np.random.default_rng(0).uniform(0, 104, 200_000).astype(np.float32)
    assert ulp_error(vexp(x), x, np.float32).max() <= MAX_ULP_FLOAT32


def test_float64_is_libm_accurate():
    x = np.random.default_rng(1).uniform(-745, 709, 20_000)
    assert ulp_error(vexp(x), x, np.float64).max() <= MAX_ULP_FLOAT64


# Around overflow, the normal/denormal boundary, the smallest denormal and flush to 0.
EDGES = [88.72283, 88.72284, 89.0, 1e30, -87.33654, -87.33655, -100.0, -103.27892, -103.9721, -104.0, -1e30]


def test_float32_edges_and_infinities():
    x = np.array(EDGES + [np.inf, -np.inf, 0.0, -0.0], dtype=np.float32)
    y = vexp(x)
    assert ulp_error(y, x, np.float32).max() <= MAX_ULP_FLOAT32
    np.testing.assert_array_equal(y[-4:], [np.inf, 0, 1, 1])
    assert y[1] == np.inf and y[-5] == 0 and 0 < y[6] < np.finfo(np.float32).smallest_normal


def test_nan_propagates(dtype):
    x = np.array([np.nan, -np.nan, 1.0, np.nan], dtype=dtype)
    y = vexp(x)
    assert np.isnan(y[[0, 1, 3]]).all()
    assert ulp_error(y[2:3], x[2:3], dtype)[0] <= 1


def test_denormal_inputs_give_one(dtype):
    tiny = np.finfo(dtype).smallest_subnormal
    np.testing.assert_array_equal(vexp(np.array([tiny, -tiny], dtype=dtype)), [1, 1])


def test_thread_invariant(dtype):
    x = np.random.default_rng(2).uniform(-120, 100, 100_003).astype(dtype)
    assert_thread_invariant(vexp, x)


def test_float32_stays_float32():
    x = np.ones(5, np.float32)
    assert float64_instructions(exp_forward, x, x) == []


def test_float32_loop_is_vectorised():
    # Compiled afresh: Numba keeps no IR for code loaded from its cache.
    x = np.ones(5, np.float32)
    fresh = numba.njit(**dict(_config.PARALLEL_FLAGS, cache=False))(exp_forward.py_func)
    with _config.slp_vectorize():
        fresh.compile((numba.typeof(x), numba.typeof(x)))
    assert " x float>" in fresh.inspect_llvm(fresh.signatures[0])  # SIMD lanes, no libm call
