"""Cross-entropy from logits (loss, gradient, fused) and from probabilities."""

import math

import numpy as np
import pytest
import scipy.special

from helpers import EPS, assert_bitwise_equal, assert_thread_invariant, float64_instructions
from numbanet import cross_entropy, cross_entropy_from_probs, cross_entropy_grad, softmax_cross_entropy
from numbanet.kernels import cross_entropy as kernels
from numbanet.kernels.softmax import short_rows_work_shape
from numbanet.ops import _validate
from numbanet.ops.cross_entropy import SERIAL_MAX_SIZE


def tolerance(dtype, k):
    return 4 * EPS[dtype] * (2 + np.log2(max(k, 1)))


def reference_loss(logits, labels):
    logp = scipy.special.log_softmax(np.asarray(logits, np.float64), axis=1)
    return math.fsum(-logp[np.arange(len(labels)), labels]) / len(labels)


def reference_grad(logits, labels):
    p = scipy.special.softmax(np.asarray(logits, np.float64), axis=1)
    p[np.arange(len(labels)), labels] -= 1
    return p / len(labels)


def batch(n, k, dtype, seed=0, scale=4.0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, k)) * scale).astype(dtype), rng.integers(0, k, n)


@pytest.mark.parametrize("n, k", [(1, 1), (1, 3), (3, 1), (17, 10), (257, 3), (5, 257), (40, 1000)])
def test_loss_and_grad_match_reference(dtype, n, k):
    logits, labels = batch(n, k, dtype)
    loss = cross_entropy(logits, labels)
    assert type(loss) is np.float64
    ref = reference_loss(logits, labels)
    assert abs(loss - ref) <= tolerance(dtype, k) * max(abs(ref), 1)
    grad = cross_entropy_grad(logits, labels)
    assert grad.dtype == dtype and grad.shape == (n, k)
    # Gradient entries are O(1/N): scale the error by 1/N as well.
    np.testing.assert_allclose(grad, reference_grad(logits, labels), rtol=0, atol=tolerance(dtype, k) / n)


def test_fused_equals_separate_ops(dtype):
    logits, labels = batch(64, 300, dtype)
    assert logits.size > SERIAL_MAX_SIZE
    loss, grad = softmax_cross_entropy(logits, labels)
    assert type(loss) is np.float64 and loss == cross_entropy(logits, labels)
    assert_bitwise_equal(grad, cross_entropy_grad(logits, labels))


def test_serial_and_parallel_paths_agree(dtype):
    logits, labels = batch(64, 300, dtype)
    runs = []
    for kernel in (kernels.softmax_cross_entropy_forward_backward, kernels.softmax_cross_entropy_forward_backward_serial):
        loss, grad = np.empty(64, dtype), np.empty_like(logits)
        kernel(logits, labels.astype(np.intp), loss, grad)
        runs.append((loss, grad))
    assert_bitwise_equal(runs[0][0], runs[1][0])
    assert_bitwise_equal(runs[0][1], runs[1][1])


@pytest.mark.parametrize("k", [1, 2, 10, 15])
def test_short_rows_equal_the_row_kernels(dtype, k):
    # Rows of K < 16 take the block-of-rows kernels; they must give the row kernels'
    # bits, special values included, serial and parallel.
    logits, labels = batch(2000, k, dtype)
    logits[1, 0], logits[2, :], logits[3, -1], logits[4, 0] = np.inf, -np.inf, np.nan, -np.inf
    labels = labels.astype(np.intp)
    expected_loss, expected_grad = np.empty(2000, dtype), np.empty_like(logits)
    kernels.softmax_cross_entropy_forward_backward_serial(logits, labels, expected_loss, expected_grad)
    for kernel, parallel in ((kernels.softmax_cross_entropy_forward_backward_short, True),
                             (kernels.softmax_cross_entropy_forward_backward_short_serial, False)):
        loss, grad = np.empty(2000, dtype), np.empty_like(logits)
        work = np.full(short_rows_work_shape(2000, k, parallel), np.nan, dtype)  # scratch is written before read
        kernel(logits, labels, loss, grad, work)
        assert_bitwise_equal(loss, expected_loss)
        assert_bitwise_equal(grad, expected_grad)


def test_thread_invariant(dtype):
    logits, labels = batch(64, 301, dtype)
    assert_thread_invariant(lambda: softmax_cross_entropy(logits, labels))
    assert_thread_invariant(lambda: cross_entropy(logits, labels))


def test_issue_example(dtype):
    assert cross_entropy(np.array([[1000, 0]], dtype), [1]) == 1000
    assert softmax_cross_entropy(np.array([[1000, 0]], dtype), [0])[0] == 0


