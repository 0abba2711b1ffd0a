"""MNIST lookup, verification and download (numbanet.data.load_mnist).

Nothing here touches the network: the mirrors are threaded HTTP servers on 127.0.0.1 serving small
IDX files written by the tests, and the checksum table is patched to those files' hashes.
"""

import hashlib
import http.server
import shutil
import socket
import threading
import urllib.request

import numpy as np
import pytest

from numbanet.data import MNISTUnavailable, cache, load_mnist
from numbanet.data import mnist
from test_idx import make_dataset

TIMEOUT = 2.0


class Mirror:
    """An HTTP server on 127.0.0.1 serving ``directory`` under /mnist/ and recording each GET."""

    def __init__(self, directory):
        requests = self.requests = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(directory), **kwargs)

            def do_GET(self):
                requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/mnist/"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def start_mirror():
    mirrors = []

    def start(directory):
        mirrors.append(Mirror(directory))
        return mirrors[-1]

    yield start
    for mirror in mirrors:
        mirror.close()


@pytest.fixture
def dead_url():
    """A local URL where nothing listens: connection refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


@pytest.fixture
def silent_mirror():
    """A local socket that lets clients connect (kernel backlog) but never answers; yields
    (url, count) where count() drains and counts the connections made so far."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    s.setblocking(False)

    def count():
        connections = 0
        while True:
            try:
                s.accept()[0].close()
            except BlockingIOError:
                return connections
            connections += 1

    yield f"http://127.0.0.1:{s.getsockname()[1]}/mnist/", count
    s.close()


@pytest.fixture
def served(tmp_path):
    """A fake MNIST (small .gz IDX files) under tmp_path/served/mnist: (served root, arrays)."""
    arrays = make_dataset(tmp_path / "served" / "mnist", n_train=7, n_test=4, compress=(True,) * 4)
    return tmp_path / "served", arrays


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """Every test starts with a refused local mirror, no $NUMBANET_DATA and the per-user cache
    inside tmp_path, so no test can reach the real mirrors or the real cache."""
    monkeypatch.setattr(mnist, "MNIST_MIRRORS", ("http://127.0.0.1:1/mnist/",))
    monkeypatch.delenv(mnist.DATA_ENV_VAR, raising=False)
    monkeypatch.setattr(cache, "user_cache_dir", lambda: tmp_path / "user-cache" / "numbanet")


@pytest.fixture
def checksums(monkeypatch, served):
    """Installs the served files' sha256 as the checksum table."""
    root, _ = served
    table = {path.name: sha256(path) for path in sorted((root / "mnist").iterdir())}
    monkeypatch.setattr(mnist, "MNIST_SHA256", table)
    return table


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def use_mirrors(monkeypatch, *urls):
    monkeypatch.setattr(mnist, "MNIST_MIRRORS", urls)


def assert_fake_mnist(loaded, arrays):
    (x_train, y_train), (x_test, y_test) = loaded
    assert x_train.shape == (7, 28, 28) and x_test.shape == (4, 28, 28)
    assert x_train.dtype == x_test.dtype == y_train.dtype == y_test.dtype == np.uint8
    for got, expected in zip((x_train, y_train, x_test, y_test), arrays.values()):
        np.testing.assert_array_equal(got, expected)


def test_downloads_then_uses_the_cache(tmp_path, monkeypatch, served, checksums, start_mirror):
    root, arrays = served
    mirror = start_mirror(root)
    use_mirrors(monkeypatch, mirror.url)
    cache = tmp_path / "cache"
    assert_fake_mnist(load_mnist(cache, timeout=TIMEOUT), arrays)
    assert sorted(mirror.requests) == sorted(f"/mnist/{name}" for name in checksums)
    assert {path.name: sha256(path) for path in cache.iterdir()} == checksums
    assert_fake_mnist(load_mnist(cache, timeout=TIMEOUT), arrays)
    assert len(mirror.requests) == 4, "a verified cache must not be downloaded again"


def test_falls_back_to_the_next_mirror(tmp_path, monkeypatch, served, checksums, start_mirror):
    root, arrays = served
    (tmp_path / "empty").mkdir()
    broken, good = start_mirror(tmp_path / "empty"), start_mirror(root)
    use_mirrors(monkeypatch, broken.url, good.url)
    assert_fake_mnist(load_mnist(tmp_path / "cache", timeout=TIMEOUT), arrays)
    assert len(broken.requests) == 4, "a mirror answering 404 stays in use for the next file"
    assert len(good.requests) == 4


def test_silent_mirror_times_out_once(
    tmp_path, monkeypatch, served, checksums, start_mirror, silent_mirror
):
    root, arrays = served
    silent_url, connections = silent_mirror
    good = start_mirror(root)
    use_mirrors(monkeypatch, silent_url, good.url)
    assert_fake_mnist(load_mnist(tmp_path / "cache", timeout=0.3), arrays)
    assert len(good.requests) == 4
    assert connections() == 1, "a mirror that timed out must not be tried for the other files"


def test_fetch_files_reports_each_failure(tmp_path, checksums, dead_url):
    failures = mnist.fetch_files(tmp_path / "cache", checksums, [dead_url], timeout=TIMEOUT)
    first, *rest = checksums
    assert list(failures) == list(checksums)
    assert failures[first].startswith("missing; " + dead_url + first + ": ConnectionError")
    for name in rest:
        assert failures[name] == "missing; no reachable mirror left"


