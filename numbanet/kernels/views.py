"""Views of an array's memory under another shape, for the kernels that pack matmul's panels.

``rows_of_8(x)`` is ``x.reshape(-1, 8)`` for a C-contiguous 2-D ``x`` whose rows hold a
multiple of 8 values, with the same 'C' layout. Numba's own ``reshape`` checks the sizes
with a comparison of an unsigned and a signed integer that it lowers through float64 (a
kernel's float32 purity test catches it), and ``as_strided`` gives the 'A' layout, whose
runtime strides cost loops as many instructions as their arithmetic.
"""

from numba import types
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

_WIDTH = 8


@intrinsic
def rows_of_8(typingctx, x):
    """The (x.size // 8, 8) C-contiguous view of x (C-contiguous 2-D, rows a multiple of 8 long)."""
    if not (isinstance(x, types.Array) and x.ndim == 2 and x.layout == "C"):
        return None

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        source = make_array(array_type)(context, builder, args[0])
        view = make_array(signature.return_type)(context, builder)
        rows, columns = cgutils.unpack_tuple(builder, source.shape, 2)
        intp = context.get_value_type(types.intp)
        width = intp(_WIDTH)
        populate_array(view, data=source.data,
                       shape=[builder.mul(rows, builder.sdiv(columns, width)), width],
                       strides=[builder.mul(width, source.itemsize), source.itemsize],
                       itemsize=source.itemsize, meminfo=source.meminfo, parent=source.parent)
        return impl_ret_borrowed(context, builder, signature.return_type, view._getvalue())

    return x(x), codegen
