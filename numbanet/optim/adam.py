"""Adam with bias-corrected moments and ε outside the square root."""

from numbanet import ops

from .optimizer import Optimizer, check_hyperparameter


class Adam(Optimizer):
    """θ ← θ − lr·m̂/(√v̂ + ε), m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ) (PyTorch/optax placement of ε).

    m and v are the running first and second moments of the gradient. With ``clip_norm``
    the gradients are first scaled so that their global L2 norm is at most ``clip_norm``.
    """

    slots = ("m", "v")
    op_name = "adam_step"

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-7, clip_norm=None):
        super().__init__(lr, clip_norm)
        self.beta1 = check_hyperparameter("beta1", beta1, low=0.0, high=1.0, high_open=True)
        self.beta2 = check_hyperparameter("beta2", beta2, low=0.0, high=1.0, high_open=True)
        self.eps = check_hyperparameter("eps", eps, low=0.0, low_open=True)

    def update(self, param, grad, m, v):
        ops.adam_step(param, grad, m, v, self.iterations, lr=self.lr, beta1=self.beta1, beta2=self.beta2, eps=self.eps)

    def get_config(self):
        return {"lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps, "clip_norm": self.clip_norm}
