"""Trainer: update order, shuffling, reproducibility across thread counts, learning on
real digits, the numerical guard and zero allocations per step."""

import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest

from helpers import assert_bitwise_equal, run_with_threads
from numbanet import ops
from numbanet.cli import build_model
from numbanet.nn import Dense, Dropout, Layer, ReLU, Sequential
from numbanet.optim import SGD, Adam
from numbanet.train import Callback, NonFiniteError, Trainer


def _data(n=50, d=6, classes=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.uniform(size=(n, d)).astype(dtype), rng.integers(0, classes, n)


def _mlp(d=6, classes=3, dtype="float64", dropout=0.0, seed=0):
    layers = [Dense(d, 8), ReLU()] + ([Dropout(dropout)] if dropout else []) + [Dense(8, classes)]
    return Sequential(layers, dtype=dtype, seed=seed)


def test_one_step_equals_a_float64_reference_that_updates_after_backprop():
    x, y = _data(n=10)
    model = _mlp()
    w1, b1, w2, b2 = (p.copy() for p in model.params)
    Trainer(model, SGD(0.5), batch_size=10, seed=0).fit(x, y, epochs=1)
    # Reference: every gradient from the pre-step weights, then one update each.
    h_in = x @ w1 + b1
    h = np.maximum(h_in, 0)
    logits = h @ w2 + b2
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    dlogits = (probs - np.eye(3)[y]) / len(y)
    dh = (dlogits @ w2.T) * (h_in > 0)  # through W2 *before* W2 is updated
    reference = [w1 - 0.5 * (x.T @ dh), b1 - 0.5 * dh.sum(0), w2 - 0.5 * (h.T @ dlogits), b2 - 0.5 * dlogits.sum(0)]
    for got, want in zip(model.params, reference):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


class SampleIds(Layer):
    """First layer that records which samples each batch held (feature 0 is the sample id)."""

    input_shape = (2,)

    def __init__(self):
        super().__init__()
        self.batches = []

    def forward(self, x, *, training):
        if training:
            self.batches.append(np.rint(x[:, 0] * 100).astype(int).tolist())
        return x

    def backward(self, dout):
        return dout


def test_batches_are_reshuffled_every_epoch_and_the_last_partial_batch_is_used():
    n = 23
    spy = SampleIds()
    model = Sequential([spy, Dense(2, 2)], dtype="float64")
    x_ids = np.stack([np.arange(n), np.zeros(n)], axis=1) / 100
    Trainer(model, SGD(0.1), batch_size=5, seed=3).fit(x_ids, np.zeros(n, dtype=np.int8), epochs=3)
    epochs = [spy.batches[i * 5:(i + 1) * 5] for i in range(3)]
    orders = []
    for batches in epochs:
        assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
        order = [i for b in batches for i in b]
        assert sorted(order) == list(range(n))
        orders.append(order)
    assert orders[0] != orders[1] != orders[2]
    assert orders[0] != list(range(n))


def _train(threads, seed=0, trainer_seed=1, epochs=2):
    x, y = _data(n=70, d=12, classes=4, dtype=np.float32)
    model = _mlp(d=12, classes=4, dtype="float32", dropout=0.3, seed=seed)
    trainer = Trainer(model, Adam(lr=1e-2), batch_size=16, seed=trainer_seed)
    run_with_threads(threads, trainer.fit, x, y, epochs=epochs)
    return [p.copy() for p in model.params] + trainer.optimizer.state["m"] + trainer.optimizer.state["v"]


def test_same_seeds_give_bit_identical_weights_for_one_and_two_threads():
    one = _train(threads=1)
    two = _train(threads=2)
    for a, b in zip(one, two):
        assert_bitwise_equal(a, b)
    other_shuffle = _train(threads=2, trainer_seed=2)
    assert not np.array_equal(one[0], other_shuffle[0])


def test_history_has_keras_keys_and_evaluate_predict_agree():
    x, y = _data(n=40)
    trainer = Trainer(_mlp(), Adam(lr=1e-2), batch_size=8, seed=0)
    history = trainer.fit(x, y, epochs=3, validation_data=(x[:10], y[:10]))
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "epoch_time"}
    assert all(len(values) == 3 for values in history.history.values())
    assert history.history["loss"][2] < history.history["loss"][0]
    metrics = trainer.evaluate(x[:10], y[:10])
    assert metrics == {"loss": history.history["val_loss"][-1], "accuracy": history.history["val_accuracy"][-1]}
    probs = trainer.predict(x[:10])
    assert probs.shape == (10, 3)
    assert metrics["accuracy"] == np.mean(probs.argmax(axis=1) == y[:10])


def test_a_tiny_mlp_learns_the_offline_mnist_sample():
    from numbanet.data import load_mnist_sample

    (x_train, y_train), (x_test, y_test) = load_mnist_sample()
    model = Sequential([Dense(784, 32), ReLU(), Dense(32, 10)], seed=0)
    trainer = Trainer(model, Adam(lr=3e-3), batch_size=64, seed=0)
    history = trainer.fit(x_train[::2], y_train[::2], epochs=3)  # every other digit: all classes
    assert history.history["accuracy"][-1] > 0.7
    assert trainer.evaluate(x_test, y_test)["accuracy"] > 0.7  # chance: 0.1


