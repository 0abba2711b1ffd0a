"""Checkpoint files: a whole training run's state in one ``.npz``, written atomically.

Entries: ``format``; ``model.architecture`` (JSON) and ``model.layer<i>.<name>`` weights;
``optimizer`` (JSON: class, hyper-parameters, iteration count) and
``optimizer.<slot>.<i>`` state arrays (Adam's moments, SGD's velocities); ``trainer``
(JSON: batch size, seed, epochs done, batches done in the current epoch, the generator
state at the start of that epoch, the epoch's running sums and the history so far).
Nothing is pickled: loading uses ``allow_pickle=False``.
"""

import numpy as np

from numbanet.nn import Sequential
from numbanet.nn.io import json_array, load_npz, read_json, save_npz_atomic
from numbanet.optim import Optimizer

CHECKPOINT_FORMAT = "numbanet.checkpoint/1"


def save(path, trainer):
    """Write ``trainer``'s complete state to ``path``."""
    optimizer = trainer.optimizer
    arrays = {
        "format": np.array(CHECKPOINT_FORMAT),
        **trainer.model.state_arrays(prefix="model."),
        "optimizer": json_array({"class": type(optimizer).__name__, "config": optimizer.get_config(),
                                 "iterations": optimizer.iterations}),
        **optimizer.state_arrays(prefix="optimizer."),
        "trainer": json_array(trainer.run_state()),
    }
    save_npz_atomic(path, arrays)


def load(path, trainer_class):
    """A ``trainer_class`` instance restored from the checkpoint at ``path``."""
    arrays = load_npz(path)
    if "format" not in arrays or str(arrays["format"]) != CHECKPOINT_FORMAT:
        raise ValueError(f"{str(path)!r} is not a numbanet checkpoint (format {CHECKPOINT_FORMAT})")
    model = Sequential.from_state_arrays(arrays, path, prefix="model.")
    spec = read_json(arrays, "optimizer", path)
    optimizer_class = Optimizer.registry.get(spec["class"])
    if optimizer_class is None:
        raise ValueError(f"{str(path)!r}: unknown optimizer class {spec['class']!r}")
    optimizer = optimizer_class(**spec["config"])
    state = read_json(arrays, "trainer", path)
    trainer = trainer_class(model, optimizer, batch_size=state["batch_size"], seed=state["seed"])
    optimizer.load_state_arrays(arrays, spec["iterations"], prefix="optimizer.")
    trainer.restore_run_state(state)
    return trainer
