"""ReLU forward and backward.

Dimensions: n = number of elements (arrays of any shape arrive flattened, C order).

The ``_serial`` loops are the whole computation; the parallel kernels hand them
fixed-size chunks. Each element depends only on its own inputs, so the result is the
same for any thread count.
"""

from numba import prange

from numbanet._config import kernel, serial_kernel
from numbanet.kernels.in_place import same_data

# Elements per parallel task: large enough to amortise a task, small enough to balance
# two threads on the MLP's 128x256 activations.
CHUNK = 8192


@serial_kernel
def relu_forward_serial(x, y):
    # x, y: (n,)
    if same_data(x, y):
        relu_in_place(y)
        return
    zero = x.dtype.type(0)
    for i in range(x.size):
        v = x[i]
        # `v <= 0` is False for NaN, so NaN passes through.
        y[i] = zero if v <= zero else v


@serial_kernel
def relu_in_place(y):
    # y: (n,). Storing v back unchanged would let LLVM make the loop a masked store
    # (vmaskmovps, 6x slower here); v + 0 is v exactly where v > 0 or NaN, but opaque.
    zero = y.dtype.type(0)
    for i in range(y.size):
        v = y[i]
        y[i] = zero if v <= zero else v + zero


@kernel
def relu_forward(x, y):
    # x, y: (n,)
    for c in prange((x.size + CHUNK - 1) // CHUNK):
        lo = c * CHUNK
        hi = min(lo + CHUNK, x.size)
        relu_forward_serial(x[lo:hi], y[lo:hi])


@serial_kernel
def relu_backward_serial(dy, x, dx):
    # dy, x, dx: (n,)
    if same_data(dx, dy):
        relu_backward_into_dy(dy, x)
        return
    if same_data(dx, x):
        relu_backward_into_x(dy, x)
        return
    zero = dy.dtype.type(0)
    for i in range(x.size):
        v = x[i]
        # Where x is NaN both tests fail and the NaN itself is written: the slope is
        # undefined, so the gradient is too.
        dx[i] = dy[i] if v > zero else (zero if v <= zero else v)


@serial_kernel
def relu_backward_into_dy(dy, x):
    # dy, x: (n,); dy becomes dx.
    zero = dy.dtype.type(0)
    for i in range(x.size):
        v = x[i]
        dy[i] = dy[i] if v > zero else (zero if v <= zero else v)


@serial_kernel
def relu_backward_into_x(dy, x):
    # dy, x: (n,); x becomes dx. v + 0 keeps a NaN's store opaque (see relu_in_place).
    zero = dy.dtype.type(0)
    for i in range(x.size):
        v = x[i]
        x[i] = dy[i] if v > zero else (zero if v <= zero else v + zero)


@kernel
def relu_backward(dy, x, dx):
    # dy, x, dx: (n,)
    for c in prange((x.size + CHUNK - 1) // CHUNK):
        lo = c * CHUNK
        hi = min(lo + CHUNK, x.size)
        relu_backward_serial(dy[lo:hi], x[lo:hi], dx[lo:hi])
