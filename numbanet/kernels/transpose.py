"""Transpose of a small square block held in vector registers, for the packing of matmul.

``transpose_block(src, si, sj, dst, di, dj)`` sets ``dst[di + c, dj + r] =
src[si + r, sj + c]`` for r, c < ``BLOCK_BYTES`` / itemsize (8 float32, 4 float64): one
32-byte vector load per row of src, a network of shuffles, one vector store per row of
dst. Written as scalar loops, a transposing copy stays scalar (LLVM does not turn
element moves between rows into shuffles): packing a transposed B for matmul took 2.3x
(float32) and 1.7x (float64) the time of packing one that is not.

The network is the textbook one for 32-byte registers: interleave pairs of rows inside
each 16-byte lane, (float32) pair up their 8-byte halves, then join the lanes' halves
of rows W/2 apart: 24 shuffles for float32 and 8 for float64, which LLVM lowers to as
many instructions on AVX2 (unpack, vinsertf128, vperm2f128). The values are only moved,
never rounded, so a NaN's payload survives.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

BLOCK_BYTES = 32

# The shuffles, as indices into the concatenation of their two operands (a, b).
INTERLEAVE_IN_LANES = {8: ([0, 8, 1, 9, 4, 12, 5, 13], [2, 10, 3, 11, 6, 14, 7, 15]), 4: ([0, 4, 2, 6], [1, 5, 3, 7])}
PAIRS_IN_LANES = ([0, 1, 8, 9, 4, 5, 12, 13], [2, 3, 10, 11, 6, 7, 14, 15])
JOIN_LANES = {8: ([0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15]), 4: ([0, 1, 4, 5], [2, 3, 6, 7])}


def _transposed(builder, rows):
    # The W vectors of a W x W block's columns, from the W vectors of its rows.
    width = len(rows)

    def shuffles(a, b, masks):
        return [builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(ir.IntType(32), width), m)) for m in masks]

    t = []
    for i in range(0, width, 2):
        t += shuffles(rows[i], rows[i + 1], INTERLEAVE_IN_LANES[width])
    if width == 8:
        t = [v for g in (0, 4) for i in (g, g + 1) for v in shuffles(t[i], t[i + 2], PAIRS_IN_LANES)]
    half = width // 2
    joined = [shuffles(t[c], t[c + half], JOIN_LANES[width]) for c in range(half)]
    return [first for first, _ in joined] + [second for _, second in joined]


def _block_pointer(context, builder, array_type, array, i, j):
    # A pointer to array[i, j] of a C-contiguous 2-D array.
    array = context.make_array(array_type)(context, builder, array)
    shape = cgutils.unpack_tuple(builder, array.shape, 2)
    strides = cgutils.unpack_tuple(builder, array.strides, 2)
    return cgutils.get_item_pointer2(context, builder, array.data, shape, strides, "C", [i, j])


@intrinsic
def transpose_block(typingctx, src, si, sj, dst, di, dj):
    """dst[di + c, dj + r] = src[si + r, sj + c] for r, c < W (no bounds checks)."""
    arrays_ok = all(isinstance(x, types.Array) and x.ndim == 2 and x.layout == "C"
                    and isinstance(x.dtype, types.Float) for x in (src, dst))
    if not (arrays_ok and src.dtype == dst.dtype
            and all(isinstance(i, types.Integer) for i in (si, sj, di, dj))):
        return None

    def codegen(context, builder, signature, args):
        src_ty, _, _, dst_ty, _, _ = signature.args
        src_v, si_v, sj_v, dst_v, di_v, dj_v = (
            context.cast(builder, v, t, types.intp) if isinstance(t, types.Integer) else v
            for v, t in zip(args, signature.args)
        )
        element = context.get_data_type(src_ty.dtype)
        itemsize = context.get_abi_sizeof(element)
        width = BLOCK_BYTES // itemsize
        vector = ir.VectorType(element, width)
        intp = context.get_value_type(types.intp)

        rows = []
        for r in range(width):
            ptr = _block_pointer(context, builder, src_ty, src_v, builder.add(si_v, ir.Constant(intp, r)), sj_v)
            rows.append(builder.load(builder.bitcast(ptr, vector.as_pointer()), align=itemsize))
        rows = _transposed(builder, rows)
        for c in range(width):
            ptr = _block_pointer(context, builder, dst_ty, dst_v, builder.add(di_v, ir.Constant(intp, c)), dj_v)
            builder.store(rows[c], builder.bitcast(ptr, vector.as_pointer()), align=itemsize)
        return context.get_dummy_value()

    return types.none(src, si, sj, dst, di, dj), codegen
