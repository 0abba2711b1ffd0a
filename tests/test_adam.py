"""adam_step: the fused in-place update against the Adam formula in float64."""

import importlib

import numpy as np
import pytest

from helpers import EPS, assert_bitwise_equal, assert_thread_invariant, float64_instructions, validated_calls
from numbanet.kernels.adam import adam_update_parallel, adam_update_serial
from numbanet.ops import adam_step
from numbanet.ops.adam import SERIAL_MAX

adam_module = importlib.import_module("numbanet.ops.adam")

SIZES = [1, 3, 17, 257, SERIAL_MAX, SERIAL_MAX + 3]
HYPER = {"lr": 1e-2, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6}


def adam_reference(param, grad, m, v, step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-7):
    """The update as the issue states it, in float64 (returns new param, m, v)."""
    param, grad, m, v = (np.asarray(a, np.float64) for a in (param, grad, m, v))
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    m_hat = m / (1 - beta1**step)
    v_hat = v / (1 - beta2**step)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def assert_state_close(actual, expected, dtype, steps, scales):
    """Each step rounds param, m, v a few times, relative to the magnitudes they held:
    ``scales`` gives that magnitude per array (|param| before and after plus lr,
    the largest |grad| for m; v is a sum of squares without cancellation)."""
    tol = 8 * steps * EPS[dtype]
    for got, want, scale in zip(actual, expected, scales):
        bound = tol * (np.abs(want) + scale)
        assert np.all(np.abs(got - want) <= bound), np.max(np.abs(got - want) / bound)


def scales(param_before, grads, lr):
    """The magnitudes for assert_state_close: param error bound, m error bound, v none."""
    return np.abs(np.asarray(param_before, np.float64)) + lr, max(np.max(np.abs(g)) for g in grads), 0


