"""Hooks into ``Trainer.fit``, and the progress bar the command line shows."""

import time


class Callback:
    """Override any of these; ``fit`` calls them in order. Epochs and steps count from 0.

    Raising KeyboardInterrupt from ``on_step_end`` stops training like Ctrl-C does: the
    step is complete, so the checkpoint is written and ``fit`` returns.
    """

    def on_epoch_begin(self, epoch, steps, first_step):
        """Epoch ``epoch`` with ``steps`` batches begins (at ``first_step`` when resumed)."""

    def on_step_end(self, step, loss, batch_size):
        """Batch ``step`` of ``batch_size`` samples was trained; ``loss`` is its mean loss."""

    def on_epoch_end(self, epoch, logs):
        """Epoch ``epoch`` ended; ``logs`` holds its metrics (History keys)."""

    def on_fit_end(self, stopped):
        """``fit`` returns; ``stopped`` is True when Ctrl-C (or a callback) cut it short."""


class ProgressBar(Callback):
    """A tqdm bar per epoch (steps, running loss, samples/s) and a one-line epoch summary."""

    def __init__(self, epochs, *, file=None, refresh_seconds=0.2):
        self.epochs = epochs
        self.file = file
        self.refresh_seconds = refresh_seconds
        self._bar = None

    def on_epoch_begin(self, epoch, steps, first_step):
        from tqdm.auto import tqdm

        self._bar = tqdm(total=steps, initial=first_step, desc=f"epoch {epoch + 1}/{self.epochs}",
                         unit="step", leave=False, file=self.file, dynamic_ncols=True)
        self._loss_sum = 0.0
        self._samples = 0
        self._started = self._shown = time.perf_counter()

    def on_step_end(self, step, loss, batch_size):
        self._loss_sum += float(loss) * batch_size
        self._samples += batch_size
        self._bar.update(1)
        now = time.perf_counter()
        if now - self._shown >= self.refresh_seconds:
            self._shown = now
            rate = self._samples / max(now - self._started, 1e-9)
            self._bar.set_postfix_str(f"loss={self._loss_sum / self._samples:.4f} {rate:,.0f} samples/s",
                                      refresh=False)

    def on_epoch_end(self, epoch, logs):
        self._bar.close()
        parts = [f"epoch {epoch + 1}/{self.epochs}", f"loss {logs['loss']:.4f}", f"accuracy {logs['accuracy']:.4f}"]
        if "val_loss" in logs:
            parts += [f"val_loss {logs['val_loss']:.4f}", f"val_accuracy {logs['val_accuracy']:.4f}"]
        parts.append(f"{logs['epoch_time']:.2f} s")
        self._bar.write(" - ".join(parts), file=self.file)

    def on_fit_end(self, stopped):
        if self._bar is not None:
            self._bar.close()
