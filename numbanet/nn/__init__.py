"""Layers and models over numbanet's ops.

``Sequential([Dense(784, 256), ReLU(), Dropout(0.2), Dense(256, 10)], dtype="float32", seed=0)``
builds an MLP whose last layer emits logits. Every layer follows the contract described in
:mod:`numbanet.nn.layer`; subclass :class:`Layer` to add your own.
"""

from .activations import ReLU, Sigmoid
from .conv import Conv2D, Flatten, MaxPool2D
from .dense import Dense
from .dropout import Dropout
from .layer import Layer
from .losses import SoftmaxCrossEntropy
from .sequential import Sequential

__all__ = [
    "Conv2D", "Dense", "Dropout", "Flatten", "Layer", "MaxPool2D", "ReLU", "Sequential", "Sigmoid",
    "SoftmaxCrossEntropy",
]
