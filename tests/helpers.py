"""Test helpers: per-dtype tolerances, thread-count invariance, float32 purity."""

import re

import numba
import numpy as np

from numbanet import _config

# Unit roundoff per dtype; tolerances in the tests are multiples of it that grow with
# the length of the reduction being checked.
EPS = {np.float32: float(np.finfo(np.float32).eps), np.float64: float(np.finfo(np.float64).eps)}

FLOAT_DTYPES = [np.float32, np.float64]


def run_with_threads(n_threads, fn, *args, **kwargs):
    """Call ``fn`` with Numba's thread count lowered to ``n_threads`` for the call."""
    saved = numba.get_num_threads()
    numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
    try:
        return fn(*args, **kwargs)
    finally:
        numba.set_num_threads(saved)


def assert_bitwise_equal(a, b):
    """Same shape, dtype and bytes (NaNs included): the thread-invariance contract."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


def assert_thread_invariant(fn, *args, **kwargs):
    """``fn`` gives bit-identical results on 1 thread and on all threads.

    ``fn`` must return fresh arrays (or a tuple of them); in-place ops are wrapped by
    the caller so that each run starts from copies of the same inputs.
    """
    one = run_with_threads(1, fn, *args, **kwargs)
    many = run_with_threads(numba.config.NUMBA_NUM_THREADS, fn, *args, **kwargs)
    pairs = zip(one, many) if isinstance(one, tuple) else [(one, many)]
    for a, b in pairs:
        assert_bitwise_equal(a, b)


_DOUBLE_INSTRUCTIONS = re.compile(r"\b(fpext|sitofp|uitofp)\b[^\n]*\bto double\b")


def _llvm_text(library, seen=None):
    seen = set() if seen is None else seen
    if id(library) in seen:
        return ""
    seen.add(id(library))
    text = library.get_llvm_str()
    for linked in getattr(library, "_linking_libraries", ()):
        text += _llvm_text(linked, seen)
    return text


def float64_instructions(kernel, *args):
    """LLVM instructions that widen to double in ``kernel`` compiled for ``args``.

    The kernel's Python source is compiled afresh (``cache=False``: Numba does not
    keep the IR of cached code) with numbanet's flags, including the parallel
    region's outlined body and every helper it calls.
    """
    flags = dict(_config.PARALLEL_FLAGS, cache=False)
    if not kernel.targetoptions.get("parallel"):
        flags["parallel"] = False
    fresh = numba.njit(**flags)(kernel.py_func)
    with _config.slp_vectorize():
        fresh.compile(tuple(numba.typeof(a) for a in args))
    library = fresh.overloads[fresh.signatures[0]].library
    return _DOUBLE_INSTRUCTIONS.findall(_llvm_text(library))
