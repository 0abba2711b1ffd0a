"""Shared pieces of numbanet's asv suite. Append-only: changing what a helper returns
changes every benchmark that uses it (bump those benchmarks' ``version`` if you must).

- Fixed-seed data, cached per process (asv re-runs ``setup`` before every sample).
- ``set_threads``: Numba, OpenBLAS (through threadpoolctl) and PyTorch on 1 or all cores.
- ``interleaved_ratio``: numbanet and a reference timed alternately in one process.
- ``scaled_error``: max |y32 - y64| / (eps32 * max(|y64|, 1)).
- PyTorch is optional: ``require`` raises ``NotImplementedError`` (asv's "skipped")
  when it is not importable. Parameters never depend on what is installed.
- ``track_threading_layer``: the Numba threading layer the parallel kernels ran on.
- ``track_parallel_launch``: what a parallel call costs before its work, in microseconds.
"""

import functools
import itertools
import statistics
import time

import numba
import numpy as np
from asv_runner.benchmarks.mark import skip_for_params

import numbanet  # noqa: F401  (first: it picks the TBB library Numba's threads run on)

try:
    import threadpoolctl
except ImportError:  # numpy's BLAS cannot be pinned to one thread: those cases skip
    threadpoolctl = None

try:
    import torch
except ImportError:
    torch = None

DTYPES = ("float32", "float64")
IMPLS = ("numbanet", "numpy", "torch")
REFERENCES = ("numpy", "torch")
THREADS = ("1", "all")
SPEED_PARAM_NAMES = ("impl", "dtype", "size", "threads")

EPS32 = float(np.finfo(np.float32).eps)
ERROR_UNIT = "float32 eps"
"""Unit of every ``track_*_error``: max |y32 - y64| / (eps32 * max(|y64|, 1))."""

THREADING_LAYERS = {"tbb": 1, "omp": 2, "workqueue": 3}


@numba.njit
def _start_numba_codegen(x):
    return x + 1


# asv's forkserver imports this module once and forks a process per benchmark: starting
# Numba's code generator here (serially, no threads) saves each of them 0.5-2 s.
_start_numba_codegen(1.0)


# --------------------------------------------------------------------------- data

BLOCK = 1 << 20
"""Arrays larger than this repeat one random block of this many values: drawing 10M
normals costs more than most benchmarks, and neither timings nor the float32 error
of a sum or an elementwise op depend on the values being distinct."""


def _draw(shape, draw):
    n = int(np.prod(shape))
    return np.resize(draw(min(n, BLOCK)), shape)


@functools.lru_cache(maxsize=None)
def normal(shape, dtype, seed=0, scale=1.0):
    """N(0, scale^2) of ``shape``; both dtypes hold the same values (float32 rounded)."""
    rng = np.random.default_rng(seed)
    x = _draw(shape, lambda n: rng.standard_normal(n, dtype=np.float32))
    if scale != 1.0:
        x *= np.float32(scale)
    return x.astype(dtype, copy=False)


@functools.lru_cache(maxsize=None)
def uniform(shape, dtype, seed=0, low=0.0, high=1.0):
    """U(low, high) of ``shape``; both dtypes hold the same float32-representable values."""
    rng = np.random.default_rng(seed)
    x = _draw(shape, lambda n: rng.random(n, dtype=np.float32))
    x = (x * np.float32(high - low) + np.float32(low)).astype(np.float32)
    return x.astype(dtype, copy=False)


@functools.lru_cache(maxsize=None)
def log_uniform_signed(shape, dtype, seed=0, decades=6):
    """Random signs times 10**U(-decades, decades): a wide dynamic range with cancellation."""
    rng = np.random.default_rng(seed)
    magnitude = 10.0 ** rng.uniform(-decades, decades, size=shape)
    x = (rng.choice([-1.0, 1.0], size=shape) * magnitude).astype(np.float32)
    return x.astype(dtype, copy=False)


@functools.lru_cache(maxsize=None)
def labels(n, n_classes, seed=0):
    """``n`` integer class labels in [0, n_classes)."""
    return np.random.default_rng(seed).integers(0, n_classes, size=n, dtype=np.int64)


# --------------------------------------------------------------------------- threads

def n_threads(threads):
    """The thread count a ``threads`` parameter stands for ("1" or "all")."""
    return 1 if threads == "1" else numba.config.NUMBA_NUM_THREADS


# Scanning the loaded libraries takes a while: done once, before asv forks.
_blas = None if threadpoolctl is None else threadpoolctl.ThreadpoolController().select(user_api="blas")


def set_threads(threads):
    """Run Numba, numpy's BLAS and PyTorch on ``threads`` ("1" or "all") from now on."""
    n = n_threads(threads)
    numba.set_num_threads(n)
    if _blas is not None:
        _blas.limit(limits=n)
    if torch is not None:
        torch.set_num_threads(n)


