"""2-D convolution kernels, NHWC layout, weights in the Keras layout.

Dimensions: N = batch, H, W = input height and width, C = input channels,
F = output channels (filters), KH, KW = kernel height and width, s = stride,
OH, OW = output height and width, P = OH*OW output positions per image,
K = KH*KW*C = length of the reduction behind each output.

A "valid" correlation with stride s (padding is done by the caller):
    y[n, oh, ow, f] = b[f] + sum_{kh, kw, c} x[n, oh*s + kh, ow*s + kw, c] * w[kh, kw, c, f]
In NHWC this is a matmul of the (N*P, K) patch matrix, read from x in place (no
im2col copy), with w viewed as (K, F); the two gradients are matmuls of the same kind.

Register tiles: each kernel's main loop holds a tile of sums (4 output positions or
taps x 16 channels; 2 positions x 32 channels in the forward of inputs with few
channels, 4 positions x 16 taps in their input gradient; for the weight gradient
16 x 16 channels of inputs with 16 or more channels on AVX-512, and on AVX2 6 taps x
16 channels, or 3 taps x 32 below 16 channels) in
scalar locals, or in 16-tuples (matmul's ``_load16``/``_add_scaled16``/``_store16``),
for the whole reduction. LLVM's SLP vectoriser (on in numbanet's kernels) turns each
row of 16 into one or two SIMD registers, so a reduction step is 4 broadcasts, one
16-wide load and 64 multiply-adds with no stores; an accumulate-into-memory loop over
the channel axis ran 2.6x slower. The forward and the AVX2 6-tap weight gradient read
a window row x[n, i, j : j + KW, :] as KW*C contiguous values, so tap (kw, c) is one
index kw*C + c. Tile edges take plain loops, or (where one task owns the whole edge)
the last tile is moved back to end at the edge and recomputes a few sums to the same
bits. The terms of every sum are added one at a time in a fixed order (the forward's
exactly as ``conv2d_forward_naive`` adds them), each by one fused multiply-add
(``fma``, kernels/fma.py, as in matmul); each output element is owned by one task, and
the weight gradient sums the batch in fixed chunks of BATCH_CHUNK images combined in
chunk order: results are bit-identical for any thread count.
"""

import numpy as np
from numba import prange

from numbanet._config import kernel, serial_kernel
from numbanet.kernels.fma import fma
from numbanet.kernels.matmul import _add_scaled16, _load16, _store16

# Images per partial sum of the weight gradient; fixed so the sum order never
# depends on the number of threads.
BATCH_CHUNK = 8


@serial_kernel
def kernel_taps(KH, KW, C):
    """taps[k] = (kh, kw, c) of reduction index k, in the order the kernels sum them."""
    taps = np.empty((KH * KW * C, 3), dtype=np.intp)
    k = 0
    for kh in range(KH):
        for kw in range(KW):
            for c in range(C):
                taps[k, 0] = kh
                taps[k, 1] = kw
                taps[k, 2] = c
                k += 1
    return taps


@serial_kernel
def conv2d_forward_naive(x, w, b, stride, y):
    """The reference loop: x (N, H, W, C), w (KH, KW, C, F), b (F,) -> y (N, OH, OW, F)."""
    N, OH, OW, F = y.shape
    KH, KW, C, _ = w.shape
    for n in range(N):
        for oh in range(OH):
            for ow in range(OW):
                for f in range(F):
                    acc = b[f]
                    for kh in range(KH):
                        for kw in range(KW):
                            for c in range(C):
                                acc = fma(x[n, oh * stride + kh, ow * stride + kw, c], w[kh, kw, c, f], acc)
                    y[n, oh, ow, f] = acc


@serial_kernel
def _position(p, OW):
    """(oh, ow) of flat output position p."""
    oh = p // OW
    return oh, p - oh * OW


@serial_kernel
def _forward_image(x, w, b, C, stride, y, n):
    """y[n] by the plain loop (x, w in window-row layout), for images too small for a tile."""
    OH, OW, F = y.shape[1], y.shape[2], y.shape[3]
    KH, KWC = w.shape[0], w.shape[1]
    for oh in range(OH):
        for ow in range(OW):
            for f in range(F):
                acc = b[f]
                for kh in range(KH):
                    for j in range(KWC):
                        acc = fma(x[n, oh * stride + kh, ow * stride * C + j], w[kh, j, f], acc)
                y[n, oh, ow, f] = acc


