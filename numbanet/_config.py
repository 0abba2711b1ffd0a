"""The flags every numbanet kernel is compiled with, in one place.

``kernel`` compiles a loop with ``parallel=True, fastmath=False, cache=True``;
``serial_kernel`` is the same loop without the parallel runtime, for shapes where a
parallel launch costs more than the work. Both compile with LLVM's SLP vectoriser on
(Numba leaves it off by default): it turns rows of scalar accumulators into SIMD
registers, which is what lets explicit loops reach BLAS speed. The setting is applied
only while numbanet's own kernels compile, so other Numba code in the process is
untouched.
"""

import contextlib
import ctypes
import importlib.metadata
import os
import sys

import numba

# error_model="numpy": division by zero gives inf/NaN as IEEE says instead of a
# Python-style zero check that raises and keeps serial loops from vectorising
# (prange bodies already behave this way).
PARALLEL_FLAGS = {"parallel": True, "fastmath": False, "cache": True, "error_model": "numpy"}
SERIAL_FLAGS = {"parallel": False, "fastmath": False, "cache": True, "error_model": "numpy"}


@contextlib.contextmanager
def slp_vectorize():
    """Turn on LLVM's SLP vectoriser for the compilations inside the block."""
    saved = numba.config.SLP_VECTORIZE
    numba.config.SLP_VECTORIZE = 1
    try:
        yield
    finally:
        numba.config.SLP_VECTORIZE = saved


def _compile_with_slp(dispatcher):
    compile_signature = dispatcher.compile

    def compile(sig):
        with slp_vectorize():
            return compile_signature(sig)

    # Numba's dispatcher looks ``compile`` up on the instance for every cache miss of
    # its type-dispatch table, so this wraps both cache loads and fresh compilations.
    dispatcher.compile = compile
    return dispatcher


def kernel(fn):
    """Compile ``fn`` as a parallel numbanet kernel (prange loops run on all threads)."""
    return _compile_with_slp(numba.njit(**PARALLEL_FLAGS)(fn))


def serial_kernel(fn):
    """Compile ``fn`` as a serial numbanet kernel (no parallel launch overhead)."""
    return _compile_with_slp(numba.njit(**SERIAL_FLAGS)(fn))


def _host_vector_bytes():
    """Bytes in one SIMD register of the CPU Numba compiles for: 64 with AVX-512, else 32.

    Register-tiled kernels size their blocks of accumulators to fit the register file:
    a block that fits AVX-512's 32 zmm registers spills from AVX2's 16 ymm ones.
    """
    features = numba.config.CPU_FEATURES
    if features is not None:
        return 64 if "+avx512f" in features.split(",") else 32
    import llvmlite.binding

    return 64 if llvmlite.binding.get_host_cpu_features().get("avx512f", False) else 32


VECTOR_BYTES = _host_vector_bytes()


def _load_tbb_wheel():
    """Load the ``tbb`` wheel's libtbb.so.12 so that Numba's TBB layer runs on it.

    pip puts the library in the environment's lib/ directory, where the dynamic loader
    does not look, so Numba would find only a system TBB or none. Once loaded, it is
    the libtbb.so.12 that Numba's tbbpool links to. oneTBB before 2021.11 (Debian 12
    ships 2021.8) makes every short parallel call slower the more of them a process has
    made: on the CI VM an empty 2-thread call went from 5 us to 350 us over 9,000
    calls, and a 2-thread 128x784x512 product from 0.8 to 1.4-2.3 ms, slower than on
    one thread (README, Thread scaling).
    """
    if not sys.platform.startswith("linux") or "numba.np.ufunc.tbbpool" in sys.modules:
        return
    try:
        files = importlib.metadata.files("tbb") or ()
    except importlib.metadata.PackageNotFoundError:
        return
    for file in files:
        if file.name == "libtbb.so.12":
            try:
                ctypes.CDLL(str(file.locate()))
            except OSError:  # a broken install: Numba finds what it finds
                pass
            return


def _prefer_quiet_openmp():
    """Keep idle OpenMP workers from spinning when TBB is missing.

    Numba picks TBB first (about 5 us per parallel call here); without it the GNU
    OpenMP layer's busy-waiting workers cost 1-8 ms per call on a 2-core machine,
    which passive waiting brings down to about 20 us. The variable reaches every OpenMP
    user in the process (PyTorch's 2-thread epochs took 1.08-1.17x as long with it).
    """
    if "NUMBA_THREADING_LAYER" in os.environ:
        return
    try:
        import numba.np.ufunc.tbbpool  # noqa: F401
    except ImportError:
        os.environ.setdefault("OMP_WAIT_POLICY", "passive")


_load_tbb_wheel()
_prefer_quiet_openmp()
