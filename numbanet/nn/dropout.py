"""Inverted dropout whose mask is a pure function of (seed, element index)."""

import numbers

from numbanet import ops

from .layer import Layer


class Dropout(Layer):
    """Training: y = x·m/(1 − rate) with m ~ Bernoulli(1 − rate); inference: y = x.

    The mask is never stored: ``dropout_backward`` recomputes it from the same seed, a
    counter-based hash of (seed, element index), so masks do not depend on the thread
    count. ``Sequential.reseed`` hands each Dropout layer its own seed per step.
    """

    def __init__(self, rate):
        super().__init__()
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0.0 <= rate < 1.0:
            raise ValueError(f"`rate` must be a number in [0, 1). Received: rate={rate!r}")
        self.rate = float(rate)
        self.seed = 0
        self._active = False

    def reseed(self, seed):
        self.seed = seed

    def forward(self, x, *, training):
        self._active = training and self.rate > 0.0
        if not self._active:
            return x
        out = ops.dropout(x, self.rate, seed=self.seed, out=self.buffer("out", x.shape))
        self.watch("dropout", out)
        return out

    def backward(self, dout):
        if not self._active:
            return dout
        dx = ops.dropout_backward(dout, self.rate, seed=self.seed, out=self.buffer("dx", dout.shape))
        self.watch("dropout_backward", dx)
        return dx

    def get_config(self):
        return {"rate": self.rate}