@kernel
def conv2d_forward(x, w, b, C, stride, y):
    """x (N, H, W*C), w (KH, KW*C, F), b (F,) -> y (N, OH, OW, F), tiles of 4 positions x 16 channels.

    x and w come in window-row layout (the op's reshaped views of the NHWC input and
    the Keras weights): a window row x[n, oh*s + kh, ow*s : ow*s + KW, :] is the KW*C
    contiguous values x[n, oh*s + kh, ow*s*C : ow*s*C + KW*C] and w[kh] is a (KW*C, F)
    matrix, so each output is b plus KH dot products of length KW*C, added term by
    term in (kh, kw, c) order like ``conv2d_forward_naive``. One task per image; the
    last tile of positions and of channels is moved back to end at P and F (it
    recomputes some outputs of the tile before, to the same bits), so only images
    with P < 4 or F < 16 take the plain loop.
    """
    N = x.shape[0]
    KH, KWC = w.shape[0], w.shape[1]
    OH, OW, F = y.shape[1], y.shape[2], y.shape[3]
    P = OH * OW
    for n in prange(N):
        if P < 4 or F < 16:
            _forward_image(x, w, b, C, stride, y, n)
            continue
        for tp in range((P + 3) // 4):
            p0 = min(4 * tp, P - 4)
            oh0, ow0 = _position(p0, OW)
            oh1, ow1 = _position(p0 + 1, OW)
            oh2, ow2 = _position(p0 + 2, OW)
            oh3, ow3 = _position(p0 + 3, OW)
            for tf in range((F + 15) // 16):
                f0 = min(16 * tf, F - 16)
                s0 = s1 = s2 = s3 = _load16(b[f0 : f0 + 16])
                for kh in range(KH):
                    x0 = x[n, oh0 * stride + kh, ow0 * stride * C : ow0 * stride * C + KWC]
                    x1 = x[n, oh1 * stride + kh, ow1 * stride * C : ow1 * stride * C + KWC]
                    x2 = x[n, oh2 * stride + kh, ow2 * stride * C : ow2 * stride * C + KWC]
                    x3 = x[n, oh3 * stride + kh, ow3 * stride * C : ow3 * stride * C + KWC]
                    wk = w[kh]
                    for j in range(KWC):
                        wr = _load16(wk[j, f0 : f0 + 16])
                        s0 = _add_scaled16(s0, x0[j], wr)
                        s1 = _add_scaled16(s1, x1[j], wr)
                        s2 = _add_scaled16(s2, x2[j], wr)
                        s3 = _add_scaled16(s3, x3[j], wr)
                _store16(y[n, oh0, ow0, f0 : f0 + 16], s0)
                _store16(y[n, oh1, ow1, f0 : f0 + 16], s1)
                _store16(y[n, oh2, ow2, f0 : f0 + 16], s2)
                _store16(y[n, oh3, ow3, f0 : f0 + 16], s3)


@kernel
def conv2d_forward_wide(x, w, b, C, stride, y):
    """``conv2d_forward`` with tiles of 2 neighbouring positions x 32 channels, for few input channels.

    The same sums in the same order. With few input channels a window row is short
    (3 values for the first layer's 3 x 3 x 1), so each tile's setup outweighs its
    reduction: 2 positions of one output row share each row of x, and 32 channels
    keep the same 8 ymm of sums as 4 x 16. On Zen 3 this ran conv1 (28 x 28 x 1 -> 32)
    2.1-2.6x faster than 4 x 16 (3 x 32 spilled; 2 flat positions with a row of x each
    were 1.3x slower); with 32 input channels it was 1.3x slower. The last tile of a
    row and of channels is moved back as in ``conv2d_forward``; images with OW < 2 or
    F < 32 take the plain loop.
    """
    N = x.shape[0]
    KH, KWC = w.shape[0], w.shape[1]
    OH, OW, F = y.shape[1], y.shape[2], y.shape[3]
    step = stride * C
    for n in prange(N):
        if OW < 2 or F < 32:
            _forward_image(x, w, b, C, stride, y, n)
            continue
        for oh in range(OH):
            for tq in range((OW + 1) // 2):
                ow0 = min(2 * tq, OW - 2)
                for tf in range((F + 31) // 32):
                    f0 = min(32 * tf, F - 32)
                    s0 = s1 = _load16(b[f0 : f0 + 16])
                    t0 = t1 = _load16(b[f0 + 16 : f0 + 32])
                    for kh in range(KH):
                        x0 = x[n, oh * stride + kh, ow0 * step :]
                        x1 = x0[step:]
                        wk = w[kh]
                        for j in range(KWC):
                            wr = _load16(wk[j, f0 : f0 + 16])
                            vr = _load16(wk[j, f0 + 16 : f0 + 32])
                            s0 = _add_scaled16(s0, x0[j], wr)
                            t0 = _add_scaled16(t0, x0[j], vr)
                            s1 = _add_scaled16(s1, x1[j], wr)
                            t1 = _add_scaled16(t1, x1[j], vr)
                    _store16(y[n, oh, ow0, f0 : f0 + 16], s0)
                    _store16(y[n, oh, ow0, f0 + 16 : f0 + 32], t0)
                    _store16(y[n, oh, ow0 + 1, f0 : f0 + 16], s1)
                    _store16(y[n, oh, ow0 + 1, f0 + 16 : f0 + 32], t1)


@serial_kernel
def _add_into16(r, s):
    # r: (16,) += the 16-tuple s
    _store16(r, (r[0] + s[0], r[1] + s[1], r[2] + s[2], r[3] + s[3], r[4] + s[4], r[5] + s[5],
                 r[6] + s[6], r[7] + s[7], r[8] + s[8], r[9] + s[9], r[10] + s[10], r[11] + s[11],
                 r[12] + s[12], r[13] + s[13], r[14] + s[14], r[15] + s[15]))


@serial_kernel
def _input_edge(dyn, wk, kh, kw, stride, p_start, c_start, dxn):
    """Plain loop: dxn[tap of p, c] += sum_f dyn[p, f] * wk[f, c] for positions p >= p_start
    with all channels, and positions below p_start with channels c >= c_start."""
    OH, OW, F = dyn.shape
    C = wk.shape[1]
    zero = dxn.dtype.type(0)
    for p in range(OH * OW):
        oh, ow = _position(p, OW)
        for c in range(c_start if p < p_start else 0, C):
            acc = zero
            for f in range(F):
                acc = fma(dyn[oh, ow, f], wk[f, c], acc)
            dxn[oh * stride + kh, ow * stride + kw, c] += acc


@kernel
def conv2d_backward_input(dy, wt, stride, dx):
    """dy (N, OH, OW, F), wt (KH, KW, F, C) = w transposed -> dx (N, H, W, C).

    dx[n, oh*s + kh, ow*s + kw, c] += sum_f dy[n, oh, ow, f] * w[kh, kw, c, f]. For each
    tap, a 4-position x 16-channel tile of sums over f is held in registers, then added
    to dx. Taps of different positions land on the same dx elements, so one task owns
    one image and each dx element adds its taps in (kh, kw) order.
    """
    N, OH, OW, F = dy.shape
    KH, KW, _, C = wt.shape
    n_tp, n_tc = OH * OW // 4, C // 16
    zero = dx.dtype.type(0)
    for n in prange(N):
        dxn = dx[n]
        dyn = dy[n]
        for i in range(dxn.shape[0]):
            for j in range(dxn.shape[1]):
                for c in range(C):
                    dxn[i, j, c] = zero
        for kh in range(KH):
            for kw in range(KW):
                wk = wt[kh, kw]
                for tp in range(n_tp):
                    oh0, ow0 = _position(4 * tp + 0, OW)
                    oh1, ow1 = _position(4 * tp + 1, OW)
                    oh2, ow2 = _position(4 * tp + 2, OW)
                    oh3, ow3 = _position(4 * tp + 3, OW)
                    d0, d1, d2, d3 = dyn[oh0, ow0], dyn[oh1, ow1], dyn[oh2, ow2], dyn[oh3, ow3]
                    for c0 in range(0, 16 * n_tc, 16):
                        s0 = s1 = s2 = s3 = (zero, zero, zero, zero, zero, zero, zero, zero,
                                             zero, zero, zero, zero, zero, zero, zero, zero)
                        for f in range(F):
                            wr = _load16(wk[f, c0 : c0 + 16])
                            s0 = _add_scaled16(s0, d0[f], wr)
                            s1 = _add_scaled16(s1, d1[f], wr)
                            s2 = _add_scaled16(s2, d2[f], wr)
                            s3 = _add_scaled16(s3, d3[f], wr)
                        _add_into16(dxn[oh0 * stride + kh, ow0 * stride + kw, c0 : c0 + 16], s0)
                        _add_into16(dxn[oh1 * stride + kh, ow1 * stride + kw, c0 : c0 + 16], s1)
                        _add_into16(dxn[oh2 * stride + kh, ow2 * stride + kw, c0 : c0 + 16], s2)
                        _add_into16(dxn[oh3 * stride + kh, ow3 * stride + kw, c0 : c0 + 16], s3)
                _input_edge(dyn, wk, kh, kw, stride, 4 * n_tp, 16 * n_tc, dxn)


@kernel
def conv2d_backward_input_avx2(dy, wt, stride, dx):
    """``conv2d_backward_input`` for float64 on AVX2: a 2-position x 16-channel tile.

    The 4 x 16 float64 tile needs all 16 of AVX2's ymm registers and spills; this one
    holds 8, and ran the 32->64 layer 1.2x faster on this machine (Zen 3, 1 thread).
    In float32 the 4 x 16 tile (8 ymm) is faster. Sums, their order and the tasks are
    as in ``conv2d_backward_input``; positions and channels beyond the last full tile
    take the plain loop.
    """
    N, OH, OW, F = dy.shape
    KH, KW, _, C = wt.shape
    n_tp, n_tc = OH * OW // 2, C // 16
    zero = dx.dtype.type(0)
    for n in prange(N):
        dxn = dx[n]
        dyn = dy[n]
        for i in range(dxn.shape[0]):
            for j in range(dxn.shape[1]):
                for c in range(C):
                    dxn[i, j, c] = zero
        for kh in range(KH):
            for kw in range(KW):
                wk = wt[kh, kw]
                for tp in range(n_tp):
                    oh0, ow0 = _position(2 * tp + 0, OW)
                    oh1, ow1 = _position(2 * tp + 1, OW)
                    d0, d1 = dyn[oh0, ow0], dyn[oh1, ow1]
                    for c0 in range(0, 16 * n_tc, 16):
                        s0 = s1 = (zero, zero, zero, zero, zero, zero, zero, zero,
                                   zero, zero, zero, zero, zero, zero, zero, zero)
                        for f in range(F):
                            wr = _load16(wk[f, c0 : c0 + 16])
                            s0 = _add_scaled16(s0, d0[f], wr)
                            s1 = _add_scaled16(s1, d1[f], wr)
                        _add_into16(dxn[oh0 * stride + kh, ow0 * stride + kw, c0 : c0 + 16], s0)
                        _add_into16(dxn[oh1 * stride + kh, ow1 * stride + kw, c0 : c0 + 16], s1)
                _input_edge(dyn, wk, kh, kw, stride, 2 * n_tp, 16 * n_tc, dxn)


@serial_kernel
def _tap_sums4(d0, d1, d2, d3, wk, sums):
    """sums[r, k] = sum_f dr[f] * wk[f, k], f in order, for the rows d0..d3 of dy and every column k.

    A 4-position x 16-column tile of sums per 16 columns of wk, held in registers for
    the whole sum over f.
    """
    zero = sums.dtype.type(0)
    for k0 in range(0, wk.shape[1], 16):
        s0 = s1 = s2 = s3 = (zero, zero, zero, zero, zero, zero, zero, zero,
                             zero, zero, zero, zero, zero, zero, zero, zero)
        for f in range(wk.shape[0]):
            wr = _load16(wk[f, k0 : k0 + 16])
            s0 = _add_scaled16(s0, d0[f], wr)
            s1 = _add_scaled16(s1, d1[f], wr)
            s2 = _add_scaled16(s2, d2[f], wr)
            s3 = _add_scaled16(s3, d3[f], wr)
        _store16(sums[0, k0 : k0 + 16], s0)
        _store16(sums[1, k0 : k0 + 16], s1)
        _store16(sums[2, k0 : k0 + 16], s2)
        _store16(sums[3, k0 : k0 + 16], s3)


@serial_kernel
def _tap_sums1(d, wk, sums):
    """``_tap_sums4`` for one row d of dy, into sums[0]."""
    zero = sums.dtype.type(0)
    for k0 in range(0, wk.shape[1], 16):
        s = (zero, zero, zero, zero, zero, zero, zero, zero,
             zero, zero, zero, zero, zero, zero, zero, zero)
        for f in range(wk.shape[0]):
            s = _add_scaled16(s, d[f], _load16(wk[f, k0 : k0 + 16]))
        _store16(sums[0, k0 : k0 + 16], s)


@serial_kernel
def _add_tap_sums4(sums, KH, KWC, rows, cols, dxn):
    """dxn[rows[r] + kh, cols[r] + j] += sums[r, kh*KWC + j] for the 4 positions r of a tile.

    dxn (H, W*C) is in window-row layout, so the taps of kernel row kh are KWC
    contiguous values. Tap by tap, each over the 4 positions in descending order:
    within a tile an element's terms come from different taps, so this is ascending
    (kh, kw) order, and consecutive adds reach different elements (adding a whole
    position at a time, whose next add waits on the previous one, ran 1.1x slower).
    """
    for kh in range(KH):
        k = kh * KWC
        r0 = dxn[rows[0] + kh, cols[0] : cols[0] + KWC]
        r1 = dxn[rows[1] + kh, cols[1] : cols[1] + KWC]
        r2 = dxn[rows[2] + kh, cols[2] : cols[2] + KWC]
        r3 = dxn[rows[3] + kh, cols[3] : cols[3] + KWC]
        t0, t1, t2, t3 = sums[0, k : k + KWC], sums[1, k : k + KWC], sums[2, k : k + KWC], sums[3, k : k + KWC]
        for j in range(KWC):
            r3[j] += t3[j]
            r2[j] += t2[j]
            r1[j] += t1[j]
            r0[j] += t0[j]


@serial_kernel
def _add_tap_sums1(t, KH, KWC, i, j0, dxn):
    """dxn[i + kh, j0 + j] += t[kh*KWC + j]: one position's tap sums (as ``_add_tap_sums4``)."""
    for kh in range(KH):
        row = dxn[i + kh, j0 : j0 + KWC]
        tk = t[kh * KWC : (kh + 1) * KWC]
        for j in range(KWC):
            row[j] += tk[j]


@serial_kernel
def _previous(oh, ow, OW):
    """(oh, ow) of the flat position before (oh, ow)."""
    return (oh, ow - 1) if ow > 0 else (oh - 1, OW - 1)


@kernel
def conv2d_backward_input_taps(dy, wk, KH, KW, C, stride, dx, sums):
    """``conv2d_backward_input`` for few input channels: dy (N, OH, OW, F), wk (F, K16) -> dx (N, H, W*C).

    dx in window-row layout (the op's reshaped view of the NHWC gradient, as in
    ``conv2d_forward``); wk[f, (kh*KW + kw)*C + c] = w[kh, kw, c, f], zero-padded to
    K16, a multiple of 16 columns; sums (N, 4, K16) is scratch. The same sums,
    added in the same order, as ``conv2d_backward_input``: with C < 16 its 16-channel
    tile is mostly empty, so this tile spans 16 of the K = KH*KW*C taps of 4 positions
    (sums over f in registers; the first layer's 3 x 3 x 1 fits one tile), stored to
    ``sums`` and then added to dx. Tiles run in descending flat order of positions,
    which gives each dx element its taps in ascending (kh, kw) order: tap (kh, kw)
    reaches input (i, j) from position ((i - kh)/s, (j - kw)/s), the later in flat
    order the smaller (kh, kw) is. On Zen 3 (1 thread) this ran conv1 (28 x 28 x 1 ->
    32) 9.6x faster than the channel tile in float32 and 2.6x in float64 (where the
    4 x 16 tile spills, yet tied with 2 x 16). One task per image; the lowest P mod 4
    positions, last, take a 1-position tile.
    """
    N, OH, OW = dy.shape[0], dy.shape[1], dy.shape[2]
    P, KWC, step = OH * OW, KW * C, stride * C
    zero = dx.dtype.type(0)
    for n in prange(N):
        dyn = dy[n]
        dxn = dx[n]
        t = sums[n]
        for i in range(dxn.shape[0]):
            for j in range(dxn.shape[1]):
                dxn[i, j] = zero
        oh, ow = OH - 1, OW - 1
        for _ in range(P // 4):
            oh3, ow3 = oh, ow
            oh2, ow2 = _previous(oh3, ow3, OW)
            oh1, ow1 = _previous(oh2, ow2, OW)
            oh0, ow0 = _previous(oh1, ow1, OW)
            _tap_sums4(dyn[oh0, ow0], dyn[oh1, ow1], dyn[oh2, ow2], dyn[oh3, ow3], wk, t)
            rows = (oh0 * stride, oh1 * stride, oh2 * stride, oh3 * stride)
            _add_tap_sums4(t, KH, KWC, rows, (ow0 * step, ow1 * step, ow2 * step, ow3 * step), dxn)
            oh, ow = _previous(oh0, ow0, OW)
        for _ in range(P % 4):
            _tap_sums1(dyn[oh, ow], wk, t)
            _add_tap_sums1(t[0], KH, KWC, oh * stride, ow * step, dxn)
            oh, ow = _previous(oh, ow, OW)


@serial_kernel
def _weight_sum(x, dy, stride, chunk, h, v, c, f):
    """dw_chunks[chunk, h, v, c, f] by the plain loop, for taps and channels past the
    last full tile: x[n, oh*s + h, ow*s + v, c] * dy[n, oh, ow, f] over the chunk's
    images n and all (oh, ow), in that order, as the tiles add them."""
    N, OH, OW = x.shape[0], dy.shape[1], dy.shape[2]
    acc = dy.dtype.type(0)
    for n in range(chunk * BATCH_CHUNK, min(N, (chunk + 1) * BATCH_CHUNK)):
        for oh in range(OH):
            for ow in range(OW):
                acc = fma(x[n, oh * stride + h, ow * stride + v, c], dy[n, oh, ow, f], acc)
    return acc


@kernel
def conv2d_backward_weight(x, dy, stride, dw_chunks):
    """x (N, H, W, C), dy (N, OH, OW, F) -> dw_chunks (ceil(N/BATCH_CHUNK), KH, KW, C, F), for any C.

    dw_chunks[i, kh, kw, c, f] = sum over the images n of chunk i and all (oh, ow), in
    that order, of x[n, oh*s + kh, ow*s + kw, c] * dy[n, oh, ow, f]; ``sum_weight_chunks``
    then adds the chunks. Tasks are (batch chunk, 4 taps, 16 output channels): a 4 x 16
    tile of sums held in registers. Used for inputs with few channels (the first
    layer); taps and channels beyond the last full tile take the plain loop.
    """
    N = x.shape[0]
    OH, OW, F = dy.shape[1], dy.shape[2], dy.shape[3]
    KH, KW, C = dw_chunks.shape[1], dw_chunks.shape[2], dw_chunks.shape[3]
    K = KH * KW * C
    n_chunks = dw_chunks.shape[0]
    n_tk, n_tf = K // 4, F // 16
    zero = dw_chunks.dtype.type(0)
    taps = kernel_taps(KH, KW, C)
    for task in prange(n_chunks * n_tk * n_tf):
        chunk = task // (n_tk * n_tf)
        k = 4 * ((task // n_tf) % n_tk)
        f0 = (task % n_tf) * 16
        h0, v0, c0 = taps[k + 0, 0], taps[k + 0, 1], taps[k + 0, 2]
        h1, v1, c1 = taps[k + 1, 0], taps[k + 1, 1], taps[k + 1, 2]
        h2, v2, c2 = taps[k + 2, 0], taps[k + 2, 1], taps[k + 2, 2]
        h3, v3, c3 = taps[k + 3, 0], taps[k + 3, 1], taps[k + 3, 2]
        s0_0, s0_1, s0_2, s0_3, s0_4, s0_5, s0_6, s0_7 = zero, zero, zero, zero, zero, zero, zero, zero
        s0_8, s0_9, s0_10, s0_11, s0_12, s0_13, s0_14, s0_15 = zero, zero, zero, zero, zero, zero, zero, zero
        s1_0, s1_1, s1_2, s1_3, s1_4, s1_5, s1_6, s1_7 = zero, zero, zero, zero, zero, zero, zero, zero
        s1_8, s1_9, s1_10, s1_11, s1_12, s1_13, s1_14, s1_15 = zero, zero, zero, zero, zero, zero, zero, zero
        s2_0, s2_1, s2_2, s2_3, s2_4, s2_5, s2_6, s2_7 = zero, zero, zero, zero, zero, zero, zero, zero
        s2_8, s2_9, s2_10, s2_11, s2_12, s2_13, s2_14, s2_15 = zero, zero, zero, zero, zero, zero, zero, zero
        s3_0, s3_1, s3_2, s3_3, s3_4, s3_5, s3_6, s3_7 = zero, zero, zero, zero, zero, zero, zero, zero
        s3_8, s3_9, s3_10, s3_11, s3_12, s3_13, s3_14, s3_15 = zero, zero, zero, zero, zero, zero, zero, zero
        for n in range(chunk * BATCH_CHUNK, min(N, (chunk + 1) * BATCH_CHUNK)):
            xn = x[n]
            for oh in range(OH):
                r0, r1, r2, r3 = xn[oh * stride + h0], xn[oh * stride + h1], xn[oh * stride + h2], xn[oh * stride + h3]
                for ow in range(OW):
                    j = ow * stride
                    a0, a1, a2, a3 = r0[j + v0, c0], r1[j + v1, c1], r2[j + v2, c2], r3[j + v3, c3]
                    dr = dy[n, oh, ow]
                    d0, d1, d2, d3, d4, d5, d6, d7 = dr[f0 + 0], dr[f0 + 1], dr[f0 + 2], dr[f0 + 3], dr[f0 + 4], dr[f0 + 5], dr[f0 + 6], dr[f0 + 7]
                    d8, d9, d10, d11, d12, d13, d14, d15 = dr[f0 + 8], dr[f0 + 9], dr[f0 + 10], dr[f0 + 11], dr[f0 + 12], dr[f0 + 13], dr[f0 + 14], dr[f0 + 15]
                    s0_0 = fma(a0, d0, s0_0)
                    s0_1 = fma(a0, d1, s0_1)
                    s0_2 = fma(a0, d2, s0_2)
                    s0_3 = fma(a0, d3, s0_3)
                    s0_4 = fma(a0, d4, s0_4)
                    s0_5 = fma(a0, d5, s0_5)
                    s0_6 = fma(a0, d6, s0_6)
                    s0_7 = fma(a0, d7, s0_7)
                    s0_8 = fma(a0, d8, s0_8)
                    s0_9 = fma(a0, d9, s0_9)
                    s0_10 = fma(a0, d10, s0_10)
                    s0_11 = fma(a0, d11, s0_11)
                    s0_12 = fma(a0, d12, s0_12)
                    s0_13 = fma(a0, d13, s0_13)
                    s0_14 = fma(a0, d14, s0_14)
                    s0_15 = fma(a0, d15, s0_15)
                    s1_0 = fma(a1, d0, s1_0)
                    s1_1 = fma(a1, d1, s1_1)
                    s1_2 = fma(a1, d2, s1_2)
                    s1_3 = fma(a1, d3, s1_3)
                    s1_4 = fma(a1, d4, s1_4)
                    s1_5 = fma(a1, d5, s1_5)
                    s1_6 = fma(a1, d6, s1_6)
                    s1_7 = fma(a1, d7, s1_7)
                    s1_8 = fma(a1, d8, s1_8)
                    s1_9 = fma(a1, d9, s1_9)
                    s1_10 = fma(a1, d10, s1_10)
                    s1_11 = fma(a1, d11, s1_11)
                    s1_12 = fma(a1, d12, s1_12)
                    s1_13 = fma(a1, d13, s1_13)
                    s1_14 = fma(a1, d14, s1_14)
                    s1_15 = fma(a1, d15, s1_15)
                    s2_0 = fma(a2, d0, s2_0)
                    s2_1 = fma(a2, d1, s2_1)
                    s2_2 = fma(a2, d2, s2_2)
                    s2_3 = fma(a2, d3, s2_3)
                    s2_4 = fma(a2, d4, s2_4)
                    s2_5 = fma(a2, d5, s2_5)
                    s2_6 = fma(a2, d6, s2_6)
                    s2_7 = fma(a2, d7, s2_7)
                    s2_8 = fma(a2, d8, s2_8)
                    s2_9 = fma(a2, d9, s2_9)
                    s2_10 = fma(a2, d10, s2_10)
                    s2_11 = fma(a2, d11, s2_11)
                    s2_12 = fma(a2, d12, s2_12)
                    s2_13 = fma(a2, d13, s2_13)
                    s2_14 = fma(a2, d14, s2_14)
                    s2_15 = fma(a2, d15, s2_15)
                    s3_0 = fma(a3, d0, s3_0)
                    s3_1 = fma(a3, d1, s3_1)
                    s3_2 = fma(a3, d2, s3_2)
                    s3_3 = fma(a3, d3, s3_3)
                    s3_4 = fma(a3, d4, s3_4)
                    s3_5 = fma(a3, d5, s3_5)
                    s3_6 = fma(a3, d6, s3_6)
                    s3_7 = fma(a3, d7, s3_7)
                    s3_8 = fma(a3, d8, s3_8)
                    s3_9 = fma(a3, d9, s3_9)
                    s3_10 = fma(a3, d10, s3_10)
                    s3_11 = fma(a3, d11, s3_11)
                    s3_12 = fma(a3, d12, s3_12)
                    s3_13 = fma(a3, d13, s3_13)
                    s3_14 = fma(a3, d14, s3_14)
                    s3_15 = fma(a3, d15, s3_15)
        g = dw_chunks[chunk, h0, v0, c0, f0 : f0 + 16]
        g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7] = s0_0, s0_1, s0_2, s0_3, s0_4, s0_5, s0_6, s0_7
        g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15] = s0_8, s0_9, s0_10, s0_11, s0_12, s0_13, s0_14, s0_15
        g = dw_chunks[chunk, h1, v1, c1, f0 : f0 + 16]
        g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7] = s1_0, s1_1, s1_2, s1_3, s1_4, s1_5, s1_6, s1_7
        g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15] = s1_8, s1_9, s1_10, s1_11, s1_12, s1_13, s1_14, s1_15
        g = dw_chunks[chunk, h2, v2, c2, f0 : f0 + 16]
        g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7] = s2_0, s2_1, s2_2, s2_3, s2_4, s2_5, s2_6, s2_7
        g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15] = s2_8, s2_9, s2_10, s2_11, s2_12, s2_13, s2_14, s2_15
        g = dw_chunks[chunk, h3, v3, c3, f0 : f0 + 16]
        g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7] = s3_0, s3_1, s3_2, s3_3, s3_4, s3_5, s3_6, s3_7
        g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15] = s3_8, s3_9, s3_10, s3_11, s3_12, s3_13, s3_14, s3_15
    for task in prange(n_chunks * K):
        chunk = task // K
        h, v, c = taps[task % K, 0], taps[task % K, 1], taps[task % K, 2]
        for f in range(16 * n_tf if task % K < 4 * n_tk else 0, F):
            dw_chunks[chunk, h, v, c, f] = _weight_sum(x, dy, stride, chunk, h, v, c, f)


