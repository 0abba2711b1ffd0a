"""kahan_sum: compensated summation in the input's dtype, against math.fsum."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from helpers import EPS, assert_bitwise_equal, assert_thread_invariant, float64_instructions
from numbanet.kernels.kahan import (
    CHUNK, LANES, STREAMS, chunk_sum, chunk_sums_in_lockstep, kahan_sum_parallel, kahan_sum_serial,
)
from numbanet.ops import kahan_sum
from numbanet.ops.kahan import SERIAL_MAX

PARALLEL_SIZE = SERIAL_MAX + CHUNK + 5
SIZES = [1, 3, 17, 257, LANES - 1, LANES + 1, CHUNK - 1, CHUNK, CHUNK + 1, SERIAL_MAX, PARALLEL_SIZE]


def fsum(x):
    return math.fsum(np.asarray(x, dtype=np.float64).ravel().tolist())


def assert_close_to_fsum(result, x):
    """Within one rounding of the exact sum plus the compensated-sum term N^2 eps^2 sum|x|."""
    x = np.asarray(x)
    eps = EPS[x.dtype.type]
    exact = fsum(x)
    sum_abs = fsum(np.abs(x.astype(np.float64)))
    bound = eps * abs(exact) + (x.size * eps) ** 2 * sum_abs
    assert abs(float(result) - exact) <= bound, (float(result), exact, bound)


@pytest.mark.parametrize("n", SIZES)
def test_matches_fsum(n, dtype):
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n) * 10.0 ** rng.integers(-4, 5, n)).astype(dtype)
    assert_close_to_fsum(kahan_sum(x), x)


@pytest.mark.parametrize("n", [17, CHUNK + 1, PARALLEL_SIZE])
def test_cancellation_of_large_terms(n, dtype):
    # Terms of ±1e4 that cancel to a small total: the compensation carries the small part.
    rng = np.random.default_rng(0)
    big = (rng.standard_normal(n // 2) * 1e4).astype(dtype)
    small = rng.standard_normal(n - 2 * (n // 2) + n // 2).astype(dtype)
    x = np.concatenate([big, -big, small])
    rng.shuffle(x)
    assert_close_to_fsum(kahan_sum(x), x)


def test_float32_1e8_plus_a_million_tenths():
    x = np.concatenate([[1e8], np.full(10**6, 0.1)]).astype(np.float32)
    # The sequential float32 sum is stuck at 1e8: the test can tell the two apart.
    assert np.cumsum(x, dtype=np.float32)[-1] == np.float32(1e8)
    result = kahan_sum(x)
    assert abs(float(result) - fsum(x)) <= 2 * float(np.spacing(np.float32(1.001e8)))
    assert abs(float(result) - 1.001e8) <= 2 * float(np.spacing(np.float32(1.001e8)))


def test_larger_addend_than_sum(dtype):
    # Kahan's original update loses the 1s here; Neumaier's compensation keeps them.
    big = dtype(1e30)
    assert kahan_sum(np.array([1, big, 1, -big], dtype=dtype)) == 2
    assert kahan_sum(np.array([big, 1, -big], dtype=dtype)) == 1


def test_returns_scalar_of_input_dtype(dtype):
    result = kahan_sum(np.ones((3, 4), dtype=dtype))
    assert type(result) is dtype and result == 12


def test_empty_is_zero(dtype):
    result = kahan_sum(np.zeros((0, 5), dtype=dtype))
    assert type(result) is dtype and result == 0


def test_python_sequence_is_float64():
    result = kahan_sum([0.1] * 10)
    assert type(result) is np.float64 and result == 1.0


def test_any_shape_and_strided(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 30, 7)).astype(dtype)
    assert_close_to_fsum(kahan_sum(x), x)
    strided = x[::2, :, ::3]
    assert kahan_sum(strided) == kahan_sum(strided.copy())
    assert_close_to_fsum(kahan_sum(strided), strided)


def test_denormals_sum_exactly(dtype):
    tiny = np.finfo(dtype).smallest_subnormal
    x = np.full(1000, tiny, dtype=dtype)
    assert kahan_sum(x) == dtype(1000) * tiny


@pytest.mark.parametrize("n", [3, PARALLEL_SIZE])
def test_infinities_and_nan(n, dtype):
    x = np.ones(n, dtype=dtype)
    x[n // 2] = np.inf
    assert kahan_sum(x) == np.inf
    x[n // 2] = -np.inf
    assert kahan_sum(x) == -np.inf
    x[0] = np.inf
    assert np.isnan(kahan_sum(x))
    x[0] = 1
    x[-1] = np.nan
    assert np.isnan(kahan_sum(x))


def test_overflowing_sum_is_inf_not_nan(dtype):
    top = np.finfo(dtype).max
    assert kahan_sum(np.array([top, top], dtype=dtype)) == np.inf
    assert kahan_sum(np.array([-top, -top / 2], dtype=dtype)) == -np.inf
    assert kahan_sum(np.array([-top, -top, -top, np.inf], dtype=dtype)) == np.inf


@pytest.mark.parametrize("n", [2 * LANES + 3, PARALLEL_SIZE])
def test_intermediate_overflow_with_a_finite_total(n, dtype):
    # One lane overflows to +inf and another to -inf although the total is 5:
    # the rescaled second pass must give 5, not the NaN of inf - inf.
    big = np.finfo(dtype).max / 2
    x = np.zeros(n, dtype=dtype)
    x[[0, LANES]] = big * dtype(1.5)
    x[[1, LANES + 1]] = -big * dtype(1.5)
    x[2] = 5
    assert kahan_sum(x) == 5


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        st.integers(0, 300),
        elements=st.floats(-2.0**100, 2.0**100, width=32, allow_nan=False, allow_infinity=False),
    )
)
def test_random_float32_within_bound_of_fsum(x):
    assert_close_to_fsum(kahan_sum(x), x)


def test_thread_invariant(dtype):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal(PARALLEL_SIZE) * 1e4).astype(dtype)
    assert_thread_invariant(kahan_sum, x)


@pytest.mark.parametrize("n", [3 * CHUNK + 11, 8 * CHUNK, 9 * CHUNK + 11])
def test_serial_and_parallel_kernels_agree_bitwise(dtype, n):
    # The parallel kernel reads STREAMS chunks in lockstep (none of 3 full chunks and a
    # partial one, all 8 of 8, 8 of 10 with a full and a partial chunk left); the serial
    # one, chunk after chunk.
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(n) * np.exp(rng.uniform(-20, 20, n))).astype(dtype)
    serial, parallel = np.empty(1, dtype), np.empty(1, dtype)
    kahan_sum_serial(x, dtype(1), serial)
    kahan_sum_parallel(x, dtype(1), parallel)
    assert_bitwise_equal(serial, parallel)


def test_chunks_in_lockstep_equal_chunk_by_chunk(dtype):
    # The odd chunks of 2 * STREAMS, read in lockstep: each gets chunk_sum's bits, in its own slot.
    n_chunks = 2 * STREAMS
    rng = np.random.default_rng(4)
    x = (rng.standard_normal(n_chunks * CHUNK) * np.exp(rng.uniform(-20, 20, n_chunks * CHUNK))).astype(dtype)
    expected_sums, expected_errs = np.full(n_chunks, np.nan, dtype), np.full(n_chunks, np.nan, dtype)
    sums, errs = np.full(n_chunks, np.nan, dtype), np.full(n_chunks, np.nan, dtype)
    for c in range(1, n_chunks, 2):
        chunk_sum(x, c * CHUNK, (c + 1) * CHUNK, dtype(1), expected_sums, expected_errs, c)
    chunk_sums_in_lockstep(x, 1, 2, dtype(1), sums, errs)
    assert_bitwise_equal(sums, expected_sums)
    assert_bitwise_equal(errs, expected_errs)


@pytest.mark.parametrize("kernel", [kahan_sum_parallel, kahan_sum_serial])
def test_float32_kernels_stay_float32(kernel):
    assert float64_instructions(kernel, np.ones(10, np.float32), np.float32(1), np.empty(1, np.float32)) == []


@pytest.mark.parametrize("bad", [np.int64, np.bool_, np.complex64, np.float16, object])
def test_rejects_non_float_dtypes(bad):
    with pytest.raises(TypeError, match=r"`x` must be float32 or float64\. Received: x\.dtype="):
        kahan_sum(np.zeros(3, dtype=bad))


def test_rejects_non_numeric_sequences():
    with pytest.raises(TypeError, match="`x`"):
        kahan_sum(["a", "b"])