@pytest.mark.parametrize("value", [1e4, -1e4, 1e30, -1e30])
def test_extreme_logits(dtype, value):
    logits = np.array([[value, 0, 1], [0, value, -value]], dtype)
    labels = [1, 0]
    loss, grad = softmax_cross_entropy(logits, labels)
    ref = reference_loss(logits, labels)
    assert np.isfinite(loss) and abs(loss - ref) <= tolerance(dtype, 3) * max(abs(ref), 1)
    np.testing.assert_allclose(grad, reference_grad(logits, labels), rtol=0, atol=tolerance(dtype, 3))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_logit_stays_in_its_row(dtype, bad):
    logits, labels = batch(4, 19, dtype)
    labels[1] = 3
    logits[1, 3] = bad
    loss, grad = softmax_cross_entropy(logits, labels)
    assert not np.isfinite(loss)
    assert np.isfinite(np.delete(grad, 1, axis=0)).all()
    clean = np.delete(logits, 1, axis=0)
    expected = cross_entropy_grad(clean, np.delete(labels, 1))
    np.testing.assert_allclose(np.delete(grad, 1, axis=0) * 4 / 3, expected, rtol=8 * EPS[dtype], atol=0)


def test_minus_inf_off_the_label_is_probability_zero(dtype):
    logits = np.array([[-np.inf, 0, 0]], dtype)
    loss, grad = softmax_cross_entropy(logits, [1])
    assert abs(loss - math.log(2)) <= tolerance(dtype, 3)
    np.testing.assert_allclose(grad, [[0, -0.5, 0.5]], atol=tolerance(dtype, 3))


@pytest.mark.parametrize("label_dtype", [np.uint8, np.int8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64])
def test_any_integer_label_dtype(label_dtype):
    logits, labels = batch(6, 10, np.float64)
    assert cross_entropy(logits, labels.astype(label_dtype)) == cross_entropy(logits, labels)


def test_python_lists():
    assert cross_entropy([[0.0, 0.0]], [0]) == pytest.approx(math.log(2), abs=1e-15)


def test_strided_logits_equal_contiguous(dtype):
    base, labels = batch(10, 40, dtype)
    view, labels = base[:, ::2], labels % 20
    assert_bitwise_equal(cross_entropy_grad(view, labels), cross_entropy_grad(np.ascontiguousarray(view), labels))
    assert cross_entropy(view, labels) == cross_entropy(np.ascontiguousarray(view), labels)


def central_difference(f, x, h=1e-6):
    grad = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[idx] = h
        grad[idx] = (f(x + step) - f(x - step)) / (2 * h)
    return grad


