"""glorot_uniform / he_normal: bounds, moments and distribution against the target
laws (fixed seeds, tolerances of five standard errors), fans, determinism, errors."""

import math

import numpy as np
import pytest
from scipy import stats

from numbanet import glorot_uniform, he_normal
from numbanet.ops.init import TRUNCATED_NORMAL_STDDEV


def assert_moments(w, variance, fourth_moment):
    """Mean 0 and E[w**2] = variance, each within five standard errors."""
    w = w.astype(np.float64).ravel()
    n = w.size
    assert abs(math.fsum(w) / n) <= 5 * math.sqrt(variance / n)
    second = math.fsum(w * w) / n
    assert abs(second - variance) <= 5 * math.sqrt((fourth_moment - variance**2) / n)


@pytest.mark.parametrize(
    "shape, fan_in, fan_out", [((300, 400), 300, 400), ((5, 5, 64, 32), 1600, 800), ((1, 1), 1, 1)]
)
def test_glorot_uniform_law(dtype, shape, fan_in, fan_out):
    w = glorot_uniform(shape, rng=1, dtype=dtype)
    assert w.shape == shape and w.dtype == dtype and w.flags.c_contiguous
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    assert np.all(np.abs(w) <= dtype(limit))
    if w.size > 1:
        assert_moments(w, limit**2 / 3, limit**4 / 5)
        assert stats.kstest(w.ravel().astype(np.float64), stats.uniform(-limit, 2 * limit).cdf).pvalue > 1e-3


@pytest.mark.parametrize("shape, fan_in", [((300, 400), 300), ((5, 5, 64, 32), 1600), ((1, 1), 1)])
def test_he_normal_law(dtype, shape, fan_in):
    w = he_normal(shape, rng=2, dtype=dtype)
    assert w.shape == shape and w.dtype == dtype and w.flags.c_contiguous
    scale = math.sqrt(2.0 / fan_in) / TRUNCATED_NORMAL_STDDEV
    assert np.all(np.abs(w) <= dtype(2 * scale))
    if w.size > 1:
        law = stats.truncnorm(-2.0, 2.0, scale=scale)
        assert_moments(w, 2.0 / fan_in, law.moment(4))
        assert stats.kstest(w.ravel().astype(np.float64), law.cdf).pvalue > 1e-3


def test_truncation_constant_is_the_truncated_standard_deviation():
    assert stats.truncnorm(-2.0, 2.0).std() == pytest.approx(TRUNCATED_NORMAL_STDDEV, rel=1e-14)


@pytest.mark.parametrize("init", [glorot_uniform, he_normal])
def test_same_seed_same_weights(init, dtype):
    a = init((17, 3), rng=42, dtype=dtype)
    np.testing.assert_array_equal(a, init((17, 3), rng=42, dtype=dtype))
    np.testing.assert_array_equal(a, init((17, 3), rng=np.random.default_rng(42), dtype=dtype))
    assert not np.array_equal(a, init((17, 3), rng=43, dtype=dtype))


@pytest.mark.parametrize("init", [glorot_uniform, he_normal])
def test_generator_advances_and_float32_is_float64_rounded(init):
    rng = np.random.default_rng(7)
    first, second = init((4, 5), rng=rng), init((4, 5), rng=rng)
    assert not np.array_equal(first, second)
    assert init((4, 5), rng=9).dtype == np.float32  # the default
    np.testing.assert_array_equal(
        init((4, 5), rng=9, dtype=np.float32), init((4, 5), rng=9, dtype=np.float64).astype(np.float32)
    )


@pytest.mark.parametrize("init", [glorot_uniform, he_normal])
def test_bad_arguments(init):
    for shape in [(3,), (2, 3, 4), (1, 2, 3, 4, 5), ()]:
        with pytest.raises(ValueError, match=r"`shape` must be \(fan_in, fan_out\) or \(kh, kw, cin, cout\)"):
            init(shape, rng=0)
    for shape in [(3, 0), (0, 1, 1, 1), (-1, 2)]:
        with pytest.raises(ValueError, match="`shape` entries must be >= 1"):
            init(shape, rng=0)
    for shape in [(2.0, 3), "ab", 5, (True, 2), None]:
        with pytest.raises(TypeError, match="`shape` must be a tuple of integers"):
            init(shape, rng=0)
    assert init([np.int64(2), 3], rng=0).shape == (2, 3)
    for rng in [None, 1.5, True, np.random.RandomState(0)]:
        with pytest.raises(TypeError, match="`rng` must be a numpy.random.Generator or an int seed"):
            init((2, 3), rng=rng)
    with pytest.raises(ValueError, match="`rng` must lie in"):
        init((2, 3), rng=-1)
    for dtype in [np.int32, np.float16, None, "complex128", "not-a-dtype"]:
        with pytest.raises(TypeError, match="`dtype` must be float32 or float64"):
            init((2, 3), rng=0, dtype=dtype)
    with pytest.raises(TypeError):
        init((2, 3))  # rng is required
