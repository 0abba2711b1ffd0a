"""Stochastic gradient descent with optional (heavy-ball) momentum."""

from numbanet import ops

from .optimizer import Optimizer, check_hyperparameter


class SGD(Optimizer):
    """v ← μ·v + g, θ ← θ − lr·v (PyTorch's heavy-ball form; plain SGD when μ = 0).

    With ``clip_norm`` the gradients are first scaled so that their global L2 norm is at
    most ``clip_norm``.
    """

    slots = ("velocity",)
    op_name = "sgd_step"

    def __init__(self, lr, momentum=0.0, clip_norm=None):
        super().__init__(lr, clip_norm)
        self.momentum = check_hyperparameter("momentum", momentum, low=0.0, high=1.0, high_open=True)

    def update(self, param, grad, velocity):
        ops.sgd_step(param, grad, velocity, lr=self.lr, momentum=self.momentum)

    def get_config(self):
        return {"lr": self.lr, "momentum": self.momentum, "clip_norm": self.clip_norm}
