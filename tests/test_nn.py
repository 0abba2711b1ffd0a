"""Layers and Sequential: forward/backward against float64 references, gradient checks,
input handling, save/load, and the layer contract for user layers."""

import math

import numpy as np
import pytest

from helpers import EPS, assert_bitwise_equal
from numbanet.nn import Dense, Dropout, Layer, ReLU, Sequential, Sigmoid
from numbanet.nn.layer import mix_seed


def _rows(rng, n, d, dtype):
    return rng.uniform(-1.0, 1.0, (n, d)).astype(dtype)


def _reference_dense(x, w, b, dout):
    """Forward and backward of y = x W + b, all in float64 with math.fsum sums."""
    x, w, b, dout = (np.asarray(a, dtype=np.float64) for a in (x, w, b, dout))
    y = np.array([[math.fsum(x[i, :] * w[:, j]) + b[j] for j in range(w.shape[1])] for i in range(x.shape[0])])
    dw = np.array([[math.fsum(x[:, i] * dout[:, j]) for j in range(w.shape[1])] for i in range(w.shape[0])])
    db = np.array([math.fsum(dout[:, j]) for j in range(w.shape[1])])
    dx = np.array([[math.fsum(dout[i, :] * w[j, :]) for j in range(w.shape[0])] for i in range(x.shape[0])])
    return y, dw, db, dx


@pytest.mark.parametrize("n, d_in, d_out", [(1, 1, 1), (3, 17, 5), (7, 33, 10)])
def test_dense_forward_backward_match_float64_reference(dtype, n, d_in, d_out):
    rng = np.random.default_rng(0)
    dense = Dense(d_in, d_out)
    dense.build(dtype, rng)
    dense.params["bias"][:] = rng.uniform(-1, 1, d_out)
    x, dout = _rows(rng, n, d_in, dtype), _rows(rng, n, d_out, dtype)
    y = dense.forward(x, training=True)
    dx = dense.backward(dout)
    ref_y, ref_dw, ref_db, ref_dx = _reference_dense(x, dense.params["kernel"], dense.params["bias"], dout)
    tol = 4 * EPS[dtype] * max(d_in, n, d_out)
    for got, want in ((y, ref_y), (dense.grads["kernel"], ref_dw), (dense.grads["bias"], ref_db), (dx, ref_dx)):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_first_layer_skips_its_input_gradient():
    model = Sequential([Dense(4, 3), ReLU(), Dense(3, 2)], dtype="float64")
    x = np.random.default_rng(1).uniform(size=(5, 4))
    model.forward(x, training=True)
    assert model.layers[0].backward(np.ones((5, 3))) is None
    assert model.layers[2].backward(np.ones((5, 2))).shape == (5, 3)


def _loss_of(model, x, labels):
    logits = model.forward(x, training=True).astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -math.fsum(log_probs[np.arange(len(labels)), labels]) / len(labels)


@pytest.mark.parametrize("activation", [ReLU, Sigmoid])
def test_model_gradients_match_central_differences(activation):
    from numbanet.nn import SoftmaxCrossEntropy

    rng = np.random.default_rng(2)
    model = Sequential([Dense(6, 5), activation(), Dropout(0.3), Dense(5, 3)], dtype="float64", seed=3)
    model.reseed(11)
    for p in model.params:
        p += rng.uniform(-0.1, 0.1, p.shape)  # nonzero biases, no ReLU kinks at exactly 0
    x = rng.uniform(size=(4, 6))
    labels = np.array([0, 2, 1, 2])
    _, dlogits = SoftmaxCrossEntropy()(model.forward(x, training=True), labels)
    model.backward(dlogits)
    h = 1e-6
    for param, grad in zip(model.params, model.grads):
        analytic = grad.copy()
        numeric = np.empty_like(param)
        for i in np.ndindex(param.shape):
            saved = param[i]
            param[i] = saved + h
            up = _loss_of(model, x, labels)
            param[i] = saved - h
            down = _loss_of(model, x, labels)
            param[i] = saved
            numeric[i] = (up - down) / (2 * h)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_dropout_is_identity_at_inference_and_consistent_in_training(dtype):
    layer = Dropout(0.5)
    layer.build(dtype, None)
    x = np.random.default_rng(4).uniform(0.5, 1.0, (8, 64)).astype(dtype)
    assert layer.forward(x, training=False) is x
    layer.reseed(123)
    y = layer.forward(x, training=True).copy()
    kept = y != 0
    assert 0.3 < kept.mean() < 0.7
    np.testing.assert_array_equal(y[kept], (x / dtype(0.5))[kept])
    dx = layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx != 0, kept)
    layer.reseed(124)
    assert not np.array_equal(layer.forward(x, training=True) != 0, kept)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 2, "0.5", True, float("nan")])