@kernel
def conv2d_backward_weight_channels(x, dy, stride, dw_chunks):
    """x (N, H, W, C), dy (N, OH, OW, F) -> dw_chunks (ceil(N/BATCH_CHUNK), KH, KW, C, F), for C >= 16.

    The same partial sums as ``conv2d_backward_weight``, tiled for many input channels:
    tasks are (batch chunk, tap (kh, kw), 16 input channels, 16 output channels), a
    16 x 16 tile of sums over the chunk's positions in order. Per position the tile
    reads one contiguous 16-channel run of x and 16 values of dy (where the tap tile
    gathers 4 scattered x values), so each x load feeds 16 vector multiplies and adds:
    2.5x faster than the tap tile for the 32->64 layer (measured at 1 thread).
    Channels beyond the last full tile take the plain loop.
    """
    N = x.shape[0]
    OH, OW, F = dy.shape[1], dy.shape[2], dy.shape[3]
    KH, KW, C = dw_chunks.shape[1], dw_chunks.shape[2], dw_chunks.shape[3]
    n_chunks = dw_chunks.shape[0]
    n_tc, n_tf = C // 16, F // 16
    zero = dw_chunks.dtype.type(0)
    for task in prange(n_chunks * KH * KW * n_tc * n_tf):
        chunk = task // (KH * KW * n_tc * n_tf)
        tap = (task // (n_tc * n_tf)) % (KH * KW)
        kh, kw = tap // KW, tap % KW
        c0 = ((task // n_tf) % n_tc) * 16
        f0 = (task % n_tf) * 16
        s0_0, s0_1, s0_2, s0_3, s0_4, s0_5, s0_6, s0_7 = zero, zero, zero, zero, zero, zero, zero, zero
        s0_8, s0_9, s0_10, s0_11, s0_12, s0_13, s0_14, s0_15 = zero, zero, zero, zero, zero, zero, zero, zero
        s1_0, s1_1, s1_2, s1_3, s1_4, s1_5, s1_6, s1_7 = zero, zero, zero, zero, zero, zero, zero, zero
        s1_8, s1_9, s1_10, s1_11, s1_12, s1_13, s1_14, s1_15 = zero, zero, zero, zero, zero, zero, zero, zero
        s2_0, s2_1, s2_2, s2_3, s2_4, s2_5, s2_6, s2_7 = zero, zero, zero, zero, zero, zero, zero, zero
        s2_8, s2_9, s2_10, s2_11, s2_12, s2_13, s2_14, s2_15 = zero, zero, zero, zero, zero, zero, zero, zero
        s3_0, s3_1, s3_2, s3_3, s3_4, s3_5, s3_6, s3_7 = zero, zero, zero, zero, zero, zero, zero, zero
        s3_8, s3_9, s3_10, s3_11, s3_12, s3_13, s3_14, s3_15 = zero, zero, zero, zero, zero, zero, zero, zero
        s4_0, s4_1, s4_2, s4_3, s4_4, s4_5, s4_6, s4_7 = zero, zero, zero, zero, zero, zero, zero, zero
        s4_8, s4_9, s4_10, s4_11, s4_12, s4_13, s4_14, s4_15 = zero, zero, zero, zero, zero, zero, zero, zero
        s5_0, s5_1, s5_2, s5_3, s5_4, s5_5, s5_6, s5_7 = zero, zero, zero, zero, zero, zero, zero, zero
        s5_8, s5_9, s5_10, s5_11, s5_12, s5_13, s5_14, s5_15 = zero, zero, zero, zero, zero, zero, zero, zero
        s6_0, s6_1, s6_2, s6_3, s6_4, s6_5, s6_6, s6_7 = zero, zero, zero, zero, zero, zero, zero, zero
        s6_8, s6_9, s6_10, s6_11, s6_12, s6_13, s6_14, s6_15 = zero, zero, zero, zero, zero, zero, zero, zero
        s7_0, s7_1, s7_2, s7_3, s7_4, s7_5, s7_6, s7_7 = zero, zero, zero, zero, zero, zero, zero, zero
        s7_8, s7_9, s7_10, s7_11, s7_12, s7_13, s7_14, s7_15 = zero, zero, zero, zero, zero, zero, zero, zero
        s8_0, s8_1, s8_2, s8_3, s8_4, s8_5, s8_6, s8_7 = zero, zero, zero, zero, zero, zero, zero, zero
        s8_8, s8_9, s8_10, s8_11, s8_12, s8_13, s8_14, s8_15 = zero, zero, zero, zero, zero, zero, zero, zero
        s9_0, s9_1, s9_2, s9_3, s9_4, s9_5, s9_6, s9_7 = zero, zero, zero, zero, zero, zero, zero, zero
        s9_8, s9_9, s9_10, s9_11, s9_12, s9_13, s9_14, s9_15 = zero, zero, zero, zero, zero, zero, zero, zero
        s10_0, s10_1, s10_2, s10_3, s10_4, s10_5, s10_6, s10_7 = zero, zero, zero, zero, zero, zero, zero, zero
        s10_8, s10_9, s10_10, s10_11, s10_12, s10_13, s10_14, s10_15 = zero, zero, zero, zero, zero, zero, zero, zero
        s11_0, s11_1, s11_2, s11_3, s11_4, s11_5, s11_6, s11_7 = zero, zero, zero, zero, zero, zero, zero, zero
        s11_8, s11_9, s11_10, s11_11, s11_12, s11_13, s11_14, s11_15 = zero, zero, zero, zero, zero, zero, zero, zero
        s12_0, s12_1, s12_2, s12_3, s12_4, s12_5, s12_6, s12_7 = zero, zero, zero, zero, zero, zero, zero, zero
        s12_8, s12_9, s12_10, s12_11, s12_12, s12_13, s12_14, s12_15 = zero, zero, zero, zero, zero, zero, zero, zero
        s13_0, s13_1, s13_2, s13_3, s13_4, s13_5, s13_6, s13_7 = zero, zero, zero, zero, zero, zero, zero, zero
        s13_8, s13_9, s13_10, s13_11, s13_12, s13_13, s13_14, s13_15 = zero, zero, zero, zero, zero, zero, zero, zero
        s14_0, s14_1, s14_2, s14_3, s14_4, s14_5, s14_6, s14_7 = zero, zero, zero, zero, zero, zero, zero, zero
        s14_8, s14_9, s14_10, s14_11, s14_12, s14_13, s14_14, s14_15 = zero, zero, zero, zero, zero, zero, zero, zero
        s15_0, s15_1, s15_2, s15_3, s15_4, s15_5, s15_6, s15_7 = zero, zero, zero, zero, zero, zero, zero, zero
        s15_8, s15_9, s15_10, s15_11, s15_12, s15_13, s15_14, s15_15 = zero, zero, zero, zero, zero, zero, zero, zero
        for n in range(chunk * BATCH_CHUNK, min(N, (chunk + 1) * BATCH_CHUNK)):
            for oh in range(OH):
                xr = x[n, oh * stride + kh]
                dyr = dy[n, oh]
                for ow in range(OW):
                    xv = xr[ow * stride + kw, c0 : c0 + 16]
                    dr = dyr[ow, f0 : f0 + 16]
                    a0, a1, a2, a3, a4, a5, a6, a7 = xv[0], xv[1], xv[2], xv[3], xv[4], xv[5], xv[6], xv[7]
                    a8, a9, a10, a11, a12, a13, a14, a15 = xv[8], xv[9], xv[10], xv[11], xv[12], xv[13], xv[14], xv[15]
                    d = dr[0]
                    s0_0 = fma(a0, d, s0_0)
                    s0_1 = fma(a1, d, s0_1)
                    s0_2 = fma(a2, d, s0_2)
                    s0_3 = fma(a3, d, s0_3)
                    s0_4 = fma(a4, d, s0_4)
                    s0_5 = fma(a5, d, s0_5)
                    s0_6 = fma(a6, d, s0_6)
                    s0_7 = fma(a7, d, s0_7)
                    s0_8 = fma(a8, d, s0_8)
                    s0_9 = fma(a9, d, s0_9)
                    s0_10 = fma(a10, d, s0_10)
                    s0_11 = fma(a11, d, s0_11)
                    s0_12 = fma(a12, d, s0_12)
                    s0_13 = fma(a13, d, s0_13)
                    s0_14 = fma(a14, d, s0_14)
                    s0_15 = fma(a15, d, s0_15)
                    d = dr[1]
                    s1_0 = fma(a0, d, s1_0)
                    s1_1 = fma(a1, d, s1_1)
                    s1_2 = fma(a2, d, s1_2)
                    s1_3 = fma(a3, d, s1_3)
                    s1_4 = fma(a4, d, s1_4)
                    s1_5 = fma(a5, d, s1_5)
                    s1_6 = fma(a6, d, s1_6)
                    s1_7 = fma(a7, d, s1_7)
                    s1_8 = fma(a8, d, s1_8)
                    s1_9 = fma(a9, d, s1_9)
                    s1_10 = fma(a10, d, s1_10)
                    s1_11 = fma(a11, d, s1_11)
                    s1_12 = fma(a12, d, s1_12)
                    s1_13 = fma(a13, d, s1_13)
                    s1_14 = fma(a14, d, s1_14)
                    s1_15 = fma(a15, d, s1_15)
                    d = dr[2]
                    s2_0 = fma(a0, d, s2_0)
                    s2_1 = fma(a1, d, s2_1)
                    s2_2 = fma(a2, d, s2_2)
                    s2_3 = fma(a3, d, s2_3)
                    s2_4 = fma(a4, d, s2_4)
                    s2_5 = fma(a5, d, s2_5)
                    s2_6 = fma(a6, d, s2_6)
                    s2_7 = fma(a7, d, s2_7)
                    s2_8 = fma(a8, d, s2_8)
                    s2_9 = fma(a9, d, s2_9)
                    s2_10 = fma(a10, d, s2_10)
                    s2_11 = fma(a11, d, s2_11)
                    s2_12 = fma(a12, d, s2_12)
                    s2_13 = fma(a13, d, s2_13)
                    s2_14 = fma(a14, d, s2_14)
                    s2_15 = fma(a15, d, s2_15)
                    d = dr[3]
                    s3_0 = fma(a0, d, s3_0)
                    s3_1 = fma(a1, d, s3_1)
                    s3_2 = fma(a2, d, s3_2)
                    s3_3 = fma(a3, d, s3_3)
                    s3_4 = fma(a4, d, s3_4)
                    s3_5 = fma(a5, d, s3_5)
                    s3_6 = fma(a6, d, s3_6)
                    s3_7 = fma(a7, d, s3_7)
                    s3_8 = fma(a8, d, s3_8)
                    s3_9 = fma(a9, d, s3_9)
                    s3_10 = fma(a10, d, s3_10)
                    s3_11 = fma(a11, d, s3_11)
                    s3_12 = fma(a12, d, s3_12)
                    s3_13 = fma(a13, d, s3_13)
                    s3_14 = fma(a14, d, s3_14)
                    s3_15 = fma(a15, d, s3_15)
                    d = dr[4]
                    s4_0 = fma(a0, d, s4_0)
                    s4_1 = fma(a1, d, s4_1)
                    s4_2 = fma(a2, d, s4_2)
                    s4_3 = fma(a3, d, s4_3)
                    s4_4 = fma(a4, d, s4_4)
                    s4_5 = fma(a5, d, s4_5)
                    s4_6 = fma(a6, d, s4_6)
                    s4_7 = fma(a7, d, s4_7)
                    s4_8 = fma(a8, d, s4_8)
                    s4_9 = fma(a9, d, s4_9)
                    s4_10 = fma(a10, d, s4_10)
                    s4_11 = fma(a11, d, s4_11)
                    s4_12 = fma(a12, d, s4_12)
                    s4_13 = fma(a13, d, s4_13)
                    s4_14 = fma(a14, d, s4_14)
                    s4_15 = fma(a15, d, s4_15)
                    d = dr[5]
                    s5_0 = fma(a0, d, s5_0)
                    s5_1 = fma(a1, d, s5_1)
                    s5_2 = fma(a2, d, s5_2)
                    s5_3 = fma(a3, d, s5_3)
                    s5_4 = fma(a4, d, s5_4)
                    s5_5 = fma(a5, d, s5_5)
                    s5_6 = fma(a6, d, s5_6)
                    s5_7 = fma(a7, d, s5_7)
                    s5_8 = fma(a8, d, s5_8)
                    s5_9 = fma(a9, d, s5_9)
                    s5_10 = fma(a10, d, s5_10)
                    s5_11 = fma(a11, d, s5_11)
                    s5_12 = fma(a12, d, s5_12)
                    s5_13 = fma(a13, d, s5_13)
                    s5_14 = fma(a14, d, s5_14)
                    s5_15 = fma(a15, d, s5_15)
                    d = dr[6]
                    s6_0 = fma(a0, d, s6_0)
                    s6_1 = fma(a1, d, s6_1)
                    s6_2 = fma(a2, d, s6_2)
                    s6_3 = fma(a3, d, s6_3)
                    s6_4 = fma(a4, d, s6_4)
                    s6_5 = fma(a5, d, s6_5)
                    s6_6 = fma(a6, d, s6_6)
                    s6_7 = fma(a7, d, s6_7)
                    s6_8 = fma(a8, d, s6_8)
                    s6_9 = fma(a9, d, s6_9)
                    s6_10 = fma(a10, d, s6_10)
                    s6_11 = fma(a11, d, s6_11)
                    s6_12 = fma(a12, d, s6_12)
                    s6_13 = fma(a13, d, s6_13)
                    s6_14 = fma(a14, d, s6_14)
                    s6_15 = fma(a15, d, s6_15)
                    d = dr[7]
                    s7_0 = fma(a0, d, s7_0)
                    s7_1 = fma(a1, d, s7_1)
                    s7_2 = fma(a2, d, s7_2)
                    s7_3 = fma(a3, d, s7_3)
                    s7_4 = fma(a4, d, s7_4)
                    s7_5 = fma(a5, d, s7_5)
                    s7_6 = fma(a6, d, s7_6)
                    s7_7 = fma(a7, d, s7_7)
                    s7_8 = fma(a8, d, s7_8)
                    s7_9 = fma(a9, d, s7_9)
                    s7_10 = fma(a10, d, s7_10)
                    s7_11 = fma(a11, d, s7_11)
                    s7_12 = fma(a12, d, s7_12)
                    s7_13 = fma(a13, d, s7_13)
                    s7_14 = fma(a14, d, s7_14)
                    s7_15 = fma(a15, d, s7_15)
                    d = dr[8]
                    s8_0 = fma(a0, d, s8_0)
                    s8_1 = fma(a1, d, s8_1)
                    s8_2 = fma(a2, d, s8_2)
                    s8_3 = fma(a3, d, s8_3)
                    s8_4 = fma(a4, d, s8_4)
                    s8_5 = fma(a5, d, s8_5)
                    s8_6 = fma(a6, d, s8_6)
                    s8_7 = fma(a7, d, s8_7)
                    s8_8 = fma(a8, d, s8_8)
                    s8_9 = fma(a9, d, s8_9)
                    s8_10 = fma(a10, d, s8_10)
                    s8_11 = fma(a11, d, s8_11)
                    s8_12 = fma(a12, d, s8_12)
                    s8_13 = fma(a13, d, s8_13)
                    s8_14 = fma(a14, d, s8_14)
                    s8_15 = fma(a15, d, s8_15)
                    d = dr[9]
                    s9_0 = fma(a0, d, s9_0)
                    s9_1 = fma(a1, d, s9_1)
                    s9_2 = fma(a2, d, s9_2)
                    s9_3 = fma(a3, d, s9_3)
                    s9_4 = fma(a4, d, s9_4)
                    s9_5 = fma(a5, d, s9_5)
                    s9_6 = fma(a6, d, s9_6)
                    s9_7 = fma(a7, d, s9_7)
                    s9_8 = fma(a8, d, s9_8)
                    s9_9 = fma(a9, d, s9_9)
                    s9_10 = fma(a10, d, s9_10)
                    s9_11 = fma(a11, d, s9_11)
                    s9_12 = fma(a12, d, s9_12)
                    s9_13 = fma(a13, d, s9_13)
                    s9_14 = fma(a14, d, s9_14)
                    s9_15 = fma(a15, d, s9_15)
                    d = dr[10]
                    s10_0 = fma(a0, d, s10_0)
                    s10_1 = fma(a1, d, s10_1)
                    s10_2 = fma(a2, d, s10_2)
                    s10_3 = fma(a3, d, s10_3)
                    s10_4 = fma(a4, d, s10_4)
                    s10_5 = fma(a5, d, s10_5)
                    s10_6 = fma(a6, d, s10_6)
                    s10_7 = fma(a7, d, s10_7)
                    s10_8 = fma(a8, d, s10_8)
                    s10_9 = fma(a9, d, s10_9)
                    s10_10 = fma(a10, d, s10_10)
                    s10_11 = fma(a11, d, s10_11)
                    s10_12 = fma(a12, d, s10_12)
                    s10_13 = fma(a13, d, s10_13)
                    s10_14 = fma(a14, d, s10_14)
                    s10_15 = fma(a15, d, s10_15)
                    d = dr[11]
                    s11_0 = fma(a0, d, s11_0)
                    s11_1 = fma(a1, d, s11_1)
                    s11_2 = fma(a2, d, s11_2)
                    s11_3 = fma(a3, d, s11_3)
                    s11_4 = fma(a4, d, s11_4)
                    s11_5 = fma(a5, d, s11_5)
                    s11_6 = fma(a6, d, s11_6)
                    s11_7 = fma(a7, d, s11_7)
                    s11_8 = fma(a8, d, s11_8)
                    s11_9 = fma(a9, d, s11_9)
                    s11_10 = fma(a10, d, s11_10)
                    s11_11 = fma(a11, d, s11_11)
                    s11_12 = fma(a12, d, s11_12)
                    s11_13 = fma(a13, d, s11_13)
                    s11_14 = fma(a14, d, s11_14)
                    s11_15 = fma(a15, d, s11_15)
                    d = dr[12]
                    s12_0 = fma(a0, d, s12_0)
                    s12_1 = fma(a1, d, s12_1)
                    s12_2 = fma(a2, d, s12_2)
                    s12_3 = fma(a3, d, s12_3)
                    s12_4 = fma(a4, d, s12_4)
                    s12_5 = fma(a5, d, s12_5)
                    s12_6 = fma(a6, d, s12_6)
                    s12_7 = fma(a7, d, s12_7)
                    s12_8 = fma(a8, d, s12_8)
                    s12_9 = fma(a9, d, s12_9)
                    s12_10 = fma(a10, d, s12_10)
                    s12_11 = fma(a11, d, s12_11)
                    s12_12 = fma(a12, d, s12_12)
                    s12_13 = fma(a13, d, s12_13)
                    s12_14 = fma(a14, d, s12_14)
                    s12_15 = fma(a15, d, s12_15)
                    d = dr[13]
                    s13_0 = fma(a0, d, s13_0)
                    s13_1 = fma(a1, d, s13_1)
                    s13_2 = fma(a2, d, s13_2)
                    s13_3 = fma(a3, d, s13_3)
                    s13_4 = fma(a4, d, s13_4)
                    s13_5 = fma(a5, d, s13_5)
                    s13_6 = fma(a6, d, s13_6)
                    s13_7 = fma(a7, d, s13_7)
                    s13_8 = fma(a8, d, s13_8)
                    s13_9 = fma(a9, d, s13_9)
                    s13_10 = fma(a10, d, s13_10)
                    s13_11 = fma(a11, d, s13_11)
                    s13_12 = fma(a12, d, s13_12)
                    s13_13 = fma(a13, d, s13_13)
                    s13_14 = fma(a14, d, s13_14)
                    s13_15 = fma(a15, d, s13_15)
                    d = dr[14]
                    s14_0 = fma(a0, d, s14_0)
                    s14_1 = fma(a1, d, s14_1)
                    s14_2 = fma(a2, d, s14_2)
                    s14_3 = fma(a3, d, s14_3)
                    s14_4 = fma(a4, d, s14_4)
                    s14_5 = fma(a5, d, s14_5)
                    s14_6 = fma(a6, d, s14_6)
                    s14_7 = fma(a7, d, s14_7)
                    s14_8 = fma(a8, d, s14_8)
                    s14_9 = fma(a9, d, s14_9)
                    s14_10 = fma(a10, d, s14_10)
                    s14_11 = fma(a11, d, s14_11)
                    s14_12 = fma(a12, d, s14_12)
                    s14_13 = fma(a13, d, s14_13)
                    s14_14 = fma(a14, d, s14_14)
                    s14_15 = fma(a15, d, s14_15)
                    d = dr[15]
                    s15_0 = fma(a0, d, s15_0)
                    s15_1 = fma(a1, d, s15_1)
                    s15_2 = fma(a2, d, s15_2)
                    s15_3 = fma(a3, d, s15_3)
                    s15_4 = fma(a4, d, s15_4)
                    s15_5 = fma(a5, d, s15_5)
                    s15_6 = fma(a6, d, s15_6)
                    s15_7 = fma(a7, d, s15_7)
                    s15_8 = fma(a8, d, s15_8)
                    s15_9 = fma(a9, d, s15_9)
                    s15_10 = fma(a10, d, s15_10)
                    s15_11 = fma(a11, d, s15_11)
                    s15_12 = fma(a12, d, s15_12)
                    s15_13 = fma(a13, d, s15_13)
                    s15_14 = fma(a14, d, s15_14)
                    s15_15 = fma(a15, d, s15_15)
        g = dw_chunks[chunk, kh, kw, c0 + 0, f0 : f0 + 16]
        g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7] = s0_0, s1_0, s2_0, s3_0, s4_0, s5_0, s6_0, s7_0
        g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15] = s8_0, s9_0, s10_0, s11_0, s12_0, s13_0, s14_0, s15_0
        g = dw_chunks[chunk, kh, kw, c0 + 1, f0 : f0 + 16]
        g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7] = s0_1, s1_1, s2_1, s3_1, s4_1, s5_1, s6_1, s7_1
        g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15] = s8_1, s9_1, s10_1, s11_1, s12_1, s13_1, s14_1, s15_1
        g = dw_chunks[chunk, kh, kw, c0 + 2, f0 : f0 + 16]
        g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7] = s0_2, s1_2, s2_2, s3_2, s4_2, s5_2, s6_2, s7_2
        g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15] = s8_2, s9_2, s10_2, s11_2, s12_2, s13_2, s14_2, s15_2
        g = dw_chunks[chunk, kh, kw, c0 + 3, f0 : f0 + 16]
        g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7] = s0_3, s1_3, s2_3, s3_3, s4_3, s5_3, s6_3, s7_3
        g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15] = s8_3, s9_3, s10_3, s11_3, s12_3, s13_3, s14_3, s15_3
        g = dw_chunks[chunk, kh, kw, c0 + 4, f0 : f0 + 16]
        g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7] = s0_4, s1_4, s2_4, s3_4, s4_4, s5_4, s6_4, s7_4
        g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15] = s8_4, s9_4, s10_4, s11_4, s12_4, s13_4, s14_4, s15_4
        g = dw_chunks[chunk, kh, kw, c0 + 5, f0 : f0 + 16]
        g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7] = s0_5, s1_5, s2_5, s3_5, s4_5, s5_5, s6_5, s7_5
        g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15] = s8_5, s9_5, s10_5, s11_5, s12_5, s13_5, s14_5, s15_5
        g = dw_chunks[chunk, kh, kw, c0 + 6, f0 : f0 + 16]
        g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7] = s0_6, s1_6, s2_6, s3_6, s4_6, s5_6, s6_6, s7_6
        g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15] = s8_6, s9_6, s10_6, s11_6, s12_6, s13_6, s14_6, s15_6
        g = dw_chunks[chunk, kh, kw, c0 + 7, f0 : f0 + 16]
        g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7] = s0_7, s1_7, s2_7, s3_7, s4_7, s5_7, s6_7, s7_7
        g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15] = s8_7, s9_7, s10_7, s11_7, s12_7, s13_7, s14_7, s15_7
        g = dw_chunks[chunk, kh, kw, c0 + 8, f0 : f0 + 16]
        g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7] = s0_8, s1_8, s2_8, s3_8, s4_8, s5_8, s6_8, s7_8
        g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15] = s8_8, s9_8, s10_8, s11_8, s12_8, s13_8, s14_8, s15_8
        g = dw_chunks[chunk, kh, kw, c0 + 9, f0 : f0 + 16]
        g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7] = s0_9, s1_9, s2_9, s3_9, s4_9, s5_9, s6_9, s7_9
        g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15] = s8_9, s9_9, s10_9, s11_9, s12_9, s13_9, s14_9, s15_9
        g = dw_chunks[chunk, kh, kw, c0 + 10, f0 : f0 + 16]
        g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7] = s0_10, s1_10, s2_10, s3_10, s4_10, s5_10, s6_10, s7_10
        g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15] = s8_10, s9_10, s10_10, s11_10, s12_10, s13_10, s14_10, s15_10
        g = dw_chunks[chunk, kh, kw, c0 + 11, f0 : f0 + 16]
        g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7] = s0_11, s1_11, s2_11, s3_11, s4_11, s5_11, s6_11, s7_11
        g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15] = s8_11, s9_11, s10_11, s11_11, s12_11, s13_11, s14_11, s15_11
        g = dw_chunks[chunk, kh, kw, c0 + 12, f0 : f0 + 16]
        g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7] = s0_12, s1_12, s2_12, s3_12, s4_12, s5_12, s6_12, s7_12
        g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15] = s8_12, s9_12, s10_12, s11_12, s12_12, s13_12, s14_12, s15_12
        g = dw_chunks[chunk, kh, kw, c0 + 13, f0 : f0 + 16]
        g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7] = s0_13, s1_13, s2_13, s3_13, s4_13, s5_13, s6_13, s7_13
        g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15] = s8_13, s9_13, s10_13, s11_13, s12_13, s13_13, s14_13, s15_13
        g = dw_chunks[chunk, kh, kw, c0 + 14, f0 : f0 + 16]
        g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7] = s0_14, s1_14, s2_14, s3_14, s4_14, s5_14, s6_14, s7_14
        g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15] = s8_14, s9_14, s10_14, s11_14, s12_14, s13_14, s14_14, s15_14
        g = dw_chunks[chunk, kh, kw, c0 + 15, f0 : f0 + 16]
        g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7] = s0_15, s1_15, s2_15, s3_15, s4_15, s5_15, s6_15, s7_15
        g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15] = s8_15, s9_15, s10_15, s11_15, s12_15, s13_15, s14_15, s15_15
    for task in prange(n_chunks * KH * KW):
        chunk = task // (KH * KW)
        kh, kw = (task % (KH * KW)) // KW, task % KW
        for c in range(C):
            for f in range(16 * n_tf if c < 16 * n_tc else 0, F):
                dw_chunks[chunk, kh, kw, c, f] = _weight_sum(x, dy, stride, chunk, kh, kw, c, f)


