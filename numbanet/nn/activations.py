"""Element-wise activations: ReLU and Sigmoid (any input shape (N, ...))."""

from numbanet import ops

from .layer import Layer


class ReLU(Layer):
    """y = max(x, 0); backward dx = dy where x > 0, else 0 (keeps x for it)."""

    def __init__(self):
        super().__init__()
        self._x = None

    def forward(self, x, *, training):
        self._x = x
        out = ops.relu(x, out=self.buffer("out", x.shape))
        self.watch("relu", out)
        return out

    def backward(self, dout):
        dx = ops.relu_backward(dout, self._x, out=self.buffer("dx", dout.shape))
        self.watch("relu_backward", dx)
        return dx


class Sigmoid(Layer):
    """y = 1 / (1 + exp(-x)); backward dx = dy·y·(1 − y) from the kept output y."""

    def __init__(self):
        super().__init__()
        self._y = None

    def forward(self, x, *, training):
        self._y = ops.sigmoid(x, out=self.buffer("out", x.shape))
        self.watch("sigmoid", self._y)
        return self._y

    def backward(self, dout):
        dx = ops.sigmoid_backward(dout, self._y, out=self.buffer("dx", dout.shape))
        self.watch("sigmoid_backward", dx)
        return dx