def require(impl, threads="all"):
    """Raise ``NotImplementedError`` (asv: skipped) when ``impl`` cannot run here."""
    if impl.startswith("torch") and torch is None:
        raise NotImplementedError("PyTorch is not installed (pip install torch==2.13.0)")
    if impl == "numpy" and threads == "1" and threadpoolctl is None:
        raise NotImplementedError("threadpoolctl is needed to run numpy's BLAS on one thread")


def skip_single_thread_references(params, keep=("numbanet",), sizes=None):
    """``skip_for_params`` for every threads="1" case but ``keep``'s at ``sizes``.

    numpy's elementwise ops have one thread anyway, and the references' thread scaling
    is not what the suite tracks. Thread scaling is tracked where there is work to
    share: by default at the largest size only (the last of the size list; parameters
    are (impl, dtype, size, threads) as in OpSpeed). Every skipped case still costs
    ``asv run`` a process, but no setup.
    """
    sizes = params[2][-1:] if sizes is None else sizes
    return skip_for_params([
        combo for combo in itertools.product(*params)
        if combo[-1] == "1" and (combo[0] not in keep or combo[2] not in sizes)
    ])


def skip_all_but(params, param_names, **keep):
    """``skip_for_params`` for every combination whose named values are not in ``keep``."""
    index = {name: param_names.index(name) for name in keep}
    skipped = [
        combo for combo in itertools.product(*params)
        if any(combo[index[name]] not in values for name, values in keep.items())
    ]
    return skip_for_params(skipped)


def to_torch(*arrays):
    """``torch`` tensors sharing memory with ``arrays``."""
    return [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]


# --------------------------------------------------------------------------- base class

class OpSpeed:
    """Base of the per-op speed benchmarks: parameters impl x dtype x size x threads.

    A subclass sets ``params`` (with ``param_names = SPEED_PARAM_NAMES``) and
    ``build(impl, dtype, size)`` returning a zero-argument callable; its ``time_<op>``
    and ``peakmem_<op>`` methods call ``self.op()``. ``setup`` calls the op once so that
    compilation (or a load from Numba's cache) stays out of the timings. asv re-runs
    ``setup`` before every sample, so in-place ops start each sample from fresh copies.
    """

    param_names = SPEED_PARAM_NAMES
    timeout = 180
    rebuild_after_warmup = False  # True for ops whose warm-up call changes their inputs

    def setup(self, impl, dtype, size, threads):
        require(impl, threads)
        set_threads(threads)
        self.op = self.build(impl, np.dtype(dtype), size)
        self.op()
        if self.rebuild_after_warmup:
            self.op = self.build(impl, np.dtype(dtype), size)

    def build(self, impl, dtype, size):
        raise NotImplementedError


# --------------------------------------------------------------------------- ratios

def _time_calls(fn, number):
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def _calls_per_sample(fn, sample_time):
    once = _time_calls(fn, 1)
    return max(1, int(sample_time / max(once, 1e-7)))


def settle_time():
    """Pause before each sample, in seconds, so that the previous library's idle worker
    threads stop competing for the cores before the next one is timed.

    After a call on several threads, OpenBLAS's and OpenMP's workers keep spinning for
    tens of milliseconds: with 10 ms pauses they took a core from the next sample and
    made numbanet's 2-thread 1024^3 matmul look 1.8x slower than alone (62 vs 35 ms);
    after 0.3 s it times as it does alone. One thread leaves no workers to wait for.
    """
    return 0.01 if numba.get_num_threads() == 1 else 0.3


def interleaved_times(calls, *, rounds=7, sample_time=0.02):
    """Median seconds per call of each of ``calls``, timed alternately in this process.

    Each runs once first (compilation, caches), then ``rounds`` rounds each time one
    sample of every call, the order reversing between rounds, so that the machine's
    drift (other processes, clock changes) hits all alike. A sample repeats the call
    enough times to last about ``sample_time`` seconds, after the settle pause and as
    many untimed calls again: the calls just after a pause read cold caches and wake
    idle cores (2-thread 128x784x256 matmul: the first call 2.9x the steady time, the
    third to fifth 1.45x), which timed in the sample made both libraries look slower by
    whatever their wake-up costs. With ``sample_time=0`` a sample is one call and there
    are no untimed calls (for calls as long as an epoch, warmed by the caller).
    """
    warm_up = sample_time > 0
    if warm_up:
        for fn in calls:
            fn()
        numbers = [_calls_per_sample(fn, sample_time) for fn in calls]
    else:
        numbers = [1] * len(calls)
    settle = settle_time()
    times = [[] for _ in calls]
    order = list(range(len(calls)))
    for i in range(rounds):
        for j in order if i % 2 == 0 else order[::-1]:
            time.sleep(settle)
            if warm_up:
                _time_calls(calls[j], numbers[j])  # the untimed calls: their time is dropped
            times[j].append(_time_calls(calls[j], numbers[j]))
    return [statistics.median(t) for t in times]