@kernel
def conv2d_backward_weight_avx2(x, dy, stride, dw_chunks):
    """x (N, H, W, C), dy (N, OH, OW, F) -> dw_chunks (ceil(N/BATCH_CHUNK), KH, KW, C, F), for any C.

    The same partial sums as ``conv2d_backward_weight``, tiled for AVX2's 16 ymm
    registers: tasks are (batch chunk, 3 taps, 32 output channels), a 3 x 32 tile of
    sums (12 ymm in float32) over the chunk's positions in order. On this machine
    (Zen 3, float32, 1 thread) it ran the first layer 4.5x faster than the 4-tap tile
    (9 taps leave none for the plain loop; one pass over dy per 32 channels) and the
    32->64 layer 1.3x faster than the 16 x 16 channel tile, which spills (1.5x at 2
    threads; a 4 x 16 channel tile tied). In float64 it needs 24 ymm and spills, yet
    still beat the AVX-512 kernels (1.2x to 4.7x) and narrower tiles.
    Taps and channels beyond the last full tile take the plain loop.
    """
    N = x.shape[0]
    OH, OW, F = dy.shape[1], dy.shape[2], dy.shape[3]
    KH, KW, C = dw_chunks.shape[1], dw_chunks.shape[2], dw_chunks.shape[3]
    K = KH * KW * C
    n_chunks = dw_chunks.shape[0]
    n_tk, n_tf = K // 3, F // 32
    zero = dw_chunks.dtype.type(0)
    taps = kernel_taps(KH, KW, C)
    for task in prange(n_chunks * n_tk * n_tf):
        chunk = task // (n_tk * n_tf)
        k = 3 * ((task // n_tf) % n_tk)
        f0 = (task % n_tf) * 32
        h0, v0, c0 = taps[k + 0, 0], taps[k + 0, 1], taps[k + 0, 2]
        h1, v1, c1 = taps[k + 1, 0], taps[k + 1, 1], taps[k + 1, 2]
        h2, v2, c2 = taps[k + 2, 0], taps[k + 2, 1], taps[k + 2, 2]
        s0_0, s0_1, s0_2, s0_3, s0_4, s0_5, s0_6, s0_7 = zero, zero, zero, zero, zero, zero, zero, zero
        s0_8, s0_9, s0_10, s0_11, s0_12, s0_13, s0_14, s0_15 = zero, zero, zero, zero, zero, zero, zero, zero
        s0_16, s0_17, s0_18, s0_19, s0_20, s0_21, s0_22, s0_23 = zero, zero, zero, zero, zero, zero, zero, zero
        s0_24, s0_25, s0_26, s0_27, s0_28, s0_29, s0_30, s0_31 = zero, zero, zero, zero, zero, zero, zero, zero
        s1_0, s1_1, s1_2, s1_3, s1_4, s1_5, s1_6, s1_7 = zero, zero, zero, zero, zero, zero, zero, zero
        s1_8, s1_9, s1_10, s1_11, s1_12, s1_13, s1_14, s1_15 = zero, zero, zero, zero, zero, zero, zero, zero
        s1_16, s1_17, s1_18, s1_19, s1_20, s1_21, s1_22, s1_23 = zero, zero, zero, zero, zero, zero, zero, zero
        s1_24, s1_25, s1_26, s1_27, s1_28, s1_29, s1_30, s1_31 = zero, zero, zero, zero, zero, zero, zero, zero
        s2_0, s2_1, s2_2, s2_3, s2_4, s2_5, s2_6, s2_7 = zero, zero, zero, zero, zero, zero, zero, zero
        s2_8, s2_9, s2_10, s2_11, s2_12, s2_13, s2_14, s2_15 = zero, zero, zero, zero, zero, zero, zero, zero
        s2_16, s2_17, s2_18, s2_19, s2_20, s2_21, s2_22, s2_23 = zero, zero, zero, zero, zero, zero, zero, zero
        s2_24, s2_25, s2_26, s2_27, s2_28, s2_29, s2_30, s2_31 = zero, zero, zero, zero, zero, zero, zero, zero
        for n in range(chunk * BATCH_CHUNK, min(N, (chunk + 1) * BATCH_CHUNK)):
            xn = x[n]
            for oh in range(OH):
                r0, r1, r2 = xn[oh * stride + h0], xn[oh * stride + h1], xn[oh * stride + h2]
                for ow in range(OW):
                    j = ow * stride
                    a0, a1, a2 = r0[j + v0, c0], r1[j + v1, c1], r2[j + v2, c2]
                    dr = dy[n, oh, ow]
                    d0, d1, d2, d3, d4, d5, d6, d7 = dr[f0 + 0], dr[f0 + 1], dr[f0 + 2], dr[f0 + 3], dr[f0 + 4], dr[f0 + 5], dr[f0 + 6], dr[f0 + 7]
                    d8, d9, d10, d11, d12, d13, d14, d15 = dr[f0 + 8], dr[f0 + 9], dr[f0 + 10], dr[f0 + 11], dr[f0 + 12], dr[f0 + 13], dr[f0 + 14], dr[f0 + 15]
                    d16, d17, d18, d19, d20, d21, d22, d23 = dr[f0 + 16], dr[f0 + 17], dr[f0 + 18], dr[f0 + 19], dr[f0 + 20], dr[f0 + 21], dr[f0 + 22], dr[f0 + 23]
                    d24, d25, d26, d27, d28, d29, d30, d31 = dr[f0 + 24], dr[f0 + 25], dr[f0 + 26], dr[f0 + 27], dr[f0 + 28], dr[f0 + 29], dr[f0 + 30], dr[f0 + 31]
                    s0_0 = fma(a0, d0, s0_0)
                    s0_1 = fma(a0, d1, s0_1)
                    s0_2 = fma(a0, d2, s0_2)
                    s0_3 = fma(a0, d3, s0_3)
                    s0_4 = fma(a0, d4, s0_4)
                    s0_5 = fma(a0, d5, s0_5)
                    s0_6 = fma(a0, d6, s0_6)
                    s0_7 = fma(a0, d7, s0_7)
                    s0_8 = fma(a0, d8, s0_8)
                    s0_9 = fma(a0, d9, s0_9)
                    s0_10 = fma(a0, d10, s0_10)
                    s0_11 = fma(a0, d11, s0_11)
                    s0_12 = fma(a0, d12, s0_12)
                    s0_13 = fma(a0, d13, s0_13)
                    s0_14 = fma(a0, d14, s0_14)
                    s0_15 = fma(a0, d15, s0_15)
                    s0_16 = fma(a0, d16, s0_16)
                    s0_17 = fma(a0, d17, s0_17)
                    s0_18 = fma(a0, d18, s0_18)
                    s0_19 = fma(a0, d19, s0_19)
                    s0_20 = fma(a0, d20, s0_20)
                    s0_21 = fma(a0, d21, s0_21)
                    s0_22 = fma(a0, d22, s0_22)
                    s0_23 = fma(a0, d23, s0_23)
                    s0_24 = fma(a0, d24, s0_24)
                    s0_25 = fma(a0, d25, s0_25)
                    s0_26 = fma(a0, d26, s0_26)
                    s0_27 = fma(a0, d27, s0_27)
                    s0_28 = fma(a0, d28, s0_28)
                    s0_29 = fma(a0, d29, s0_29)
                    s0_30 = fma(a0, d30, s0_30)
                    s0_31 = fma(a0, d31, s0_31)
                    s1_0 = fma(a1, d0, s1_0)
                    s1_1 = fma(a1, d1, s1_1)
                    s1_2 = fma(a1, d2, s1_2)
                    s1_3 = fma(a1, d3, s1_3)
                    s1_4 = fma(a1, d4, s1_4)
                    s1_5 = fma(a1, d5, s1_5)
                    s1_6 = fma(a1, d6, s1_6)
                    s1_7 = fma(a1, d7, s1_7)
                    s1_8 = fma(a1, d8, s1_8)
                    s1_9 = fma(a1, d9, s1_9)
                    s1_10 = fma(a1, d10, s1_10)
                    s1_11 = fma(a1, d11, s1_11)
                    s1_12 = fma(a1, d12, s1_12)
                    s1_13 = fma(a1, d13, s1_13)
                    s1_14 = fma(a1, d14, s1_14)
                    s1_15 = fma(a1, d15, s1_15)
                    s1_16 = fma(a1, d16, s1_16)
                    s1_17 = fma(a1, d17, s1_17)
                    s1_18 = fma(a1, d18, s1_18)
                    s1_19 = fma(a1, d19, s1_19)
                    s1_20 = fma(a1, d20, s1_20)
                    s1_21 = fma(a1, d21, s1_21)
                    s1_22 = fma(a1, d22, s1_22)
                    s1_23 = fma(a1, d23, s1_23)
                    s1_24 = fma(a1, d24, s1_24)
                    s1_25 = fma(a1, d25, s1_25)
                    s1_26 = fma(a1, d26, s1_26)
                    s1_27 = fma(a1, d27, s1_27)
                    s1_28 = fma(a1, d28, s1_28)
                    s1_29 = fma(a1, d29, s1_29)
                    s1_30 = fma(a1, d30, s1_30)
                    s1_31 = fma(a1, d31, s1_31)
                    s2_0 = fma(a2, d0, s2_0)
                    s2_1 = fma(a2, d1, s2_1)
                    s2_2 = fma(a2, d2, s2_2)
                    s2_3 = fma(a2, d3, s2_3)
                    s2_4 = fma(a2, d4, s2_4)
                    s2_5 = fma(a2, d5, s2_5)
                    s2_6 = fma(a2, d6, s2_6)
                    s2_7 = fma(a2, d7, s2_7)
                    s2_8 = fma(a2, d8, s2_8)
                    s2_9 = fma(a2, d9, s2_9)
                    s2_10 = fma(a2, d10, s2_10)
                    s2_11 = fma(a2, d11, s2_11)
                    s2_12 = fma(a2, d12, s2_12)
                    s2_13 = fma(a2, d13, s2_13)
                    s2_14 = fma(a2, d14, s2_14)
                    s2_15 = fma(a2, d15, s2_15)
                    s2_16 = fma(a2, d16, s2_16)
                    s2_17 = fma(a2, d17, s2_17)
                    s2_18 = fma(a2, d18, s2_18)
                    s2_19 = fma(a2, d19, s2_19)
                    s2_20 = fma(a2, d20, s2_20)
                    s2_21 = fma(a2, d21, s2_21)
                    s2_22 = fma(a2, d22, s2_22)
                    s2_23 = fma(a2, d23, s2_23)
                    s2_24 = fma(a2, d24, s2_24)
                    s2_25 = fma(a2, d25, s2_25)
                    s2_26 = fma(a2, d26, s2_26)
                    s2_27 = fma(a2, d27, s2_27)
                    s2_28 = fma(a2, d28, s2_28)
                    s2_29 = fma(a2, d29, s2_29)
                    s2_30 = fma(a2, d30, s2_30)
                    s2_31 = fma(a2, d31, s2_31)
        g = dw_chunks[chunk, h0, v0, c0, f0 : f0 + 32]
        g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7] = s0_0, s0_1, s0_2, s0_3, s0_4, s0_5, s0_6, s0_7
        g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15] = s0_8, s0_9, s0_10, s0_11, s0_12, s0_13, s0_14, s0_15
        g[16], g[17], g[18], g[19], g[20], g[21], g[22], g[23] = s0_16, s0_17, s0_18, s0_19, s0_20, s0_21, s0_22, s0_23
        g[24], g[25], g[26], g[27], g[28], g[29], g[30], g[31] = s0_24, s0_25, s0_26, s0_27, s0_28, s0_29, s0_30, s0_31
        g = dw_chunks[chunk, h1, v1, c1, f0 : f0 + 32]
        g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7] = s1_0, s1_1, s1_2, s1_3, s1_4, s1_5, s1_6, s1_7
        g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15] = s1_8, s1_9, s1_10, s1_11, s1_12, s1_13, s1_14, s1_15
        g[16], g[17], g[18], g[19], g[20], g[21], g[22], g[23] = s1_16, s1_17, s1_18, s1_19, s1_20, s1_21, s1_22, s1_23
        g[24], g[25], g[26], g[27], g[28], g[29], g[30], g[31] = s1_24, s1_25, s1_26, s1_27, s1_28, s1_29, s1_30, s1_31
        g = dw_chunks[chunk, h2, v2, c2, f0 : f0 + 32]
        g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7] = s2_0, s2_1, s2_2, s2_3, s2_4, s2_5, s2_6, s2_7
        g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15] = s2_8, s2_9, s2_10, s2_11, s2_12, s2_13, s2_14, s2_15
        g[16], g[17], g[18], g[19], g[20], g[21], g[22], g[23] = s2_16, s2_17, s2_18, s2_19, s2_20, s2_21, s2_22, s2_23
        g[24], g[25], g[26], g[27], g[28], g[29], g[30], g[31] = s2_24, s2_25, s2_26, s2_27, s2_28, s2_29, s2_30, s2_31
    for task in prange(n_chunks * K):
        chunk = task // K
        h, v, c = taps[task % K, 0], taps[task % K, 1], taps[task % K, 2]
        for f in range(32 * n_tf if task % K < 3 * n_tk else 0, F):
            dw_chunks[chunk, h, v, c, f] = _weight_sum(x, dy, stride, chunk, h, v, c, f)


