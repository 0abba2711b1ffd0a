"""Matrix product C = A @ B over explicit loops.

Dimensions: M = rows of C (batch), K = inner (reduction) dimension, N = columns of C.
Shapes: op(a) (M, K), op(b) (K, N), c (M, N), where op(a) is a, or a.T for a stored
(K, M) with trans_a, and likewise for b. The tile kernels read op(a) as C-contiguous
rows, a itself or a copy packed by ``_pack_rows`` (when a is transposed or large), and
op(b) from contiguous (K, 16) panels packed by ``_pack_strip`` (a transposed operand
through square blocks of ``transpose_block``, kernels/transpose.py; float64 on AVX2
stores each panel as its two (K, 8) halves, SPLIT_F64_PANELS): ``matmul_tiles`` in
parallel tasks, its serial twin ``matmul_tiles_serial`` in the same tasks in order, and
``matmul_rows_serial`` the small products of an a read in place. ``matmul_skinny``
serves a B of at most 16 columns, its vectors down the columns of C. Packed copies and
scratch blocks live in arrays the caller passes (and reuses across calls), so no kernel
allocates.

Every output element is a plain sum over k = 0, 1, ..., K-1 in that order, started at
zero, each term added by one fused multiply-add (``fma``, kernels/fma.py: a * b + acc
rounded once, exactly specified, so the same on every CPU). The order depends on
nothing else, so the fast kernels equal ``matmul_reference`` bit for bit and the
result is the same for any thread count and any partition of C.
"""

from numba import prange, types
from numba.extending import intrinsic
from numpy import int64

from numbanet._config import VECTOR_BYTES, kernel, serial_kernel
from numbanet.kernels.fma import fma
from numbanet.kernels.transpose import BLOCK_BYTES, transpose_block
from numbanet.kernels.views import rows_of_8

# Output tiles are 16 x 16 (16 float32 lanes fill one AVX-512 register), computed as
# register blocks of whole 16-wide rows of C.
TILE = 16

# Rows per register block of whole 16-wide rows of C, sized so the block's accumulators
# fill at most half the vector registers and the k loop never spills: with AVX-512 (32
# zmm) 8 rows take 8 (float32) or 16 (float64) registers; with AVX2 (16 ymm) a 16-wide
# float32 row takes 2, so 4 rows take 8 (8 rows there spill and run 1.3x slower).
# float64 on AVX2 takes a tile in 8-wide halves instead (see _tile_f64_halves).
ROWS_F32 = 8 if VECTOR_BYTES == 64 else 4

# Rows of B packed per pass over its panels (_pack_panels_by_row): one row per pass made
# 128x512x256 1.16x slower than packing panel by panel; blocks of 8 match it.
PACK_ROWS = 8

# Panels of B per packing task when row tasks share them.
PACK_GROUP = 4

# float64 on AVX2 reads a panel in 8-wide halves (_tile_f64_halves), so its panels are
# packed as two (K, 8) halves one after the other (_panel_rows): each half is then a
# contiguous stream, where in a (K, 16) panel it is every other cache line. The tiles
# alone, at 1 thread, over panels stored either way: 1.03-1.18x the speed from
# 784x128x256 to 512^3 (3 runs).
SPLIT_F64_PANELS = VECTOR_BYTES != 64


@intrinsic
def _is_split(typingctx, panel):
    # Whether the packed panel is stored in halves: a constant of its type, so that the
    # packing loops carry no branch on it (tested at run time, as panel.itemsize, the
    # branch made packing up to 1.9x slower).
    split = SPLIT_F64_PANELS and panel.dtype == types.float64

    def codegen(context, builder, signature, args):
        return context.get_constant(types.boolean, split)

    return types.boolean(panel), codegen


@serial_kernel
def matmul_reference(a, b, c):
    # a: (M, K), b: (K, N), c: (M, N). The algorithmic reference the tests compare with.
    zero = c.dtype.type(0)
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            acc = zero
            for k in range(a.shape[1]):
                acc = fma(a[i, k], b[k, j], acc)
            c[i, j] = acc


@serial_kernel
def _load16(r):
    # r: (16,) -> tuple of its 16 values; literal indices keep the loads contiguous.
    return (r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],
            r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15])


@serial_kernel
def _add_scaled16(c, a, b):
    # c + a * b for a 16-tuple c, scalar a, 16-tuple b (one vector fused multiply-add).
    return (fma(a, b[0], c[0]), fma(a, b[1], c[1]), fma(a, b[2], c[2]), fma(a, b[3], c[3]),
            fma(a, b[4], c[4]), fma(a, b[5], c[5]), fma(a, b[6], c[6]), fma(a, b[7], c[7]),
            fma(a, b[8], c[8]), fma(a, b[9], c[9]), fma(a, b[10], c[10]), fma(a, b[11], c[11]),
            fma(a, b[12], c[12]), fma(a, b[13], c[13]), fma(a, b[14], c[14]), fma(a, b[15], c[15]))


