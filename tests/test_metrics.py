"""argmax / accuracy against a Python reference with numpy's NaN and tie rules."""

import numpy as np
import pytest

from helpers import assert_bitwise_equal, assert_thread_invariant, float64_instructions
from numbanet import accuracy, argmax
from numbanet.kernels import metrics as kernels
from numbanet.ops.metrics import PARALLEL_MIN_SIZE


def argmax_reference(x):
    """First maximum per row; the first NaN wins over any number."""
    result = []
    for row in np.asarray(x, np.float64).tolist():
        nans = [k for k, v in enumerate(row) if v != v]
        result.append(nans[0] if nans else row.index(max(row)))
    return np.array(result, dtype=np.intp)


def tie_heavy(shape, dtype, seed=0):
    """Small integers: many rows have tied maxima."""
    return np.random.default_rng(seed).integers(-3, 3, shape).astype(dtype)


@pytest.mark.parametrize("shape", [(0, 5), (1, 1), (3, 17), (17, 3), (257, 10), (1, 257)])
def test_argmax_matches_reference_with_ties(dtype, shape):
    x = tie_heavy(shape, dtype)
    index = argmax(x)
    assert index.dtype == np.intp and index.shape == (shape[0],)
    np.testing.assert_array_equal(index, argmax_reference(x))
    np.testing.assert_array_equal(index, np.argmax(x, axis=1))


def test_argmax_extreme_inputs(dtype):
    nan, inf = np.nan, np.inf
    tiny = np.finfo(dtype).smallest_subnormal
    x = np.array(
        [
            [1.0, nan, 3.0, nan],  # first NaN wins
            [nan, 5.0, 1.0, 2.0],
            [-inf, -inf, -inf, -inf],  # all equal: first
            [-inf, -1e30, -inf, -1e30],
            [1e30, inf, 1e30, inf],
            [-0.0, 0.0, -0.0, 0.0],  # signed zeros tie
            [0.0, tiny, 2 * tiny, tiny],  # denormals compare exactly
            [1e4, -1e4, 1e4 + 1, 1e4],
        ],
        dtype,
    )
    expected = argmax_reference(x)
    np.testing.assert_array_equal(expected, [1, 0, 0, 1, 1, 0, 2, 2])
    np.testing.assert_array_equal(argmax(x), expected)
    np.testing.assert_array_equal(argmax(x), np.argmax(x, axis=1))


def test_accuracy_counts_correct_rows(dtype):
    x = tie_heavy((257, 10), dtype, seed=1)
    labels = np.random.default_rng(2).integers(0, 10, 257)
    labels[::3] = argmax_reference(x)[::3]  # make a known share correct
    correct = sum(int(p == t) for p, t in zip(argmax_reference(x).tolist(), labels.tolist()))
    result = accuracy(x, labels)
    assert type(result) is np.float64
    assert result == correct / 257


@pytest.mark.parametrize("label_dtype", [np.uint8, np.int8, np.int16, np.uint32, np.int64, np.uint64])
def test_accuracy_accepts_any_integer_labels(label_dtype):
    x = np.eye(4, dtype=np.float32)
    assert accuracy(x, np.array([0, 1, 3, 3], label_dtype)) == 0.75


def test_accuracy_of_nan_rows_uses_first_nan():
    x = np.array([[0.0, np.nan, np.nan], [np.nan, 1.0, 2.0]])
    assert accuracy(x, [1, 2]) == 0.5


def test_strided_input(dtype):
    x = tie_heavy((40, 30), dtype, seed=3)
    strided = x[::2, ::3]
    np.testing.assert_array_equal(argmax(strided), argmax_reference(strided))
    np.testing.assert_array_equal(argmax(x.T), argmax_reference(x.T))
    assert accuracy(strided, argmax_reference(strided)) == 1.0


def test_out_is_returned(dtype):
    x = tie_heavy((17, 3), dtype)
    out = np.empty(17, np.intp)
    assert argmax(x, out=out) is out
    np.testing.assert_array_equal(out, argmax_reference(x))


