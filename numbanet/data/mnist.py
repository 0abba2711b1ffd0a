"""MNIST: find the four original .gz files, verify their sha256, download what is missing.

Downloads go through pooch: it streams into a temporary file beside the target, checks the hash and
only then renames, so an interrupted or corrupt download never lands in the cache. pooch and requests
take about 0.1 s to import, so they are imported only when a file has to be downloaded.
"""

import hashlib
import logging
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

from . import cache
from .dataset import IDX_DATASET_FILES, load_idx_files

__all__ = ["MNISTUnavailable", "MNIST_MIRRORS", "MNIST_SHA256", "load_mnist", "fetch_files"]

# sha256 of the original .gz files (yann.lecun.com no longer serves them).
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

# Tried in order: torchvision's mirror, then TensorFlow Datasets'.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

DATA_ENV_VAR = "NUMBANET_DATA"

_log = logging.getLogger(__name__)


class MNISTUnavailable(RuntimeError):
    """The MNIST files are neither in place nor downloadable; the message says how to provide them."""


def load_mnist(root=None, download=True, *, timeout=30.0, progressbar=False):
    """Load the full MNIST (60,000 training and 10,000 test digits), downloading it if needed.

    The directory is ``root`` if given, else ``$NUMBANET_DATA`` if set, else the per-user cache
    (``pooch.os_cache("numbanet") / "mnist"``, e.g. ``~/.cache/numbanet/mnist`` on Linux). It must
    hold (or will receive) the four original ``.gz`` files; each is checked against its sha256.

    Parameters
    ----------
    root : str or os.PathLike, optional
        Directory holding ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
        ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz``.
    download : bool
        Fetch missing or corrupt files from ``MNIST_MIRRORS`` (in order, falling back to the next
        mirror on any failure). Nothing is downloaded at import time.
    timeout : float
        Seconds allowed to connect and between received bytes, per request (not a total).
    progressbar : bool
        Show a tqdm progress bar per downloaded file.

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        uint8 images (N, 28, 28) and uint8 labels (N,), N = 60,000 and 10,000.

    Raises
    ------
    MNISTUnavailable
        Some file is missing or corrupt and could not be downloaded; the message names the
        directory, each failure, and how to provide the files offline.
    """
    directory, origin = _mnist_directory(root)
    mirrors = MNIST_MIRRORS if download else ()
    failures = fetch_files(directory, MNIST_SHA256, mirrors, timeout=timeout, progressbar=progressbar)
    if failures:
        raise MNISTUnavailable(_unavailable_message(directory, origin, failures, download))
    return load_idx_files(*(directory / f"{name}.gz" for name in IDX_DATASET_FILES))


def fetch_files(directory, checksums, mirrors, *, timeout, progressbar=False):
    """Make every file of ``checksums`` present in ``directory`` with its sha256.

    A file already in place with the right hash is left alone; a missing or mismatching one is
    downloaded from ``mirror + name`` for each mirror in turn until one succeeds. A mirror that
    cannot be reached (connection error or timeout) is not tried again for the remaining files, so
    a dead network costs at most one timeout per mirror.

    Parameters
    ----------
    directory : str or os.PathLike
    checksums : dict[str, str]
        File name -> hex sha256.
    mirrors : sequence of str
        Base URLs; empty means never download.
    timeout : float
        Seconds to connect and between received bytes, per request.
    progressbar : bool

    Returns
    -------
    dict[str, str]
        File name -> what went wrong, for the files that could not be had (empty on success).
    """
    reachable = list(mirrors)
    failures = {}
    for name, sha256 in checksums.items():
        path = Path(directory) / name
        problem = _local_problem(path, sha256)
        if problem is None:
            continue
        attempts = [problem]
        for mirror in list(reachable):
            url = mirror.rstrip("/") + "/" + name
            error = _download(url, path, sha256, timeout=timeout, progressbar=progressbar)
            if error is None:
                break
            attempts.append(f"{url}: {_one_line(error)}")
            if _is_unreachable(error):
                reachable.remove(mirror)
        else:
            if mirrors and not reachable and len(attempts) == 1:
                attempts.append("no reachable mirror left")
            failures[name] = "; ".join(attempts)
    return failures


def _local_problem(path, sha256):
    if not path.is_file():
        return "missing"
    if hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
        return "sha256 mismatch (corrupt or not the original file)"
    return None


def _download(url, path, sha256, *, timeout, progressbar):
    """Download ``url`` to ``path`` through pooch (temporary file, hash check, rename); return the
    error, or None on success."""
    error = _unresolved_host(url)
    if error is not None:
        return error
    import pooch

    _log.info("downloading %s to %s", url, path)
    # pooch announces each download on stderr; numbanet logs its own line (silent by default).
    pooch_log = pooch.get_logger()
    level = pooch_log.level
    pooch_log.setLevel(logging.WARNING)
    try:
        pooch.retrieve(
            url, known_hash=f"sha256:{sha256}", fname=path.name, path=path.parent,
            downloader=pooch.HTTPDownloader(timeout=timeout, progressbar=progressbar),
        )
    # requests' errors are OSErrors; pooch reports a hash mismatch as ValueError.
    except (OSError, ValueError) as error:
        return error
    finally:
        pooch_log.setLevel(level)
    return None


def _unresolved_host(url):
    """The error of looking up ``url``'s host name if that fails, else None.

    Offline, the lookup fails within a millisecond, where importing requests and failing inside it
    takes about 0.15 s. Behind a proxy the proxy looks the name up, so nothing is checked here.
    """
    import urllib.request  # imported here: about 20 ms, and only a download needs it

    if urllib.request.getproxies():
        return None
    parts = urlsplit(url)
    try:
        socket.getaddrinfo(parts.hostname, parts.port or parts.scheme, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        return error
    return None


def _is_unreachable(error):
    if isinstance(error, socket.gaierror):
        return True
    import requests  # imported here, as pooch does, to keep `import numbanet` fast

    return isinstance(error, (requests.ConnectionError, requests.Timeout))


def _mnist_directory(root):
    if root is not None:
        return Path(root).expanduser(), "root"
    if os.environ.get(DATA_ENV_VAR):
        return Path(os.environ[DATA_ENV_VAR]).expanduser(), f"${DATA_ENV_VAR}"
    return cache.user_cache_dir() / "mnist", "the per-user cache"


def _one_line(error, limit=200):
    text = f"{type(error).__name__}: {error}".replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unavailable_message(directory, origin, failures, download):
    details = "\n".join(f"  {name}: {problem}" for name, problem in failures.items())
    not_downloaded = "" if download else " (download=False, so nothing was downloaded)"
    names = ", ".join(MNIST_SHA256)
    return (
        f"MNIST is not available in {str(directory)!r} ({origin}){not_downloaded}:\n{details}\n"
        f"To provide it, fetch the four files {names} (sha256 in numbanet.data.mnist.MNIST_SHA256) "
        f"from {MNIST_MIRRORS[0]} on a machine with internet access, put them in one directory and "
        f"pass load_mnist(root=DIR) or set {DATA_ENV_VAR}=DIR. Offline, load_mnist_sample() gives "
        "5,000 real MNIST digits (pip install numbanet[sample])."
    )