@pytest.mark.parametrize("kwargs, error, match", [
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"batch_size": 2.5}, ValueError, "batch_size"),
    ({"seed": -1}, ValueError, "seed"),
])
def test_trainer_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        Trainer(_mlp(), Adam(), **kwargs)


def test_fit_rejects_bad_data():
    trainer = Trainer(_mlp(), Adam())
    x, y = _data()
    with pytest.raises(ValueError, match="`y` must lie in"):
        trainer.fit(x, y + 3)
    with pytest.raises(TypeError, match="integer labels"):
        trainer.fit(x, y.astype(float))
    with pytest.raises(ValueError, match="one label per sample"):
        trainer.fit(x, y[:-1])
    with pytest.raises(ValueError, match="`x_val`"):
        trainer.fit(x, y, validation_data=(x[:, :3], y))
    with pytest.raises(ValueError, match="`epochs`"):
        trainer.fit(x, y, epochs=-1)
    with pytest.raises(TypeError, match="`model`"):
        Trainer("mlp", Adam())


def test_exploding_learning_rate_is_stopped_with_where_and_why():
    x, y = _data(n=64, dtype=np.float32)
    trainer = Trainer(_mlp(dtype="float32"), SGD(1e30), batch_size=16, seed=0)
    with pytest.raises(NonFiniteError) as caught:
        trainer.fit(x, y, epochs=5)
    error = caught.value
    message = str(error)
    assert f"epoch {error.epoch}, step {error.step}" in message
    assert error.op in message and "lr=1e+30" in message and "learning rate" in error.cause
    assert error.layer is not None and f"layer {error.layer}" in message


def test_guard_names_the_layer_and_op_of_an_overflow():
    x, y = _data(n=16, d=6, dtype=np.float32)
    x[:] = 1.0
    model = _mlp(dtype="float32")
    model.params[0][:] = 1.0  # layer 0 outputs 6.0 per unit
    model.params[2][:] = 1e37  # layer 2: 8 units × 6.0 × 1e37 = 4.8e38 > float32 max
    trainer = Trainer(model, Adam(), batch_size=16, seed=0)
    with pytest.raises(NonFiniteError) as caught:
        trainer.fit(x, y, epochs=1)
    error = caught.value
    assert (error.epoch, error.step, error.layer, error.op) == (1, 1, 2, "matmul")
    assert "overflowed the float32 range" in str(error) and "Dense(in_features=8" in str(error)


def test_guard_blames_the_update_for_non_finite_weights():
    x, y = _data(n=16)
    model = _mlp()
    model.params[0][0, 0] = np.nan
    with pytest.raises(NonFiniteError) as caught:
        Trainer(model, Adam(), batch_size=8, seed=0).fit(x, y)
    assert (caught.value.layer, caught.value.op) == (0, "adam_step")


def test_last_good_checkpoint_survives_a_non_finite_loss(tmp_path):
    x, y = _data(n=32, dtype=np.float32)
    path = tmp_path / "ckpt.npz"
    trainer = Trainer(_mlp(dtype="float32"), SGD(0.1), batch_size=8, seed=0)
    trainer.fit(x, y, epochs=1, checkpoint=path)
    good = path.read_bytes()
    trainer.optimizer.lr = 1e35
    with pytest.raises(NonFiniteError):
        trainer.fit(x, y, epochs=4, checkpoint=path)
    assert path.read_bytes() == good
    assert Trainer.from_checkpoint(path).epoch == 1


class AllocationProbe(Callback):
    """At each step end: the peak of traced memory since the previous step end, above the
    level there (so that garbage from earlier tests, freed by a collection within a step,
    does not count); and, at steps ``first`` and ``last``, the bytes held by NumPy arrays."""

    def __init__(self, steps, first, last):
        # Preallocated, so that recording allocates nothing itself.
        self.peak_above = np.zeros(steps, dtype=np.int64)
        self.level = np.zeros(1, dtype=np.int64)
        self.first, self.last = first, last
        self.array_bytes = {}

    def on_step_end(self, step, loss, batch_size):
        current, peak = tracemalloc.get_traced_memory()
        self.peak_above[step] = peak - self.level[0]
        self.level[0] = current
        if step in (self.first, self.last):
            arrays_only = [tracemalloc.DomainFilter(inclusive=True, domain=np.lib.tracemalloc_domain)]
            snapshot = tracemalloc.take_snapshot().filter_traces(arrays_only)
            self.array_bytes[step] = sum(stat.size for stat in snapshot.statistics("filename"))
        tracemalloc.reset_peak()


def _mnist_mlp():
    return Sequential([Dense(784, 256), ReLU(), Dropout(0.2), Dense(256, 10)], seed=0)


def _mnist_convnet():
    """The CLI's convnet (Keras' simple MNIST convnet), float32."""
    config = SimpleNamespace(model="convnet", dropout=0.5, dtype="float32", seed=0)
    return build_model(config, (28, 28))


