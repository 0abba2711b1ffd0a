"""The numerical guard: stop at the first non-finite loss or gradient and say where and why.

The training step checks two numbers it computes anyway — the loss and the global
gradient norm. When either is NaN or inf, :func:`diagnose` replays the step (the weights
are untouched: updates come after the whole backward pass) with every layer's ``watch``
hook listening, finds the first op whose result is non-finite and names the likely cause.
"""

import math

from numbanet import ops


class NonFiniteError(FloatingPointError):
    """Training met a NaN or inf.

    ``epoch`` and ``step`` count from 1; ``layer`` is the index of the layer in the model
    (None for the input or the loss), ``op`` the op whose result was the first non-finite
    value and ``cause`` the likely cause in plain words.
    """

    def __init__(self, message, *, epoch, step, layer, op, cause):
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.layer = layer
        self.op = op
        self.cause = cause


def _lr_advice(optimizer):
    advice = f"the learning rate (lr={optimizer.lr:g}) is likely too high: lower it"
    return advice + (" or set clip_norm" if optimizer.clip_norm is None else "")


def _norms_seen(grad_norm, last_norm):
    previous = "none" if last_norm is None else f"{last_norm:.4g}"
    return f"global gradient norm {grad_norm:.4g}, previous step {previous}"


def _first_nonfinite_weight(model):
    for i, layer in enumerate(model.layers):
        for name, value in layer.params.items():
            if not ops.all_finite(value):
                return i, name
    return None


def _first_nonfinite_op(model, batch, labels, loss_fn):
    """(phase, layer index, op) of the first non-finite result when the step is replayed."""
    found = []

    def listener(index):
        def watch(op, array):
            if not found and not ops.all_finite(array):
                found.append((index, op))
        return watch

    for i, layer in enumerate(model.layers):
        layer.watch = listener(i)
    try:
        logits = model.forward(batch, training=True)
        if found:
            return ("forward",) + found[0]
        loss, dlogits = loss_fn(logits, labels)
        if not (math.isfinite(loss) and ops.all_finite(dlogits)):
            return ("loss", None, "softmax_cross_entropy")
        model.backward(dlogits)
        return ("backward",) + found[0] if found else None
    finally:
        for layer in model.layers:
            del layer.watch


def diagnose(model, optimizer, loss_fn, batch, labels, *, epoch, step, grad_norm, last_norm):
    """The :class:`NonFiniteError` for failed step ``step`` of ``epoch`` (both from 1)."""
    where = f"epoch {epoch}, step {step}"
    seen = _norms_seen(grad_norm, last_norm)
    if not ops.all_finite(batch):
        cause = "non-finite input: the batch itself holds NaN or inf; check the data"
        return NonFiniteError(f"Non-finite input at {where}. Likely cause: {cause}",
                              epoch=epoch, step=step, layer=None, op="input", cause=cause)
    weight = _first_nonfinite_weight(model)
    if weight is not None:
        index, name = weight
        cause = f"the previous update made the weights non-finite ({seen}); {_lr_advice(optimizer)}"
        return NonFiniteError(
            f"Non-finite weights `{name}` of layer {index} {model.layers[index]!r} at {where}, written by "
            f"op `{optimizer.op_name}` in the previous update. Likely cause: {cause}",
            epoch=epoch, step=step, layer=index, op=optimizer.op_name, cause=cause)
    located = _first_nonfinite_op(model, batch, labels, loss_fn)
    if located is None:
        cause = f"a non-finite value that a replay of the step did not reproduce ({seen})"
        return NonFiniteError(f"Non-finite loss or gradient at {where}. Likely cause: {cause}",
                              epoch=epoch, step=step, layer=None, op=None, cause=cause)
    phase, index, op = located
    if phase == "backward":
        cause = f"exploding gradients ({seen}); {_lr_advice(optimizer)}"
    else:
        cause = (f"activations overflowed the {model.dtype.name} range because the weights grew too "
                 f"large ({seen}); {_lr_advice(optimizer)}")
    layer_text = "the loss" if index is None else f"layer {index} {model.layers[index]!r}"
    return NonFiniteError(
        f"Non-finite values at {where}: first in {layer_text}, op `{op}` ({phase}). Likely cause: {cause}",
        epoch=epoch, step=step, layer=index, op=op, cause=cause)


def check_weights_finite(model, optimizer, *, epoch, step, last_norm):
    """Raise :class:`NonFiniteError` if the update of step ``step`` left a weight non-finite."""
    weight = _first_nonfinite_weight(model)
    if weight is None:
        return
    index, name = weight
    previous = "none" if last_norm is None else f"{last_norm:.4g}"
    cause = f"the update made the weights non-finite (global gradient norm {previous}); {_lr_advice(optimizer)}"
    raise NonFiniteError(
        f"Non-finite weights `{name}` of layer {index} {model.layers[index]!r} after the update at "
        f"epoch {epoch}, step {step} (op `{optimizer.op_name}`). Likely cause: {cause}",
        epoch=epoch, step=step, layer=index, op=optimizer.op_name, cause=cause)
