"""dropout / dropout_backward: the mask against a pure-Python SplitMix64, its
statistics, and its independence from thread count, dtype and pass."""

import math

import numpy as np
import pytest

from helpers import EPS, assert_bitwise_equal, assert_thread_invariant, float64_instructions, scattered_extremes
from numbanet import dropout, dropout_backward
from numbanet.kernels import dropout as kernels
from numbanet.ops.dropout import PARALLEL_MIN_SIZE

MASK64 = (1 << 64) - 1


def splitmix64_mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def reference_mask(seed, n, rate):
    """Element i is kept when output i of SplitMix64 keyed by mix(seed) < keep * 2**64."""
    key = splitmix64_mix(seed)
    threshold = int(math.ldexp(1.0 - rate, 64))
    hashes = [splitmix64_mix((key + (i + 1) * 0x9E3779B97F4A7C15) & MASK64) for i in range(n)]
    return np.array([h < threshold for h in hashes], dtype=bool)


def kept(y):
    return y != 0


@pytest.mark.parametrize("seed", [0, 12345, 2**64 - 1])
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_mask_and_values_match_reference(dtype, seed, rate):
    x = np.random.default_rng(1).uniform(0.5, 2.0, (3, 17, 5)).astype(dtype)
    mask = reference_mask(seed, x.size, rate).reshape(x.shape)
    y = dropout(x, rate, seed=seed)
    np.testing.assert_array_equal(kept(y), mask)
    exact = x.astype(np.float64) / (1.0 - rate)
    np.testing.assert_allclose(y[mask], exact[mask], rtol=EPS[dtype], atol=0)


@pytest.mark.parametrize("rate", [0.05, 0.5, 0.95])
def test_kept_fraction_is_binomial(rate):
    n = 200_000
    count = int(np.count_nonzero(dropout(np.ones(n, np.float32), rate, seed=7)))
    keep = 1.0 - rate
    assert abs(count - n * keep) <= 5 * math.sqrt(n * keep * rate)


def test_neighbouring_elements_are_independent():
    n, keep = 200_000, 0.5
    mask = kept(dropout(np.ones(n), 1.0 - keep, seed=11))
    both = int(np.count_nonzero(mask[:-1] & mask[1:]))
    p = keep * keep
    assert abs(both - (n - 1) * p) <= 5 * math.sqrt((n - 1) * p * (1 - p))


@pytest.mark.parametrize("rate", [0.2, 0.7])
def test_mean_is_preserved_in_expectation(dtype, rate):
    n = 200_000
    y = dropout(np.ones(n, dtype), rate, seed=3)
    mean = math.fsum(y.astype(np.float64)) / n
    # y is 1/keep with probability keep, else 0: variance rate / keep.
    assert abs(mean - 1.0) <= 5 * math.sqrt(rate / (1.0 - rate) / n)


def test_different_seeds_give_different_masks():
    x = np.ones(4096)
    masks = [kept(dropout(x, 0.5, seed=s)) for s in (0, 1, 2, 0x9E3779B97F4A7C15)]
    for i in range(len(masks)):
        for j in range(i):
            differing = np.count_nonzero(masks[i] != masks[j]) / x.size
            assert 0.4 < differing < 0.6  # independent masks differ in half the places
    np.testing.assert_array_equal(kept(dropout(x, 0.5, seed=1)), masks[1])


def test_backward_recomputes_the_forward_mask(dtype):
    rng = np.random.default_rng(2)
    x = rng.uniform(1.0, 2.0, (17, 257)).astype(dtype)
    dy = rng.uniform(1.0, 2.0, x.shape).astype(dtype)
    y = dropout(x, 0.3, seed=99)
    dx = dropout_backward(dy, 0.3, seed=99)
    np.testing.assert_array_equal(kept(dx), kept(y))
    assert_bitwise_equal(dx, dropout(dy, 0.3, seed=99))


def test_mask_is_the_same_for_float32_and_float64():
    x = np.ones(1000)
    np.testing.assert_array_equal(
        kept(dropout(x, 0.4, seed=5)), kept(dropout(x.astype(np.float32), 0.4, seed=5))
    )


def test_central_differences():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 7))
    w = rng.standard_normal(x.shape)
    h = 1e-6
    numeric = np.empty_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        numeric[i] = (np.vdot(w, dropout(xp, 0.4, seed=8)) - np.vdot(w, dropout(xm, 0.4, seed=8))) / (2 * h)
    np.testing.assert_allclose(dropout_backward(w, 0.4, seed=8), numeric, rtol=1e-7, atol=1e-9)


def test_extreme_inputs(dtype):
    tiny = np.finfo(dtype).smallest_subnormal
    big = np.finfo(dtype).max
    values = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, 1e4, tiny, big, -0.0], dtype)
    x = np.tile(values, 50)
    rate = 0.5
    y = dropout(x, rate, seed=21)
    mask = reference_mask(21, x.size, rate)
    assert np.all(y[~mask] == 0.0) and not np.any(np.isnan(y[~mask]))  # dropped NaN/inf give 0
    with np.errstate(over="ignore"):
        expected = (x * dtype(2.0))[mask]
    assert_bitwise_equal(y[mask], expected)  # scale 2 is exact: big overflows to inf


