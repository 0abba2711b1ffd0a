"""Optimizers over numbanet's update ops: :class:`Adam` and :class:`SGD`."""

from .adam import Adam
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Adam", "Optimizer", "SGD"]
