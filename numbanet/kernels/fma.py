"""Fused multiply-add: a * b + c with a single rounding.

``fma`` is LLVM's ``llvm.fma`` intrinsic, which IEEE 754 defines exactly (the product
is not rounded before the add), so a result is the same on every CPU: one vector
instruction where the CPU has FMA (x86-64 since Haswell and Piledriver), a correctly
rounded library call where it has not. Numba's ``fastmath=False`` only forbids the
compiler from fusing a separate multiply and add on its own; a kernel that asks for
the fused operation by name stays exactly specified.
"""

from llvmlite import ir
from numba import types
from numba.extending import intrinsic


@intrinsic
def fma(typingctx, a, b, c):
    """a * b + c rounded once, for three float32 or three float64 scalars."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        ty = context.get_value_type(signature.return_type)
        fn = builder.module.declare_intrinsic("llvm.fma", [ty], ir.FunctionType(ty, [ty] * 3))
        return builder.call(fn, args)

    return a(a, a, a), codegen
