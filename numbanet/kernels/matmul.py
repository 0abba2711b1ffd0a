"""Matrix product C = A @ B over explicit loops.

Dimensions: M = rows of C (batch), K = inner (reduction) dimension, N = columns of C.
Shapes: op(a) (M, K), op(b) (K, N), c (M, N), where op(a) is a, or a.T for a stored
(K, M) with trans_a, and likewise for b. The tile kernels read op(a) in place through
its strides (or from 16-row strips packed when a is large) and op(b) from 16-column
panels packed by ``_pack_strip`` (or in place when it is not transposed and few rows
would reuse the panels).

Every output element is a plain sum over k = 0, 1, ..., K-1 in that order, started at
zero, with one multiply and one add per term (fastmath=False: no FMA contraction). The
order depends on nothing else, so the fast kernel equals ``matmul_reference`` bit for
bit and the result is the same for any thread count and any partition of C.
"""

import numpy as np
from numba import prange

from numbanet._config import kernel, serial_kernel

# Output tiles are 16 x 16 (16 float32 lanes fill one AVX-512 register), computed as
# two register blocks of 8 rows each.
TILE = 16
HALF = 8


@serial_kernel
def matmul_reference(a, b, c):
    # a: (M, K), b: (K, N), c: (M, N). The algorithmic reference the tests compare with.
    zero = c.dtype.type(0)
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            acc = zero
            for k in range(a.shape[1]):
                acc += a[i, k] * b[k, j]
            c[i, j] = acc


@serial_kernel
def _load16(r):
    # r: (16,) -> tuple of its 16 values; literal indices keep the loads contiguous.
    return (r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],
            r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15])


@serial_kernel
def _add_scaled16(c, a, b):
    # c + a * b for a 16-tuple c, scalar a, 16-tuple b (one vector multiply and add).
    return (c[0] + a * b[0], c[1] + a * b[1], c[2] + a * b[2], c[3] + a * b[3],
            c[4] + a * b[4], c[5] + a * b[5], c[6] + a * b[6], c[7] + a * b[7],
            c[8] + a * b[8], c[9] + a * b[9], c[10] + a * b[10], c[11] + a * b[11],
            c[12] + a * b[12], c[13] + a * b[13], c[14] + a * b[14], c[15] + a * b[15])


@serial_kernel
def _store16(r, c):
    # r: (16,) <- the 16-tuple c
    r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7] = c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
    r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15] = (
        c[8], c[9], c[10], c[11], c[12], c[13], c[14], c[15])


@serial_kernel
def _tile(a, r0, v, j0, out, oi, oj):
    # a: (R, K) any strides; v: (K, >= j0 + 16);
    # out[oi:oi+8, oj:oj+16] = a[r0:r0+8] @ v[:, j0:j0+16].
    # Why this shape: the 8 x 16 block of C stays in 8 tuples of scalars for the
    # whole k loop, which the SLP vectoriser turns into 8 (float32) or 16 (float64)
    # zmm registers, half the register file, so nothing spills in either dtype; each k
    # then costs one or two vector loads of v, 8 broadcasts of a, and one vector
    # multiply and add per register, and never touches C. Rows past the end of a
    # repeat its last row (the caller discards their results), so a needs no padding;
    # a is read through its strides, so a transposed operand is read in place.
    last = a.shape[0] - 1
    a0, a1, a2, a3 = a[min(r0, last)], a[min(r0 + 1, last)], a[min(r0 + 2, last)], a[min(r0 + 3, last)]
    a4, a5, a6, a7 = a[min(r0 + 4, last)], a[min(r0 + 5, last)], a[min(r0 + 6, last)], a[min(r0 + 7, last)]
    z = out.dtype.type(0)
    acc0 = acc1 = acc2 = acc3 = acc4 = acc5 = acc6 = acc7 = (z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z)
    for k in range(a.shape[1]):
        b = _load16(v[k, j0:j0 + TILE])
        acc0 = _add_scaled16(acc0, a0[k], b)
        acc1 = _add_scaled16(acc1, a1[k], b)
        acc2 = _add_scaled16(acc2, a2[k], b)
        acc3 = _add_scaled16(acc3, a3[k], b)
        acc4 = _add_scaled16(acc4, a4[k], b)
        acc5 = _add_scaled16(acc5, a5[k], b)
        acc6 = _add_scaled16(acc6, a6[k], b)
        acc7 = _add_scaled16(acc7, a7[k], b)
    _store16(out[oi, oj:oj + TILE], acc0)
    _store16(out[oi + 1, oj:oj + TILE], acc1)
    _store16(out[oi + 2, oj:oj + TILE], acc2)
    _store16(out[oi + 3, oj:oj + TILE], acc3)
    _store16(out[oi + 4, oj:oj + TILE], acc4)
    _store16(out[oi + 5, oj:oj + TILE], acc5)
    _store16(out[oi + 6, oj:oj + TILE], acc6)
    _store16(out[oi + 7, oj:oj + TILE], acc7)


