"""Test helpers: per-dtype tolerances, thread-count invariance, float32 purity."""

import re
import types

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


def scattered_extremes(dtype, shape, seed):
    """Normal values of either sign with NaN, +-inf, +-0, the smallest subnormal, the
    largest finite and +-1e4 scattered through an array of ``shape``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    finfo = np.finfo(dtype)
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, finfo.smallest_subnormal,
                         -finfo.smallest_subnormal, finfo.max, 1e4, -1e4], dtype)
    flat = x.reshape(-1)
    picks = rng.random(flat.size) < 0.3
    flat[picks] = rng.choice(specials, int(picks.sum()))
    return x


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
_FUNCTION = re.compile(r"^define [^\n]*?@\"?([^\s(\"]+)[^\n]*\n(.*?)^}", re.M | re.S)
# Python-facing wrappers box float results as doubles for Python; no kernel runs there.
_WRAPPER_PREFIXES = ("_ZN7cpython", "cfunc.")


def _fresh_dispatcher(dispatcher, memo):
    """Recompile ``dispatcher`` and every jitted function it calls by name, uncached.

    Numba keeps no IR for code loaded from its cache, so the kernel and its callees
    are rebuilt from their Python source with the same options and ``cache=False``.
    """
    if id(dispatcher) in memo:
        return memo[id(dispatcher)]
    fn = dispatcher.py_func
    namespace = dict(fn.__globals__)
    for name in fn.__code__.co_names:
        if isinstance(namespace.get(name), numba.core.registry.CPUDispatcher):
            namespace[name] = _fresh_dispatcher(namespace[name], memo)
    clone = types.FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__, fn.__closure__)
    options = dict(dispatcher.targetoptions, cache=False)
    for derived in ("nopython", "boundscheck"):
        options.pop(derived, None)
    memo[id(dispatcher)] = numba.njit(**options)(clone)
    return memo[id(dispatcher)]


def float64_instructions(kernel, *args):
    """LLVM instructions that widen to double in ``kernel`` compiled for ``args``.

    Covers the kernel, the outlined body of its parallel loops and every jitted
    function it calls by name (all rebuilt uncached, see ``_fresh_dispatcher``), and
    skips the Python-facing wrappers.
    """
    fresh = _fresh_dispatcher(kernel, {})
    with _config.slp_vectorize():
        fresh.compile(tuple(numba.typeof(a) for a in args))
    ir = fresh.overloads[fresh.signatures[0]].library.get_llvm_str()
    found = []
    for name, body in _FUNCTION.findall(ir):
        if not name.startswith(_WRAPPER_PREFIXES):
            found += _DOUBLE_INSTRUCTIONS.findall(body)
    return found


def fused_pair(dtype):
    """(x, y) with x . y = [1, a] . [-(1 + 2 eps'), a] = a*a - (1 + 2 eps') = eps'^2 exactly, where
    a = 1 + eps' and eps' = 2**-12 (float32) or 2**-27 (float64): a sum whose terms are
    fused multiply-adds gives eps'^2, one that rounds a*a first gives 0."""
    e = 2.0 ** (-12 if np.dtype(dtype) == np.float32 else -27)
    return np.array([1, 1 + e], dtype), np.array([-(1 + 2 * e), 1 + e], dtype), dtype(e * e)


def validated_calls(monkeypatch, module, validator="as_float_array"):
    """The argument names ``module``'s ops pass to its ``validator`` while the test runs
    (recorded by a spy): an empty list means every call took its op's fast path."""
    names = []
    validate = getattr(module, validator)

    def spy(x, name, *args, **kwargs):
        names.append(name)
        return validate(x, name, *args, **kwargs)

    monkeypatch.setattr(module, validator, spy)
    return names
