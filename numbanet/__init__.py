"""numbanet: numerically stable neural-network ops as explicit Numba loops, and a
thin trainer that uses them to train MNIST on a multicore CPU.

The public ops are in :mod:`numbanet.ops` and re-exported here.
"""

from .ops import *  # noqa: F401,F403

__version__ = "0.1.0"