def test_dropout_rejects_bad_rates(rate):
    with pytest.raises(ValueError, match="`rate`"):
        Dropout(rate)


def test_mix_seed_gives_distinct_63_bit_seeds():
    seeds = {mix_seed(s, i) for s in range(50) for i in range(50)}
    assert len(seeds) == 2500
    assert all(0 <= s < 2**63 for s in seeds)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"in_features": 0, "out_features": 3}, ValueError, "in_features"),
    ({"in_features": 3, "out_features": 2.0}, ValueError, "out_features"),
    ({"in_features": 3, "out_features": 2, "init": "zeros"}, ValueError, "init"),
])
def test_dense_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        Dense(**kwargs)


def test_he_normal_init_is_selectable_and_seeded():
    a = Sequential([Dense(50, 40, init="he_normal")], seed=5)
    b = Sequential([Dense(50, 40, init="he_normal")], seed=5)
    c = Sequential([Dense(50, 40)], seed=5)
    assert_bitwise_equal(a.params[0], b.params[0])
    assert not np.array_equal(a.params[0], c.params[0])
    assert 0.1 < a.params[0].std() / math.sqrt(2 / 50) < 1.3


@pytest.mark.parametrize("needs_input_grad", [True, False])
def test_dense_relu_equals_dense_then_relu(dtype, needs_input_grad):
    rng = np.random.default_rng(12)
    fused = Sequential([Dense(7, 300, activation="relu"), Dense(300, 3)], dtype=dtype, seed=4)
    plain = Sequential([Dense(7, 300), ReLU(), Dense(300, 3)], dtype=dtype, seed=4)
    fused.param_buffer[:] = plain.param_buffer
    fused[0].needs_input_grad = plain[0].needs_input_grad = needs_input_grad
    x = rng.standard_normal((5, 7)).astype(dtype)
    x[0, :] = 0.0  # a row of zero inputs: every unit of it gets only the bias
    dlogits = rng.standard_normal((5, 3)).astype(dtype)
    assert_bitwise_equal(fused.forward(x, training=True), plain.forward(x, training=True))
    assert np.count_nonzero(fused[0].forward(x, training=True) == 0) > 0
    # Layer by layer rather than model.backward, which drops the first layer's dx.
    dx_fused = fused[0].backward(fused[1].backward(dlogits))
    dx_plain = plain[0].backward(plain[1].backward(plain[2].backward(dlogits)))
    assert_bitwise_equal(fused.grad_buffer, plain.grad_buffer)
    if needs_input_grad:
        assert_bitwise_equal(dx_fused, dx_plain)
    else:
        assert dx_fused is None and dx_plain is None


def test_dense_activation_is_validated_and_saved(tmp_path):
    with pytest.raises(ValueError, match="`activation` must be None or 'relu'"):
        Dense(3, 2, activation="tanh")
    model = Sequential([Dense(3, 4, activation="relu"), Dense(4, 2)], seed=1)
    assert model[0].get_config() == {"in_features": 3, "out_features": 4, "init": "glorot_uniform",
                                     "activation": "relu"}
    assert "activation" not in model[1].get_config()
    model.save(tmp_path / "m.npz")
    loaded = Sequential.load(tmp_path / "m.npz")
    assert loaded[0].activation == "relu" and loaded[1].activation is None
    x = np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32)
    assert_bitwise_equal(loaded.forward(x), model.forward(x))


def test_parameters_and_gradients_are_views_of_one_buffer_each(dtype):
    model = Sequential([Dense(4, 3), ReLU(), Dense(3, 2)], dtype=dtype, seed=0)
    assert [p.shape for p in model.params] == [(4, 3), (3,), (3, 2), (2,)]
    assert model.param_buffer.shape == model.grad_buffer.shape == (23,)
    assert model.param_buffer.dtype == model.grad_buffer.dtype == dtype
    assert_bitwise_equal(model.param_buffer, np.concatenate([p.ravel() for p in model.params]))
    for layer, i in ((model[0], 0), (model[2], 2)):
        assert layer.params["kernel"] is model.params[i] and layer.grads["kernel"] is model.grads[i]
    model.param_buffer[12:15] = 5.0  # the first layer's 12 weights and 3 biases come first
    np.testing.assert_array_equal(model[0].params["bias"], 5.0)
    x = np.ones((2, 4), dtype)
    model.backward(model.forward(x, training=True))
    assert np.count_nonzero(model.grad_buffer) > 0
    assert_bitwise_equal(model.grad_buffer, np.concatenate([g.ravel() for g in model.grads]))


def test_sequential_rejects_a_layer_given_twice():
    dense = Dense(3, 3)
    with pytest.raises(ValueError, match=r"`layers\[2\]` \(Dense.*appears twice"):
        Sequential([dense, ReLU(), dense])


