"""2-D max pooling kernels, NHWC layout, non-overlapping square windows.

Dimensions: N = batch, H, W = input height and width, C = channels, S = pool size
(window S x S, stride S), OH = H // S, OW = W // S (trailing rows and columns that
do not fill a window are dropped, like Keras "valid" pooling).

The maximum of a window is its first element in row-major order that beats every
earlier one, where "beats" is `v > best`, or v is NaN and best is not: ties go to
the first maximum and a NaN anywhere in the window wins (like torch). The backward
pass recomputes that position from x, so nothing but x is kept between the passes.
"""

import numpy as np
from numba import prange

from numbanet._config import kernel


@kernel
def max_pool2d_forward(x, S, y):
    """x (N, H, W, C) -> y (N, OH, OW, C) = max over each S x S window."""
    N, OH, OW, C = y.shape
    for task in prange(N * OH):
        n = task // OH
        oh = task - n * OH
        for ow in range(OW):
            yr = y[n, oh, ow]
            first = x[n, oh * S, ow * S]
            for c in range(C):
                yr[c] = first[c]
            for i in range(S):
                for j in range(S):
                    xr = x[n, oh * S + i, ow * S + j]
                    for c in range(C):
                        v = xr[c]
                        best = yr[c]
                        yr[c] = v if (v > best or (v != v and best == best)) else best


@kernel
def max_pool2d_backward(dy, x, S, dx):
    """dy (N, OH, OW, C), x (N, H, W, C) -> dx (N, H, W, C).

    dx is dy at each window's maximum (the forward's rule) and 0 elsewhere, including
    the rows and columns no window covers. Channels are the inner loop: a pass over
    the window finds every channel's maximum position, a second writes dx.
    """
    N, OH, OW, C = dy.shape
    H, W = x.shape[1], x.shape[2]
    zero = dx.dtype.type(0)
    for n in prange(N):
        best = np.empty(C, dtype=x.dtype)
        where = np.empty(C, dtype=np.intp)
        for h in range(OH * S, H):
            for w in range(W):
                for c in range(C):
                    dx[n, h, w, c] = zero
        for oh in range(OH):
            for w in range(OW * S, W):
                for i in range(S):
                    for c in range(C):
                        dx[n, oh * S + i, w, c] = zero
            for ow in range(OW):
                first = x[n, oh * S, ow * S]
                for c in range(C):
                    best[c] = first[c]
                    where[c] = 0
                for e in range(1, S * S):
                    xr = x[n, oh * S + e // S, ow * S + e % S]
                    for c in range(C):
                        v = xr[c]
                        b = best[c]
                        beats = v > b or (v != v and b == b)
                        best[c] = v if beats else b
                        where[c] = e if beats else where[c]
                g = dy[n, oh, ow]
                for e in range(S * S):
                    dxr = dx[n, oh * S + e // S, ow * S + e % S]
                    for c in range(C):
                        dxr[c] = g[c] if where[c] == e else zero


@kernel
def max_pool2d_backward_2x2(dy, x, dx):
    """``max_pool2d_backward`` for S = 2, the same dx: each 2 x 2 window in one pass.

    With the window unrolled, a channel's four values, its first maximum (non-short-
    circuit compares) and its four dx values are one straight-line body with no
    per-channel arrays. It indexes x, dy and dx directly: views taken per window made
    it 2.5x slower than the general kernel. On Zen 3 (float32, 1 thread) it ran the
    convnet's pools 1.8x (26 x 26 x 32) and 2.8x (11 x 11 x 64) faster than the general
    kernel. One task per output row of an image.
    """
    N, OH, OW, C = dy.shape
    H, W = x.shape[1], x.shape[2]
    zero = dx.dtype.type(0)
    for task in prange(N * OH):
        n, oh = task // OH, task % OH
        for i in range(2):
            for w in range(2 * OW, W):
                for c in range(C):
                    dx[n, 2 * oh + i, w, c] = zero
        if oh == OH - 1:
            for h in range(2 * OH, H):
                for w in range(W):
                    for c in range(C):
                        dx[n, h, w, c] = zero
        for ow in range(OW):
            h, w = 2 * oh, 2 * ow
            for c in range(C):
                best, v = x[n, h, w, c], x[n, h, w + 1, c]
                e = 1 if ((v > best) | ((v != v) & (best == best))) else 0
                best = v if e == 1 else best
                v = x[n, h + 1, w, c]
                e = 2 if ((v > best) | ((v != v) & (best == best))) else e
                best = v if e == 2 else best
                v = x[n, h + 1, w + 1, c]
                e = 3 if ((v > best) | ((v != v) & (best == best))) else e
                g = dy[n, oh, ow, c]
                dx[n, h, w, c] = g if e == 0 else zero
                dx[n, h, w + 1, c] = g if e == 1 else zero
                dx[n, h + 1, w, c] = g if e == 2 else zero
                dx[n, h + 1, w + 1, c] = g if e == 3 else zero