@pytest.mark.parametrize("shape", [(0,), (1,), (3,), (17,), (257,), (0, 3)])
def test_sizes(dtype, shape):
    x = np.full(shape, 3.0, dtype)
    y = dropout(x, 0.25, seed=1)
    assert y.shape == shape and y.dtype == dtype
    np.testing.assert_array_equal(kept(y), reference_mask(1, x.size, 0.25).reshape(shape))


def test_rate_zero_copies(dtype):
    x = np.array([1.0, np.nan, -np.inf, 5e-324], dtype)
    y = dropout(x, 0.0, seed=0)
    assert y is not x
    assert_bitwise_equal(y, x)
    assert_bitwise_equal(dropout_backward(x, 0, seed=0), x)


def test_strided_input(dtype):
    base = np.random.default_rng(6).standard_normal((20, 30)).astype(dtype)
    strided = base[::2, ::3]
    assert_bitwise_equal(dropout(strided, 0.5, seed=4), dropout(np.ascontiguousarray(strided), 0.5, seed=4))


def test_out_and_in_place(dtype):
    x = np.random.default_rng(8).standard_normal(257).astype(dtype)
    expected = dropout(x, 0.5, seed=2)
    out = np.empty_like(x)
    assert dropout(x, 0.5, seed=2, out=out) is out
    assert_bitwise_equal(out, expected)
    assert dropout_backward(x, 0.5, seed=2, out=x) is x
    assert_bitwise_equal(x, expected)
    buffer = np.ones(10, dtype)
    with pytest.raises(ValueError, match="overlap"):
        dropout(buffer[:-1], 0.5, seed=2, out=buffer[1:])


@pytest.mark.parametrize("n", [1, 257, PARALLEL_MIN_SIZE + 17])
def test_in_place_loop_equals_the_out_of_place_one(dtype, n):
    # In place the kernel runs a loop of its own over the one array (kernels/in_place.py).
    x = scattered_extremes(dtype, n, seed=5)
    expected = dropout(x, 0.3, seed=6)
    in_place = x.copy()
    assert_bitwise_equal(dropout(in_place, 0.3, seed=6, out=in_place), expected)
    in_place = x.copy()
    assert_bitwise_equal(dropout_backward(in_place, 0.3, seed=6, out=in_place), expected)


def test_parallel_path_matches_serial_and_is_thread_invariant(dtype):
    x = np.random.default_rng(9).standard_normal(PARALLEL_MIN_SIZE + 17).astype(dtype)
    assert_thread_invariant(dropout, x, 0.5, seed=13)
    assert_thread_invariant(dropout_backward, x, 0.5, seed=13)
    y = np.empty_like(x)
    threshold = np.uint64(2**63)
    kernels.apply_dropout_mask_serial(x, y, np.uint64(13), threshold, dtype(2.0), 0)
    assert_bitwise_equal(dropout(x, 0.5, seed=13), y)


@pytest.mark.filterwarnings("ignore:Inspection disabled for cached code")
def test_float32_kernels_stay_in_float32():
    # The serial loop holds the arithmetic and is checked directly: the parallel
    # kernel's IR omits callees that were loaded from Numba's cache.
    x = np.ones(5, np.float32)
    args = (x, x.copy(), np.uint64(1), np.uint64(2**63), np.float32(2.0))
    assert float64_instructions(kernels.apply_dropout_mask_serial, *args, 0) == []
    assert float64_instructions(kernels.apply_dropout_mask, *args) == []


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, np.nan, np.inf])
def test_rate_out_of_range(rate):
    with pytest.raises(ValueError, match="`rate`"):
        dropout(np.ones(3), rate, seed=0)
    with pytest.raises(ValueError, match="`rate`"):
        dropout_backward(np.ones(3), rate, seed=0)


def test_bad_arguments():
    x = np.ones(3)
    with pytest.raises(TypeError, match="`rate` must be a real number"):
        dropout(x, "half", seed=0)
    for seed in (-1, 2**64):
        with pytest.raises(ValueError, match=r"`seed` must lie in \[0, 2\*\*64\)"):
            dropout(x, 0.5, seed=seed)
    for seed in (1.5, True, None, "1"):
        with pytest.raises(TypeError, match="`seed` must be an integer"):
            dropout(x, 0.5, seed=seed)
    with pytest.raises(TypeError):
        dropout(x, 0.5)  # seed is required
    for bad in (np.int32, np.bool_, np.complex64, np.float16, object):
        with pytest.raises(TypeError, match="`x` must be float32 or float64"):
            dropout(np.zeros(3, bad), 0.5, seed=0)
        with pytest.raises(TypeError, match="`dy` must be float32 or float64"):
            dropout_backward(np.zeros(3, bad), 0.5, seed=0)
    with pytest.raises(TypeError, match="`out` must have dtype"):
        dropout(x, 0.5, seed=0, out=np.ones(3, np.float32))
    with pytest.raises(ValueError, match="`out` must have shape"):
        dropout(x, 0.5, seed=0, out=np.ones(4))
    with pytest.raises(ValueError, match="C-contiguous"):
        dropout(x, 0.5, seed=0, out=np.ones(6)[::2])