def test_sequential_rejects_mismatched_layers_and_bad_arguments():
    with pytest.raises(ValueError, match=r"Dense\(in_features=128.*per-sample shape \(256,\)"):
        Sequential([Dense(784, 256), ReLU(), Dense(128, 10)])
    with pytest.raises(ValueError, match="at least one layer"):
        Sequential([])
    with pytest.raises(TypeError, match=r"layers\[1\]"):
        Sequential([Dense(2, 2), "relu"])
    with pytest.raises(TypeError, match="`dtype`"):
        Sequential([Dense(2, 2)], dtype="float16")


def test_repr_is_readable():
    model = Sequential([Dense(784, 256), ReLU(), Dropout(0.2), Dense(256, 10)])
    text = repr(model)
    assert "Sequential(dtype=float32, params=203,530)" in text
    assert "Dense(in_features=784, out_features=256, init='glorot_uniform')" in text
    assert "Dropout(rate=0.2)" in text and "ReLU()" in text


def test_predict_accepts_every_image_layout_and_scales_uint8():
    model = Sequential([Dense(784, 8), ReLU(), Dense(8, 10)], seed=6)
    pixels = np.random.default_rng(7).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    floats = (pixels / np.float32(255)).astype(np.float32)
    reference = model.predict(floats.reshape(5, 784))
    for x in (pixels, pixels.reshape(5, 784), pixels.reshape(5, 28, 28, 1), floats, floats.astype(np.float64)):
        assert_bitwise_equal(model.predict(x, batch_size=2), reference)
    np.testing.assert_allclose(reference.astype(np.float64).sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("x, error, match", [
    (np.zeros((3, 783), np.float32), ValueError, "784 values per sample"),
    (np.zeros((3, 28, 28), np.int64), TypeError, "uint8, float32 or float64"),
    (np.full((3, 784), 2.0, np.float32), ValueError, r"\[0, 1\]"),
    (np.full((3, 784), np.nan), ValueError, "finite"),
    (np.zeros((0, 784), np.float32), ValueError, "at least one sample"),
    ([[0.0] * 784], TypeError, "numpy array"),
])
def test_predict_rejects_bad_inputs(x, error, match):
    model = Sequential([Dense(784, 10)])
    with pytest.raises(error, match=match):
        model.predict(x)


def test_save_load_round_trips_architecture_dtype_and_weights(tmp_path, dtype):
    model = Sequential([Dense(12, 7, init="he_normal"), Sigmoid(), Dropout(0.25), Dense(7, 3)], dtype=dtype, seed=8)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = Sequential.load(path)
    assert loaded.get_config() == model.get_config()
    assert loaded.dtype == dtype
    for a, b in zip(model.params, loaded.params):
        assert_bitwise_equal(a, b)
    x = np.random.default_rng(9).uniform(size=(4, 12))
    assert_bitwise_equal(loaded.predict(x), model.predict(x))
    with np.load(path, allow_pickle=False) as data:
        assert "architecture" in data.files


def test_load_rejects_foreign_and_mismatched_files(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a numbanet model"):
        Sequential.load(tmp_path / "other.npz")
    model = Sequential([Dense(4, 2)])
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as data:
        arrays = dict(data)
    arrays["layer0.kernel"] = np.zeros((5, 2), np.float32)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="layer0.kernel"):
        Sequential.load(tmp_path / "bad.npz")


def test_interrupted_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    Sequential([Dense(4, 2)], seed=1).save(path)
    before = path.read_bytes()

    def crash(file, **arrays):
        file.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        Sequential([Dense(4, 2)], seed=2).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


class Scale(Layer):
    """A user layer: y = s·x with one learnable scalar s (exercises the layer contract)."""

    def __init__(self, start=1.0):
        super().__init__()
        self.start = start

    def build(self, dtype, rng):
        super().build(dtype, rng)
        self.add_param("s", np.full(1, self.start))

    def forward(self, x, *, training):
        self._x = x
        return np.multiply(x, self.params["s"][0], out=self.buffer("out", x.shape))

    def backward(self, dout):
        self.grads["s"][0] = np.sum(dout * self._x)
        return np.multiply(dout, self.params["s"][0], out=self.buffer("dx", dout.shape))

    def get_config(self):
        return {"start": self.start}


def test_user_layers_train_save_and_load(tmp_path):
    model = Sequential([Dense(3, 2), Scale(2.0)], dtype="float64", seed=0)
    x = np.eye(3)
    assert_bitwise_equal(model.forward(x), 2.0 * (x @ model.params[0] + model.params[1]))
    model.forward(x, training=True)
    model.backward(np.ones((3, 2)))
    assert model.grads[2][0] == pytest.approx((x @ model.params[0] + model.params[1]).sum())
    model.save(tmp_path / "m.npz")
    assert repr(Sequential.load(tmp_path / "m.npz")[1]) == "Scale(start=2.0)"