def test_grads_match_central_differences():
    logits, labels = batch(5, 7, np.float64, scale=2.0)
    numeric = central_difference(lambda z: cross_entropy(z, labels), logits)
    np.testing.assert_allclose(cross_entropy_grad(logits, labels), numeric, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(softmax_cross_entropy(logits, labels)[1], numeric, rtol=1e-6, atol=1e-9)


def test_grad_out_is_written_and_returned(dtype):
    logits, labels = batch(4, 9, dtype)
    out = np.empty_like(logits)
    loss, grad = softmax_cross_entropy(logits, labels, grad_out=out)
    assert grad is out
    assert_bitwise_equal(out, cross_entropy_grad(logits, labels))


def test_bad_grad_out():
    logits, labels = batch(4, 6, np.float64)
    with pytest.raises(TypeError, match="`grad_out`"):
        softmax_cross_entropy(logits, labels, grad_out=np.empty((4, 6), np.float32))
    with pytest.raises(ValueError, match="`grad_out`"):
        softmax_cross_entropy(logits, labels, grad_out=np.empty((6, 4)))
    with pytest.raises(ValueError, match="`grad_out`"):
        softmax_cross_entropy(logits, labels, grad_out=logits)


OPS_FROM_LOGITS = [cross_entropy, cross_entropy_grad, softmax_cross_entropy]


@pytest.mark.parametrize("op", OPS_FROM_LOGITS + [cross_entropy_from_probs])
def test_bad_inputs(op):
    arg = "probs" if op is cross_entropy_from_probs else "logits"
    z = np.full((3, 4), 0.25)
    with pytest.raises(ValueError, match="at least one row"):
        op(np.empty((0, 4)), np.empty(0, np.int64))
    with pytest.raises(ValueError, match=f"`{arg}` must be 2-D"):
        op(z[0], [1])
    with pytest.raises(TypeError, match=f"`{arg}`"):
        op(np.ones((3, 4), np.int64), [0, 1, 2])
    with pytest.raises(TypeError, match=f"`{arg}`"):
        op(np.ones((3, 4), np.float16), [0, 1, 2])
    with pytest.raises(TypeError, match="`labels` must be integers"):
        op(z, [0.0, 1.0, 2.0])
    with pytest.raises(TypeError, match="`labels` must be integers"):
        op(z, np.array([True, False, True]))
    with pytest.raises(ValueError, match="`labels` must be 1-D of length 3"):
        op(z, [0, 1])
    with pytest.raises(ValueError, match="`labels` must be 1-D of length 3"):
        op(z, [[0, 1, 2]])
    with pytest.raises(ValueError, match=r"`labels` must lie in \[0, 4\)"):
        op(z, [0, 4, 1])
    with pytest.raises(ValueError, match=r"`labels` must lie in \[0, 4\)"):
        op(z, [0, -1, 1])


def test_from_probs_matches_reference(dtype):
    logits, labels = batch(17, 10, dtype)
    probs = scipy.special.softmax(logits.astype(np.float64), axis=1).astype(dtype)
    picked = np.clip(probs[np.arange(17), labels].astype(np.float64), 1e-7, 1 - 1e-7)
    ref = math.fsum(-np.log(picked)) / 17
    loss = cross_entropy_from_probs(probs, labels)
    assert type(loss) is np.float64 and abs(loss - ref) <= tolerance(dtype, 1) * max(ref, 1)


def test_from_probs_clips(dtype):
    probs = np.array([[0.0, 1.0], [1.0, 0.0], [np.nan, 0.5]], dtype)
    losses = [cross_entropy_from_probs(probs[i : i + 1], [j]) for i, j in [(0, 0), (0, 1), (2, 0)]]
    assert losses[0] == pytest.approx(-math.log(1e-7), rel=4 * EPS[dtype])
    assert losses[1] == pytest.approx(-math.log(1 - 1e-7), rel=2)  # clipped below 1: positive, ~1e-7
    assert losses[1] > 0 and np.isnan(losses[2])


@pytest.mark.parametrize("kernel", [kernels.softmax_cross_entropy_forward_backward, kernels.softmax_cross_entropy_forward_backward_serial])
def test_float32_kernels_stay_float32(kernel):
    z = np.ones((3, 4), np.float32)
    assert float64_instructions(kernel, z, np.zeros(3, np.intp), np.empty(3, np.float32), z.copy()) == []


@pytest.mark.parametrize(
    "kernel", [kernels.softmax_cross_entropy_forward_backward_short, kernels.softmax_cross_entropy_forward_backward_short_serial]
)
def test_float32_short_row_kernels_stay_float32(kernel):
    z, work = np.ones((3, 4), np.float32), np.empty(short_rows_work_shape(3, 4, True), np.float32)
    assert float64_instructions(kernel, z, np.zeros(3, np.intp), np.empty(3, np.float32), z.copy(), work) == []


def test_from_probs_kernel_stays_float32():
    p, one = np.ones((3, 4), np.float32), np.float32(1)
    assert float64_instructions(kernels.cross_entropy_from_probs_forward, p, np.zeros(3, np.intp), one, one, np.empty(3, np.float32)) == []


def test_float64_accumulation_is_detected():
    # sum_as_float64 is exempt from the float32 purity rule (a float64 mean is its contract);
    # this also shows that float64_instructions can fail.
    assert float64_instructions(kernels.sum_as_float64, np.ones(3, np.float32)) != []


def validated_label_calls(monkeypatch):
    """One entry per call of as_labels' full range check: none on its fast path."""
    calls = []
    check = _validate._labels_in_range

    def spy(labels, n_classes):
        calls.append(labels.dtype)
        return check(labels, n_classes)

    monkeypatch.setattr(_validate, "_labels_in_range", spy)
    return calls


def test_label_fast_path_equals_the_validated_path(dtype, monkeypatch):
    # C-contiguous intp labels skip as_labels' full checks; other integer dtypes,
    # non-native byte order and strided labels take them to the same kernels.
    logits, labels = batch(17, 10, dtype, seed=3)
    labels = labels.astype(np.intp)
    calls = validated_label_calls(monkeypatch)
    loss, grad = softmax_cross_entropy(logits, labels)
    assert calls == []
    for other in (labels.astype(np.int32), labels.astype(">i8"), np.repeat(labels, 2)[::2], labels.tolist()):
        other_loss, other_grad = softmax_cross_entropy(logits, other)
        assert other_loss == loss
        assert_bitwise_equal(other_grad, grad)
    assert len(calls) == 4
    assert loss == cross_entropy(logits, labels)
    assert_bitwise_equal(grad, cross_entropy_grad(logits, labels))


@pytest.mark.parametrize(
    "labels, error, message",
    [
        (np.array([0, 4, 1], np.intp), ValueError, r"`labels` must lie in \[0, 4\)\. Received: a label 4"),
        (np.array([0, -1, 1], np.intp), ValueError, r"`labels` must lie in \[0, 4\)\. Received: a label -1"),
        (np.array([0, 4, 1], ">i8"), ValueError, r"`labels` must lie in \[0, 4\)"),
        (np.array([0, 1], np.intp), ValueError, "`labels` must be 1-D of length 3"),
        (np.array([[0], [1], [2]], np.intp), ValueError, "`labels` must be 1-D of length 3"),
        (np.array([0.0, 1.0, 2.0]), TypeError, "`labels` must be integers"),
    ],
)
@pytest.mark.parametrize("op", OPS_FROM_LOGITS)
def test_almost_valid_labels_raise_the_validation_error(op, labels, error, message):
    with pytest.raises(error, match=message):
        op(np.full((3, 4), 0.25, np.float32), labels)