def test_intp_labels_equal_other_integer_labels(dtype):
    # C-contiguous intp labels take as_labels' fast path; the others its full checks.
    x = tie_heavy((257, 10), dtype, seed=4)
    labels = np.random.default_rng(4).integers(0, 10, 257).astype(np.intp)
    expected = accuracy(x, labels)
    for other in (labels.astype(np.uint8), labels.astype(">i8"), np.repeat(labels, 2)[::2], labels.tolist()):
        assert accuracy(x, other) == expected
    assert expected == np.mean(argmax_reference(x) == labels)


def test_parallel_paths_match_serial_and_are_thread_invariant(dtype):
    x = tie_heavy((PARALLEL_MIN_SIZE // 10 + 3, 10), dtype, seed=4)
    labels = np.random.default_rng(5).integers(0, 10, x.shape[0])
    assert_thread_invariant(argmax, x)
    assert_thread_invariant(accuracy, x, labels)
    index = np.empty(x.shape[0], np.intp)
    kernels.argmax_rows_serial(x, index)
    assert_bitwise_equal(argmax(x), index)
    assert accuracy(x, labels) == kernels.count_correct_serial(x, labels) / x.shape[0]


@pytest.mark.filterwarnings("ignore:Inspection disabled for cached code")
def test_float32_kernels_stay_in_float32():
    # The serial loops hold the comparisons and are checked directly: the parallel
    # kernels' IR omits callees that were loaded from Numba's cache.
    x = np.ones((3, 4), np.float32)
    index = np.zeros(3, np.intp)
    assert float64_instructions(kernels.row_argmax, x[0]) == []
    for rows in (kernels.argmax_rows_serial, kernels.argmax_rows):
        assert float64_instructions(rows, x, index) == []
    for count in (kernels.count_correct_serial, kernels.count_correct):
        assert float64_instructions(count, x, index) == []


def test_bad_arguments():
    x = np.ones((3, 4))
    for bad in (np.int64, np.bool_, np.complex128, np.float16, object):
        with pytest.raises(TypeError, match="`x` must be float32 or float64"):
            argmax(x.astype(bad))
        with pytest.raises(TypeError, match="`logits` must be float32 or float64"):
            accuracy(x.astype(bad), [0, 0, 0])
    with pytest.raises(ValueError, match="`x` must be 2-D"):
        argmax(np.ones(4))
    with pytest.raises(ValueError, match="`x` must have at least one column"):
        argmax(np.ones((3, 0)))
    with pytest.raises(ValueError, match="`logits` must have at least one column"):
        accuracy(np.ones((3, 0)), [0, 0, 0])
    with pytest.raises(ValueError, match="`logits` must have at least one row"):
        accuracy(np.ones((0, 4)), [])
    with pytest.raises(ValueError, match="`logits` must be 2-D"):
        accuracy(np.ones(4), [0])
    with pytest.raises(TypeError, match="`labels` must be integers"):
        accuracy(x, np.zeros(3))
    with pytest.raises(ValueError, match="`labels` must be 1-D of length 3"):
        accuracy(x, [0, 1])
    with pytest.raises(ValueError, match=r"`labels` must lie in \[0, 4\)"):
        accuracy(x, [0, 4, 1])
    with pytest.raises(ValueError, match=r"`labels` must lie in \[0, 4\)"):
        accuracy(x, np.array([0, -1, 1], np.int8))
    # intp labels take as_labels' fast path, which must refuse these too.
    with pytest.raises(ValueError, match=r"`labels` must lie in \[0, 4\)\. Received: a label 4"):
        accuracy(x, np.array([0, 4, 1], np.intp))
    with pytest.raises(ValueError, match=r"`labels` must lie in \[0, 4\)\. Received: a label -1"):
        accuracy(x, np.array([0, -1, 1], np.intp))
    with pytest.raises(ValueError, match="`labels` must be 1-D of length 3"):
        accuracy(x, np.array([0, 1, 2, 3], np.intp))
    with pytest.raises(TypeError, match="`out` must have dtype"):
        argmax(x, out=np.zeros(3, np.float64))
    with pytest.raises(ValueError, match="`out` must have shape"):
        argmax(x, out=np.zeros(4, np.intp))
    with pytest.raises(ValueError, match="C-contiguous"):
        argmax(x, out=np.zeros(6, np.intp)[::2])