@serial_kernel
def _store16(r, c):
    # r: (16,) <- the 16-tuple c
    r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7] = c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
    r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15] = (
        c[8], c[9], c[10], c[11], c[12], c[13], c[14], c[15])


@serial_kernel
def _tile8(a, r0, v, out, oi, oj):
    # a: (R, K) C-contiguous (see _tile_blocks); v: (K, 16) a packed panel of B;
    # out[oi:oi+8, oj:oj+16] = a[r0:r0+8] @ v.
    # Why this shape: the 8 x 16 block of C stays in 8 tuples of scalars for the
    # whole k loop, which the SLP vectoriser turns into vector registers (see
    # ROWS_F32); each k then costs one load of v's 16 values (a whole contiguous row:
    # a column slice of a wider array cost 1.5x the time in slice arithmetic), 8
    # broadcasts of a, and one vector fused multiply-add per register, and never touches
    # C. Rows past the end of a repeat its last row (the caller discards their
    # results), so a needs no padding.
    last = a.shape[0] - 1
    a0, a1, a2, a3 = a[min(r0, last)], a[min(r0 + 1, last)], a[min(r0 + 2, last)], a[min(r0 + 3, last)]
    a4, a5, a6, a7 = a[min(r0 + 4, last)], a[min(r0 + 5, last)], a[min(r0 + 6, last)], a[min(r0 + 7, last)]
    z = out.dtype.type(0)
    acc0 = acc1 = acc2 = acc3 = acc4 = acc5 = acc6 = acc7 = (z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z)
    for k in range(a.shape[1]):
        b = _load16(v[k])
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
def _tile4(a, r0, v, out, oi, oj):
    # out[oi:oi+4, oj:oj+16] = a[r0:r0+4] @ v; _tile8 with 4 rows.
    last = a.shape[0] - 1
    a0, a1, a2, a3 = a[min(r0, last)], a[min(r0 + 1, last)], a[min(r0 + 2, last)], a[min(r0 + 3, last)]
    z = out.dtype.type(0)
    acc0 = acc1 = acc2 = acc3 = (z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z)
    for k in range(a.shape[1]):
        b = _load16(v[k])
        acc0 = _add_scaled16(acc0, a0[k], b)
        acc1 = _add_scaled16(acc1, a1[k], b)
        acc2 = _add_scaled16(acc2, a2[k], b)
        acc3 = _add_scaled16(acc3, a3[k], b)
    _store16(out[oi, oj:oj + TILE], acc0)
    _store16(out[oi + 1, oj:oj + TILE], acc1)
    _store16(out[oi + 2, oj:oj + TILE], acc2)
    _store16(out[oi + 3, oj:oj + TILE], acc3)


@serial_kernel
def _load8(r):
    # r: (8,) -> tuple of its 8 values.
    return (r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7])


@serial_kernel
def _add_scaled8(c, a, b):
    # c + a * b for 8-tuples c, b and a scalar a.
    return (fma(a, b[0], c[0]), fma(a, b[1], c[1]), fma(a, b[2], c[2]), fma(a, b[3], c[3]),
            fma(a, b[4], c[4]), fma(a, b[5], c[5]), fma(a, b[6], c[6]), fma(a, b[7], c[7]))


@serial_kernel
def _store8(r, c):
    # r: (8,) <- the 8-tuple c
    r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7] = c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]


@serial_kernel
def _half6(a, r0, v, out, oi, oj):
    # out[oi:oi+6, oj:oj+8] = a[r0:r0+6] @ v for v (K, 8), half a split panel (see
    # SPLIT_F64_PANELS): _tile8's scheme, 6 rows of 8 float64 (12 ymm accumulators).
    last = a.shape[0] - 1
    a0, a1, a2 = a[min(r0, last)], a[min(r0 + 1, last)], a[min(r0 + 2, last)]
    a3, a4, a5 = a[min(r0 + 3, last)], a[min(r0 + 4, last)], a[min(r0 + 5, last)]
    z = out.dtype.type(0)
    acc0 = acc1 = acc2 = acc3 = acc4 = acc5 = (z, z, z, z, z, z, z, z)
    for k in range(a.shape[1]):
        b = _load8(v[k])
        acc0 = _add_scaled8(acc0, a0[k], b)
        acc1 = _add_scaled8(acc1, a1[k], b)
        acc2 = _add_scaled8(acc2, a2[k], b)
        acc3 = _add_scaled8(acc3, a3[k], b)
        acc4 = _add_scaled8(acc4, a4[k], b)
        acc5 = _add_scaled8(acc5, a5[k], b)
    _store8(out[oi, oj:oj + 8], acc0)
    _store8(out[oi + 1, oj:oj + 8], acc1)
    _store8(out[oi + 2, oj:oj + 8], acc2)
    _store8(out[oi + 3, oj:oj + 8], acc3)
    _store8(out[oi + 4, oj:oj + 8], acc4)
    _store8(out[oi + 5, oj:oj + 8], acc5)


