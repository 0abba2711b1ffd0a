"""numbanet/_config.py: the TBB library Numba's parallel kernels run on.

Each test runs a fresh interpreter: the library is chosen once, when Numba's threading
layer starts, so it cannot be tested in a process whose threads are already running.
"""

import importlib.metadata
import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not (sys.platform.startswith("linux") and platform.machine() == "x86_64"),
    reason="the tbb wheel is a dependency on Linux x86-64 only",
)

# Prints the threading layer, the loaded oneTBB's interface version (0 when no
# libtbb.so.12 is loaded) and every path mapped into the process as libtbb.so.12, after
# one parallel kernel has run.
REPORT = """
import ctypes
import numba
import numpy as np
import numbanet
numbanet.kahan_sum(np.ones(1 << 20))
paths = sorted({line.split()[-1] for line in open("/proc/self/maps") if line.rstrip().endswith("libtbb.so.12")})
print(numba.threading_layer())
print(ctypes.CDLL("libtbb.so.12").TBB_runtime_interface_version() if paths else 0)
print(*paths, sep="\\n")
"""


def run_report(prelude=""):
    result = subprocess.run([sys.executable, "-c", prelude + REPORT], capture_output=True, text=True, check=True)
    layer, version, *paths = result.stdout.split("\n")[:-1]
    return layer, int(version), paths


def wheel_library():
    (path,) = [f.locate() for f in importlib.metadata.files("tbb") if f.name == "libtbb.so.12"]
    return os.path.realpath(path)


def test_parallel_kernels_run_on_the_tbb_wheel():
    # oneTBB 2021.11 (interface 12110) is the first whose parallel calls stay as cheap as
    # a process makes more of them; Debian 12's libtbb12 is 2021.8.
    layer, version, paths = run_report()
    assert layer == "tbb"
    assert version >= 12110
    assert paths == [wheel_library()]


def test_no_second_tbb_once_numbas_threads_run():
    # Numba's threads started before numbanet was imported: they keep the TBB they found
    # (or the OpenMP layer), and numbanet loads no second copy beside it.
    _, _, paths = run_report("import numba\nnumba.set_num_threads(1)\n")
    assert len(paths) <= 1


def test_a_missing_wheel_library_does_not_stop_the_import():
    # A tbb install whose libtbb.so.12 is gone: numbanet still imports and its parallel
    # kernels run on whatever layer Numba finds.
    prelude = """
import importlib.metadata
class Missing:
    name = "libtbb.so.12"
    def locate(self):
        return "/nonexistent/libtbb.so.12"
importlib.metadata.files = lambda name: [Missing()]
"""
    layer, _, _ = run_report(prelude)
    assert layer in ("tbb", "omp", "workqueue")
