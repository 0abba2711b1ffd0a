"""Optimizers: updates against float64 formulas, clipping, validation, state round trip."""

import math

import numpy as np
import pytest

from helpers import EPS, assert_bitwise_equal
from numbanet.optim import SGD, Adam


def _problem(dtype, seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal((5, 3)).astype(dtype), rng.standard_normal(3).astype(dtype)]
    grads = [[rng.standard_normal(p.shape).astype(dtype) for p in params] for _ in range(4)]
    return params, grads


def test_adam_matches_the_bias_corrected_float64_formula(dtype):
    params, grad_steps = _problem(dtype)
    lr, beta1, beta2, eps = 0.01, 0.8, 0.99, 1e-7
    reference = [p.astype(np.float64) for p in params]
    m = [np.zeros_like(p) for p in reference]
    v = [np.zeros_like(p) for p in reference]
    adam = Adam(lr=lr, beta1=beta1, beta2=beta2, eps=eps)
    adam.bind(params)
    for t, grads in enumerate(grad_steps, start=1):
        adam.apply(params, grads)
        for i, g in enumerate(grads):
            g = g.astype(np.float64)
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            reference[i] -= lr * (m[i] / (1 - beta1**t)) / (np.sqrt(v[i] / (1 - beta2**t)) + eps)
    assert adam.iterations == 4
    for p, r in zip(params, reference):
        assert p.dtype == dtype
        np.testing.assert_allclose(p, r, rtol=64 * EPS[dtype], atol=64 * EPS[dtype])


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_matches_the_float64_formula(dtype, momentum):
    params, grad_steps = _problem(dtype, seed=1)
    lr = 0.1
    reference = [p.astype(np.float64) for p in params]
    velocity = [np.zeros_like(p) for p in reference]
    sgd = SGD(lr, momentum=momentum)
    sgd.bind(params)
    for grads in grad_steps:
        sgd.apply(params, grads)
        for i, g in enumerate(grads):
            velocity[i] = momentum * velocity[i] + g.astype(np.float64)
            reference[i] -= lr * velocity[i]
    for p, r in zip(params, reference):
        np.testing.assert_allclose(p, r, rtol=64 * EPS[dtype], atol=64 * EPS[dtype])


def test_clip_scales_gradients_to_the_global_norm_and_returns_the_norm_before():
    grads = [np.full((2, 2), 3.0), np.full(1, 4.0)]
    norm_before = math.sqrt(4 * 9 + 16)
    assert Adam(clip_norm=1.0).clip(grads) == pytest.approx(norm_before, rel=1e-15)
    clipped_norm = math.sqrt(math.fsum(float(g) ** 2 for a in grads for g in a.ravel()))
    assert clipped_norm == pytest.approx(1.0, rel=1e-6)  # torch's coefficient max_norm / (norm + 1e-6)
    unclipped = [np.full(3, 0.1)]
    assert SGD(0.1).clip(unclipped) == pytest.approx(math.sqrt(0.03))
    assert_bitwise_equal(unclipped[0], np.full(3, 0.1))


@pytest.mark.parametrize("make, match", [
    (lambda: Adam(lr=0), "`lr`"),
    (lambda: Adam(lr=-1e-3), "`lr`"),
    (lambda: Adam(lr=float("inf")), "`lr`"),
    (lambda: Adam(lr="0.1"), "`lr`"),
    (lambda: Adam(beta1=1.0), "`beta1`"),
    (lambda: Adam(beta2=-0.1), "`beta2`"),
    (lambda: Adam(eps=0.0), "`eps`"),
    (lambda: Adam(clip_norm=0.0), "`clip_norm`"),
    (lambda: SGD(0.1, momentum=1.0), "`momentum`"),
    (lambda: SGD(0.1, momentum=-0.5), "`momentum`"),
    (lambda: SGD(True), "`lr`"),
])
def test_hyperparameters_are_validated(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_state_round_trips_through_arrays():
    params, grad_steps = _problem(np.float32, seed=2)
    adam = Adam()
    adam.bind(params)
    adam.apply(params, grad_steps[0])
    arrays = adam.state_arrays(prefix="optimizer.")
    assert sorted(arrays) == ["optimizer.m.0", "optimizer.m.1", "optimizer.v.0", "optimizer.v.1"]
    restored = Adam()
    restored.bind(params)
    restored.load_state_arrays(arrays, adam.iterations, prefix="optimizer.")
    copies = [p.copy() for p in params]
    adam.apply(params, grad_steps[1])
    restored.apply(copies, grad_steps[1])
    for a, b in zip(params, copies):
        assert_bitwise_equal(a, b)


def test_repr_names_the_hyperparameters():
    assert repr(SGD(0.5, momentum=0.9)) == "SGD(lr=0.5, momentum=0.9, clip_norm=None)"
    assert repr(Adam()) == "Adam(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-07, clip_norm=None)"


@pytest.mark.parametrize("make", [lambda: Adam(lr=0.01), lambda: SGD(0.1, momentum=0.9)])
def test_one_update_over_buffers_matches_per_parameter_updates(dtype, make):
    params, grad_steps = _problem(dtype, seed=3)
    per_parameter, buffered = make(), make()
    per_parameter.bind(params)
    buffered.bind(params)
    param_buffer = np.concatenate([p.ravel() for p in params])
    for grads in grad_steps:
        per_parameter.apply(params, grads)
        buffered.apply_buffers(param_buffer, np.concatenate([g.ravel() for g in grads]))
    assert buffered.iterations == per_parameter.iterations == 4
    assert_bitwise_equal(param_buffer, np.concatenate([p.ravel() for p in params]))
    for slot in per_parameter.slots:
        for a, b in zip(per_parameter.state[slot], buffered.state[slot]):
            assert_bitwise_equal(a, b)


def test_state_is_one_buffer_per_slot_viewed_per_parameter():
    params, _ = _problem(np.float64)
    adam = Adam()
    adam.bind(params)
    for slot in ("m", "v"):
        assert adam.buffers[slot].shape == (18,)
        assert [a.shape for a in adam.state[slot]] == [(5, 3), (3,)]
        adam.buffers[slot][15:] = 7.0  # the last three elements are the second parameter
        np.testing.assert_array_equal(adam.state[slot][1], 7.0)
        np.testing.assert_array_equal(adam.state[slot][0], 0.0)


def test_apply_buffers_and_bind_reject_mismatches():
    params, grad_steps = _problem(np.float32)
    adam = Adam()
    adam.bind(params)
    with pytest.raises(ValueError, match="`param_buffer` must be 1-D and hold the 18 bound parameters"):
        adam.apply_buffers(np.zeros(17, np.float32), np.zeros(17, np.float32))
    with pytest.raises(ValueError, match="`param_buffer`"):
        adam.apply_buffers(np.zeros((6, 3), np.float32), np.zeros((6, 3), np.float32))
    assert adam.iterations == 0
    with pytest.raises(TypeError, match=r"one dtype.*float32.*float64"):
        adam.bind([params[0], params[1].astype(np.float64)])
