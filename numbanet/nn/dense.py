"""Fully connected layer: y = x W + b."""

import numpy as np

from numbanet import ops

from .layer import Layer

INITIALIZERS = ("glorot_uniform", "he_normal")
ACTIVATIONS = (None, "relu")


class Dense(Layer):
    """y = x W + b for x (N, in_features), W (in_features, out_features), b (out_features,);
    with ``activation="relu"``, y = max(x W + b, 0).

    Backward: dW = xᵀ dz and dx = dz Wᵀ through ``matmul``'s transpose flags (no
    transposed copies), db = column sums of dz, where dz = dy, or with the ReLU dy
    masked by y > 0. The ReLU rides on the bias passes (``bias_relu`` and
    ``bias_relu_backward``): the same bits as a ``ReLU`` layer after the ``Dense``,
    two passes over the activations fewer. ``init`` is ``"glorot_uniform"`` (Keras'
    default) or ``"he_normal"`` (suits ReLU); the bias starts at zero.
    """

    def __init__(self, in_features, out_features, *, init="glorot_uniform", activation=None):
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
        if init not in INITIALIZERS:
            raise ValueError(f"`init` must be one of {', '.join(INITIALIZERS)}. Received: init={init!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"`activation` must be None or 'relu'. Received: activation={activation!r}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.init = init
        self.activation = activation
        self.input_shape = (self.in_features,)
        self._x = None
        self._y = None

    def build(self, dtype, rng):
        super().build(dtype, rng)
        initializer = getattr(ops, self.init)
        self.add_param("kernel", initializer((self.in_features, self.out_features), rng=rng, dtype=self.dtype))
        self.add_param("bias", np.zeros(self.out_features, dtype=self.dtype))

    def output_shape(self, input_shape):
        if input_shape is not None and tuple(input_shape) != self.input_shape:
            raise ValueError(
                f"{self!r} needs inputs of shape (N, {self.in_features}). "
                f"Received: per-sample shape {tuple(input_shape)}"
            )
        return (self.out_features,)

    def forward(self, x, *, training):
        self._x = x
        out = self.buffer("out", (x.shape[0], self.out_features))
        self.watch("matmul", ops.matmul(x, self.params["kernel"], out=out))
        if self.activation == "relu":
            self.watch("bias_relu", ops.bias_relu(out, self.params["bias"], out=out))
        else:
            self.watch("bias_add", ops.bias_add(out, self.params["bias"], out=out))
        self._y = out
        return out

    def backward(self, dout):
        x = self._x
        if self.activation == "relu":
            dz = self.buffer("dz", dout.shape)
            ops.bias_relu_backward(dout, self._y, out=dz, bias_out=self.grads["bias"])
            self.watch("bias_relu_backward", dz)
            self.watch("bias_relu_backward", self.grads["bias"])
        else:
            dz = dout
            self.watch("bias_grad", ops.bias_grad(dz, out=self.grads["bias"]))
        self.watch("matmul", ops.matmul(x, dz, trans_a=True, out=self.grads["kernel"]))
        if not self.needs_input_grad:
            return None
        dx = self.buffer("dx", x.shape)
        self.watch("matmul", ops.matmul(dz, self.params["kernel"], trans_b=True, out=dx))
        return dx

    def get_config(self):
        config = {"in_features": self.in_features, "out_features": self.out_features, "init": self.init}
        if self.activation is not None:
            config["activation"] = self.activation
        return config