@serial_kernel
def _output_tile(a, trans_a, a_strips, a_first, b, b_panels, b_first, c, t):
    # Tile t of C in row-major order over the tile grid: c[i0:i0+16, j0:j0+16].
    # op(a) rows i0:i0+16 come from a in place (a.T when trans_a), or from the packed
    # strip when i0 / 16 >= a_first; B's columns j0:j0+16 come from b in place, or from
    # the packed panel when j0 / 16 >= b_first.
    M, N = c.shape
    n_col_tiles = (N + TILE - 1) // TILE
    s, p = t // n_col_tiles, t % n_col_tiles
    i0, j0 = s * TILE, p * TILE
    if s >= a_first:
        rows = a_strips[s - a_first].T[:, ::1]
    elif trans_a:
        rows = a.T[i0:i0 + TILE, ::1]
    else:
        rows = a[i0:i0 + TILE, ::1]
    if p >= b_first:
        v, vj0 = b_panels[p - b_first], 0
    else:
        v, vj0 = b, j0
    full = i0 + TILE <= M and j0 + TILE <= N
    # A partial tile is computed whole into a scratch block and its valid part copied.
    out, oi, oj = (c, i0, j0) if full else (np.empty((TILE, TILE), dtype=c.dtype), 0, 0)
    for h in range(0, TILE, HALF):
        _tile(rows, h, v, vj0, out, oi + h, oj)
    if not full:
        for i in range(min(TILE, M - i0)):
            for j in range(min(TILE, N - j0)):
                c[i0 + i, j0 + j] = out[i, j]


@serial_kernel
def _pack_strip(x, trans, r0, out):
    # out[k, u] = X[min(r0 + u, R - 1), k] for X = x (R, K), or x.T for x (K, R) with
    # trans; out: (K, 16). Rows past R repeat row R - 1 (the tile discards them).
    if trans:
        R = x.shape[1]
        if r0 + TILE <= R:
            for k in range(x.shape[0]):
                _store16(out[k], _load16(x[k, r0:r0 + TILE]))
        else:
            for k in range(x.shape[0]):
                for u in range(R - r0):
                    out[k, u] = x[k, r0 + u]
                for u in range(R - r0, TILE):
                    out[k, u] = x[k, R - 1]
        return
    last = x.shape[0] - 1
    x0, x1, x2, x3 = x[min(r0, last)], x[min(r0 + 1, last)], x[min(r0 + 2, last)], x[min(r0 + 3, last)]
    x4, x5, x6, x7 = x[min(r0 + 4, last)], x[min(r0 + 5, last)], x[min(r0 + 6, last)], x[min(r0 + 7, last)]
    x8, x9, x10, x11 = x[min(r0 + 8, last)], x[min(r0 + 9, last)], x[min(r0 + 10, last)], x[min(r0 + 11, last)]
    x12, x13, x14, x15 = (x[min(r0 + 12, last)], x[min(r0 + 13, last)],
                          x[min(r0 + 14, last)], x[min(r0 + 15, last)])
    for k in range(x.shape[1]):
        _store16(out[k], (x0[k], x1[k], x2[k], x3[k], x4[k], x5[k], x6[k], x7[k],
                          x8[k], x9[k], x10[k], x11[k], x12[k], x13[k], x14[k], x15[k]))


@serial_kernel
def _packed_operands(a, trans_a, b, trans_b, c, pack_a, pack_b):
    # Scratch strips for op(a) and panels for op(b) (filled by the caller), and the
    # first strip / panel index that is read from them rather than in place. B is
    # always packed when transposed (its columns are not contiguous), and its last,
    # partial panel always (a 16-wide load would run past column N).
    M, N = c.shape
    K = a.shape[0] if trans_a else a.shape[1]
    n_strips, n_panels = (M + TILE - 1) // TILE, (N + TILE - 1) // TILE
    a_first = 0 if pack_a else n_strips
    b_first = 0 if pack_b or trans_b else N // TILE
    a_strips = np.empty((n_strips - a_first, K, TILE), dtype=c.dtype)
    b_panels = np.empty((n_panels - b_first, K, TILE), dtype=c.dtype)
    return a_strips, a_first, b_panels, b_first


@serial_kernel
def matmul_tiles_serial(a, trans_a, b, trans_b, c, pack_a, pack_b):
    # a: (M, K), or (K, M) with trans_a; b: (K, N), or (N, K) with trans_b; c: (M, N).
    # The serial twin of matmul_tiles.
    a_strips, a_first, b_panels, b_first = _packed_operands(a, trans_a, b, trans_b, c, pack_a, pack_b)
    for s in range(a_strips.shape[0]):
        _pack_strip(a, trans_a, (a_first + s) * TILE, a_strips[s])
    for p in range(b_panels.shape[0]):
        _pack_strip(b, not trans_b, (b_first + p) * TILE, b_panels[p])
    n_tiles = ((c.shape[0] + TILE - 1) // TILE) * ((c.shape[1] + TILE - 1) // TILE)
    for t in range(n_tiles):
        _output_tile(a, trans_a, a_strips, a_first, b, b_panels, b_first, c, t)


@kernel
def matmul_tiles(a, trans_a, b, trans_b, c, pack_a, pack_b):
    # a: (M, K), or (K, M) with trans_a; b: (K, N), or (N, K) with trans_b; c: (M, N).
    # Each tile owns its block of C and sums over k in order, so any thread may
    # compute any tile; packing fills disjoint strips.
    a_strips, a_first, b_panels, b_first = _packed_operands(a, trans_a, b, trans_b, c, pack_a, pack_b)
    if a_strips.shape[0] > 0:
        for s in prange(a_strips.shape[0]):
            _pack_strip(a, trans_a, (a_first + s) * TILE, a_strips[s])
    if b_panels.shape[0] > 0:
        for p in prange(b_panels.shape[0]):
            _pack_strip(b, not trans_b, (b_first + p) * TILE, b_panels[p])
    n_tiles = ((c.shape[0] + TILE - 1) // TILE) * ((c.shape[1] + TILE - 1) // TILE)
    for t in prange(n_tiles):
        _output_tile(a, trans_a, a_strips, a_first, b, b_panels, b_first, c, t)
