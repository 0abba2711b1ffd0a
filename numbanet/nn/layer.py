"""The contract every numbanet layer follows, and the buffers a layer reuses.

A layer maps a batch ``x`` of shape (N, ...) to an output of shape (N, ...):

- ``build(dtype, rng)`` creates the parameters with ``add_param``; ``Sequential`` calls
  it once.
- ``forward(x, *, training)`` returns the output and keeps what ``backward`` needs.
- ``backward(dout)`` takes dL/d(output) for the last training forward, writes dL/dθ into
  ``grads`` and returns dL/dx (``None`` when ``needs_input_grad`` is False, as for a
  model's first layer, which nothing upstream needs a gradient from).
- ``params`` and ``grads`` are dicts name -> array with matching keys and shapes; the
  optimizer updates ``params`` in place after the whole backward pass, so a layer's
  backward always sees the weights its forward used.
- ``input_shape`` is the per-sample shape the layer accepts (None: any), and
  ``output_shape(input_shape)`` the per-sample shape it returns; ``Sequential`` chains
  them to reject mismatched layers when the model is built.
- ``get_config()`` returns the constructor arguments (JSON-serialisable) for save/load.
- ``reseed(seed)`` gives stochastic layers their seed for the next step.
- ``watch(op, array)`` is called with each op's result; it does nothing unless the
  numerical guard is replaying a failed step to find the first non-finite value.

Outputs and input gradients live in buffers the layer owns and reuses across steps (one
per batch size), so they are valid until the layer's next forward or backward, and a
training step allocates nothing once every batch size has been seen. Every subclass is
registered by class name, which is how ``Sequential.load`` finds it again.
"""

import numpy as np

MASK64 = (1 << 64) - 1


def mix_seed(seed, index):
    """A 63-bit seed for stream ``index`` of ``seed`` (splitmix64 finaliser).

    Derived seeds depend only on (seed, index), never on thread count or call order.
    """
    z = (seed + (index + 1) * 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return (z ^ (z >> 31)) >> 1


class Layer:
    """Base class of numbanet layers; see the module docstring for the contract."""

    registry = {}
    needs_input_grad = True
    input_shape = None
    # Buffers kept per layer: enough for the training, last-partial and evaluation batch
    # sizes of a run; the oldest goes first when more sizes come along.
    max_buffers = 16

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        Layer.registry[cls.__name__] = cls

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.dtype = None
        self._buffers = {}

    def build(self, dtype, rng):
        """Create the parameters in ``dtype`` drawing from the generator ``rng``."""
        self.dtype = np.dtype(dtype)

    def forward(self, x, *, training):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    def output_shape(self, input_shape):
        """Per-sample output shape for a per-sample ``input_shape`` (None: unknown)."""
        return input_shape

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def reseed(self, seed):
        """Take the seed of the next step (stochastic layers only)."""

    def watch(self, op, array):
        """Hook called with each op's result; the numerical guard listens here."""

    def buffer(self, name, shape):
        """A reusable uninitialised array of ``shape`` in the layer's dtype."""
        key = (name, shape)
        array = self._buffers.get(key)
        if array is None:
            if len(self._buffers) >= self.max_buffers:
                del self._buffers[next(iter(self._buffers))]
            array = self._buffers[key] = np.empty(shape, dtype=self.dtype)
        return array

    def add_param(self, name, value):
        """Register parameter ``name`` (converted to the layer's dtype) and its gradient buffer."""
        self.params[name] = np.ascontiguousarray(value, dtype=self.dtype)
        self.grads[name] = np.zeros_like(self.params[name])

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
