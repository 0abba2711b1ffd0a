"""An image-classification dataset stored as four IDX files, the MNIST layout.

Every loader returns ``(x_train, y_train), (x_test, y_test)``: uint8 images (N, H, W) and integer
labels (N,), like ``keras.datasets.mnist.load_data``.
"""

import os
from pathlib import Path

import numpy as np

from .idx import IDXError, load_idx

__all__ = ["IDX_DATASET_FILES", "load_idx_dataset", "load_idx_files"]

IDX_DATASET_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def load_idx_dataset(directory):
    """Load MNIST-layout IDX files from one directory (MNIST, Fashion-MNIST, KMNIST, ...).

    Each of the four ``IDX_DATASET_FILES`` may be stored plain or with a ``.gz`` suffix; when both
    exist the plain file is read.

    Parameters
    ----------
    directory : str or os.PathLike
        E.g. ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``).

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        uint8 images (N, H, W) and integer labels (N,).

    Raises
    ------
    FileNotFoundError
        The directory does not exist or lacks some of the files; the message lists the names
        looked for.
    IDXError
        A file is malformed, or images and labels do not fit together.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"IDX dataset directory {str(directory)!r} does not exist")
    found = {name: _find_plain_or_gz(directory, name) for name in IDX_DATASET_FILES}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        wanted = ", ".join(f"{name}[.gz]" for name in IDX_DATASET_FILES)
        raise FileNotFoundError(
            f"IDX dataset directory {str(directory)!r} lacks {', '.join(missing)} "
            f"(each plain or .gz). Expected the four files {wanted}."
        )
    return load_idx_files(*found.values())


def load_idx_files(train_images, train_labels, test_images, test_labels):
    """Load and cross-check four IDX files: images (N, H, W) uint8, labels (N,) integer.

    Parameters
    ----------
    train_images, train_labels, test_images, test_labels : str or os.PathLike

    Returns
    -------
    (x_train, y_train), (x_test, y_test)

    Raises
    ------
    IDXError
        A file is malformed, images are not 3-D uint8, labels not 1-D integer, the counts of an
        image/label pair differ, or train and test images differ in size.
    """
    x_train, y_train = _image_label_pair(train_images, train_labels)
    x_test, y_test = _image_label_pair(test_images, test_labels)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise IDXError(
            f"train images {os.fspath(train_images)!r} are {x_train.shape[1:]} but test images "
            f"{os.fspath(test_images)!r} are {x_test.shape[1:]}"
        )
    return (x_train, y_train), (x_test, y_test)


def _find_plain_or_gz(directory, name):
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _image_label_pair(images_path, labels_path):
    images, labels = load_idx(images_path), load_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise IDXError(
            f"IDX file {os.fspath(images_path)!r}: images must be 3-D uint8 (N, H, W). "
            f"Received: shape={images.shape}, dtype={images.dtype}"
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise IDXError(
            f"IDX file {os.fspath(labels_path)!r}: labels must be 1-D integers (N,). "
            f"Received: shape={labels.shape}, dtype={labels.dtype}"
        )
    if len(images) != len(labels):
        raise IDXError(
            f"{len(images)} images in {os.fspath(images_path)!r} but {len(labels)} labels in "
            f"{os.fspath(labels_path)!r}"
        )
    return images, labels
