"""IDX reading (numbanet.data.load_idx) and MNIST-layout directories (load_idx_dataset).

Files are built here byte by byte with struct, independently of the reader.
"""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from numbanet.data import IDXError, load_idx, load_idx_dataset

TYPE_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}
STRUCT_CODES = {0x08: "B", 0x09: "b", 0x0B: "h", 0x0C: "i", 0x0D: "f", 0x0E: "d"}

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def idx_bytes(array, *, magic=b"\x00\x00", type_code=None, dims=None, extra=b""):
    """The IDX encoding of ``array``; keyword arguments forge a broken header or tail."""
    array = np.asarray(array)
    type_code = TYPE_CODES[array.dtype] if type_code is None else type_code
    dims = array.shape if dims is None else dims
    header = magic + bytes([type_code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    code = STRUCT_CODES[TYPE_CODES[array.dtype]]
    values = array.ravel().tolist()
    return header + struct.pack(f">{len(values)}{code}", *values) + extra


def write(path, data, *, compress=False):
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


SAMPLES = [
    np.array([0, 1, 127, 128, 255], dtype=np.uint8),
    np.array([[-128, -1, 0], [1, 64, 127]], dtype=np.int8),
    np.array([-32768, -2, 0, 300, 32767], dtype=np.int16),
    np.array([[[-(2**31), -1]], [[7, 2**31 - 1]]], dtype=np.int32),
    np.array([-np.inf, -1.5, 0.0, 1e-45, 3.4e38, np.inf, np.nan], dtype=np.float32),
    np.array([[-1e308, 5e-324, 0.1], [np.pi, np.inf, np.nan]], dtype=np.float64),
]


@pytest.mark.parametrize("expected", SAMPLES, ids=lambda a: a.dtype.name)
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
def test_load_idx_reads_every_element_type(tmp_path, expected, compress):
    path = write(tmp_path / "data.idx", idx_bytes(expected), compress=compress)
    got = load_idx(path)
    assert got.dtype == expected.dtype
    assert got.dtype.isnative
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    assert got.flags.writeable


def test_load_idx_detects_gzip_by_content_not_name(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    unnamed_gz = write(tmp_path / "images-idx3-ubyte", idx_bytes(images), compress=True)
    plain_named_gz = write(tmp_path / "labels.gz", idx_bytes(images[0, 0]))
    np.testing.assert_array_equal(load_idx(unnamed_gz), images)
    np.testing.assert_array_equal(load_idx(plain_named_gz), images[0, 0])


@pytest.mark.parametrize("shape", [(0,), (0, 28, 28), (1,), (3, 1, 17), (1, 1, 1, 1, 2)])
def test_load_idx_shapes(tmp_path, shape):
    expected = (np.arange(np.prod(shape)) % 251).astype(np.uint8).reshape(shape)
    got = load_idx(write(tmp_path / "x.idx", idx_bytes(expected)))
    assert got.shape == shape
    np.testing.assert_array_equal(got, expected)


GOOD = np.arange(12, dtype=np.uint8).reshape(3, 4)

BROKEN = {
    "empty file": (b"", "too short"),
    "three bytes": (b"\x00\x00\x08", "too short"),
    "bad magic": (idx_bytes(GOOD, magic=b"\x00\x01"), "magic"),
    "text file": (b"P5\n28 28\n255\n" + bytes(784), "magic"),
    "unknown type 0x0A": (idx_bytes(GOOD, type_code=0x0A), "unknown element type 0x0A"),
    "unknown type 0x07": (idx_bytes(GOOD, type_code=0x07), "unknown element type 0x07"),
    "zero dims": (b"\x00\x00\x08\x00" + bytes(12), "0 dimensions"),
    "header cut in dims": (idx_bytes(GOOD)[:9], "header declares 2 dimensions"),
    "truncated data": (idx_bytes(GOOD)[:-1], "truncated"),
    "data missing": (idx_bytes(GOOD)[:12], "truncated"),
    "trailing bytes": (idx_bytes(GOOD, extra=b"\x00"), "trailing bytes"),
    "dims too small": (idx_bytes(GOOD, dims=(3, 3)), "trailing bytes"),
    "dims too large": (idx_bytes(GOOD, dims=(3, 5)), "truncated"),
    "dims overflow": (idx_bytes(GOOD, dims=(2**32 - 1, 2**32 - 1)), "truncated"),
    "wider type than data": (idx_bytes(GOOD, type_code=0x0C), "truncated"),
}


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("case", BROKEN, ids=str)
def test_load_idx_rejects_broken_files(tmp_path, case, compress):
    data, phrase = BROKEN[case]
    path = write(tmp_path / "broken-idx-file", data, compress=compress)
    with pytest.raises(IDXError, match=phrase) as info:
        load_idx(path)
    assert str(path) in str(info.value)


def test_idx_error_is_a_value_error():
    assert issubclass(IDXError, ValueError)


@pytest.mark.parametrize(
    "data, phrase",
    [
        (b"\x1f\x8b" + b"not deflate data at all", "corrupt or truncated gzip"),
        (gzip.compress(idx_bytes(GOOD))[:-6], "corrupt or truncated gzip"),
    ],
    ids=["garbage", "truncated"],
)
def test_load_idx_rejects_broken_gzip(tmp_path, data, phrase):
    path = write(tmp_path / "broken.gz", data)
    with pytest.raises(IDXError, match=phrase) as info:
        load_idx(path)
    assert str(path) in str(info.value)


def test_load_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_idx(tmp_path / "absent")


# ---- load_idx_dataset -------------------------------------------------------------------------


def make_dataset(directory, *, n_train=5, n_test=3, side=28, compress=(True, False, True, False)):
    """Four MNIST-layout files with random content; returns the arrays written."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for (name, array), gz in zip(arrays.items(), compress):
        write(directory / (name + ".gz" if gz else name), idx_bytes(array), compress=gz)
    return arrays


def assert_dataset_equal(loaded, arrays):
    (x_train, y_train), (x_test, y_test) = loaded
    for got, expected in zip((x_train, y_train, x_test, y_test), arrays.values()):
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("compress", [(False,) * 4, (True,) * 4, (True, False, False, True)])
def test_load_idx_dataset(tmp_path, compress):
    arrays = make_dataset(tmp_path, compress=compress)
    assert_dataset_equal(load_idx_dataset(str(tmp_path)), arrays)


def test_load_idx_dataset_prefers_the_plain_file(tmp_path):
    arrays = make_dataset(tmp_path, compress=(False,) * 4)
    stale = np.zeros((2, 28, 28), dtype=np.uint8)
    write(tmp_path / "train-images-idx3-ubyte.gz", idx_bytes(stale), compress=True)
    assert_dataset_equal(load_idx_dataset(tmp_path), arrays)


def test_load_idx_dataset_names_missing_files(tmp_path):
    make_dataset(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError) as info:
        load_idx_dataset(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message
    assert "lacks train-labels-idx1-ubyte, t10k-images-idx3-ubyte" in message
    assert "t10k-labels-idx1-ubyte[.gz]" in message


def test_load_idx_dataset_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_idx_dataset(tmp_path / "nowhere")


def test_load_idx_dataset_count_mismatch(tmp_path):
    make_dataset(tmp_path)
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(np.zeros(4, dtype=np.uint8)))
    with pytest.raises(IDXError, match="3 images .* but 4 labels"):
        load_idx_dataset(tmp_path)


@pytest.mark.parametrize(
    "name, array, phrase",
    [
        ("t10k-images-idx3-ubyte", np.zeros((3, 784), dtype=np.uint8), "images must be 3-D uint8"),
        ("t10k-images-idx3-ubyte", np.zeros((3, 28, 28), dtype=np.float32), "images must be 3-D uint8"),
        ("train-labels-idx1-ubyte", np.zeros((5, 1), dtype=np.uint8), "labels must be 1-D integers"),
        ("train-labels-idx1-ubyte", np.zeros(5, dtype=np.float64), "labels must be 1-D integers"),
        ("t10k-images-idx3-ubyte", np.zeros((3, 28, 27), dtype=np.uint8), r"\(28, 27\)"),
    ],
)
def test_load_idx_dataset_rejects_wrong_shapes(tmp_path, name, array, phrase):
    make_dataset(tmp_path, compress=(False,) * 4)
    write(tmp_path / name, idx_bytes(array))
    with pytest.raises(IDXError, match=phrase):
        load_idx_dataset(tmp_path)


def test_load_idx_dataset_accepts_int_labels(tmp_path):
    arrays = make_dataset(tmp_path, compress=(False,) * 4)
    labels = arrays["train-labels-idx1-ubyte"].astype(np.int32)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(labels))
    (_, y_train), _ = load_idx_dataset(tmp_path)
    assert y_train.dtype == np.int32
    np.testing.assert_array_equal(y_train, labels)


@pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist not installed")
def test_load_idx_dataset_reads_fashion_mnist():
    (x_train, y_train), (x_test, y_test) = load_idx_dataset(FASHION_MNIST)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == x_test.dtype == np.uint8
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert x_train.max() == 255 and x_train.min() == 0
