"""max_pool2d (2x2, stride 2) and its backward at the convnet's shapes (batch 128, NHWC).

Size names are "NxHxWxC": pool1 128x26x26x32 -> 13x13x32, pool2 128x11x11x64 -> 5x5x64
(the odd last row and column dropped). PyTorch gets plain contiguous NCHW copies made in
``setup``; its backward scatters through the indices its forward saved, numbanet's
recomputes each window's first maximum from x. The NumPy reference reshapes the
windows onto two axes and takes their max (backward: argmax, then put_along_axis).
"""

import numpy as np

import numbanet

from .common import (
    DTYPES, ERROR_UNIT, IMPLS, THREADS, OpSpeed, interleaved_ratio, normal, require, scaled_error,
    set_threads, skip_all_but, skip_single_thread_references, torch,
)

POOL = 2
SIZES = {"pool1 128x26x26x32": (128, 26, 26, 32), "pool2 128x11x11x64": (128, 11, 11, 64)}


def operands(size, dtype):
    """Input x (N, H, W, C) and output gradient dy (N, H // 2, W // 2, C)."""
    N, H, W, C = SIZES[size]
    return normal((N, H, W, C), dtype, seed=31), normal((N, H // POOL, W // POOL, C), dtype, seed=32)


def windows(x):
    """(N, OH, OW, C, POOL*POOL): each window's values in row-major order."""
    N, H, W, C = x.shape
    OH, OW = H // POOL, W // POOL
    x = x[:, :OH * POOL, :OW * POOL].reshape(N, OH, POOL, OW, POOL, C)
    return x.transpose(0, 1, 3, 5, 2, 4).reshape(N, OH, OW, C, POOL * POOL)


def numpy_max_pool2d(x):
    return windows(x).max(axis=-1)


def numpy_max_pool2d_backward(dy, x):
    N, H, W, C = x.shape
    OH, OW = H // POOL, W // POOL
    first_max = windows(x).argmax(axis=-1)[..., np.newaxis]
    dwindows = np.zeros(dy.shape + (POOL * POOL,), dtype=dy.dtype)
    np.put_along_axis(dwindows, first_max, dy[..., np.newaxis], axis=-1)
    dx = np.zeros_like(x)
    dx[:, :OH * POOL, :OW * POOL] = (
        dwindows.reshape(N, OH, OW, C, POOL, POOL).transpose(0, 1, 4, 2, 5, 3).reshape(N, OH * POOL, OW * POOL, C)
    )
    return dx


def pool_calls(impl, x, dy):
    """Zero-argument calls {"forward": ..., "backward": ...} of ``impl``."""
    if impl == "numbanet":
        return {
            "forward": lambda: numbanet.max_pool2d(x, POOL),
            "backward": lambda: numbanet.max_pool2d_backward(dy, x, POOL),
        }
    if impl == "numpy":
        return {
            "forward": lambda: numpy_max_pool2d(x),
            "backward": lambda: numpy_max_pool2d_backward(dy, x),
        }
    tx = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    tdy = torch.from_numpy(np.ascontiguousarray(dy.transpose(0, 3, 1, 2)))
    _, indices = torch.nn.functional.max_pool2d(tx, POOL, return_indices=True)
    return {
        "forward": lambda: torch.nn.functional.max_pool2d(tx, POOL),
        "backward": lambda: torch.ops.aten.max_pool2d_with_indices_backward(
            tdy, tx, [POOL, POOL], [POOL, POOL], [0, 0], [1, 1], False, indices
        ),
    }


SPEED_PARAMS = [IMPLS, DTYPES, list(SIZES), THREADS]


class MaxPool2d(OpSpeed):
    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        return pool_calls(impl, *operands(size, dtype))["forward"]

    @skip_single_thread_references(SPEED_PARAMS, sizes=["pool1 128x26x26x32"])
    def time_max_pool2d(self, impl, dtype, size, threads):
        self.op()

    @skip_all_but(SPEED_PARAMS, OpSpeed.param_names, impl=["numbanet", "numpy"], dtype=["float32"],
                  size=["pool1 128x26x26x32"], threads=["all"])
    def peakmem_max_pool2d(self, impl, dtype, size, threads):
        self.op()


class MaxPool2dBackward(OpSpeed):
    params = SPEED_PARAMS

    def build(self, impl, dtype, size):
        return pool_calls(impl, *operands(size, dtype))["backward"]

    @skip_single_thread_references(SPEED_PARAMS, sizes=["pool1 128x26x26x32"])
    def time_max_pool2d_backward(self, impl, dtype, size, threads):
        self.op()


class MaxPool2dRatio:
    """numbanet / PyTorch time in float32 on all threads, interleaved in one process."""

    params = [list(SIZES)]
    param_names = ["size"]
    unit = "ratio"

    def setup(self, size):
        require("torch")
        set_threads("all")
        args = operands(size, np.dtype("float32"))
        self.numbanet = pool_calls("numbanet", *args)
        self.torch = pool_calls("torch", *args)

    def track_max_pool2d_ratio(self, size):
        return interleaved_ratio(self.numbanet["forward"], self.torch["forward"])

    def track_max_pool2d_backward_ratio(self, size):
        return interleaved_ratio(self.numbanet["backward"], self.torch["backward"])


class MaxPool2dError:
    """float32 vs float64 on the same inputs: 0 when both pick the same maxima (pooling
    does no arithmetic), so a nonzero value means a float32 path rounded something."""

    params = [list(SIZES)]
    param_names = ["size"]
    unit = ERROR_UNIT

    def setup(self, size):
        x32, dy32 = operands(size, np.dtype("float32"))
        self.calls32 = pool_calls("numbanet", x32, dy32)
        self.calls64 = pool_calls("numbanet", x32.astype(np.float64), dy32.astype(np.float64))

    def track_max_pool2d_error(self, size):
        return scaled_error(self.calls32["forward"](), self.calls64["forward"]())

    def track_max_pool2d_backward_error(self, size):
        return scaled_error(self.calls32["backward"](), self.calls64["backward"]())