def random_state(n, dtype, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    param = rng.standard_normal(n).astype(dtype)
    grads = [(rng.standard_normal(n) * scale).astype(dtype) for _ in range(4)]
    return param, grads


@pytest.mark.parametrize("n", SIZES)
def test_matches_formula_over_several_steps(n, dtype):
    param, grads = random_state(n, dtype, seed=n)
    m, v = np.zeros_like(param), np.zeros_like(param)
    expected = (param.astype(np.float64), np.zeros(n), np.zeros(n))
    magnitudes = scales(param, grads, HYPER["lr"])
    for step, grad in enumerate(grads, start=1):
        assert adam_step(param, grad, m, v, step, **HYPER) is None
        expected = adam_reference(expected[0], grad, expected[1], expected[2], step, **HYPER)
        assert_state_close((param, m, v), expected, dtype, step, magnitudes)


def test_default_hyperparameters_and_late_step(dtype):
    param, grads = random_state(33, dtype, seed=1)
    m = (grads[0] * 0.1).astype(dtype)
    v = (grads[1] ** 2 * 0.01).astype(dtype)
    expected = adam_reference(param, grads[2], m, v, 1000)
    magnitudes = scales(param, grads, 1e-3)
    adam_step(param, grads[2], m, v, 1000)
    assert_state_close((param, m, v), expected, dtype, 1, magnitudes)


def test_first_step_moves_by_lr_times_sign(dtype):
    grad = np.array([3.0, -0.5, 1e-3, -2e3], dtype)
    param = np.zeros(4, dtype)
    adam_step(param, grad, np.zeros(4, dtype), np.zeros(4, dtype), 1, lr=0.1, eps=0.0)
    np.testing.assert_allclose(param, -0.1 * np.sign(grad), rtol=4 * EPS[dtype])


@pytest.mark.parametrize("scale", [1e-4, 1e4])
def test_extreme_gradient_scales(scale, dtype):
    param, grads = random_state(257, dtype, seed=2, scale=scale)
    m, v = np.zeros_like(param), np.zeros_like(param)
    expected = adam_reference(param, grads[0], m, v, 1, **HYPER)
    magnitudes = scales(param, grads[:1], HYPER["lr"])
    adam_step(param, grads[0], m, v, 1, **HYPER)
    assert_state_close((param, m, v), expected, dtype, 1, magnitudes)


def test_huge_gradients_in_float64():
    # float32 g*g overflows beyond |g| = 1.8e19 (v = inf, the update becomes 0); float64
    # holds g = ±1e30 and the update is lr * sign(g).
    param, grad = np.zeros(3), np.array([1e30, -1e30, 1e30])
    m, v = np.zeros(3), np.zeros(3)
    expected = adam_reference(param, grad, m, v, 1)
    magnitudes = scales(param, [grad], 1e-3)
    adam_step(param, grad, m, v, 1)
    assert_state_close((param, m, v), expected, np.float64, 1, magnitudes)


def test_denormal_gradients(dtype):
    tiny = np.finfo(dtype).smallest_subnormal
    grad = np.full(5, tiny, dtype) * np.arange(1, 6, dtype=dtype)
    param, m, v = np.ones(5, dtype), np.zeros(5, dtype), np.zeros(5, dtype)
    adam_step(param, grad, m, v, 1)
    assert np.all(np.isfinite(param)) and np.all(param <= 1)
    assert np.all(m >= 0) and np.all(v == 0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_gradient_stays_in_its_element(bad, dtype):
    param, grads = random_state(SERIAL_MAX + 3, dtype, seed=3)
    grad = grads[0]
    grad[7] = bad
    m, v = np.zeros_like(param), np.zeros_like(param)
    others = np.arange(param.size) != 7
    with np.errstate(invalid="ignore"):
        clean = adam_reference(param, grad, m, v, 1)
    magnitudes = scales(param[others], [grad[others]], 1e-3)
    adam_step(param, grad, m, v, 1)
    assert np.isnan(param[7])
    assert np.isnan(m[7]) == np.isnan(bad) and np.isnan(v[7]) == np.isnan(bad)
    assert_state_close((param[others], m[others], v[others]), [a[others] for a in clean], dtype, 1, magnitudes)


def test_zero_eps_with_zero_gradient_is_nan(dtype):
    # Allowed as in PyTorch; 0/0 is the documented consequence.
    param = np.ones(2, dtype)
    adam_step(param, np.zeros(2, dtype), np.zeros(2, dtype), np.zeros(2, dtype), 1, eps=0.0)
    assert np.all(np.isnan(param))


def test_multidimensional_and_empty(dtype):
    param, grads = random_state(60, dtype, seed=4)
    param, grad = param.reshape(3, 4, 5), grads[0].reshape(3, 4, 5)
    m, v = np.zeros_like(param), np.zeros_like(param)
    expected = adam_reference(param, grad, m, v, 1)
    magnitudes = scales(param, [grad], 1e-3)
    adam_step(param, grad, m, v, 1)
    assert_state_close((param, m, v), expected, dtype, 1, magnitudes)
    empty = np.zeros((0, 3), dtype)
    assert adam_step(empty, empty.copy(), empty.copy(), empty.copy(), 1) is None


def test_strided_gradient_is_read_correctly(dtype):
    param, grads = random_state(40, dtype, seed=5)
    wide = np.stack([grads[0], grads[1]], axis=1)
    results = []
    for grad in (wide[:, 0], np.ascontiguousarray(wide[:, 0])):
        p, m, v = param.copy(), np.zeros_like(param), np.zeros_like(param)
        adam_step(p, grad, m, v, 1)
        results.append(p)
    np.testing.assert_array_equal(*results)


def test_thread_invariant(dtype):
    param, grads = random_state(SERIAL_MAX + 1001, dtype, seed=6)
    m = grads[1] * dtype(0.1)
    v = grads[2] * grads[2]

    def step_copies(param, grad, m, v):
        param, m, v = param.copy(), m.copy(), v.copy()
        adam_step(param, grad, m, v, 3, **HYPER)
        return param, m, v

    assert_thread_invariant(step_copies, param, grads[0], m, v)


@pytest.mark.parametrize("kernel", [adam_update_parallel, adam_update_serial])
def test_float32_kernels_stay_float32(kernel):
    x = np.ones(10, np.float32)
    scalars = [np.float32(s) for s in (0.9, 0.1, 0.999, 0.001, 0.01, 1000.0, 1e-7)]
    assert float64_instructions(kernel, x, x.copy(), x.copy(), x.copy(), *scalars) == []


def arrays(dtype=np.float32, n=4):
    return [np.zeros(n, dtype) for _ in range(4)]


@pytest.mark.parametrize("bad", [np.int64, np.bool_, np.complex64, np.float16, object])
@pytest.mark.parametrize("position", range(4))
def test_rejects_non_float_dtypes(bad, position):
    args = arrays()
    args[position] = np.zeros(4, bad)
    name = ["param", "grad", "m", "v"][position]
    with pytest.raises(TypeError, match=rf"`{name}` must be float32 or float64\. Received: {name}\.dtype="):
        adam_step(*args, 1)


def test_rejects_mixed_dtypes():
    args = arrays()
    args[3] = np.zeros(4, np.float64)
    with pytest.raises(TypeError, match=r"must share one float dtype.*v\.dtype=float64"):
        adam_step(*args, 1)


@pytest.mark.parametrize("position", range(4))
def test_rejects_mismatched_shapes(position):
    args = arrays()
    args[position] = np.zeros(5, np.float32)
    name = ["param", "grad", "m", "v"][position]
    with pytest.raises(ValueError, match=rf"must have the same shape.*{name}\.shape=\(5,\)"):
        adam_step(*args, 1)


@pytest.mark.parametrize("position", [0, 2, 3])
def test_rejects_state_that_cannot_be_updated_in_place(position):
    name = ["param", "grad", "m", "v"][position]
    args = arrays()
    args[position] = np.zeros(8, np.float32)[::2]
    with pytest.raises(ValueError, match=rf"`{name}` must be a writeable C-contiguous array"):
        adam_step(*args, 1)
    args = arrays()
    args[position].flags.writeable = False
    with pytest.raises(ValueError, match=rf"`{name}` must be a writeable C-contiguous array"):
        adam_step(*args, 1)
    args = arrays()
    args[position] = [0.0] * 4
    with pytest.raises(TypeError, match=rf"`{name}` must be a numpy array"):
        adam_step(*args, 1)


def test_rejects_shared_memory():
    param, grad, m, _ = arrays()
    with pytest.raises(ValueError, match="`m` and `v` must not share memory"):
        adam_step(param, grad, m, m, 1)


@pytest.mark.parametrize("step", [0, -1])
def test_rejects_step_below_one(step):
    with pytest.raises(ValueError, match=rf"`step` must be >= 1 \(the 1-based step count\). Received: step={step}"):
        adam_step(*arrays(), step)


@pytest.mark.parametrize("step", [1.0, True, "1", None])
def test_rejects_non_integer_step(step):
    with pytest.raises(TypeError, match="`step` must be an integer"):
        adam_step(*arrays(), step)


@pytest.mark.parametrize(
    "option, value",
    [("lr", -1e-3), ("lr", np.nan), ("beta1", 1.0), ("beta1", -0.1), ("beta2", 1.0), ("beta2", 1.5),
     ("eps", -1e-8), ("eps", np.inf)],
)
def test_rejects_hyperparameters_out_of_range(option, value):
    with pytest.raises(ValueError, match=f"`{option}` must be"):
        adam_step(*arrays(), 1, **{option: value})


def test_rejects_non_numeric_hyperparameter():
    with pytest.raises(TypeError, match="`lr` must be a real number"):
        adam_step(*arrays(), 1, lr=None)


def test_matches_torch_adam_in_float64():
    torch = pytest.importorskip("torch")
    param, grads = random_state(101, np.float64, seed=7)
    m, v = np.zeros_like(param), np.zeros_like(param)
    weight = torch.tensor(param.copy(), requires_grad=True)
    optimizer = torch.optim.Adam([weight], lr=1e-2, betas=(0.8, 0.99), eps=1e-6)
    for step, grad in enumerate(grads, start=1):
        adam_step(param, grad, m, v, step, **HYPER)
        weight.grad = torch.tensor(grad)
        optimizer.step()
    np.testing.assert_allclose(param, weight.detach().numpy(), rtol=1e-13, atol=1e-15)


def run_steps(param, grads, m, v, step_type=int, hyper_type=float):
    """Copies of param, m, v after an adam_step per gradient (steps 1, 2, ...)."""
    param, m, v = param.copy(), m.copy(), v.copy()
    hyper = {name: hyper_type(value) for name, value in HYPER.items()}
    for step, grad in enumerate(grads, start=1):
        adam_step(param, grad, m, v, step_type(step), **hyper)
    return param, m, v


@pytest.mark.parametrize("shape", [(17,), (3, 5)])
def test_fast_path_equals_the_validated_path(dtype, shape, monkeypatch):
    # Plain C-contiguous arrays with an int step skip the array checks, and Python
    # float hyper-parameters reuse the step's kernel scalars; a numpy integer step or
    # a strided gradient takes the full validation, numpy float hyper-parameters the
    # uncached scalars: all give the same bits.
    param, grads = random_state(int(np.prod(shape)), dtype, seed=7)
    param, grads = param.reshape(shape), [g.reshape(shape) for g in grads]
    m, v = grads[0] * dtype(0.5), grads[1] * grads[1]
    names = validated_calls(monkeypatch, adam_module, "as_in_place_array")
    fast = run_steps(param, grads, m, v)
    assert names == []
    uncached = run_steps(param, grads, m, v, hyper_type=np.float64)
    assert names == []
    validated = run_steps(param, grads, m, v, step_type=np.int64, hyper_type=np.float64)
    assert names == ["param", "m", "v"] * len(grads)
    strided = run_steps(param, [np.repeat(g, 2, axis=-1)[..., ::2] for g in grads], m, v)
    assert len(names) == 6 * len(grads)
    for other in (uncached, validated, strided):
        for a, b in zip(fast, other):
            assert_bitwise_equal(a, b)
    expected = param, m, v
    for step, grad in enumerate(grads, start=1):
        expected = adam_reference(*expected[:1], grad, *expected[1:], step, **HYPER)
    assert_state_close(fast, expected, dtype, len(grads), scales(param, grads, HYPER["lr"]))


def read_only(a):
    a.flags.writeable = False
    return a


def with_array(position, array):
    """arrays() with ``array`` at ``position`` (0 param, 1 grad, 2 m, 3 v)."""
    args = arrays()
    args[position] = array
    return args


# Inputs that pass most of the fast path's tests: each must still raise the full
# validation's error.
_BUFFER = np.zeros(8, np.float32)
_SAME = np.zeros(4, np.float32)
ALMOST_VALID = [
    (with_array(0, np.zeros(4, ">f4")), 1, TypeError, r"`param` must be float32 or float64\. Received: param\.dtype=>f4"),
    (with_array(1, np.zeros(4, ">f4")), 1, TypeError, "`grad` must be float32 or float64"),
    (with_array(3, np.zeros(4, ">f4")), 1, TypeError, "`v` must be float32 or float64"),
    (with_array(1, np.zeros(4, np.float64)), 1, TypeError, "must share one float dtype"),
    ([np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32, order="F"),
      np.zeros((2, 3), np.float32)], 1, ValueError, "`m` must be a writeable C-contiguous"),
    (with_array(3, read_only(np.zeros(4, np.float32))), 1, ValueError, "`v` must be a writeable C-contiguous"),
    (with_array(2, np.zeros((2, 2), np.float32)), 1, ValueError, "must have the same shape"),
    ([_SAME, _SAME, np.zeros(4, np.float32), np.zeros(4, np.float32)], 1, ValueError,
     "`param` and `grad` must not share memory"),
    ([np.zeros(4, np.float32), np.zeros(4, np.float32), _BUFFER[:4], _BUFFER[2:6]], 1, ValueError,
     "`m` and `v` must not share memory"),
    ([_BUFFER[4:], np.zeros(4, np.float32), np.zeros(4, np.float32), _BUFFER[3:7]], 1, ValueError,
     "`param` and `v` must not share memory"),
    (arrays(), np.int64(0), ValueError, "`step` must be >= 1"),
    (arrays(), np.float64(1), TypeError, "`step` must be an integer"),
]


@pytest.mark.parametrize("args, step, error, message", ALMOST_VALID)
def test_almost_valid_input_raises_the_validation_error(args, step, error, message):
    with pytest.raises(error, match=message):
        adam_step(*args, step)
