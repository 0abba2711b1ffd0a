"""Mini-batch training of a Sequential classifier: fit, evaluate, predict, checkpoints."""

import copy
import math
import numbers
import time
from dataclasses import asdict, dataclass

import numpy as np

from numbanet import ops
from numbanet.nn import Sequential, SoftmaxCrossEntropy
from numbanet.nn.inputs import as_class_labels, as_model_input
from numbanet.nn.layer import mix_seed
from numbanet.optim import Optimizer

from . import checkpoint as ckpt
from .callbacks import Callback
from .guard import check_weights_finite, diagnose
from .history import History
from .interrupt import StopRequest


@dataclass
class EpochTotals:
    """Running sums of the epoch in progress (kept in checkpoints for exact resumption)."""

    loss_sum: float = 0.0  # Σ batch mean loss × batch size
    correct: int = 0  # correctly classified training samples so far
    seen: int = 0  # training samples so far
    seconds: float = 0.0  # wall time spent in this epoch so far


def _check_int(name, value, *, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"`{name}` must be an integer >= {low}. Received: {name}={value!r}")
    return int(value)


class Trainer:
    """Trains ``model`` with ``optimizer`` on mini-batches of ``batch_size`` samples.

    The trainer's generator (seeded by ``seed``) reshuffles the training set every epoch
    and derives a dropout seed per step and layer, so the same seeds and data give
    bit-identical weights for any thread count. The loss is the fused softmax
    cross-entropy of the model's logits; each step runs forward, loss, the whole backward
    pass, gradient clipping and only then the update.
    """

    def __init__(self, model, optimizer, *, batch_size=128, seed=0):
        if not isinstance(model, Sequential):
            raise TypeError(f"`model` must be a numbanet.nn.Sequential. Received: {type(model).__name__}")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"`optimizer` must be a numbanet.optim optimizer. Received: {type(optimizer).__name__}")
        self.model = model
        self.optimizer = optimizer
        self.batch_size = _check_int("batch_size", batch_size, low=1)
        self.seed = _check_int("seed", seed, low=0)
        self.loss = SoftmaxCrossEntropy()
        optimizer.bind(model.params)
        self.rng = np.random.default_rng(self.seed)
        self.epoch = 0  # epochs completed
        self.step = 0  # batches completed in the current epoch
        self.history = History()
        self.n_samples = None  # training-set size of the epoch in progress
        self.last_grad_norm = None
        self._epoch_rng_state = self.rng.bit_generator.state
        self._totals = EpochTotals()
        self._batches = {}

    def fit(self, x, y, *, epochs=1, validation_data=None, checkpoint=None, callbacks=()):
        """Train until ``epochs`` epochs are complete in total and return the :class:`History`.

        Parameters
        ----------
        x : ndarray, uint8 or float32/float64 in [0, 1]
            Training images or feature rows, (N, 784), (N, 28, 28) or (N, 28, 28, 1) for
            an MNIST model; uint8 pixels are scaled by 1/255 batch by batch.
        y : ndarray of integers, (N,)
            Class labels.
        epochs : int
            Total epochs of the run: a trainer that has done k epochs (e.g. one restored
            from a checkpoint) runs epochs k+1..``epochs``, finishing a stopped epoch first.
        validation_data : (x_val, y_val), optional
            Evaluated at each epoch end (``val_loss``, ``val_accuracy``).
        checkpoint : str or os.PathLike, optional
            Written atomically at each epoch end and when Ctrl-C stops training.
        callbacks : sequence of Callback
            Hooks called at epoch begin/end, after each step and when ``fit`` returns.

        Raises
        ------
        NonFiniteError
            When the loss or the gradients become NaN or inf; the last checkpoint written
            stays as it was.

        Notes
        -----
        Ctrl-C (SIGINT) lets the step in progress finish, writes the checkpoint with the
        position inside the epoch and returns normally; a second Ctrl-C interrupts at once.
        """
        epochs = _check_int("epochs", epochs, low=0)
        x, y = self._prepare(x, y, "x", "y")
        validation = None
        if validation_data is not None:
            validation = self._prepare(*validation_data, "x_val", "y_val")
        if self.step and x.shape[0] != self.n_samples:
            raise ValueError(
                f"the run stopped in the middle of an epoch over {self.n_samples} samples; "
                f"resume it with the same training data. Received: {x.shape[0]} samples"
            )
        self.n_samples = x.shape[0]
        steps = math.ceil(self.n_samples / self.batch_size)
        callbacks = list(callbacks)
        for callback in callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(f"`callbacks` must hold Callback objects. Received: {type(callback).__name__}")
        stop = StopRequest()
        with stop:
            while self.epoch < epochs and not stop.requested:
                self._train_epoch(x, y, steps, stop, callbacks)
                if self.step < steps:
                    break
                self._end_epoch(validation, checkpoint, callbacks)
        if stop.requested and checkpoint is not None and self.step:
            self.save_checkpoint(checkpoint)
        for callback in callbacks:
            callback.on_fit_end(stop.requested)
        return self.history

    def evaluate(self, x, y):
        """Mean loss and accuracy on ``(x, y)``: ``{"loss": float, "accuracy": float}``."""
        return self._evaluate(*self._prepare(x, y, "x", "y"))

    def predict(self, x):
        """Class probabilities (N, n_classes) for ``x``."""
        return self.model.predict(x, batch_size=self.batch_size)

    def warm_up(self, sample_counts=()):
        """Run every op of a training step and an evaluation once, changing nothing.

        Numba compiles each kernel on first use (or loads it from its cache); calling
        this before timing or before the first step moves that wait here. Ops choose
        serial or parallel kernels by size, so a dataset's short last batch may need
        others: give the sizes of the datasets the run will see (``sample_counts``, e.g.
        training and test) and their short batches run too. Weights, optimizer state and
        the generator are left as they were.
        """
        short = {n % self.batch_size for n in sample_counts} - {0}
        for n in [self.batch_size, *sorted(short, reverse=True)]:
            self._run_batch_ops(n)
        self.optimizer.clip([self.model.grad_buffer])
        probe = copy.copy(self.optimizer)
        probe.bind(self.model.params)
        scratch = self.model.param_buffer.copy()
        probe.apply_buffers(scratch, self.model.grad_buffer)
        ops.all_finite(scratch)

    def _run_batch_ops(self, n):
        """The ops of a step and an evaluation whose kernels depend on the batch size, on
        ``n`` blank images; they fill the gradients, nothing else a run depends on."""
        labels = np.zeros(n, dtype=np.intp)
        batch = ops.gather_pixels(np.zeros((n,) + (self.model.input_shape or ()), dtype=np.uint8), labels,
                                  dtype=self.model.dtype)
        self.model.reseed(0)
        logits = self.model.forward(batch, training=True)
        ops.accuracy(logits, labels)
        _, dlogits = self.loss(logits, labels)
        self.model.backward(dlogits)
        ops.softmax(self.model.forward(batch, training=False))
        ops.cross_entropy(logits, labels)

    def save_checkpoint(self, path):
        """Write model, optimizer state, position and generator state to ``path`` (atomically)."""
        ckpt.save(path, self)

    @classmethod
    def from_checkpoint(cls, path):
        """The trainer saved at ``path``; its ``fit`` continues the run exactly."""
        return ckpt.load(path, cls)

    def _prepare(self, x, y, x_name, y_name):
        x = as_model_input(x, self.model.input_shape, self.model.dtype, name=x_name)
        n_classes = self.model.output_shape[0] if self.model.output_shape else None
        return x, as_class_labels(y, x.shape[0], n_classes, name=y_name)

    def _batch(self, x, index):
        """Gather samples ``index`` into a float batch buffer reused for each batch shape."""
        shape = index.shape + x.shape[1:]
        batch = self._batches.get(shape)
        if batch is None:
            if len(self._batches) >= 8:
                del self._batches[next(iter(self._batches))]
            batch = self._batches[shape] = np.empty(shape, dtype=self.model.dtype)
        if x.dtype == np.uint8:
            return ops.gather_pixels(x, index, out=batch)
        # mode="clip" lets np.take write straight into `out` (mode="raise" buffers a copy);
        # the indices are in range by construction.
        return np.take(x, index, axis=0, out=batch, mode="clip")

    def _train_epoch(self, x, y, steps, stop, callbacks):
        self.rng.bit_generator.state = self._epoch_rng_state
        order = self.rng.permutation(self.n_samples)
        # The epoch's labels in batch order, gathered once: each batch's labels are then a
        # slice (a NumPy gather per step costs 25 us with the caches cold from the step).
        shuffled_labels = y[order]
        epoch_seed = int(self.rng.integers(2**63))
        for callback in callbacks:
            callback.on_epoch_begin(self.epoch, steps, self.step)
        started = time.perf_counter()
        totals = self._totals
        for step in range(self.step, steps):
            batch_slice = slice(step * self.batch_size, (step + 1) * self.batch_size)
            batch, labels = self._batch(x, order[batch_slice]), shuffled_labels[batch_slice]
            self.model.reseed(mix_seed(epoch_seed, step))
            loss, accuracy = self._train_step(batch, labels, step)
            n = labels.shape[0]
            totals.loss_sum += float(loss) * n
            totals.correct += round(float(accuracy) * n)
            totals.seen += n
            self.step = step + 1
            try:
                for callback in callbacks:
                    callback.on_step_end(step, loss, n)
            except KeyboardInterrupt:
                stop.request()
            if stop.requested:
                break
        totals.seconds += time.perf_counter() - started

    def _train_step(self, batch, labels, step):
        model = self.model
        logits = model.forward(batch, training=True)
        loss, dlogits = self.loss(logits, labels)
        accuracy = ops.accuracy(logits, labels)
        model.backward(dlogits)
        grad_norm = self.optimizer.clip([model.grad_buffer])
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            raise diagnose(model, self.optimizer, self.loss, batch, labels, epoch=self.epoch + 1, step=step + 1,
                           grad_norm=grad_norm, last_norm=self.last_grad_norm)
        self.optimizer.apply_buffers(model.param_buffer, model.grad_buffer)
        self.last_grad_norm = float(grad_norm)
        return loss, accuracy

    def _end_epoch(self, validation, checkpoint, callbacks):
        check_weights_finite(self.model, self.optimizer, epoch=self.epoch + 1, step=self.step,
                             last_norm=self.last_grad_norm)
        totals = self._totals
        started = time.perf_counter()
        logs = {"loss": totals.loss_sum / totals.seen, "accuracy": totals.correct / totals.seen}
        if validation is not None:
            metrics = self._evaluate(*validation)
            logs.update(val_loss=metrics["loss"], val_accuracy=metrics["accuracy"])
        logs["epoch_time"] = totals.seconds + time.perf_counter() - started
        self.history.append(logs)
        self.epoch += 1
        self.step = 0
        self._epoch_rng_state = self.rng.bit_generator.state
        self._totals = EpochTotals()
        if checkpoint is not None:
            self.save_checkpoint(checkpoint)
        for callback in callbacks:
            callback.on_epoch_end(self.epoch - 1, logs)

    def _evaluate(self, x, y):
        loss_sum = 0.0
        correct = 0
        index = np.arange(x.shape[0])
        for start in range(0, x.shape[0], self.batch_size):
            batch, labels = self._batch(x, index[start:start + self.batch_size]), y[start:start + self.batch_size]
            logits = self.model.forward(batch, training=False)
            n = labels.shape[0]
            loss_sum += float(ops.cross_entropy(logits, labels)) * n
            correct += round(float(ops.accuracy(logits, labels)) * n)
        return {"loss": loss_sum / x.shape[0], "accuracy": correct / x.shape[0]}

    def run_state(self):
        """Everything but arrays that a checkpoint needs, as a JSON-serialisable dict.

        The generator state is the one at the start of the current epoch: resuming redraws
        the epoch's permutation and dropout seed from it, then skips the ``step`` batches done.
        """
        return {
            "batch_size": self.batch_size,
            "seed": self.seed,
            "epoch": self.epoch,
            "step": self.step,
            "n_samples": self.n_samples,
            "last_grad_norm": self.last_grad_norm,
            "epoch_rng_state": self._epoch_rng_state,
            "epoch_totals": asdict(self._totals),
            "history": self.history.history,
        }

    def restore_run_state(self, state):
        """Take up the run described by ``state`` (from :meth:`run_state`)."""
        self.epoch = state["epoch"]
        self.step = state["step"]
        self.n_samples = state["n_samples"]
        self.last_grad_norm = state["last_grad_norm"]
        self._epoch_rng_state = state["epoch_rng_state"]
        self.rng.bit_generator.state = self._epoch_rng_state
        self._totals = EpochTotals(**state["epoch_totals"])
        self.history = History(state["history"])

    def __repr__(self):
        return (f"Trainer({self.optimizer!r}, batch_size={self.batch_size}, seed={self.seed}, "
                f"epoch={self.epoch}, step={self.step})\n{self.model!r}")