def interleaved_ratio(candidate, reference, *, rounds=7, sample_time=0.02):
    """Median time of ``candidate`` / median time of ``reference``, timed alternately."""
    candidate_time, reference_time = interleaved_times(
        [candidate, reference], rounds=rounds, sample_time=sample_time
    )
    return candidate_time / reference_time


def in_place_ratio(op, x, *args):
    """Time of ``op(x, *args, out=x)`` / time of ``op(x, *args, out=other)``, interleaved:
    an elementwise op written over its input should cost what it costs into another array."""
    own, other = x.copy(), np.empty_like(x)
    return interleaved_ratio(lambda: op(own, *args, out=own), lambda: op(x, *args, out=other))


class InPlaceRatio:
    """Base of the ``track_*_in_place_ratio`` benchmarks: float32, 1 thread, the
    activations of the 784-512-256-10 MLP's first layer; a subclass sets
    ``inputs(shape)`` and one ``track_`` method."""

    params = [["128x512"]]
    param_names = ["size"]
    unit = "ratio"

    def setup(self, size):
        set_threads("1")
        self.args = self.inputs(tuple(int(n) for n in size.split("x")))


# --------------------------------------------------------------------------- errors

def scaled_error(y32, y64):
    """max |y32 - y64| / (eps32 * max(|y64|, 1)) over all elements.

    Outputs near zero are judged absolutely, large ones relatively, both in units of
    float32's machine epsilon. ``y64`` is the float64 result on the same inputs.
    """
    y32 = np.asarray(y32, dtype=np.float64)
    y64 = np.asarray(y64, dtype=np.float64)
    if y64.size == 0:
        return 0.0
    return float(np.max(np.abs(y32 - y64) / np.maximum(np.abs(y64), 1.0)) / EPS32)


# --------------------------------------------------------------------------- environment

@numba.njit(parallel=True, cache=True)
def _parallel_probe(x):
    total = 0.0
    for i in numba.prange(x.size):
        total += x[i]
    return total


def threading_layer():
    """The Numba threading layer of this process (starts the parallel runtime)."""
    _parallel_probe(np.ones(1024))
    return numba.threading_layer()


def track_threading_layer():
    """Numba's threading layer as a code: 1 = tbb, 2 = omp (GNU OpenMP), 3 = workqueue.

    Parallel launch cost differs by 100x between layers on small machines, so a change
    of layer explains a step in the timings of the parallel kernels.
    """
    return THREADING_LAYERS[threading_layer()]


track_threading_layer.unit = "layer (1=tbb, 2=omp, 3=workqueue)"


def track_numba_threads():
    """Numba's thread count: what the ``threads="all"`` parameter stands for."""
    return numba.config.NUMBA_NUM_THREADS


track_numba_threads.unit = "threads"


@numba.njit(cache=True)
def _serial_work(n):
    # A dependent chain of n float additions: serial compiled work, as a step's serial
    # kernels do between its parallel calls.
    total = 0.0
    for i in range(n):
        total += i * 1e-9
    return total


def track_parallel_launch():
    """Median microseconds of a parallel call with next to nothing to do, on all threads,
    each after some 30,000 dependent additions of serial compiled work (as the parallel
    calls of a training step come), over the last 1,000 of 4,000 calls.

    Every parallel kernel pays it on top of its work. On oneTBB before 2021.11 it grows
    with the calls a process has made (on the CI VM from 5-10 us to 80-350 us over
    4,000-9,000 calls), which is why numbanet loads the tbb wheel's library
    (numbanet/_config.py); this tracks that it stays flat.
    """
    set_threads("all")
    x = np.ones(1024)
    _parallel_probe(x)
    _serial_work(1)
    times = []
    for _ in range(4000):
        _serial_work(30_000)
        start = time.perf_counter()
        _parallel_probe(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times[-1000:]) * 1e6


track_parallel_launch.unit = "us"


@numba.njit(parallel=True, cache=True)
def _triad(a, b, c, s):
    for i in numba.prange(a.size):
        a[i] = b[i] + s * c[i]


def triad_bandwidth_ratio(op, bytes_moved, n, dtype, *, rounds=5):
    """Bandwidth of ``op`` as a fraction of a STREAM triad's, timed interleaved.

    The triad ``a = b + s*c`` over ``n`` elements moves 3 arrays; ``op`` moves
    ``bytes_moved`` bytes. Both run on the current thread count.
    """
    a = np.empty(n, dtype)
    b = uniform((n,), dtype, seed=11)
    c = uniform((n,), dtype, seed=12)
    s = dtype.type(0.5)
    triad_bytes = 3 * n * dtype.itemsize
    ratio = interleaved_ratio(op, lambda: _triad(a, b, c, s), rounds=rounds)
    return (bytes_moved / triad_bytes) / ratio