@serial_kernel
def _half4(a, r0, v, out, oi, oj):
    # _half6 with 4 rows.
    last = a.shape[0] - 1
    a0, a1, a2, a3 = a[min(r0, last)], a[min(r0 + 1, last)], a[min(r0 + 2, last)], a[min(r0 + 3, last)]
    z = out.dtype.type(0)
    acc0 = acc1 = acc2 = acc3 = (z, z, z, z, z, z, z, z)
    for k in range(a.shape[1]):
        b = _load8(v[k])
        acc0 = _add_scaled8(acc0, a0[k], b)
        acc1 = _add_scaled8(acc1, a1[k], b)
        acc2 = _add_scaled8(acc2, a2[k], b)
        acc3 = _add_scaled8(acc3, a3[k], b)
    _store8(out[oi, oj:oj + 8], acc0)
    _store8(out[oi + 1, oj:oj + 8], acc1)
    _store8(out[oi + 2, oj:oj + 8], acc2)
    _store8(out[oi + 3, oj:oj + 8], acc3)


@serial_kernel
def _tile_f64_halves(rows, r0, v, out, oi, oj):
    # out[oi:oi+16, oj:oj+16] = rows[r0:r0+16] @ v in float64 on AVX2, each 8-wide half of
    # the split panel v as blocks of 6, 6 and 4 rows. Why: a k step of 2 whole 16-wide rows
    # (8 ymm accumulators) reads 128 bytes of v for 8 multiply-adds, and a 784-deep panel
    # (98 KiB) streams from the L2 cache at about that rate; 6 rows of 8 read 64 bytes for
    # 12 (3 rows of 16 spilled: 0.55x the speed). A 96 x 784 block times one panel:
    # 35 against 30 GFLOP/s (8 of 8 rounds).
    K = v.shape[0]
    halves = rows_of_8(v)
    low, high = halves[:K], halves[K:]
    _half6(rows, r0, low, out, oi, oj)
    _half6(rows, r0 + 6, low, out, oi + 6, oj)
    _half4(rows, r0 + 12, low, out, oi + 12, oj)
    _half6(rows, r0, high, out, oi, oj + 8)
    _half6(rows, r0 + 6, high, out, oi + 6, oj + 8)
    _half4(rows, r0 + 12, high, out, oi + 12, oj + 8)


@serial_kernel
def _nth_block8(rows, r0, n, v, out, oi, oj):
    # Block n of 8 rows of a float64 tile on AVX-512: out[oi+h:oi+h+8] = rows[r0+h:r0+h+8]
    # @ v for h = 8 n. A call of its own, the offset computed inside: with AVX2's former
    # 2-row blocks called straight from the tile, LLVM jammed the k loops of two blocks
    # into one 4-row loop whose 16 accumulators spilled (1.2-1.4x the time).
    h = 8 * n
    _tile8(rows, r0 + h, v, out, oi + h, oj)