def failing_lookup(*args, **kwargs):
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def test_a_mirror_whose_name_does_not_resolve_gets_no_request(
    tmp_path, monkeypatch, served, checksums, start_mirror
):
    root, _ = served
    mirror = start_mirror(root)
    monkeypatch.setattr(urllib.request, "getproxies", dict)
    monkeypatch.setattr(socket, "getaddrinfo", failing_lookup)
    failures = mnist.fetch_files(tmp_path / "cache", checksums, [mirror.url], timeout=TIMEOUT)
    first, *rest = checksums
    assert failures[first].startswith(f"missing; {mirror.url}{first}: gaierror: ")
    for name in rest:
        assert failures[name] == "missing; no reachable mirror left"
    assert mirror.requests == []


def test_behind_a_proxy_the_name_is_left_to_the_proxy(monkeypatch):
    monkeypatch.setattr(urllib.request, "getproxies", lambda: {"https": "http://proxy.example:3128"})
    monkeypatch.setattr(socket, "getaddrinfo", failing_lookup)
    assert mnist._unresolved_host("https://storage.googleapis.com/cvdf-datasets/mnist/t10k-labels-idx1-ubyte.gz") is None


def test_checksum_mismatch_is_rejected(tmp_path, monkeypatch, served, checksums, start_mirror):
    root, _ = served
    tampered = "train-labels-idx1-ubyte.gz"
    monkeypatch.setitem(checksums, tampered, hashlib.sha256(b"another file").hexdigest())
    mirror = start_mirror(root)
    use_mirrors(monkeypatch, mirror.url)
    cache = tmp_path / "cache"
    with pytest.raises(MNISTUnavailable) as info:
        load_mnist(cache, timeout=TIMEOUT)
    message = str(info.value)
    assert f"{tampered}: missing; {mirror.url}{tampered}: ValueError: SHA256 hash" in message
    assert sorted(path.name for path in cache.iterdir()) == sorted(set(checksums) - {tampered}), (
        "a file failing its checksum (or a temporary file) was left in the cache"
    )


def test_download_false_with_missing_files(tmp_path, monkeypatch, served, checksums, start_mirror):
    root, _ = served
    mirror = start_mirror(root)
    use_mirrors(monkeypatch, mirror.url)
    cache = tmp_path / "cache"
    with pytest.raises(MNISTUnavailable) as info:
        load_mnist(cache, download=False)
    message = str(info.value)
    assert repr(str(cache)) in message and "download=False" in message
    for name in checksums:
        assert f"  {name}: missing\n" in message
    advice = ("load_mnist(root=DIR)", "NUMBANET_DATA=DIR", "load_mnist_sample()", "numbanet[sample]")
    assert all(phrase in message for phrase in advice)
    assert mirror.requests == []
    assert not cache.exists()


def test_corrupt_cached_file_is_downloaded_again(
    tmp_path, monkeypatch, served, checksums, start_mirror
):
    root, arrays = served
    mirror = start_mirror(root)
    use_mirrors(monkeypatch, mirror.url)
    cache = tmp_path / "cache"
    shutil.copytree(root / "mnist", cache)
    corrupt = cache / "t10k-images-idx3-ubyte.gz"
    corrupt.write_bytes(corrupt.read_bytes()[:-10])
    assert_fake_mnist(load_mnist(cache, timeout=TIMEOUT), arrays)
    assert mirror.requests == ["/mnist/t10k-images-idx3-ubyte.gz"]
    assert sha256(corrupt) == checksums[corrupt.name]


def test_corrupt_cached_file_without_download(tmp_path, served, checksums):
    root, _ = served
    cache = tmp_path / "cache"
    shutil.copytree(root / "mnist", cache)
    corrupt = cache / "train-labels-idx1-ubyte.gz"
    corrupt.write_bytes(b"junk")
    with pytest.raises(MNISTUnavailable, match="train-labels-idx1-ubyte.gz: sha256 mismatch"):
        load_mnist(cache, download=False)
    assert corrupt.read_bytes() == b"junk"


def test_directory_is_root_then_env_then_user_cache(tmp_path, monkeypatch, served, checksums):
    root, arrays = served
    monkeypatch.setenv(mnist.DATA_ENV_VAR, str(root / "mnist"))
    assert_fake_mnist(load_mnist(download=False), arrays)
    with pytest.raises(MNISTUnavailable, match="'.*elsewhere' \\(root\\)"):
        load_mnist(tmp_path / "elsewhere", download=False)
    monkeypatch.setenv(mnist.DATA_ENV_VAR, "")
    user_cache = tmp_path / "user-cache" / "numbanet" / "mnist"
    with pytest.raises(MNISTUnavailable, match="the per-user cache") as info:
        load_mnist(download=False)
    assert repr(str(user_cache)) in str(info.value)
    shutil.copytree(root / "mnist", user_cache)
    assert_fake_mnist(load_mnist(download=False), arrays)


def test_checksum_table_covers_the_four_files():
    assert list(mnist.MNIST_SHA256) == [f"{name}.gz" for name in mnist.IDX_DATASET_FILES]
    for digest in mnist.MNIST_SHA256.values():
        assert len(digest) == 64 and int(digest, 16) >= 0
