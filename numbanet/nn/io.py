"""Atomic ``.npz`` files without pickle: arrays plus JSON documents stored as strings."""

import json
import os
import tempfile

import numpy as np


def save_npz_atomic(path, arrays):
    """Write ``arrays`` (name -> array) to ``path`` so that it is never left half-written.

    The file is written to a temporary file in the same directory, flushed to disk and
    renamed over ``path`` (``os.replace`` is atomic on POSIX and Windows), so a crash or
    Ctrl-C leaves either the old file or the new one.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load_npz(path):
    """All arrays of the ``.npz`` at ``path`` as a dict (pickled objects are refused)."""
    with np.load(os.fspath(path), allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def json_array(document):
    """``document`` as a 0-d unicode array (how JSON travels inside an ``.npz``)."""
    return np.array(json.dumps(document))


def read_json(arrays, name, path):
    """The JSON document stored under ``name``, with a clear error when it is missing."""
    if name not in arrays:
        raise ValueError(f"{os.fspath(path)!r} is not a numbanet file: it has no {name!r} entry")
    return json.loads(str(arrays[name]))