@serial_kernel
def _tile_f64_rows(rows, r0, v, out, oi, oj):
    # out[oi:oi+16, oj:oj+16] = rows[r0:r0+16] @ v in float64 on AVX-512: two blocks of 8
    # whole 16-wide rows (16 of the 32 zmm registers).
    for n in range(TILE // 8):
        _nth_block8(rows, r0, n, v, out, oi, oj)


# The host's register blocks (see ROWS_F32).
_block_f32 = _tile8 if ROWS_F32 == 8 else _tile4
_tile_f64 = _tile_f64_rows if VECTOR_BYTES == 64 else _tile_f64_halves


@serial_kernel
def _tile_blocks(rows, r0, v, out, oi, oj):
    # out[oi:oi+16, oj:oj+16] = rows[r0:r0+16] @ v for rows (R, K) C-contiguous (rows
    # past R repeat its last), v a packed (K, 16) panel, in the host's register blocks.
    # A function of its own, always given C-contiguous rows: when one variable held
    # either a's rows or a transposed view, Numba typed it with runtime strides and the
    # k loop spent as many instructions on addresses as on multiply-adds (1.2-1.3x the
    # time).
    if out.itemsize == 4:
        for h in range(0, TILE, ROWS_F32):
            _block_f32(rows, r0 + h, v, out, oi + h, oj)
    else:
        _tile_f64(rows, r0, v, out, oi, oj)


@serial_kernel
def _partial_tile(rows, v, c, scratch, i0, j0):
    # c[i0:, j0:] = the valid part of rows[i0:i0+16] @ v (at most 16 x 16), computed
    # whole into the 16 x 16 scratch block and copied.
    _tile_blocks(rows, i0, v, scratch, 0, 0)
    for i in range(min(TILE, c.shape[0] - i0)):
        for j in range(min(TILE, c.shape[1] - j0)):
            c[i0 + i, j0 + j] = scratch[i, j]


@serial_kernel
def _full_tiles(rows, c, work, s0, s1, p0, p1):
    # The tiles (s, p) of C's tile grid for s0 <= s < s1, p0 <= p < p1, all whole:
    # c[i0:i0+16, j0:j0+16] = rows[i0:i0+16] @ (columns j0:j0+16 of op(b), from their
    # packed panel in work), i0 = 16 s, j0 = 16 p. The register blocks are called
    # straight from this loop: a call of _tile_blocks per tile, or partial tiles
    # handled inside it, cost 1.2-1.5x the time at K = 10 (128 x 10 x 256).
    K = rows.shape[1]
    for s in range(s0, s1):
        i0 = s * TILE
        for p in range(p0, p1):
            v = work[p * K:(p + 1) * K]
            if c.itemsize == 4:
                for h in range(0, TILE, ROWS_F32):
                    _block_f32(rows, i0 + h, v, c, i0 + h, p * TILE)
            else:
                _tile_f64(rows, i0, v, c, i0, p * TILE)


@serial_kernel
def _output_tiles(rows, c, work, s0, s1, p0, p1):
    # The tiles (s, p) of C's tile grid for s0 <= s < s1, p0 <= p < p1 (see
    # _full_tiles): a whole row or column of tiles per call, as a call per tile paid
    # atomic reference-count updates of its array arguments (about 20 ns a tile).
    M, N = c.shape
    K = rows.shape[1]
    n_row_tiles, n_col_tiles = (M + TILE - 1) // TILE, (N + TILE - 1) // TILE
    s_full, p_full = min(s1, M // TILE), min(p1, N // TILE)
    _full_tiles(rows, c, work, s0, s_full, p0, p_full)
    # A partial tile has its own 16 x 16 scratch block: one per tile of the last
    # column, then one per tile of the last row.
    for s in range(s0, s1):
        for p in range(max(p0, p_full) if s < s_full else p0, p1):
            q = n_col_tiles * K + (s if (p + 1) * TILE > N else n_row_tiles + p) * TILE
            _partial_tile(rows, work[p * K:(p + 1) * K], c, work[q:q + TILE], s * TILE, p * TILE)


@serial_kernel
def _gather16(r, r0, last):
    # The 16-tuple r[min(r0 + u, last)] for u = 0..15.
    return (r[min(r0, last)], r[min(r0 + 1, last)], r[min(r0 + 2, last)], r[min(r0 + 3, last)],
            r[min(r0 + 4, last)], r[min(r0 + 5, last)], r[min(r0 + 6, last)], r[min(r0 + 7, last)],
            r[min(r0 + 8, last)], r[min(r0 + 9, last)], r[min(r0 + 10, last)], r[min(r0 + 11, last)],
            r[min(r0 + 12, last)], r[min(r0 + 13, last)], r[min(r0 + 14, last)], r[min(r0 + 15, last)])


@serial_kernel
def _panel_rows(work, start, K, k0, k1):
    # Rows k0 <= k < k1 of the packed (K, 16) panel of op(b) at work[start:start + K], as
    # the one view _store_panel_row writes (each view costs atomic reference counts, paid
    # per block of rows): those rows, or for a panel stored in halves (SPLIT_F64_PANELS)
    # rows k0 to K + k1 of the (2K, 8) array of its halves.
    if _is_split(work):
        return rows_of_8(work)[2 * start + k0:2 * start + K + k1]
    return work[start + k0:start + k1]


@serial_kernel
def _store_panel_row(rows, K, k, row):
    # Row k of the panel rows from _panel_rows <- the 16-tuple row; K is the panel's depth.
    # Callers count k from 0 in a block of rows: an index with an offset added inside the
    # loop keeps its sign test (784x256 packed that way: 1.35x the time).
    if _is_split(rows):
        _store8(rows[k], row[:8])
        _store8(rows[K + k], row[8:])
    else:
        _store16(rows[k], row)


@serial_kernel
def _transpose_into_panel(x, si, sj, panel, k0, u0):
    # transpose_block(x, si, sj, panel, k0, u0) in the layout of _panel_rows (u0 a
    # multiple of the block width, so a block lies in one half).
    if _is_split(panel):
        transpose_block(x, si, sj, rows_of_8(panel), u0 // 8 * panel.shape[0] + k0, u0 % 8)
    else:
        transpose_block(x, si, sj, panel, k0, u0)


@serial_kernel
def _pack_strip(x, trans, r0, out):
    # out[k, u] = X[min(r0 + u, R - 1), k] for X = x (R, K), or x.T for x (K, R) with
    # trans; out: (K, 16). Rows past R repeat row R - 1 (the tile discards them).
    if trans:
        R, K = x.shape[1], x.shape[0]
        rows = _panel_rows(out, 0, K, 0, K)
        if r0 + TILE <= R:
            for k in range(K):
                _store_panel_row(rows, K, k, _load16(x[k, r0:r0 + TILE]))
        else:
            for k in range(K):
                _store_panel_row(rows, K, k, _gather16(x[k], r0, R - 1))
        return
    last = x.shape[0] - 1
    k_blocks = 0
    if r0 + TILE <= x.shape[0]:
        w = BLOCK_BYTES // x.itemsize
        k_blocks = x.shape[1] - x.shape[1] % w
        for k0 in range(0, k_blocks, w):
            for u0 in range(0, TILE, w):
                _transpose_into_panel(x, r0 + u0, k0, out, k0, u0)
    x0, x1, x2, x3 = x[min(r0, last)], x[min(r0 + 1, last)], x[min(r0 + 2, last)], x[min(r0 + 3, last)]
    x4, x5, x6, x7 = x[min(r0 + 4, last)], x[min(r0 + 5, last)], x[min(r0 + 6, last)], x[min(r0 + 7, last)]
    x8, x9, x10, x11 = x[min(r0 + 8, last)], x[min(r0 + 9, last)], x[min(r0 + 10, last)], x[min(r0 + 11, last)]
    x12, x13, x14, x15 = (x[min(r0 + 12, last)], x[min(r0 + 13, last)],
                          x[min(r0 + 14, last)], x[min(r0 + 15, last)])
    K = x.shape[1]
    rows = _panel_rows(out, 0, K, 0, K)
    for k in range(k_blocks, K):
        _store_panel_row(rows, K, k, (x0[k], x1[k], x2[k], x3[k], x4[k], x5[k], x6[k], x7[k],
                                  x8[k], x9[k], x10[k], x11[k], x12[k], x13[k], x14[k], x15[k]))


@serial_kernel
def _pack_panels_by_row(b, work, p0, p1):
    # Panels p0 <= p < p1 of b (K, N) into work, as _pack_strip(b, True, ...) per panel,
    # but reading b a few whole rows at a time: panel by panel, b is read 64 bytes a row
    # at a stride of N values, which the hardware prefetcher does not follow across pages
    # (128x784x512 at 1 thread, in an epoch, packed a row at a time: 0.94x the time of
    # column tasks, each packing its panel). Blocks of rows, because a row at a time
    # writes one line to each panel, K lines apart: at K = 512 every panel's line falls
    # in the same L1 set.
    K, N = b.shape
    n_full = min(p1, N // TILE)
    for k0 in range(0, K, PACK_ROWS):
        rows = b[k0:min(k0 + PACK_ROWS, K)]
        for p in range(p0, n_full):
            out = work[p * K + k0:p * K + k0 + rows.shape[0]]
            for k in range(rows.shape[0]):
                _store16(out[k], _load16(rows[k, p * TILE:(p + 1) * TILE]))
        if n_full < p1:
            out = work[n_full * K + k0:n_full * K + k0 + rows.shape[0]]
            for k in range(rows.shape[0]):
                _store16(out[k], _gather16(rows[k], n_full * TILE, N - 1))


@serial_kernel
def _pack_halves_by_row(b, work, p0, p1):
    # _pack_panels_by_row for panels stored in halves (SPLIT_F64_PANELS), the same blocks
    # of rows. A function of its own: the float32 packing written through _panel_rows took
    # 1.07-1.19x the time of a 128x256x10 product.
    K, N = b.shape
    n_full = min(p1, N // TILE)
    for k0 in range(0, K, PACK_ROWS):
        k1 = min(k0 + PACK_ROWS, K)
        src = b[k0:k1]
        for p in range(p0, p1):
            rows = _panel_rows(work, p * K, K, k0, k1)
            for k in range(k1 - k0):
                if p < n_full:
                    _store_panel_row(rows, K, k, _load16(src[k, p * TILE:(p + 1) * TILE]))
                else:
                    _store_panel_row(rows, K, k, _gather16(src[k], p * TILE, N - 1))


@serial_kernel
def _pack_panels(b, trans_b, work, p0, p1):
    # Panels p0 <= p < p1 of op(b) into work[p K:(p + 1) K], b a block of rows at a time
    # when it is not transposed.
    K = b.shape[1] if trans_b else b.shape[0]
    if trans_b:
        for p in range(p0, p1):
            _pack_strip(b, False, p * TILE, work[p * K:(p + 1) * K])
    elif _is_split(work):
        _pack_halves_by_row(b, work, p0, p1)
    else:
        _pack_panels_by_row(b, work, p0, p1)


@serial_kernel
def _pack_rows(x, trans, r0, out):
    # out[u] = row min(r0 + u, R - 1) of X = x (R, K), or of x.T for x (K, R) with
    # trans; out: (16, K). Rows past R repeat row R - 1 (the tile discards them).
    R, K = (x.shape[1], x.shape[0]) if trans else x.shape
    if trans:
        # k outermost, so each row of x (one cache line of the strip) is read once: with
        # the u loop outside, the strip's K lines were read 16 times, and at a
        # power-of-two row stride (R = 512: 2 KiB) they share two L1 sets and missed
        # every time (512 x 128 packed: 157 -> 27 us).
        k_blocks = 0
        if r0 + TILE <= R:
            w = BLOCK_BYTES // x.itemsize
            k_blocks = K - K % w
            for k0 in range(0, k_blocks, w):
                for u0 in range(0, TILE, w):
                    transpose_block(x, k0, r0 + u0, out, u0, k0)
        for k in range(k_blocks, K):
            row = x[k]
            for u in range(TILE):
                out[u, k] = row[min(r0 + u, R - 1)]
        return
    for u in range(TILE):
        r = min(r0 + u, R - 1)
        for k in range(K):
            out[u, k] = x[r, k]


def workspace_rows(M, K, N):
    """Rows of the (rows, 16) ``work`` array that ``matmul_tiles`` needs: the (K, 16)
    panels of op(b), then a 16 x 16 scratch block per tile of the last row and column."""
    n_strips, n_panels = (M + TILE - 1) // TILE, (N + TILE - 1) // TILE
    return n_panels * K + (n_strips + n_panels) * TILE


def packed_a_rows(M):
    """Rows of the (rows, K) array that holds op(a) packed: M in whole 16-row strips."""
    return (M + TILE - 1) // TILE * TILE


@serial_kernel
def _tile_row(a, trans_a, packed, a_rows, c, work, s):
    # Row s of C's tile grid: pack strip s of op(a) when packed, then every tile of
    # the row while the strip is fresh in the cache.
    if packed:
        _pack_rows(a, trans_a, s * TILE, a_rows[s * TILE:(s + 1) * TILE])
    s = int64(s)  # a prange index is unsigned: mixed with signed ones in min, float64
    _output_tiles(a_rows if packed else a, c, work, s, s + 1, 0, (c.shape[1] + TILE - 1) // TILE)


@serial_kernel
def _tile_column(b, trans_b, rows, c, work, p):
    # Column p of C's tile grid: pack panel p of op(b), then every tile of the column
    # while the panel is fresh in the cache.
    K = rows.shape[1]
    _pack_strip(b, not trans_b, p * TILE, work[p * K:(p + 1) * K])
    p = int64(p)  # a prange index is unsigned: mixed with signed ones in min, float64
    _output_tiles(rows, c, work, 0, (c.shape[0] + TILE - 1) // TILE, p, p + 1)


@serial_kernel
def _pack_shared_a(a, trans_a, c, a_rows):
    # op(a), every strip packed, for column tasks that all read it.
    for s in range((c.shape[0] + TILE - 1) // TILE):
        _pack_rows(a, trans_a, s * TILE, a_rows[s * TILE:(s + 1) * TILE])


@serial_kernel
def matmul_tiles_serial(a, trans_a, b, trans_b, c, pack_a, a_rows, work, column_tasks):
    # The serial twin of matmul_tiles: the same tasks in order.
    n_strips, n_panels = (c.shape[0] + TILE - 1) // TILE, (c.shape[1] + TILE - 1) // TILE
    packed = pack_a or trans_a
    if column_tasks:
        if packed:
            _pack_shared_a(a, trans_a, c, a_rows)
        for p in range(n_panels):
            _tile_column(b, trans_b, a_rows if packed else a, c, work, p)
    else:
        _pack_panels(b, trans_b, work, 0, n_panels)
        for s in range(n_strips):
            _tile_row(a, trans_a, packed, a_rows, c, work, s)


@serial_kernel
def matmul_rows_serial(a, b, trans_b, c, work):
    # c = a @ op(b) on the calling thread, a read in place: matmul_tiles_serial's row tasks
    # without its packing of a or column tasks. Five arguments instead of nine, for the
    # small products whose call Numba's dispatch weighs on (128x256x10: 16.5 against 17.2
    # us a call through the nine).
    n_strips, n_panels = (c.shape[0] + TILE - 1) // TILE, (c.shape[1] + TILE - 1) // TILE
    _pack_panels(b, trans_b, work, 0, n_panels)
    for s in range(n_strips):
        _output_tiles(a, c, work, s, s + 1, 0, n_panels)


@kernel
def matmul_tiles(a, trans_a, b, trans_b, c, pack_a, a_rows, work, column_tasks):
    # a: (M, K), or (K, M) with trans_a; b: (K, N), or (N, K) with trans_b; c: (M, N);
    # a_rows: (>= packed_a_rows(M), K), where op(a) is copied when pack_a or trans_a
    # (otherwise unused: any array of a's type); work: (>= workspace_rows, 16) for the
    # packed panels of op(b) and the partial tiles. The register blocks read op(a) as
    # C-contiguous rows: a itself, or its packed copy (a transposed a always, a large
    # one whose rows would collide in the L1 cache when pack_a).
    # With column_tasks a task packs one panel of B and computes that column of tiles,
    # so each thread reads mostly the panels it packed into its own cache (128x784x256
    # at 2 threads: 0.62 -> 0.54 ms against tasks sharing a B packed beforehand);
    # otherwise a task is a row of tiles, packing its strip of op(a) when packed, after
    # all panels of B are packed by the threads in groups of PACK_GROUP panels (the
    # caller chooses: ops/matmul.py's _column_tasks). That second parallel region costs
    # a launch (about 5 us on oneTBB 2021.11+); packed on the calling thread, B's panels
    # took 200 us of a 128x256x512 trans_b product with cold caches, which then ran 1.2x
    # as fast on 2 threads as on 1; split, the product took 0.81x the time (12 of 15
    # rounds; 0.86x in a 784-512-256-10 epoch, 12 of 12).
    # Each tile owns its block of C and sums over k in order, so any thread may compute
    # any tile.
    n_strips, n_panels = (c.shape[0] + TILE - 1) // TILE, (c.shape[1] + TILE - 1) // TILE
    packed = pack_a or trans_a
    if column_tasks:
        if packed:
            _pack_shared_a(a, trans_a, c, a_rows)
        for p in prange(n_panels):
            _tile_column(b, trans_b, a_rows if packed else a, c, work, p)
    else:
        for g in prange((n_panels + PACK_GROUP - 1) // PACK_GROUP):
            g = int64(g)  # a prange index is unsigned: mixed with signed ones in min, float64
            _pack_panels(b, trans_b, work, g * PACK_GROUP, min((g + 1) * PACK_GROUP, n_panels))
        for s in prange(n_strips):
            _tile_row(a, trans_a, packed, a_rows, c, work, s)


# A skinny C (N <= 16 columns: dW = x.T @ dy and y = h @ W with 10 classes): a 16-wide
# row of C would leave 6 of 16 lanes idle, so this kernel runs its vectors down the
# columns of C instead, over strips of SKINNY_ROWS rows of op(a) laid out as columns,
# SKINNY_COLUMNS columns of C at a time: a transposed a is read in place (contiguous
# there), any other a is transposed a strip at a time first. On AVX-512 a block is 32
# rows by 5 columns, 10 (float32) or 20 (float64) of the 32 zmm registers, each strip
# read once per 5 columns (256x128x10 x.T @ dy: 9.3-9.4 against 11.8-12.2 us for 64
# rows by 2, OpenBLAS 9.0-9.2). On AVX2 it is 32 rows by 2 columns, 16 rows for
# float64, whose 32 rows spilled.
SKINNY_COLUMNS = 5 if VECTOR_BYTES == 64 else 2
SKINNY_ROWS = 32
SKINNY_ROWS_F64 = 32 if VECTOR_BYTES == 64 else 16


@serial_kernel
def _load32(r):
    # r: (32,) -> its values as two 16-tuples (literal indices: one slice per row of a).
    return ((r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],
             r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]),
            (r[16], r[17], r[18], r[19], r[20], r[21], r[22], r[23],
             r[24], r[25], r[26], r[27], r[28], r[29], r[30], r[31]))


@serial_kernel
def _skinny_block32x5(a, i0, v, j0, out):
    # a: (K, >= i0 + 32), op(a) = a.T; v: (K, N) any strides; out: (5, >= 32);
    # out[u, r] = sum over k of a[k, i0 + r] * v[k, min(j0 + u, N - 1)].
    last = v.shape[1] - 1
    j1, j2, j3, j4 = min(j0 + 1, last), min(j0 + 2, last), min(j0 + 3, last), min(j0 + 4, last)
    z = out.dtype.type(0)
    p0 = p1 = q0 = q1 = r0 = r1 = s0 = s1 = t0 = t1 = (z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z)
    for k in range(a.shape[0]):
        x0, x1 = _load32(a[k, i0:i0 + 32])
        b0, b1, b2, b3, b4 = v[k, j0], v[k, j1], v[k, j2], v[k, j3], v[k, j4]
        p0, p1 = _add_scaled16(p0, b0, x0), _add_scaled16(p1, b0, x1)
        q0, q1 = _add_scaled16(q0, b1, x0), _add_scaled16(q1, b1, x1)
        r0, r1 = _add_scaled16(r0, b2, x0), _add_scaled16(r1, b2, x1)
        s0, s1 = _add_scaled16(s0, b3, x0), _add_scaled16(s1, b3, x1)
        t0, t1 = _add_scaled16(t0, b4, x0), _add_scaled16(t1, b4, x1)
    _store16(out[0, 0:16], p0)
    _store16(out[0, 16:32], p1)
    _store16(out[1, 0:16], q0)
    _store16(out[1, 16:32], q1)
    _store16(out[2, 0:16], r0)
    _store16(out[2, 16:32], r1)
    _store16(out[3, 0:16], s0)
    _store16(out[3, 16:32], s1)
    _store16(out[4, 0:16], t0)
    _store16(out[4, 16:32], t1)


@serial_kernel
def _skinny_block32(a, i0, v, j0, out):
    # _skinny_block32x5 over 2 columns; out: (2, >= 32).
    jb = min(j0 + 1, v.shape[1] - 1)
    z = out.dtype.type(0)
    p0 = p1 = q0 = q1 = (z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z)
    for k in range(a.shape[0]):
        x0, x1 = _load32(a[k, i0:i0 + 32])
        s, t = v[k, j0], v[k, jb]
        p0, p1 = _add_scaled16(p0, s, x0), _add_scaled16(p1, s, x1)
        q0, q1 = _add_scaled16(q0, t, x0), _add_scaled16(q1, t, x1)
    _store16(out[0, 0:16], p0)
    _store16(out[0, 16:32], p1)
    _store16(out[1, 0:16], q0)
    _store16(out[1, 16:32], q1)


@serial_kernel
def _skinny_block16(a, i0, v, j0, out):
    # _skinny_block32x5 over 16 rows and 2 columns; out: (2, >= 16).
    jb = min(j0 + 1, v.shape[1] - 1)
    z = out.dtype.type(0)
    p0 = q0 = (z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z)
    for k in range(a.shape[0]):
        x0 = _load16(a[k, i0:i0 + 16])
        s, t = v[k, j0], v[k, jb]
        p0 = _add_scaled16(p0, s, x0)
        q0 = _add_scaled16(q0, t, x0)
    _store16(out[0, 0:16], p0)
    _store16(out[1, 0:16], q0)


if VECTOR_BYTES == 64:
    _skinny_block_f32 = _skinny_block_f64 = _skinny_block32x5
else:
    _skinny_block_f32, _skinny_block_f64 = _skinny_block32, _skinny_block16


def skinny_workspace_shape(K, dtype):
    """Shape of the ``work`` array that ``matmul_skinny`` needs for the numpy ``dtype``:
    a strip of op(a) as (K, rows) columns, then a block's SKINNY_COLUMNS columns of C."""
    return K + SKINNY_COLUMNS, SKINNY_ROWS if dtype.itemsize == 4 else SKINNY_ROWS_F64


@serial_kernel
def _strip_as_columns(a, trans_a, i0, strip):
    # strip[k, r] = op(a)[min(i0 + r, M - 1), k] for r < strip.shape[1]: rows past M repeat
    # row M - 1 (the caller discards them). A not transposed moves through
    # transpose_block where whole blocks of rows exist, a row of the strip at a time
    # (with the blocks of a row of a innermost instead: 1.5x the time).
    M = a.shape[1] if trans_a else a.shape[0]
    K, rows = strip.shape
    if trans_a:
        for k in range(K):
            for r in range(rows):
                strip[k, r] = a[k, min(i0 + r, M - 1)]
        return
    w = BLOCK_BYTES // a.itemsize
    whole = min(rows, M - i0) // w * w
    k_blocks = K - K % w
    for k0 in range(0, k_blocks, w):
        for r0 in range(0, whole, w):
            transpose_block(a, i0 + r0, k0, strip, k0, r0)
    for k in range(k_blocks, K):
        for r in range(whole):
            strip[k, r] = a[i0 + r, k]
    for k in range(K):
        for r in range(whole, rows):
            strip[k, r] = a[min(i0 + r, M - 1), k]


@serial_kernel
def matmul_skinny(a, trans_a, b, trans_b, c, work):
    # a: (M, K), or (K, M) with trans_a; b: (K, N), or (N, K) with trans_b; c: (M, N)
    # with N <= 16; work: C-contiguous, skinny_workspace_shape(K, c.dtype) (more rows
    # allowed). Serial: it serves shapes below SERIAL_MACS, and every shape on one thread.
    M, N = c.shape
    K = a.shape[0] if trans_a else a.shape[1]
    v = b.T if trans_b else b
    rows = work.shape[1]
    strip, out = work[:K], work[K:K + SKINNY_COLUMNS]
    for i0 in range(0, M, rows):
        src, s0 = a, i0
        if not trans_a or i0 + rows > M:
            _strip_as_columns(a, trans_a, i0, strip)
            src, s0 = strip, 0
        for j0 in range(0, N, SKINNY_COLUMNS):
            if c.itemsize == 4:
                _skinny_block_f32(src, s0, v, j0, out)
            else:
                _skinny_block_f64(src, s0, v, j0, out)
            for u in range(min(SKINNY_COLUMNS, N - j0)):
                for r in range(min(rows, M - i0)):
                    c[i0 + r, j0 + u] = out[u, r]
