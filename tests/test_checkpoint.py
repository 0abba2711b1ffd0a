"""Checkpoints: contents, exact resumption after epochs, Ctrl-C and SIGINT mid-epoch."""

import json
import os
import signal

import numpy as np
import pytest

from helpers import assert_bitwise_equal
from numbanet.nn import Dense, Dropout, Layer, ReLU, Sequential
from numbanet.optim import SGD, Adam
from numbanet.train import Callback, Trainer


def _data():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (75, 4, 4), dtype=np.uint8)  # uint8 images, scaled per batch
    return x, rng.integers(0, 3, 75), x[:20], rng.integers(0, 3, 20)


def _trainer(first_layers=(), optimizer=None):
    layers = list(first_layers) + [Dense(16, 12), ReLU(), Dropout(0.3), Dense(12, 3)]
    model = Sequential(layers, dtype="float32", seed=1)
    return Trainer(model, optimizer or Adam(lr=1e-2), batch_size=8, seed=2)


def _fit(trainer, epochs, **kwargs):
    x, y, x_val, y_val = _data()
    return trainer.fit(x, y, epochs=epochs, validation_data=(x_val, y_val), **kwargs)


def assert_same_run(a, b):
    """Same weights, optimizer state, position, generator and history (timings aside)."""
    for p, q in zip(a.model.params, b.model.params):
        assert_bitwise_equal(p, q)
    for slot in a.optimizer.state:
        for p, q in zip(a.optimizer.state[slot], b.optimizer.state[slot]):
            assert_bitwise_equal(p, q)
    assert a.optimizer.iterations == b.optimizer.iterations
    assert (a.epoch, a.step) == (b.epoch, b.step)
    assert a.rng.bit_generator.state == b.rng.bit_generator.state
    history_a, history_b = dict(a.history.history), dict(b.history.history)
    assert len(history_a.pop("epoch_time")) == len(history_b.pop("epoch_time"))
    assert history_a == history_b


@pytest.fixture(scope="module")
def uninterrupted():
    trainer = _trainer()
    _fit(trainer, epochs=4)
    return trainer


def test_checkpoint_holds_everything_without_pickle(tmp_path):
    path = tmp_path / "ckpt.npz"
    trainer = _trainer()
    _fit(trainer, epochs=1, checkpoint=path)
    with np.load(path, allow_pickle=False) as data:
        names = set(data.files)
        state = json.loads(str(data["trainer"]))
        optimizer = json.loads(str(data["optimizer"]))
    assert {"format", "model.architecture", "model.layer0.kernel", "model.layer3.bias", "optimizer",
            "optimizer.m.0", "optimizer.v.3", "trainer"} <= names
    assert (state["epoch"], state["step"], state["batch_size"], state["seed"]) == (1, 0, 8, 2)
    assert state["epoch_rng_state"]["bit_generator"] == "PCG64"
    assert optimizer == {"class": "Adam", "iterations": 10, "config": trainer.optimizer.get_config()}
    assert os.listdir(tmp_path) == ["ckpt.npz"]  # no temporary file left behind


def test_resuming_after_whole_epochs_is_bit_identical(tmp_path, uninterrupted):
    path = tmp_path / "ckpt.npz"
    _fit(_trainer(), epochs=2, checkpoint=path)
    resumed = Trainer.from_checkpoint(path)
    assert (resumed.epoch, resumed.step) == (2, 0)
    history = _fit(resumed, epochs=4, checkpoint=path)
    assert len(history.history["loss"]) == 4
    assert_same_run(resumed, uninterrupted)
    assert_same_run(Trainer.from_checkpoint(path), uninterrupted)


class InterruptAt(Callback):
    """Raises KeyboardInterrupt after global step ``at`` (counting across epochs)."""

    def __init__(self, at):
        self.at, self.seen = at, 0

    def on_step_end(self, step, loss, batch_size):
        self.seen += 1
        if self.seen == self.at:
            raise KeyboardInterrupt


def test_ctrl_c_from_a_callback_checkpoints_mid_epoch_and_resumes_exactly(tmp_path, uninterrupted):
    path = tmp_path / "ckpt.npz"
    stopped = _trainer()
    _fit(stopped, epochs=4, checkpoint=path, callbacks=[InterruptAt(13)])  # epoch 2, step 3 of 10
    assert (stopped.epoch, stopped.step) == (1, 3)
    resumed = Trainer.from_checkpoint(path)
    assert (resumed.epoch, resumed.step) == (1, 3)
    _fit(resumed, epochs=4, checkpoint=path)
    assert_same_run(resumed, uninterrupted)


class SigintDuringForward(Layer):
    """Identity first layer that sends SIGINT to this process in its ``at``-th training forward."""

    input_shape = (4, 4)

    def __init__(self, at):
        super().__init__()
        self.at, self.calls = at, 0

    def forward(self, x, *, training):
        self.calls += training
        if training and self.calls == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout

    def output_shape(self, input_shape):
        return (16,)

    def get_config(self):
        return {"at": self.at}


def test_sigint_finishes_the_current_step_then_checkpoints_and_returns(tmp_path):
    path = tmp_path / "ckpt.npz"
    before = signal.getsignal(signal.SIGINT)
    reference = _trainer(first_layers=[SigintDuringForward(at=10**9)])
    _fit(reference, epochs=3)
    stopped = _trainer(first_layers=[SigintDuringForward(at=17)])
    _fit(stopped, epochs=3, checkpoint=path)  # returns normally: no KeyboardInterrupt
    assert signal.getsignal(signal.SIGINT) is before
    assert (stopped.epoch, stopped.step) == (1, 7)  # the 17th step completed, update included
    assert stopped.optimizer.iterations == 17
    resumed = Trainer.from_checkpoint(path)
    resumed.model.layers[0].at = 10**9
    _fit(resumed, epochs=3)
    assert_same_run(resumed, reference)


def test_resuming_mid_epoch_needs_the_same_training_set(tmp_path):
    path = tmp_path / "ckpt.npz"
    _fit(_trainer(optimizer=SGD(0.1, momentum=0.9)), epochs=2, checkpoint=path, callbacks=[InterruptAt(4)])
    resumed = Trainer.from_checkpoint(path)
    assert isinstance(resumed.optimizer, SGD) and resumed.optimizer.momentum == 0.9
    x, y, _, _ = _data()
    with pytest.raises(ValueError, match="same training data"):
        resumed.fit(x[:40], y[:40], epochs=2)


def test_from_checkpoint_rejects_other_files(tmp_path):
    _trainer().model.save(tmp_path / "model.npz")
    with pytest.raises(ValueError, match="not a numbanet checkpoint"):
        Trainer.from_checkpoint(tmp_path / "model.npz")
