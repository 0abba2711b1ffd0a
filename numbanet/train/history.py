"""Per-epoch metrics of a training run (Keras' ``History`` shape) and their files."""

import csv
import json

KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_time")


class History:
    """``history`` maps each metric to a list with one value per epoch.

    Keys: ``loss`` and ``accuracy`` (training, averaged over the epoch's batches),
    ``val_loss`` and ``val_accuracy`` (when validation data is given) and ``epoch_time``
    (seconds, validation included).
    """

    def __init__(self, history=None):
        self.history = {key: list(values) for key, values in (history or {}).items()}

    @property
    def epoch(self):
        """Epoch numbers (from 0) of the recorded epochs."""
        return list(range(len(self.history.get("loss", []))))

    def append(self, metrics):
        for key, value in metrics.items():
            self.history.setdefault(key, []).append(float(value))

    def to_json(self, path):
        with open(path, "w") as f:
            json.dump(self.history, f, indent=2)

    def to_csv(self, path):
        keys = [key for key in KEYS if key in self.history]
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["epoch"] + keys)
            for epoch in self.epoch:
                writer.writerow([epoch + 1] + [repr(self.history[key][epoch]) for key in keys])

    def plot(self, path):
        """Save loss and accuracy per epoch (training and validation) as an image.

        Draws on a bare ``Figure`` (Agg canvas), so pyplot's global backend is left alone.
        """
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        epochs = [e + 1 for e in self.epoch]
        fig = Figure(figsize=(10, 4))
        axes = fig.subplots(1, 2)
        for ax, metric in zip(axes, ("loss", "accuracy")):
            for key, label in ((metric, "train"), ("val_" + metric, "validation")):
                if key in self.history:
                    ax.plot(epochs, self.history[key], marker="o", label=label)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(metric)
            ax.grid(True, alpha=0.3)
            ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=100)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"
