"""Training: :class:`Trainer` (fit/evaluate/predict, checkpoints, Ctrl-C), the numerical
guard's :class:`NonFiniteError`, :class:`History` and fit callbacks."""

from .callbacks import Callback, ProgressBar
from .guard import NonFiniteError
from .history import History
from .trainer import Trainer

__all__ = ["Callback", "History", "NonFiniteError", "ProgressBar", "Trainer"]
