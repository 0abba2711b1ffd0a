"""numbanet's public ops: validate inputs, allocate or accept ``out=``, call a kernel.

Each family lives in its own module, named like its kernel module, its test file
(``tests/test_<family>.py``) and its benchmark file (``benchmarks/bench_<family>.py``).
"""

from .adam import *  # noqa: F401,F403
from .bias import *  # noqa: F401,F403
from .clip import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .cross_entropy import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .init import *  # noqa: F401,F403
from .kahan import *  # noqa: F401,F403
from .matmul import *  # noqa: F401,F403
from .metrics import *  # noqa: F401,F403
from .pixels import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
from .relu import *  # noqa: F401,F403
from .sgd import *  # noqa: F401,F403
from .sigmoid import *  # noqa: F401,F403
from .softmax import *  # noqa: F401,F403