def _steady_state_allocations(model=None, batch_size=128, steps=120):
    """(array bytes at step 19, at the last step, per-step peaks above current from step 20)
    training ``model`` (default: an MLP 784-256-10) on random 28 x 28 uint8 images of 10
    classes. At MNIST's shapes the parallel kernels (norm, Adam, products) run.
    """
    x, y = _data(n=batch_size * steps, d=28 * 28, classes=10, dtype=np.float32)
    x = (x * 255).astype(np.uint8).reshape(-1, 28, 28)  # the per-batch uint8 -> float scaling must not allocate either
    model = _mnist_mlp() if model is None else model
    trainer = Trainer(model, Adam(clip_norm=1.0), batch_size=batch_size, seed=0)
    trainer.fit(x, y, epochs=1)  # warm-up: kernels compiled, buffers allocated
    probe = AllocationProbe(steps=steps, first=19, last=steps - 1)
    tracemalloc.start()
    try:
        trainer.fit(x, y, epochs=2, callbacks=[probe])
    finally:
        tracemalloc.stop()
    peaks = np.delete(probe.peak_above, [19, 20, steps - 1])[20:]  # the snapshots allocate: skip their steps
    return probe.array_bytes[19], probe.array_bytes[steps - 1], peaks


def _allocation_free_ops(monkeypatch):
    """Replace every op a training step calls by a stand-in that allocates nothing."""
    zero, one = np.float64(0.0), np.float64(1.0)

    def passthrough(*args, out=None, grad_out=None, **kwargs):
        return out if grad_out is None else (zero, grad_out)

    for name in ("matmul", "bias_add", "bias_grad", "relu", "relu_backward", "dropout", "dropout_backward",
                 "softmax_cross_entropy", "gather_pixels"):
        monkeypatch.setattr(ops, name, passthrough)
    for name, value in (("accuracy", zero), ("global_norm", one), ("clip_grad_norm", one), ("all_finite", True),
                        ("adam_step", None)):
        monkeypatch.setattr(ops, name, lambda *args, value=value, **kwargs: value)


def test_trainer_and_layers_allocate_nothing_per_step(monkeypatch):
    """With the ops replaced by allocation-free stand-ins, what remains — batching, layers,
    loss, optimizer, guard, callbacks — allocates nothing per step.

    Net growth is checked on NumPy's array memory: the small Python objects a step
    creates and frees (ints, views) land in CPython's free lists, which tracemalloc
    counts as live until those lists are full.
    """
    _allocation_free_ops(monkeypatch)
    first, last, peaks = _steady_state_allocations()
    assert last == first, "array memory grows across steps"
    assert peaks.max() < 1024, f"a step allocated {peaks.max()} bytes at once"


@pytest.mark.parametrize("model", [_mnist_mlp, _mnist_convnet])
def test_training_steps_with_the_real_ops_allocate_nothing(model):
    first, last, peaks = _steady_state_allocations(model())
    assert last == first, "array memory grows across steps"
    assert peaks.max() < 1024, f"a step allocated {peaks.max()} bytes at once"


def test_warm_up_changes_nothing_a_run_depends_on():
    x, y = _data(n=40)
    warmed = Trainer(_mlp(dropout=0.2), Adam(), batch_size=8, seed=0)
    warmed.warm_up((37,))
    assert warmed.optimizer.iterations == 0
    cold = Trainer(_mlp(dropout=0.2), Adam(), batch_size=8, seed=0)
    warmed.fit(x, y, epochs=2)
    cold.fit(x, y, epochs=2)
    for a, b in zip(warmed.model.params + warmed.optimizer.state["v"], cold.model.params + cold.optimizer.state["v"]):
        assert_bitwise_equal(a, b)


def test_warm_up_runs_the_short_last_batches_of_the_datasets_it_is_given(monkeypatch):
    # A full batch of 128 images is gathered by the parallel kernel, a short last one by
    # the serial; unless warm_up runs the short batches too, a cold cache compiles their
    # kernels silently in mid-epoch.
    gathered, gather = [], ops.gather_pixels

    def recorded(x, index, **kwargs):
        gathered.append(len(index))
        return gather(x, index, **kwargs)

    monkeypatch.setattr(ops, "gather_pixels", recorded)
    trainer = Trainer(Sequential([Dense(784, 10)], dtype="float32"), Adam(), batch_size=128)
    trainer.warm_up()
    assert gathered == [128]
    gathered.clear()
    trainer.warm_up((4000, 10000, 256))
    assert gathered == [128, 32, 16]


def test_guard_reports_a_non_finite_input_batch():
    from numbanet.nn import SoftmaxCrossEntropy
    from numbanet.train.guard import diagnose

    model = _mlp()
    batch = np.full((4, 6), np.nan)
    error = diagnose(model, Adam(), SoftmaxCrossEntropy(), batch, np.zeros(4, dtype=np.intp),
                     epoch=2, step=5, grad_norm=float("nan"), last_norm=1.5)
    assert (error.epoch, error.step, error.layer, error.op) == (2, 5, None, "input")
    assert "epoch 2, step 5" in str(error) and "non-finite input" in error.cause
