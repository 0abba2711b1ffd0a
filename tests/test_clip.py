"""global_norm, clip_grad_norm, all_finite: float64 norms against math.fsum."""

import math

import numpy as np
import pytest

from helpers import EPS, assert_bitwise_equal, assert_thread_invariant, float64_instructions
from numbanet.kernels import clip as kernels
from numbanet.ops import all_finite, clip_grad_norm, global_norm
from numbanet.ops.clip import SERIAL_MAX

PARALLEL_SIZE = SERIAL_MAX + kernels.CHUNK + 7
SIZES = [1, 3, 17, 257, kernels.CHUNK - 1, kernels.CHUNK + 1, PARALLEL_SIZE]


def reference_norm(arrays):
    squares = [float(v) ** 2 for a in arrays for v in np.asarray(a, np.float64).ravel()]
    return math.sqrt(math.fsum(squares))


def random_arrays(dtype, sizes, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(n) * scale).astype(dtype) for n in sizes]


def assert_norm_close(result, arrays):
    # Squares summed in float64: relative error about N float64 roundings.
    n = sum(np.asarray(a).size for a in arrays)
    expected = reference_norm(arrays)
    assert type(result) is np.float64
    assert abs(result - expected) <= (n + 2) * EPS[np.float64] * expected


@pytest.mark.parametrize("n", SIZES)
def test_global_norm_of_one_array(n, dtype):
    arrays = random_arrays(dtype, [n], seed=n, scale=1e4)
    assert_norm_close(global_norm(arrays), arrays)


def test_global_norm_of_several_arrays_of_any_shape(dtype):
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(shape).astype(dtype) for shape in [(784, 26), (26,), (26, 10), (10,), (3, 4, 5)]]
    assert_norm_close(global_norm(arrays), arrays)


def test_global_norm_of_strided_arrays_and_lists(dtype):
    base = random_arrays(dtype, [999])[0].reshape(27, 37)
    strided = base[::2, 1::3]
    assert global_norm([strided]) == global_norm([strided.copy()])
    assert_norm_close(global_norm([strided]), [strided])
    assert global_norm([[3, 4], [12]]) == 13


def test_global_norm_of_a_bare_array_is_its_norm(dtype):
    x = random_arrays(dtype, [50])[0].reshape(5, 10)
    assert global_norm(x) == global_norm([x])


def test_global_norm_of_nothing_is_zero(dtype):
    assert global_norm([]) == 0
    assert global_norm([np.zeros(0, dtype), np.zeros((3, 0), dtype)]) == 0


def test_global_norm_extreme_values(dtype):
    tiny = np.finfo(dtype).smallest_subnormal
    assert global_norm([np.array([3e-20, 4e-20], dtype)]) == pytest.approx(5e-20, rel=4 * EPS[dtype])
    big = dtype(1e30)
    assert global_norm([np.array([big, -big], dtype)]) == pytest.approx(math.sqrt(2) * float(big), rel=1e-15)
    if dtype is np.float32:
        # float32 squares are exact in float64, denormals included
        assert global_norm([np.array([tiny], dtype)]) == float(tiny)


def test_float64_square_overflow_is_rescaled():
    assert global_norm([np.array([1e200, -1e200])]) == pytest.approx(math.hypot(1e200, 1e200), rel=1e-15)
    assert global_norm([np.array([1e308]), np.array([1e308])]) == pytest.approx(math.hypot(1e308, 1e308), rel=1e-15)
    assert global_norm([np.full(PARALLEL_SIZE, 1e300)]) == pytest.approx(1e300 * math.sqrt(PARALLEL_SIZE), rel=1e-13)
    assert global_norm([np.array([1.7e308, 1.7e308])]) == np.inf