@kernel
def conv2d_backward_weight_rows(x, dy, C, stride, dw_chunks):
    """x (N, H, W*C), dy (N, OH, OW, F) -> dw_chunks (ceil(N/BATCH_CHUNK), KH, KW*C, F).

    The same partial sums as ``conv2d_backward_weight``, in window-row layout (the
    op's reshaped views, as in ``conv2d_forward``): tap (kw, c) of kernel row kh is
    index kw*C + c of a window row, and dw[kh] (KW*C, F) = sum over positions of the
    window row's values times dy's row.
    Tiles are 6 consecutive taps x 16 channels (12 ymm of float32 sums), summed over
    the chunk's positions in order. On Zen 3 (float32, 1 thread) this ran the 32->64
    layer 1.1-1.3x faster than the 3-tap x 32-channel tile of ``conv2d_backward_weight_avx2``
    (whose taps need a row of x each), and faster than 4 x 16 (1.2x), 5 x 16 (1.6x),
    2 x 32 and 3 x 32 (1.5x) taps x channels. One task per (chunk, kh); the last tile
    of taps and of channels is moved back to end at KW*C and F, so only KW*C < 6 or
    F < 16 take the plain loop.
    """
    N = x.shape[0]
    OH, OW, F = dy.shape[1], dy.shape[2], dy.shape[3]
    n_chunks, KH, KWC = dw_chunks.shape[0], dw_chunks.shape[1], dw_chunks.shape[2]
    step = stride * C
    zero = dw_chunks.dtype.type(0)
    for task in prange(n_chunks * KH):
        chunk, kh = task // KH, task % KH
        images = range(chunk * BATCH_CHUNK, min(N, (chunk + 1) * BATCH_CHUNK))
        g = dw_chunks[chunk, kh]
        if KWC < 6 or F < 16:
            for j in range(KWC):
                for f in range(F):
                    acc = zero
                    for n in images:
                        for oh in range(OH):
                            for ow in range(OW):
                                acc = fma(x[n, oh * stride + kh, ow * step + j], dy[n, oh, ow, f], acc)
                    g[j, f] = acc
            continue
        for tj in range((KWC + 5) // 6):
            j0 = min(6 * tj, KWC - 6)
            for tf in range((F + 15) // 16):
                f0 = min(16 * tf, F - 16)
                s0 = s1 = s2 = s3 = s4 = s5 = (zero, zero, zero, zero, zero, zero, zero, zero,
                                               zero, zero, zero, zero, zero, zero, zero, zero)
                for n in images:
                    for oh in range(OH):
                        xr = x[n, oh * stride + kh, j0:]
                        dr = dy[n, oh]
                        for ow in range(OW):
                            xw = xr[ow * step :]
                            d = _load16(dr[ow, f0 : f0 + 16])
                            s0 = _add_scaled16(s0, xw[0], d)
                            s1 = _add_scaled16(s1, xw[1], d)
                            s2 = _add_scaled16(s2, xw[2], d)
                            s3 = _add_scaled16(s3, xw[3], d)
                            s4 = _add_scaled16(s4, xw[4], d)
                            s5 = _add_scaled16(s5, xw[5], d)
                _store16(g[j0, f0 : f0 + 16], s0)
                _store16(g[j0 + 1, f0 : f0 + 16], s1)
                _store16(g[j0 + 2, f0 : f0 + 16], s2)
                _store16(g[j0 + 3, f0 : f0 + 16], s3)
                _store16(g[j0 + 4, f0 : f0 + 16], s4)
                _store16(g[j0 + 5, f0 : f0 + 16], s5)


@kernel
def sum_weight_chunks(dw_chunks, dw):
    """dw_chunks (n_chunks, KH, KW, C, F) -> dw (KH, KW, C, F), the chunks added in chunk order."""
    n_chunks, KH, KW, C, F = dw_chunks.shape
    for k in prange(KH * KW * C):
        h, v, c = k // (KW * C), (k // C) % KW, k % C
        total = dw[h, v, c]
        for f in range(F):
            total[f] = dw_chunks[0, h, v, c, f]
        for chunk in range(1, n_chunks):
            part = dw_chunks[chunk, h, v, c]
            for f in range(F):
                total[f] += part[f]


@kernel
def conv2d_backward_bias(dy, db_chunks, db):
    """dy (N, OH, OW, F) -> db (F,) = sum over n, oh, ow; db_chunks (ceil(N/BATCH_CHUNK), F) scratch."""
    N, OH, OW, F = dy.shape
    n_chunks = db_chunks.shape[0]
    zero = db.dtype.type(0)
    for chunk in prange(n_chunks):
        part = db_chunks[chunk]
        for f in range(F):
            part[f] = zero
        for n in range(chunk * BATCH_CHUNK, min(N, (chunk + 1) * BATCH_CHUNK)):
            for oh in range(OH):
                for ow in range(OW):
                    row = dy[n, oh, ow]
                    for f in range(F):
                        part[f] += row[f]
    for f in range(F):
        db[f] = db_chunks[0, f]
    for chunk in range(1, n_chunks):
        for f in range(F):
            db[f] += db_chunks[chunk, f]
