"""The compiled checks behind the ops' validation (kernels/checks.py)."""

import numpy as np
import pytest

from numbanet.kernels.checks import all_in_range


@pytest.mark.parametrize("values, n, expected", [
    ([], 0, True),
    ([0, 3, 4], 5, True),
    ([0, 5], 5, False),
    ([-1, 2], 5, False),
    ([np.iinfo(np.intp).min], 5, False),
    ([np.iinfo(np.intp).max], np.iinfo(np.intp).max, False),
    ([np.iinfo(np.intp).max - 1], np.iinfo(np.intp).max, True),
])
def test_all_in_range_is_zero_up_to_n_exclusive(values, n, expected):
    assert all_in_range(np.array(values, dtype=np.intp), n) is expected