@pytest.mark.parametrize("n", [3, PARALLEL_SIZE])
def test_global_norm_non_finite(n, dtype):
    x = np.ones(n, dtype)
    x[n // 2] = -np.inf
    assert global_norm([x]) == np.inf
    x[-1] = np.nan
    assert np.isnan(global_norm([np.ones(3, dtype), x]))


def test_global_norm_thread_invariant(dtype):
    arrays = random_arrays(dtype, [PARALLEL_SIZE, 17, 3 * kernels.CHUNK + 1], scale=1e3)
    assert_thread_invariant(global_norm, arrays)


@pytest.mark.parametrize("n", [3 * kernels.CHUNK + 11, 8 * kernels.CHUNK, 9 * kernels.CHUNK + 11])
def test_serial_and_parallel_sums_of_squares_agree_bitwise(dtype, n):
    # The parallel kernel reads STREAMS chunks in lockstep (none of 3 full chunks and a
    # partial one, all 8 of 8, 8 of 10 with a full and a partial chunk left); the serial
    # one, chunk after chunk.
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(n) * np.exp(rng.uniform(-20, 20, n))).astype(dtype)
    n_chunks, _, n_tasks = kernels.sum_of_squares_tasks(n)
    # NaN-filled scratch: every lane sum must be zeroed before it is added to.
    partials, sums = np.full(n_chunks, np.nan), np.full((n_tasks, kernels.STREAMS, kernels.LANES), np.nan)
    assert_bitwise_equal(kernels.sum_of_squares_parallel(x, 1.0, partials, sums),
                         kernels.sum_of_squares_serial(x, 1.0, np.full(kernels.LANES, np.nan)))


def test_chunks_in_lockstep_equal_chunk_by_chunk(dtype):
    # The odd chunks of 2 * STREAMS, read in lockstep: each gets its chunk's bits, in its own slot.
    n_chunks, chunk = 2 * kernels.STREAMS, kernels.CHUNK
    x = random_arrays(dtype, [n_chunks * chunk], seed=6, scale=1e3)[0]
    expected = np.full(n_chunks, np.nan)
    for c in range(1, n_chunks, 2):
        expected[c] = kernels.chunk_sum_of_squares(x, c * chunk, (c + 1) * chunk, 1.0, np.full(kernels.LANES, np.nan))
    partials = np.full(n_chunks, np.nan)
    kernels.chunk_sums_of_squares_in_lockstep(x, 1, 2, 1.0, partials, np.full((kernels.STREAMS, kernels.LANES), np.nan))
    assert_bitwise_equal(partials, expected)


def test_clip_scales_like_torch_above_max_norm(dtype):
    arrays = random_arrays(dtype, [257, PARALLEL_SIZE], scale=3.0)
    originals = [a.astype(np.float64) for a in arrays]
    expected_norm = reference_norm(arrays)
    norm = clip_grad_norm(arrays, 1.5)
    assert type(norm) is np.float64
    assert norm == pytest.approx(expected_norm, rel=1e-12)
    coef = 1.5 / (expected_norm + 1e-6)
    for clipped, original in zip(arrays, originals):
        np.testing.assert_allclose(clipped, original * coef, rtol=2 * EPS[dtype], atol=0)
    assert reference_norm(arrays) == pytest.approx(expected_norm * coef, rel=4 * EPS[dtype])


def test_clip_leaves_arrays_below_max_norm_untouched(dtype):
    arrays = random_arrays(dtype, [17, 3])
    copies = [a.copy() for a in arrays]
    norm = clip_grad_norm(arrays, reference_norm(arrays) * 1.01)
    assert norm == pytest.approx(reference_norm(copies), rel=1e-12)
    for a, b in zip(arrays, copies):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_clip_leaves_arrays_untouched_when_norm_is_not_finite(bad, dtype):
    # torch would multiply by max_norm / inf = 0 (inf entries becoming NaN) or by NaN.
    arrays = random_arrays(dtype, [17, PARALLEL_SIZE], scale=10.0)
    arrays[1][5] = bad
    copies = [a.copy() for a in arrays]
    norm = clip_grad_norm(arrays, 1.0)
    assert norm == bad or (np.isnan(bad) and np.isnan(norm))
    for a, b in zip(arrays, copies):
        np.testing.assert_array_equal(a, b)


def test_clip_multidimensional_arrays_in_place(dtype):
    x = random_arrays(dtype, [60], scale=10.0)[0].reshape(3, 4, 5)
    original = x.astype(np.float64)
    norm = clip_grad_norm([x], 1.0)
    np.testing.assert_allclose(x, original / (norm + 1e-6), rtol=2 * EPS[dtype])


