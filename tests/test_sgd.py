"""sgd_step: the in-place momentum update against explicit float64 loops."""

import numpy as np
import pytest

from helpers import EPS, assert_thread_invariant, float64_instructions
from numbanet.kernels.sgd import sgd_update_parallel, sgd_update_serial
from numbanet.ops import sgd_step
from numbanet.ops.sgd import SERIAL_MAX

SIZES = [1, 3, 17, 257, SERIAL_MAX, SERIAL_MAX + 3]


def sgd_reference(param, grads, lr, momentum):
    """PyTorch's heavy-ball form, element by element in float64."""
    param = [float(p) for p in param]
    velocity = [0.0] * len(param)
    for grad in grads:
        for i, g in enumerate(grad):
            velocity[i] = momentum * velocity[i] + float(g)
            param[i] -= lr * velocity[i]
    return np.array(param), np.array(velocity)


def random_state(n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(n).astype(dtype), [rng.standard_normal(n).astype(dtype) for _ in range(4)]


@pytest.mark.parametrize("n", SIZES)
def test_matches_reference_over_several_steps(n, dtype):
    param, grads = random_state(n, dtype, seed=n)
    start = param.copy()
    velocity = np.zeros_like(param)
    for grad in grads:
        assert sgd_step(param, grad, velocity, lr=0.1, momentum=0.9) is None
    expected_param, expected_velocity = sgd_reference(start, grads, 0.1, 0.9)
    # A few roundings per step, relative to the magnitudes involved (|param| and
    # the velocity, which sums up to 4 gradients).
    tol = 16 * len(grads) * EPS[dtype]
    magnitude = np.abs(start.astype(np.float64)) + np.abs(expected_param) + 0.4 * np.max(np.abs(grads))
    assert np.all(np.abs(param - expected_param) <= tol * magnitude)
    assert np.all(np.abs(velocity - expected_velocity) <= tol * 4 * np.max(np.abs(grads)))


def test_without_momentum_is_plain_sgd(dtype):
    param, grads = random_state(257, dtype, seed=1)
    expected = param - dtype(0.05) * grads[0]
    velocity = np.full_like(param, 7.0)
    sgd_step(param, grads[0], velocity, lr=0.05)
    np.testing.assert_array_equal(param, expected)
    np.testing.assert_array_equal(velocity, grads[0])


def test_zero_lr_keeps_param_and_accumulates_velocity(dtype):
    param, grads = random_state(17, dtype, seed=2)
    start = param.copy()
    velocity = np.ones_like(param)
    sgd_step(param, grads[0], velocity, lr=0.0, momentum=0.5)
    np.testing.assert_array_equal(param, start)
    np.testing.assert_array_equal(velocity, dtype(0.5) + grads[0])


@pytest.mark.parametrize("value", [1e30, -1e30, 1e4])
def test_extreme_values(value, dtype):
    big = dtype(value)
    param = np.array([big, 1, 0], dtype)
    grad = np.array([1, big, np.finfo(dtype).smallest_subnormal], dtype)
    velocity = np.zeros(3, dtype)
    sgd_step(param, grad, velocity, lr=0.5, momentum=0.9)
    np.testing.assert_array_equal(param, [big - dtype(0.5), dtype(1) - dtype(0.5) * big, 0])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_gradient_stays_in_its_element(bad, dtype):
    param, grads = random_state(SERIAL_MAX + 3, dtype, seed=3)
    grads[0][5] = bad
    velocity = np.zeros_like(param)
    expected = param - dtype(0.1) * grads[0]
    sgd_step(param, grads[0], velocity, lr=0.1, momentum=0.9)
    others = np.arange(param.size) != 5
    np.testing.assert_array_equal(param[others], expected[others])
    assert not np.isfinite(param[5]) and np.isnan(velocity[5]) == np.isnan(bad)


def test_multidimensional_empty_and_strided_gradient(dtype):
    param, grads = random_state(60, dtype, seed=4)
    param = param.reshape(6, 10)
    wide = np.stack([grads[0], grads[1]], axis=1).reshape(6, 10, 2)
    expected = param - dtype(0.1) * wide[..., 0]
    sgd_step(param, wide[..., 0], np.zeros_like(param), lr=0.1)
    np.testing.assert_array_equal(param, expected)
    empty = np.zeros((0, 2), dtype)
    assert sgd_step(empty, empty.copy(), empty.copy(), lr=0.1) is None


def test_thread_invariant(dtype):
    param, grads = random_state(SERIAL_MAX + 1001, dtype, seed=5)

    def step_copies(param, grad, velocity):
        param, velocity = param.copy(), velocity.copy()
        sgd_step(param, grad, velocity, lr=0.1, momentum=0.9)
        return param, velocity

    assert_thread_invariant(step_copies, param, grads[0], grads[1])


@pytest.mark.parametrize("kernel", [sgd_update_parallel, sgd_update_serial])
def test_float32_kernels_stay_float32(kernel):
    x = np.ones(10, np.float32)
    assert float64_instructions(kernel, x, x.copy(), x.copy(), np.float32(0.1), np.float32(0.9)) == []


def arrays(dtype=np.float32, n=4):
    return [np.zeros(n, dtype) for _ in range(3)]


NAMES = ["param", "grad", "velocity"]


@pytest.mark.parametrize("bad", [np.int64, np.bool_, np.complex64, np.float16, object])
@pytest.mark.parametrize("position", range(3))
def test_rejects_non_float_dtypes(bad, position):
    args = arrays()
    args[position] = np.zeros(4, bad)
    name = NAMES[position]
    with pytest.raises(TypeError, match=rf"`{name}` must be float32 or float64\. Received: {name}\.dtype="):
        sgd_step(*args, lr=0.1)


def test_rejects_mixed_dtypes():
    args = arrays()
    args[1] = np.zeros(4, np.float64)
    with pytest.raises(TypeError, match=r"must share one float dtype.*grad\.dtype=float64"):
        sgd_step(*args, lr=0.1)


@pytest.mark.parametrize("position", range(3))
def test_rejects_mismatched_shapes(position):
    args = arrays()
    args[position] = np.zeros((2, 2), np.float32)
    name = NAMES[position]
    with pytest.raises(ValueError, match=rf"must have the same shape.*{name}\.shape=\(2, 2\)"):
        sgd_step(*args, lr=0.1)


@pytest.mark.parametrize("position", [0, 2])
def test_rejects_state_that_cannot_be_updated_in_place(position):
    name = NAMES[position]
    args = arrays()
    args[position] = np.zeros(8, np.float32)[::2]
    with pytest.raises(ValueError, match=rf"`{name}` must be a writeable C-contiguous array"):
        sgd_step(*args, lr=0.1)
    args = arrays()
    args[position].flags.writeable = False
    with pytest.raises(ValueError, match=rf"`{name}` must be a writeable C-contiguous array"):
        sgd_step(*args, lr=0.1)
    args = arrays()
    args[position] = [0.0] * 4
    with pytest.raises(TypeError, match=rf"`{name}` must be a numpy array"):
        sgd_step(*args, lr=0.1)


def test_rejects_shared_memory():
    param, grad, _ = arrays()
    with pytest.raises(ValueError, match="`param` and `velocity` must not share memory"):
        sgd_step(param, grad, param, lr=0.1)


@pytest.mark.parametrize("option, value", [("lr", -0.1), ("lr", np.inf), ("momentum", -0.5), ("momentum", np.nan)])
def test_rejects_hyperparameters_out_of_range(option, value):
    options = {"lr": 0.1, option: value}
    with pytest.raises(ValueError, match=f"`{option}` must be"):
        sgd_step(*arrays(), **options)


def test_lr_is_required_and_numeric():
    with pytest.raises(TypeError):
        sgd_step(*arrays())
    with pytest.raises(TypeError, match="`lr` must be a real number"):
        sgd_step(*arrays(), lr=None)