def test_clip_thread_invariant(dtype):
    arrays = random_arrays(dtype, [PARALLEL_SIZE, 31], scale=5.0)

    def clip_copies(arrays):
        copies = [a.copy() for a in arrays]
        norm = clip_grad_norm(copies, 1.0)
        return (np.array(norm), *copies)

    assert_thread_invariant(clip_copies, arrays)


@pytest.mark.parametrize("n", [0, 1, 17, PARALLEL_SIZE])
def test_all_finite(n, dtype):
    x = np.linspace(-1, 1, n).astype(dtype)
    assert all_finite(x) is True
    if n:
        x[-1] = np.finfo(dtype).max
        x[0] = np.finfo(dtype).smallest_subnormal
        assert all_finite(x) is True
        for bad in (np.inf, -np.inf, np.nan):
            for i in (0, n // 2, n - 1):
                y = x.copy()
                y[i] = bad
                assert all_finite(y) is False


def test_all_finite_any_shape_and_strided(dtype):
    x = np.ones((6, 7, 8), dtype)
    x[1, 2, 3] = np.nan
    assert all_finite(x) is False
    assert all_finite(x[:, 1::2, :]) is True
    assert all_finite(x[:, ::2, :]) is False
    assert all_finite([1.0, 2.0]) is True


def test_float32_kernels_stay_float32():
    # The sum-of-squares kernels accumulate in float64 by contract and are exempt.
    x = np.ones(10, np.float32)
    for kernel in (kernels.scale_parallel, kernels.scale_serial):
        assert float64_instructions(kernel, x, np.float32(0.5)) == []
    for kernel in (kernels.count_nonfinite_parallel, kernels.count_nonfinite_serial):
        assert float64_instructions(kernel, x) == []


@pytest.mark.parametrize("bad", [np.int64, np.bool_, np.complex64, np.float16, object])
def test_rejects_non_float_dtypes(bad):
    x = np.zeros(3, dtype=bad)
    message = r"`arrays\[1\]` must be float32 or float64\. Received: arrays\[1\]\.dtype="
    with pytest.raises(TypeError, match=message):
        global_norm([np.zeros(2), x])
    with pytest.raises(TypeError, match=message):
        clip_grad_norm([np.zeros(2), x], 1.0)
    with pytest.raises(TypeError, match=r"`x` must be float32 or float64\. Received: x\.dtype="):
        all_finite(x)


def test_rejects_mixed_dtypes():
    arrays = [np.zeros(2, np.float32), np.zeros(2, np.float64)]
    with pytest.raises(TypeError, match=r"must share one float dtype.*arrays\[1\]\.dtype=float64"):
        global_norm(arrays)
    with pytest.raises(TypeError, match="must share one float dtype"):
        clip_grad_norm(arrays, 1.0)


def test_rejects_what_is_not_a_sequence():
    with pytest.raises(TypeError, match="`arrays` must be a sequence of arrays. Received: int"):
        global_norm(3)


def test_clip_rejects_arrays_it_cannot_scale_in_place():
    with pytest.raises(TypeError, match=r"`arrays\[0\]` must be a numpy array"):
        clip_grad_norm([[1.0, 2.0]], 1.0)
    with pytest.raises(ValueError, match=r"`arrays\[0\]` must be a writeable C-contiguous array"):
        clip_grad_norm([np.ones(10)[::2]], 1.0)
    read_only = np.ones(3)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match=r"`arrays\[0\]` must be a writeable C-contiguous array"):
        clip_grad_norm([read_only], 1.0)
    x = np.ones(10)
    with pytest.raises(ValueError, match=r"`arrays\[0\]` and `arrays\[1\]` must not share memory"):
        clip_grad_norm([x, x[5:]], 1.0)


@pytest.mark.parametrize("max_norm", [0.0, -1.0, np.inf, np.nan])
def test_clip_rejects_bad_max_norm(max_norm):
    with pytest.raises(ValueError, match="`max_norm` must be"):
        clip_grad_norm([np.ones(3)], max_norm)


def test_clip_rejects_non_numeric_max_norm():
    with pytest.raises(TypeError, match="`max_norm` must be a real number"):
        clip_grad_norm([np.ones(3)], None)
